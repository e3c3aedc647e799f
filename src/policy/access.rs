//! What the caller may do with one object: its tenant role there as a baseline (viewer reads,
//! editor edits, admin manages everything of the tenant), raised by grants on the object to
//! one of the caller's subjects, and vetoed by a `DENY` to any of them. A caller visiting a
//! tenant it does not belong to has no role there, and grants give it `READ` at most: sharing
//! across the tenant wall is read-only. Pure.

use super::plan::check_rbac;
use super::Row;
use crate::error::{GatewayError, Reason};
use crate::identity::Principal;
use crate::mlflow::grants::{tag_key, Grant, GrantLevel, Reader};
use crate::mlflow::ownership::Alias;
use crate::vocab::rbac::{Action, Level};

/// An object's owner as the checks see it: its tenant, the grants that decide over it (one set
/// per experiment it belongs to: a dataset linked to several needs access to each), and a
/// registered model's aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub tenant: String,
    pub grant_sets: Vec<Vec<Grant>>,
    pub aliases: Vec<Alias>,
}

/// An owner with no grants or aliases (tests).
#[cfg(test)]
impl From<&str> for Owned {
    fn from(tenant: &str) -> Owned {
        Owned {
            tenant: tenant.to_string(),
            grant_sets: vec![vec![]],
            aliases: vec![],
        }
    }
}

/// The caller's grant subjects: itself, each of its groups, each of its tenants.
pub fn subjects(p: &Principal) -> Vec<String> {
    let mut out = vec![format!("user:{}", p.subject)];
    out.extend(p.groups.iter().map(|g| format!("group:{g}")));
    out.extend(p.tenants.iter().map(|t| format!("tenant:{t}")));
    out
}

/// The caller's level on an object of the acting tenant with these grants; `None`: no access
/// at all (a `DENY`, or a visitor without a grant).
fn level_in(p: &Principal, grants: &[Grant], mine: &[String]) -> Option<Level> {
    let held: Vec<GrantLevel> = grants
        .iter()
        .filter(|g| mine.contains(&g.subject))
        .map(|g| g.level)
        .collect();
    if held.contains(&GrantLevel::Deny) {
        return None;
    }
    let granted = held
        .iter()
        .filter_map(|l| match l {
            GrantLevel::Read => Some(Level::Read),
            GrantLevel::Edit => Some(Level::Edit),
            GrantLevel::Manage => Some(Level::Manage),
            GrantLevel::Deny => None,
        })
        .max();
    if !p.member {
        return granted.map(|g| g.min(Level::Read));
    }
    let role = p.roles.iter().map(|r| Level::of_role(*r)).max();
    role.max(granted)
}

/// The caller's level on `owned`; `None` when it has no access (another tenant's object, a
/// `DENY`, or nothing shared with a visitor).
pub fn level(p: &Principal, owned: &Owned) -> Option<Level> {
    if owned.tenant != p.tenant {
        return None;
    }
    let mine = subjects(p);
    if owned.grant_sets.is_empty() {
        return level_in(p, &[], &mine);
    }
    owned
        .grant_sets
        .iter()
        .map(|set| level_in(p, set, &mine))
        .collect::<Option<Vec<Level>>>()?
        .into_iter()
        .min()
}

/// Whether a `DENY` to one of the caller's subjects hides `owned` (for the audit reason).
pub fn denied(p: &Principal, owned: &Owned) -> bool {
    let mine = subjects(p);
    owned
        .grant_sets
        .iter()
        .flatten()
        .any(|g| g.level == GrantLevel::Deny && mine.contains(&g.subject))
}

/// The reader of search answers (`mlflow::grants::Reader`): the rows the caller may see.
pub fn reader(p: &Principal, tenant_key: &str) -> Reader {
    Reader {
        tenant: p.tenant.clone(),
        tenant_key: tenant_key.to_string(),
        member: p.member,
        keys: subjects(p).iter().map(|s| tag_key(tenant_key, s)).collect(),
    }
}

/// A request that names no object of its own (a create, a search, the UI shell): the caller's
/// role in the acting tenant decides; a visitor may only read (its answers then show only what
/// is shared with it).
pub fn check_role(row: &Row, p: &Principal) -> Result<(), GatewayError> {
    if p.member {
        return check_rbac(row, p);
    }
    if row.action == Action::Read {
        return Ok(());
    }
    Err(GatewayError::new(
        Reason::Rbac,
        format!(
            "you have no role in tenant `{}` (its workspace is only visited: what is shared with you there is read-only); {} needs a role there",
            p.tenant, row.id
        ),
    ))
}

