//! Who is calling: turns request headers (dev mode) or a validated bearer JWT (oidc mode) into
//! a `Principal`. Pure: JWKS bytes and "now" are passed in by the pipeline; nothing here performs
//! I/O, and no token material is ever copied into an error, a log line or the principal.

pub mod claims;
pub mod dev;
pub mod jwks;
pub mod jwt;
pub mod select;
pub mod session;
pub mod token_cache;

use crate::vocab::rbac::Role;
use serde::{Deserialize, Serialize};

/// One tenant the caller belongs to, with its roles there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    #[serde(rename = "t")]
    pub tenant: String,
    #[serde(rename = "r")]
    pub roles: Vec<Role>,
}

/// What the caller's credentials prove: who it is, the tenants it belongs to with its roles in
/// each (in the order the claims list them: the first applies when a request selects none),
/// and its groups (for `group:` grants). Token verdicts and browser sessions keep this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "s")]
    pub subject: String,
    #[serde(rename = "m")]
    pub memberships: Vec<Membership>,
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Identity {
    /// One tenant with `roles`, no groups (dev mode's single `X-Tenant`, older sessions).
    pub fn single(tenant: &str, subject: &str, roles: Vec<Role>) -> Identity {
        Identity {
            subject: subject.to_string(),
            memberships: vec![Membership {
                tenant: tenant.to_string(),
                roles: normalize_roles(roles),
            }],
            groups: Vec::new(),
        }
    }

    /// The first tenant: the one a request without a selector acts in.
    pub fn first_tenant(&self) -> Option<&str> {
        self.memberships.first().map(|m| m.tenant.as_str())
    }

    /// The caller acting in one of its own tenants.
    pub fn acting_as(&self, m: &Membership) -> Principal {
        Principal {
            tenant: m.tenant.clone(),
            subject: self.subject.clone(),
            roles: m.roles.clone(),
            member: true,
            groups: self.groups.clone(),
            tenants: self.tenants(),
        }
    }

    /// The caller visiting `tenant`, which it does not belong to (a workspace where something
    /// may be shared with it): no role there; only grants can let it read.
    pub fn visiting(&self, tenant: &str) -> Principal {
        Principal {
            tenant: tenant.to_string(),
            subject: self.subject.clone(),
            roles: Vec::new(),
            member: false,
            groups: self.groups.clone(),
            tenants: self.tenants(),
        }
    }

    fn tenants(&self) -> Vec<String> {
        self.memberships.iter().map(|m| m.tenant.clone()).collect()
    }
}

/// Adds `roles` in `tenant` to `memberships` (a tenant listed twice keeps one entry, with the
/// union of its roles, at its first place).
pub fn add_membership(memberships: &mut Vec<Membership>, tenant: &str, roles: &[Role]) {
    match memberships.iter_mut().find(|m| m.tenant == tenant) {
        Some(m) => {
            m.roles.extend_from_slice(roles);
            m.roles = normalize_roles(std::mem::take(&mut m.roles));
        }
        None => memberships.push(Membership {
            tenant: tenant.to_string(),
            roles: normalize_roles(roles.to_vec()),
        }),
    }
}

/// The caller as every stage after identity sees it: acting in one tenant (the one the request
/// selected, else its first), with its roles there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// The acting tenant, always matching `valid_tenant` (safe inside filter strings and KV
    /// keys).
    pub tenant: String,
    /// Subject used for attribution (`runs/create.user_id`) and audit.
    pub subject: String,
    /// Canonical roles in the acting tenant (deduplicated, sorted); none when visiting.
    pub roles: Vec<Role>,
    /// Whether the caller belongs to the acting tenant (false: visiting a workspace where
    /// something may be shared with it).
    pub member: bool,
    /// The caller's groups, for `group:` grants.
    pub groups: Vec<String>,
    /// Every tenant the caller belongs to, for `tenant:` grants and the workspace list.
    pub tenants: Vec<String>,
}

impl Principal {
    /// The canonical role names.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.as_str().to_string()).collect()
    }
}

/// How the caller proved who it is; the audit line's `auth` names it (never the credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Dev mode: the `X-Tenant` / `X-Subject` / `X-Roles` headers, taken at their word.
    Headers,
    /// An `Authorization: Bearer` token.
    Bearer,
    /// The browser's sealed session cookie, valid until `ends_at` (Unix seconds).
    Session { ends_at: u64 },
}

impl Credential {
    /// The audit line's `auth` field (oidc mode only).
    pub fn audit_name(self) -> Option<&'static str> {
        match self {
            Credential::Headers => None,
            Credential::Bearer => Some("bearer"),
            Credential::Session { .. } => Some("session"),
        }
    }
}

/// The identity step's result: who, and by which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    pub identity: Identity,
    pub credential: Credential,
}

pub use crate::vocab::names::{hex, valid_tenant};

/// Subjects end up in MLflow's `user_id` and in audit lines: printable, bounded, no controls.
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(|c| c.is_control())
}

/// Deduplicates and sorts roles so audit lines and comparisons are stable.
pub fn normalize_roles(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_charset() {
        for ok in ["team-a", "T1", "a.b_c-d", &"x".repeat(63)] {
            assert!(valid_tenant(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "a'b",
            "a b",
            "a%",
            "a+b",
            "ä",
            &"x".repeat(64),
            "a\\b",
            "a`",
        ] {
            assert!(!valid_tenant(bad), "{bad}");
        }
    }

    #[test]
    fn subject_charset() {
        assert!(valid_subject("alice@example.com"));
        assert!(!valid_subject(""));
        assert!(!valid_subject("a\nb"));
        assert!(!valid_subject(&"x".repeat(257)));
    }
}

#[cfg(test)]
mod token_tests;
