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
        member: true,
        tenants: vec!["t".into()],
        ..Principal::default()
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

/// The table as data for the end-to-end tests (`tests/data/policy_table.json`): they read row
/// ids, strategies and the deny families from here, never by pattern-matching Rust source.
fn table_json() -> String {
    let rows: Vec<serde_json::Value> = ROWS
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "mount": format!("{:?}", r.mount),
                "method": r.method,
                "path": r.path,
                "action": r.action.as_str(),
                "strategy": strategy_name(r.strategy),
                "tags": r.strategy.tags().map(|k| k.as_str()),
            })
        })
        .collect();
    let families: Vec<serde_json::Value> = super::table::DENIED_FAMILIES
        .iter()
        .map(|(prefix, why)| serde_json::json!({"prefix": prefix, "why": why}))
        .collect();
    let mut out = serde_json::to_string_pretty(&serde_json::json!({
        "policy_version": table_fingerprint(),
        "rows": rows,
        "denied_families": families,
    }))
    .unwrap();
    out.push('\n');
    out
}

/// The table as one canonical text: every row with its full strategy (denial messages, id
/// rules) and the strategy's declaration (`Shape`), and every denied family.
fn table_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for r in ROWS {
        h.update(format!(
            "{}|{:?}|{}|{}|{}|{:?}|{:?}\n",
            r.id,
            r.mount,
            r.method,
            r.path,
            r.action.as_str(),
            r.strategy,
            r.strategy.shape()
        ));
    }
    for (prefix, why) in super::table::DENIED_FAMILIES {
        h.update(format!("deny {prefix}|{why}\n"));
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("p-{}", &hex[..12])
}

#[test]
fn policy_version_tracks_the_table() {
    let expected = table_fingerprint();
    if super::POLICY_VERSION != expected {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/policy/version.rs");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let src = std::fs::read_to_string(path).expect("read version.rs");
            let line = format!(
                "pub const POLICY_VERSION: &str = \"{}\";",
                super::POLICY_VERSION
            );
            let updated = src.replace(
                &line,
                &format!("pub const POLICY_VERSION: &str = \"{expected}\";"),
            );
            std::fs::write(path, updated).expect("write version.rs");
        } else {
            panic!(
                "the policy table changed but POLICY_VERSION did not ({} != {expected}); run UPDATE_DOCS=1 cargo test",
                super::POLICY_VERSION
            );
        }
    }
}

#[test]
fn table_json_matches_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/policy_table.json");
    let expected = table_json();
    if std::fs::read_to_string(path).ok().as_deref() != Some(expected.as_str()) {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, expected).expect("write tests/data/policy_table.json");
        } else {
            panic!("tests/data/policy_table.json is out of date with the policy table; run UPDATE_DOCS=1 cargo test");
        }
    }
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

// ---- Planning: registry, model-version sources and traces (pure; no MLflow) ----

mod planning {
    use super::principal;
    use crate::config::tests::{dev_config, workspace_config};
    use crate::error::{Kind, Reason};
    use crate::mlflow::ownership::Resource;
    use crate::pipeline::ownership::{judge, Owner};
    use crate::policy::plan::{keeps_an_experiment, plan, source_check, BodyPlan, Plan, Verify};
    use crate::policy::{match_route, Role};
    use crate::request::Incoming;
    use crate::vocab::rbac::Level;

    fn plan_of(
        method: &str,
        path: &str,
        query: &str,
        body: &str,
    ) -> Result<Plan, crate::error::GatewayError> {
        let req = Incoming::for_test(method, path, query, &[], body.as_bytes());
        let m = match_route(method, path)?;
        plan(&req, &m, &principal(vec![Role::Admin]), &dev_config())
    }

    /// As `plan_of`, in workspace mode for tenant `ws-t` (workspace `ws-t`).
    fn plan_in_workspace(
        method: &str,
        path: &str,
        query: &str,
    ) -> Result<Plan, crate::error::GatewayError> {
        let req = Incoming::for_test(method, path, query, &[], b"");
        let m = match_route(method, path)?;
        let mut p = principal(vec![Role::Admin]);
        p.tenant = "ws-t".into();
        plan(&req, &m, &p, &workspace_config())
    }