/// Whether `alias` is one of the operator's protected aliases (compared as SQL backends that
/// fold case would).
pub fn is_protected(alias: &str, protected: &[String]) -> bool {
    protected.iter().any(|p| p.eq_ignore_ascii_case(alias))
}

/// Whether a model version carries a protected alias.
pub fn version_protected(version: &str, aliases: &[Alias], protected: &[String]) -> bool {
    aliases
        .iter()
        .any(|a| a.version == version && is_protected(&a.alias, protected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::rbac::Role;

    fn member(roles: Vec<Role>) -> Principal {
        Principal {
            tenant: "team-a".into(),
            subject: "alice".into(),
            roles,
            member: true,
            groups: vec!["ops".into()],
            tenants: vec!["team-a".into()],
        }
    }

    fn visitor() -> Principal {
        Principal {
            tenant: "team-a".into(),
            subject: "bob".into(),
            roles: vec![],
            member: false,
            groups: vec![],
            tenants: vec!["team-b".into()],
        }
    }

    fn owned(grants: &[(&str, GrantLevel)]) -> Owned {
        Owned {
            tenant: "team-a".into(),
            grant_sets: vec![grants
                .iter()
                .map(|(s, l)| Grant {
                    subject: s.to_string(),
                    level: *l,
                })
                .collect()],
            aliases: vec![],
        }
    }

    #[test]
    fn the_role_is_the_baseline_grants_raise_it_and_deny_vetoes() {
        use GrantLevel::*;
        let viewer = member(vec![Role::Viewer]);
        assert_eq!(level(&viewer, &owned(&[])), Some(Level::Read));
        assert_eq!(
            level(&viewer, &owned(&[("user:alice", Edit)])),
            Some(Level::Edit)
        );
        assert_eq!(
            level(&viewer, &owned(&[("group:ops", Manage)])),
            Some(Level::Manage)
        );
        // A lower grant never lowers the role.
        let admin = member(vec![Role::Admin]);
        assert_eq!(
            level(&admin, &owned(&[("user:alice", Read)])),
            Some(Level::Manage)
        );
        // A veto on any of the caller's subjects, over the role and every grant.
        for subject in ["user:alice", "group:ops", "tenant:team-a"] {
            let o = owned(&[(subject, Deny), ("user:alice", Manage)]);
            assert_eq!(level(&admin, &o), None, "{subject}");
            assert!(denied(&admin, &o));
        }
        // Another subject's veto does not touch the caller.
        assert_eq!(
            level(&viewer, &owned(&[("user:carol", Deny)])),
            Some(Level::Read)
        );
    }

    #[test]
    fn visitors_read_only_what_is_shared_with_them() {
        use GrantLevel::*;
        let bob = visitor();
        assert_eq!(level(&bob, &owned(&[])), None);
        assert_eq!(
            level(&bob, &owned(&[("user:bob", Read)])),
            Some(Level::Read)
        );
        assert_eq!(
            level(&bob, &owned(&[("tenant:team-b", Manage)])),
            Some(Level::Read)
        );
        assert_eq!(
            level(&bob, &owned(&[("tenant:team-b", Read), ("user:bob", Deny)])),
            None
        );
        // Objects of another tenant than the acting one: no access whatever the grants.
        let mut other = owned(&[("user:bob", Read)]);
        other.tenant = "team-c".into();
        assert_eq!(level(&bob, &other), None);
    }

    #[test]
    fn an_object_of_several_experiments_needs_access_to_each() {
        use GrantLevel::*;
        let viewer = member(vec![Role::Viewer]);
        let mut o = owned(&[("user:alice", Edit)]);
        o.grant_sets.push(vec![]);
        assert_eq!(level(&viewer, &o), Some(Level::Read));
        o.grant_sets.push(vec![Grant {
            subject: "group:ops".into(),
            level: Deny,
        }]);
        assert_eq!(level(&viewer, &o), None);
    }

    #[test]
    fn protected_aliases_fold_case() {
        let protected = vec!["champion".to_string()];
        assert!(is_protected("Champion", &protected));
        assert!(!is_protected("challenger", &protected));
        let aliases = vec![Alias {
            alias: "CHAMPION".into(),
            version: "3".into(),
        }];
        assert!(version_protected("3", &aliases, &protected));
        assert!(!version_protected("4", &aliases, &protected));
    }
}
