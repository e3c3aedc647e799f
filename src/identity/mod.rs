//! Who is calling: turns request headers (dev mode) or a validated bearer JWT (oidc mode) into
//! a `Principal`. Pure: JWKS bytes and "now" are passed in by the pipeline; nothing here performs
//! I/O, and no token material is ever copied into an error, a log line or the principal.

pub mod claims;
pub mod dev;
pub mod jwks;
pub mod jwt;
pub mod session;
pub mod token_cache;

use crate::vocab::rbac::Role;

/// The authenticated caller, as every later stage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Tenant id, always matching `valid_tenant` (safe inside filter strings and KV keys).
    pub tenant: String,
    /// Subject used for attribution (`runs/create.user_id`) and audit.
    pub subject: String,
    /// Canonical roles (deduplicated, sorted).
    pub roles: Vec<Role>,
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
    pub principal: Principal,
    pub credential: Credential,
}

impl Principal {
    /// The canonical role names, as sessions and verdict caches store them.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.as_str().to_string()).collect()
    }
}

/// Tenant ids are restricted, never escaped: they are written into MLflow filter strings
/// (`tags.\`tenant\` = '<id>'`) and KV keys, so quotes, `%`, `_`-wildcards in LIKE, spaces and
/// `+` must be impossible. (`_` is allowed: the gateway only ever builds `=` clauses.)
pub fn valid_tenant(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Subjects end up in MLflow's `user_id` and in audit lines: printable, bounded, no controls.
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(|c| c.is_control())
}

/// Lower-case hex of `bytes` (digests in KV keys and records).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
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
