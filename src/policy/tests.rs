//! Table-driven tests over the policy table: every row × every canonical role, table hygiene,
//! and `docs/rbac.md` kept in step with the table (`UPDATE_DOCS=1 cargo test` rewrites it).

use super::plan::check_rbac;
use super::table::{Mount, Strategy, ROWS};
use super::{Action, Role};
use crate::identity::Principal;

fn principal(roles: Vec<Role>) -> Principal {
    Principal {
        tenant: "t".into(),
        subject: "s".into(),
        roles,
    }
}

#[test]
fn every_row_times_every_role() {
    for row in ROWS {
        for role in Role::ALL {
            let expected = match (role, row.action) {
                (Role::Viewer, Action::Read) => true,
                (Role::Viewer, _) => false,
                (Role::Editor, Action::Read | Action::Write) => true,
                (Role::Editor, _) => false,
                (Role::Admin, _) => true,
            };
            let got = check_rbac(row, &principal(vec![role]));
            assert_eq!(got.is_ok(), expected, "{} as {:?}", row.id, role);
            if let Err(e) = got {
                assert_eq!(e.reason, crate::error::Reason::Rbac);
                assert_eq!(e.status(), 403);
                assert!(e.message.contains(row.action.as_str()), "{}", e.message);
                assert!(e.message.contains(Role::least_for(row.action).as_str()));
            }
        }
        let e = check_rbac(row, &principal(vec![])).unwrap_err();
        assert!(e.message.contains("no recognised role"));
    }
}

#[test]
fn rows_are_unique() {
    let mut ids: Vec<&str> = ROWS.iter().map(|r| r.id).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate row id");
    for (i, a) in ROWS.iter().enumerate() {
        for b in &ROWS[i + 1..] {
            assert!(
                !(a.mount == b.mount && a.method == b.method && a.path == b.path),
                "{} and {} are the same route",
                a.id,
                b.id
            );
        }
    }
}

#[test]
fn destructive_rows_are_delete_class() {
    for row in ROWS {
        if row.path.ends_with("/delete") || row.path.ends_with("/restore") || row.method == "DELETE"
        {
            // Tags are metadata (write); removing an alias un-promotes a version (manage).
            let metadata = row.path.contains("tag") || row.path.ends_with("/alias");
            if !metadata {
                assert_eq!(row.action, Action::Delete, "{}", row.id);
            }
        }
    }
}

fn mount_prefixes(m: Mount) -> &'static str {
    match m {
        Mount::Api2 => "/api/2.0/mlflow/ (+ /ajax-api)",
        Mount::Api3 => "/api/3.0/mlflow/ (+ /ajax-api)",
        Mount::Ajax2 => "/ajax-api/2.0/mlflow/",
        Mount::Ajax3 => "/ajax-api/3.0/mlflow/",
        Mount::Artifacts => "/api/2.0/mlflow-artifacts/ (+ /ajax-api)",
        Mount::Root => "/",
    }
}

fn strategy_name(s: Strategy) -> String {
    match s {
        Strategy::Deny(_) => "deny".into(),
        other => {
            let dbg = format!("{other:?}");
            dbg.split(['(', ' ', '{']).next().unwrap_or("").to_string()
        }
    }
}

/// The RBAC table as written in docs/rbac.md.
pub fn rbac_markdown() -> String {
    let mut out = String::from(
        "| Route id | Method | Mount | Path | Action | Least role | Tenant strategy |\n|---|---|---|---|---|---|---|\n",
    );
    for r in ROWS {
        let least = match r.strategy {
            Strategy::Deny(_) => "— (refused)".to_string(),
            _ => Role::least_for(r.action).as_str().to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | `{}` | `{}` | {} | {} | {} |\n",
            r.id,
            r.method,
            mount_prefixes(r.mount),
            r.path,
            r.action.as_str(),
            least,
            strategy_name(r.strategy)
        ));
    }
    out
}

#[test]
fn docs_rbac_md_matches_the_table() {
    const BEGIN: &str = "<!-- BEGIN POLICY TABLE (generated: UPDATE_DOCS=1 cargo test) -->\n";
    const END: &str = "<!-- END POLICY TABLE -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rbac.md");
    let doc = std::fs::read_to_string(path).expect("docs/rbac.md exists");
    let (start, end) = (
        doc.find(BEGIN).expect("BEGIN marker") + BEGIN.len(),
        doc.find(END).expect("END marker"),
    );
    let expected = rbac_markdown();
    if doc[start..end] != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = format!("{}{}{}", &doc[..start], expected, &doc[end..]);
            std::fs::write(path, updated).expect("write docs/rbac.md");
        } else {
            panic!(
                "docs/rbac.md is out of date with the policy table; run UPDATE_DOCS=1 cargo test"
            );
        }
    }
}