    #[test]
    fn workspace_rooted_artifact_paths_only_in_the_own_workspace() {
        let up = "/api/2.0/mlflow-artifacts/artifacts/";
        let p =
            plan_in_workspace("GET", &format!("{up}workspaces/ws-t/7/r/artifacts/f"), "").unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("7".into())]);
        assert_eq!(p.path, format!("{up}workspaces/ws-t/7/r/artifacts/f"));
        let p = plan_in_workspace("GET", &format!("{up}7/r/artifacts/f"), "").unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("7".into())]);
        let e = plan_in_workspace("GET", &format!("{up}workspaces/ws-u/7/r/artifacts/f"), "")
            .unwrap_err();
        assert_eq!(e.reason, Reason::TenantMismatch);
        let e = plan_in_workspace("DELETE", &format!("{up}workspaces/ws-t/7"), "").unwrap_err();
        assert_eq!(e.reason, Reason::RootDeleteRefused);
        let list = "/api/2.0/mlflow-artifacts/artifacts";
        let p = plan_in_workspace("GET", list, "path=workspaces%2Fws-t%2F7%2Fr").unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("7".into())]);
        let e = plan_in_workspace("GET", list, "path=workspaces%2Fws-u%2F7%2Fr").unwrap_err();
        assert_eq!(e.reason, Reason::TenantMismatch);
        // Tag mode has no workspaces: such a path names no workspace of the caller's.
        let e = plan_of("GET", &format!("{up}workspaces/t/7/r/artifacts/f"), "", "").unwrap_err();
        assert_eq!(e.reason, Reason::TenantMismatch);
    }

    fn body_json(p: &Plan) -> serde_json::Value {
        match &p.body {
            BodyPlan::Replace(b) => serde_json::from_slice(b).unwrap(),
            BodyPlan::Original | BodyPlan::Inflated(_) => panic!("body was not rewritten"),
        }
    }

    #[test]
    fn registered_model_create_gets_the_tenant_tag() {
        let p = plan_of(
            "POST",
            "/api/2.0/mlflow/registered-models/create",
            "",
            r#"{"name":"m","tags":[{"key":"mlflow.prompt.is_prompt","value":"true"}]}"#,
        )
        .unwrap();
        let tags = body_json(&p)["tags"].clone();
        assert!(tags
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "tenant" && t["value"] == "t"));
        assert!(tags
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "mlflow.prompt.is_prompt"));
        let e = plan_of(
            "POST",
            "/api/2.0/mlflow/registered-models/create",
            "",
            r#"{"name":"m","tags":[{"key":"TENANT","value":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::TagConflict);
    }

    #[test]
    fn registry_routes_check_the_name_from_where_mlflow_reads_it() {
        let p = plan_of(
            "GET",
            "/api/2.0/mlflow/registered-models/get",
            "name=a+b",
            "",
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::RegisteredModel("a b".into())]);
        // DELETE: body only; a query is refused outright.
        let p = plan_of(
            "DELETE",
            "/api/2.0/mlflow/registered-models/delete",
            "",
            r#"{"name":"x"}"#,
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::RegisteredModel("x".into())]);
        let e = plan_of(
            "DELETE",
            "/api/2.0/mlflow/registered-models/delete",
            "name=y",
            r#"{"name":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::QueryOnBodyMethod);
        let e = plan_of(
            "POST",
            "/api/2.0/mlflow/registered-models/set-tag",
            "",
            r#"{"name":"x","key":"Tenant","value":"v"}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ReservedTag);
        let e = plan_of(
            "GET",
            "/model-versions/get-artifact",
            "name=x&version=1&path=../secret",
            "",
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::InvalidPath);
    }

    #[test]
    fn search_filters_get_the_tenant_clause_first() {
        let p = plan_of(
            "GET",
            "/api/2.0/mlflow/registered-models/search",
            "filter=name+%3D+%27m%27",
            "",
        )
        .unwrap();
        assert_eq!(
            p.query,
            "filter=tags.%60tenant%60+%3D+%27t%27+AND+name+%3D+%27m%27"
        );
        let p = plan_of("GET", "/api/2.0/mlflow/model-versions/search", "", "").unwrap();
        assert_eq!(p.query, "filter=tags.%60tenant%60+%3D+%27t%27");
        assert!(p.filter.is_some());
    }

    #[test]
    fn foreign_and_absent_registry_names_get_the_same_404() {
        let who = principal(vec![Role::Admin]);
        let res = Resource::RegisteredModel("m".into());
        let other = Owner::Tenant(crate::policy::access::Owned {
            tenant: "other".into(),
            grant_sets: vec![],
            aliases: vec![],
        });
        let foreign = judge(&res, &other, &who, Level::Read).unwrap_err();
        let absent = judge(&res, &Owner::Missing, &who, Level::Read).unwrap_err();
        assert_eq!(foreign.kind(), Kind::NotFound);
        assert_eq!(
            foreign.to_response("r1").body,
            absent.to_response("r2").body
        );
        assert_eq!(
            foreign.to_response("r1").body,
            br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=m not found", "sqlstate": "KAM00", "error_class": "RESOURCE_NOT_FOUND"}"#
        );
        assert_eq!(
            (foreign.reason, absent.reason),
            (Reason::TenantMismatch, Reason::ResourceNotFound)
        );
        assert!(judge(&res, &Owner::Tenant("t".into()), &who, Level::Read).is_ok());
    }

    #[test]
    fn a_refused_role_says_what_the_caller_holds_and_what_is_needed() {
        let run = Resource::Run("r1".into());
        let own = Owner::Tenant("t".into());
        let e = judge(&run, &own, &principal(vec![Role::Viewer]), Level::Edit).unwrap_err();
        assert_eq!(e.reason, Reason::Rbac);
        assert_eq!(
            e.message,
            "your access to run r1 is READ (role viewer and any grants); this needs EDIT (a write: the editor or admin role, or a grant of EDIT on it)"
        );
        let e = judge(&run, &own, &principal(vec![Role::Editor]), Level::Manage).unwrap_err();
        assert!(e.message.ends_with("this needs MANAGE (a delete or a change of settings: the admin role, or a grant of MANAGE on it)"), "{}", e.message);
        // A member with no role the gateway knows is told so, not answered as a stranger.
        let e = judge(&run, &own, &principal(vec![]), Level::Read).unwrap_err();
        assert_eq!(e.reason, Reason::Rbac);
        assert!(
            e.message
                .starts_with("you have no recognised role in tenant `t`"),
            "{}",
            e.message
        );
        let other = Owner::Tenant("other".into());
        let e = judge(&run, &other, &principal(vec![]), Level::Read).unwrap_err();
        assert_eq!(e.reason, Reason::TenantMismatch);
    }

    #[test]
    fn model_version_sources_stay_inside_the_tenant() {
        let none: Vec<String> = vec![];
        assert_eq!(
            source_check("runs:/abc123/model", "t", None, &none).unwrap(),
            vec![Resource::Run("abc123".into())]
        );
        assert_eq!(
            source_check("models:/m-1", "t", None, &none).unwrap(),
            vec![Resource::LoggedModel("m-1".into())]
        );
        assert_eq!(
            source_check("mlflow-artifacts:/7/r/artifacts/model", "t", None, &none).unwrap(),
            vec![Resource::Experiment("7".into())]
        );
        assert!(source_check("dummy-source", "t", None, &none)
            .unwrap()
            .is_empty());
        // Workspace mode: an experiment source rooted in the caller's own workspace only.
        let own = "mlflow-artifacts:/workspaces/ws-t/7/r/artifacts/model";
        assert_eq!(
            source_check(own, "t", Some("ws-t"), &none).unwrap(),
            vec![Resource::Experiment("7".into())]
        );
        for ws in [None, Some("ws-u")] {
            let e = source_check(own, "t", ws, &none).unwrap_err();
            assert_eq!(e.reason, Reason::SourceRefused);
            // Tag mode says what to change (MLflow runs with workspaces it does not use).
            assert_eq!(e.message.contains("tenant_isolation=tag"), ws.is_none());
        }
        for bad in [
            "s3://bucket/x",
            "file:///etc",
            "/etc/passwd",
            "runs:/abc/../../x",
            "runs:/../x",
            "mlflow-artifacts:/7/../8/x",
            "mlflow-artifacts://host/7/x",
            "mlflow-artifacts:/%37/x",
            "models:/m-1/../m-2",
            "http://evil/x",
            "",
            "dummy-source2",
        ] {
            let e = source_check(bad, "t", None, &none).unwrap_err();
            assert_eq!(e.reason, Reason::SourceRefused, "{bad}");
        }
        let prefixes = vec!["s3://models/{tenant}/".to_string()];
        assert!(source_check("s3://models/t/m1", "t", None, &prefixes)
            .unwrap()
            .is_empty());
        for bad in [
            "s3://models/u/m1",
            "s3://models/tt/m1",
            "s3://models/t/",
            "s3://models/t/../u/m",
            "s3://models/t/a?x=1",
        ] {
            assert!(source_check(bad, "t", None, &prefixes).is_err(), "{bad}");
        }
        let p = plan_of(
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            "",
            r#"{"name":"m","source":"models:/m-9","model_id":"m-9","run_id":"r1"}"#,
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Run("r1".into()),
                Resource::LoggedModel("m-9".into()),
                Resource::RegisteredModel("m".into()),
            ]
        );
        assert!(body_json(&p)["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "tenant"));
    }

    fn start_v3(info: &str) -> Result<Plan, crate::error::GatewayError> {
        plan_of(
            "POST",
            "/api/3.0/mlflow/traces",
            "",
            &format!(r#"{{"trace":{{"trace_info":{info}}}}}"#),
        )
    }

    #[test]
    fn start_trace_v3_may_not_rehome_a_foreign_trace() {
        let loc = r#""trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"3"}}"#;
        let p = start_v3(&format!(r#"{{"trace_id":"tr-1",{loc},"trace_metadata":{{"mlflow.traceInputs":"x"}},"tags":{{"k":"v"}}}}"#)).unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("3".into())]);
        assert_eq!(p.absent_or_own, vec![Resource::Trace("tr-1".into())]);
        let e = start_v3(&format!(
            r#"{{"trace_id":"tr-1",{loc},"tags":{{"tenant":"x"}}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.reason, Reason::ReservedTag);
        let e =
            start_v3(r#"{"trace_id":"tr-1","trace_location":{"type":"UC_SCHEMA","uc_schema":{}}}"#)
                .unwrap_err();
        assert_eq!(e.reason, Reason::LocationRefused);
        let e = start_v3(&format!(
            r#"{{"trace_id":"tr-1",{loc},"assessments":[{{"trace_id":"tr-2"}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.reason, Reason::ConflictingIds);
        let e = start_v3(&format!(r#"{{"trace_id":"tr-1",{loc},"traceId":"tr-2"}}"#)).unwrap_err();
        assert_eq!(e.reason, Reason::CamelCaseAlias);
    }

    #[test]
    fn trace_ids_in_paths_lists_and_searches() {
        let e = plan_of(
            "PATCH",
            "/api/3.0/mlflow/traces/tr-1/tags",
            "",
            r#"{"key":"tenant","value":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ReservedTag);
        let e = plan_of(
            "POST",
            "/api/3.0/mlflow/traces/tr-1/assessments",
            "",
            r#"{"assessment":{"trace_id":"tr-2"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ConflictingIds);
        let p = plan_of(
            "GET",
            "/api/3.0/mlflow/traces/batchGet",
            "trace_ids=tr-2&trace_ids=tr-1",
            "",
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Trace("tr-1".into()),
                Resource::Trace("tr-2".into())
            ]
        );
        let many: Vec<String> = (0..101).map(|i| format!("trace_ids=tr-{i}")).collect();
        assert!(plan_of(
            "GET",
            "/api/3.0/mlflow/traces/batchGet",
            &many.join("&"),
            ""
        )
        .is_err());
        assert_eq!(
            plan_of("POST", "/api/3.0/mlflow/traces/search", "", "{}")
                .unwrap_err()
                .reason,
            Reason::ScopeRequired
        );
        let e = plan_of("POST", "/api/3.0/mlflow/traces/search", "", r#"{"locations":[{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"1"}}],"experiment_ids":["2"]}"#).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidField);
        let p = plan_of(
            "GET",
            "/api/2.0/mlflow/traces",
            "experiment_ids=4&experiment_ids=5",
            "",
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Experiment("4".into()),
                Resource::Experiment("5".into())
            ]
        );
        assert_eq!(
            plan_of("GET", "/api/2.0/mlflow/traces", "", "")
                .unwrap_err()
                .reason,
            Reason::ScopeRequired
        );
        let p = plan_of(
            "POST",
            "/api/2.0/mlflow/traces/delete-traces",
            "",
            r#"{"experiment_id":"4","request_ids":["tr-9"]}"#,
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Experiment("4".into()),
                Resource::Trace("tr-9".into())
            ]
        );
        let p = plan_of(
            "POST",
            "/api/2.0/mlflow/traces/link-prompts",
            "",
            r#"{"trace_id":"tr-9","prompt_versions":[{"name":"p","version":"1"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::RegisteredModel("p".into()),
                Resource::Trace("tr-9".into())
            ]
        );
    }

    #[test]
    fn dataset_searches_need_an_owned_scope_from_query_or_body() {
        for (method, query, body) in [
            ("GET", "", ""),
            ("POST", "", "{}"),
            ("POST", "", r#"{"experiment_ids":[]}"#),
        ] {
            let e = plan_of(method, "/api/3.0/mlflow/datasets/search", query, body).unwrap_err();
            assert_eq!(e.reason, Reason::ScopeRequired, "{method} {query}{body}");
        }
        let p = plan_of(
            "GET",
            "/api/3.0/mlflow/datasets/search",
            "experiment_ids=2&experiment_ids=1",
            "",
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Experiment("1".into()),
                Resource::Experiment("2".into())
            ]
        );
        let p = plan_of(
            "POST",
            "/ajax-api/2.0/mlflow/experiments/search-datasets",
            "",
            r#"{"experiment_ids":["3"]}"#,
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("3".into())]);
    }

    #[test]
    fn dataset_routes_check_the_dataset_and_linked_experiments() {
        let p = plan_of("DELETE", "/api/3.0/mlflow/datasets/d-1/tags/k", "", "").unwrap();
        assert_eq!(p.checks, vec![Resource::Dataset("d-1".into())]);
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/datasets/d-1/add-experiments",
            "",
            r#"{"experiment_ids":["5"]}"#,
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Experiment("5".into()),
                Resource::Dataset("d-1".into())
            ]
        );
        let e = plan_of(
            "POST",
            "/api/3.0/mlflow/datasets/d-1/remove-experiments",
            "",
            "{}",
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ScopeRequired);
        let e = plan_of("GET", "/api/3.0/mlflow/datasets/..%2Fx", "", "").unwrap_err();
        assert_eq!(e.kind(), Kind::BadRequest);
    }

    #[test]
    fn scorer_list_needs_one_form_of_scope() {
        let e = plan_of("GET", "/api/3.0/mlflow/scorers/list", "", "").unwrap_err();
        assert_eq!(e.reason, Reason::ScopeRequired);
        let e = plan_of(
            "GET",
            "/api/3.0/mlflow/scorers/list",
            "experiment_id=1&experiment_ids=2",
            "",
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ConflictingIds);
        let p = plan_of("GET", "/api/3.0/mlflow/scorers/list", "experiment_id=1", "").unwrap();
        assert_eq!(p.checks, vec![Resource::Experiment("1".into())]);
        let p = plan_of(
            "GET",
            "/api/3.0/mlflow/scorers/list",
            "experiment_ids=1&experiment_ids=2",
            "",
        )
        .unwrap();
        assert_eq!(p.checks.len(), 2);
        let e = plan_of("PUT", "/api/3.0/mlflow/scorers/online-config", "", "{}").unwrap_err();
        assert_eq!(e.reason, Reason::RouteDenied);
        let e = plan_of("GET", "/api/3.0/mlflow/scorers/online-configs", "", "").unwrap_err();
        assert_eq!(e.reason, Reason::MissingField);
        let p = plan_of(
            "GET",
            "/api/3.0/mlflow/scorers/online-configs",
            "scorer_ids=a-1&scorer_ids=b-2",
            "",
        )
        .unwrap();
        assert!(p.checks.is_empty(), "configs are checked in the answer");
        assert_eq!(
            p.filter,
            Some(crate::mlflow::responses::ResponseFilter::OnlineConfigs { owned: vec![] })
        );
    }

    #[test]
    fn genai_objects_are_checked_by_id_and_issues_by_their_source_run() {
        let p = plan_of(
            "GET",
            "/api/3.0/mlflow/label-schemas/get",
            "schema_id=ls-1",
            "",
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::LabelSchema("ls-1".into())]);
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/review-queues/items/add",
            "",
            r#"{"queue_id":"rq-1","item_ids":["tr-1"]}"#,
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::ReviewQueue("rq-1".into())]);
        let e = plan_of(
            "PATCH",
            "/api/3.0/mlflow/issues/iss-1",
            "",
            r#"{"issue_id":"iss-2","name":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ConflictingIds);
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/issues",
            "",
            r#"{"experiment_id":"1","name":"n","description":"d","source_run_id":"abc"}"#,
        )
        .unwrap();
        assert_eq!(
            p.checks,
            vec![
                Resource::Experiment("1".into()),
                Resource::Run("abc".into())
            ]
        );
        assert_eq!(body_json(&p)["created_by"], "s");
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/review-queues/items/set-status",
            "",
            r#"{"queue_id":"rq-1","item_id":"tr-1","status":"COMPLETE","completed_by":"mallory"}"#,
        )
        .unwrap();
        assert_eq!(p.checks, vec![Resource::ReviewQueue("rq-1".into())]);
        assert_eq!(body_json(&p)["completed_by"], "s");
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/review-queues/items/set-status",
            "",
            r#"{"queue_id":"rq-1","item_id":"tr-1","status":"PENDING","completed_by":"mallory"}"#,
        )
        .unwrap();
        assert!(body_json(&p).get("completed_by").is_none());
        let e = plan_of("POST", "/api/3.0/mlflow/issues/search", "", "{}").unwrap_err();
        assert_eq!(e.reason, Reason::MissingField);
        // `issues/invoke` is a job starter under /ajax-api only: POST on `issues/{issue_id}`
        // under /api has no row.
        let e = plan_of("POST", "/api/3.0/mlflow/issues/invoke", "", "{}").unwrap_err();
        assert_eq!(e.reason, Reason::RouteNotAllowed);
    }

    /// Two names for one id: the gateway judges the id MLflow's handler acts on, and refuses
    /// a request that names the object in two places with different ids.
    #[test]
    fn ids_are_read_where_the_handler_reads_them() {
        let conflict = |r: Result<Plan, crate::error::GatewayError>| {
            assert_eq!(r.unwrap_err().reason, Reason::ConflictingIds)
        };
        // get-trace-artifact reads `request_id` only.
        for mount in ["/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"] {
            let path = format!("{mount}/get-trace-artifact");
            let p = plan_of("GET", &path, "request_id=tr-2", "").unwrap();
            assert_eq!(p.checks, vec![Resource::Trace("tr-2".into())]);
            assert_eq!(p.verify, vec![Verify::TraceLocation("tr-2".into())]);
            conflict(plan_of("GET", &path, "trace_id=tr-1&request_id=tr-2", ""));
            conflict(plan_of("GET", &path, "trace_id=tr-2&request_id=tr-2", ""));
            conflict(plan_of("GET", &path, "trace_id=tr-1", ""));
            let e = plan_of("GET", &path, "path=a.txt", "").unwrap_err();
            assert_eq!(e.reason, Reason::MissingField);
        }
        // traces/get reads `trace_id` only.
        let p = plan_of("GET", "/api/3.0/mlflow/traces/get", "trace_id=tr-1", "").unwrap();
        assert_eq!(p.checks, vec![Resource::Trace("tr-1".into())]);
        conflict(plan_of(
            "GET",
            "/api/3.0/mlflow/traces/get",
            "request_id=tr-1",
            "",
        ));
        // Path routes: every spelling in the body must name the path's trace.
        conflict(plan_of(
            "PATCH",
            "/api/2.0/mlflow/traces/tr-1",
            "",
            r#"{"request_id":"tr-1","trace_id":"tr-2"}"#,
        ));
        // run_id or run_uuid where the message has both; run_id alone elsewhere.
        let p = plan_of("GET", "/api/2.0/mlflow/runs/get", "run_uuid=abc", "").unwrap();
        assert_eq!(p.checks, vec![Resource::Run("abc".into())]);
        conflict(plan_of(
            "GET",
            "/api/2.0/mlflow/runs/get",
            "run_id=abc&run_uuid=def",
            "",
        ));
        for path in [
            "runs/delete",
            "runs/restore",
            "runs/delete-tag",
            "runs/log-batch",
            "runs/log-model",
            "runs/log-inputs",
            "runs/outputs",
        ] {
            let path = format!("/api/2.0/mlflow/{path}");
            let e = plan_of("POST", &path, "", r#"{"run_uuid":"abc","key":"k"}"#).unwrap_err();
            assert_eq!(e.reason, Reason::ConflictingIds, "{path}");
        }
        let e = plan_of(
            "POST",
            "/api/2.0/mlflow/traces/link-to-run",
            "",
            r#"{"run_uuid":"abc","trace_ids":["tr-1"]}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, Reason::ConflictingIds);
    }

    /// MLflow acts on a partly parsed body: the fields the gateway judged go first.
    #[test]
    fn forwarded_bodies_put_judged_fields_first() {
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/issues/search",
            "",
            r#"{"max_results":"x","experiment_id":"7"}"#,
        )
        .unwrap();
        let BodyPlan::Replace(b) = &p.body else {
            panic!("not re-serialised")
        };
        assert!(
            b.starts_with(br#"{"experiment_id":"7""#),
            "{}",
            String::from_utf8_lossy(b)
        );
    }

    #[test]
    fn unlinking_the_last_experiment_of_a_dataset_is_refused() {
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/datasets/d-1/remove-experiments",
            "",
            r#"{"experiment_ids":["1"]}"#,
        )
        .unwrap();
        assert_eq!(
            p.verify,
            vec![Verify::KeepsAnExperiment {
                dataset: "d-1".into(),
                removed: vec!["1".into()]
            }]
        );
        let linked = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(keeps_an_experiment("d-1", &linked(&["1", "2"]), &linked(&["1"])).is_ok());
        let e = keeps_an_experiment("d-1", &linked(&["1"]), &linked(&["1"])).unwrap_err();
        assert_eq!(e.reason, Reason::OrphanRefused);
        assert_eq!(e.status(), 403);
        assert!(keeps_an_experiment("d-1", &linked(&["1", "2"]), &linked(&["2", "1"])).is_err());
        let p = plan_of(
            "POST",
            "/api/3.0/mlflow/datasets/d-1/add-experiments",
            "",
            r#"{"experiment_ids":["1"]}"#,
        )
        .unwrap();
        assert!(p.verify.is_empty());
    }

    #[test]
    fn a_dataset_is_owned_only_when_all_its_experiments_are() {
        use crate::pipeline::ownership::owner_of_all;
        let a = || Owner::Tenant("a".into());
        // Both experiments' grants decide (access needs each).
        let Owner::Tenant(both) = owner_of_all([a(), a()]) else {
            panic!("owned")
        };
        assert_eq!((both.tenant.as_str(), both.grant_sets.len()), ("a", 2));
        assert_eq!(
            owner_of_all([a(), Owner::Tenant("b".into())]),
            Owner::Nobody
        );
        assert_eq!(owner_of_all([a(), Owner::Missing]), Owner::Nobody);
        assert_eq!(owner_of_all([a(), Owner::Nobody]), Owner::Nobody);
        assert_eq!(owner_of_all([]), Owner::Missing);
    }
}

/// Protected tags (issue: reserved tags, one mechanism): every route whose MLflow request
/// carries tags has a row that declares its tagged kind, and every such row refuses each
/// protected key in every place a request can carry a tag key.
mod tag_guard {
    use super::principal;
    use crate::config::tests::dev_config;
    use crate::error::Reason;
    use crate::mlflow::tags::Tagged;
    use crate::policy::table::{Mount, Row, Strategy, ROWS};
    use crate::policy::{match_route, plan, Role};
    use crate::request::Incoming;

    /// The MLflow routes with tags, from MLflow's protobuf descriptors (checked against the
    /// installed MLflow by `tests/e2e/test_route_inventory.py`).
    const TAG_ROUTES: &str = include_str!("../../tests/data/tag_writing_routes.json");

    fn concrete(path: &str, key: &str) -> String {
        path.split('/')
            .map(|seg| match seg {
                "{tag_key}" | "{key}" => key.to_string(),
                "{trace_id}" | "{request_id}" => "tr-1".into(),
                "{model_id}" => "m-1".into(),
                "{dataset_id}" => "d-1".into(),
                s if s.starts_with('{') => "x1".into(),
                s => s.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn mount(m: Mount) -> &'static str {
        match m {
            Mount::Api2 => "/api/2.0/mlflow/",
            Mount::Api3 => "/api/3.0/mlflow/",
            Mount::Ajax2 => "/ajax-api/2.0/mlflow/",
            Mount::Ajax3 => "/ajax-api/3.0/mlflow/",
            Mount::Artifacts => "/api/2.0/mlflow-artifacts/",
            Mount::Root => "/",
        }
    }

    fn rows_with_tags() -> impl Iterator<Item = (&'static Row, Tagged)> {
        ROWS.iter()
            .filter_map(|r| r.strategy.tags().map(|k| (r, k)))
    }

    #[test]
    fn every_tag_writing_route_has_a_row_that_declares_its_kind() {
        let routes: Vec<(String, String)> = serde_json::from_str(TAG_ROUTES).unwrap();
        assert!(routes.len() > 20);
        let mut matched = 0;
        for (method, path) in routes {
            let tail = path.trim_start_matches("/mlflow/");
            for version in ["2.0", "3.0"] {
                let full = format!("/api/{version}/mlflow/{}", concrete(tail, "k"));
                let Ok(m) = match_route(&method, &full) else {
                    continue;
                };
                if matches!(m.row.strategy, Strategy::Deny(_)) {
                    continue;
                }
                matched += 1;
                assert!(
                    m.row.strategy.tags().is_some(),
                    "{} ({method} {path}) writes tags but its strategy declares no tagged kind",
                    m.row.id
                );
            }
        }
        assert!(matched >= 25, "only {matched} tag routes matched rows");
    }

    #[test]
    fn every_row_with_tags_refuses_each_protected_key_in_every_place() {
        let cfg = dev_config();
        let tenant_key = cfg.tenant_tag_key.clone();
        let p = principal(vec![Role::Admin]);
        for (row, kind) in rows_with_tags() {
            // The kind's system tags, the tenant tag, and a grant tag (in another spelling).
            let grant = crate::mlflow::grants::tag_key(&tenant_key, "user:alice");
            let grant_upper = grant.to_uppercase();
            let mut keys: Vec<&str> = kind.protected().to_vec();
            keys.extend([tenant_key.as_str(), grant.as_str(), grant_upper.as_str()]);
            for key in keys {
                // A create writes the tenant tag itself (a conflicting one is refused by
                // `with_tenant`) and replaces the run author: those two are rewrites, not refusals.
                let rewritten = row.strategy.shape().injects_tenant
                    && (key == tenant_key || (kind == Tagged::Run && key == "mlflow.user"));
                let path = format!("{}{}", mount(row.mount), concrete(row.path, key));
                let tag = serde_json::json!([{"key": key, "value": "v"}]);
                let places: Vec<(String, String)> = if row.method == "GET" {
                    vec![(format!("key={key}"), String::new())]
                } else {
                    [
                        serde_json::json!({"key": key}),
                        serde_json::json!({"tags": tag}),
                        serde_json::json!({"trace": {"trace_info": {"tags": {key: "v"}}}}),
                        serde_json::json!({"datasets": [{"tags": tag}]}),
                        serde_json::json!({"tags": serde_json::json!({key: "v"}).to_string()}),
                    ]
                    .iter()
                    .map(|b| (String::new(), b.to_string()))
                    .collect()
                };
                let mut refused = 0;
                for (query, body) in &places {
                    let req = Incoming::for_test(row.method, &path, query, &[], body.as_bytes());
                    let m = match_route(row.method, &path).unwrap();
                    assert_eq!(m.row.id, row.id);
                    match plan(&req, &m, &p, &cfg) {
                        Err(e) if e.reason == Reason::ReservedTag => refused += 1,
                        // Refused before the guard (parsing), or a rewrite on creates.
                        Err(_) => {}
                        Ok(_) if rewritten => {}
                        Ok(_) => panic!("{} let `{key}` through in {query}{body}", row.id),
                    }
                }
                let in_path = row.path.contains("{tag_key}") || row.path.contains("{key}");
                if !rewritten || in_path {
                    assert!(refused > 0, "{}: `{key}` never refused", row.id);
                }
            }
        }
    }

    #[test]
    fn runs_and_traces_protect_what_mlflow_trusts() {
        for k in [
            "mlflow.user",
            "mlflow.artifactLocation",
            "mlflow.trace.spansLocation",
            "mlflow.trace.archiveLocation",
        ] {
            assert!(Tagged::Trace.protected().contains(&k));
            assert!(Tagged::Run.protected().contains(&k));
            let e =
                crate::mlflow::tags::guard(Tagged::Run, &k.to_uppercase(), "tenant").unwrap_err();
            assert_eq!(e.reason, Reason::ReservedTag, "any spelling");
        }
        assert!(crate::mlflow::tags::guard(Tagged::Run, "mlflow.runName", "tenant").is_ok());
        assert!(crate::mlflow::tags::guard(Tagged::Experiment, "mlflow.user", "tenant").is_ok());
    }
}
