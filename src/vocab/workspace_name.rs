//! MLflow workspace names and the tenant → workspace mapping. MLflow's grammar
//! (`mlflow/store/workspace/abstract_store.py`, `WORKSPACE_NAME_PATTERN`): lowercase letters,
//! digits and `-`, starting and ending with a letter or digit, 2–63 characters, and not one
//! of the names MLflow reserves for its own URL space.

/// Names MLflow refuses to create (`default` exists already and holds every object that was
/// created before workspaces were enabled: the gateway never pins it).
pub const RESERVED: &[&str] = &["default", "workspaces", "api", "ajax-api", "static-files"];

/// Longest workspace prefix: leaves at least 23 characters for the tenant id.
pub const MAX_PREFIX: usize = 40;

/// Whether `name` is a workspace name MLflow accepts and the gateway may pin.
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (2..=63).contains(&b.len())
        && b.iter().all(inner)
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && !RESERVED.contains(&name)
}

/// Checks `workspace_prefix`: empty, or lowercase letters, digits and `-`, starting with a
/// letter or digit, at most `MAX_PREFIX` characters.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = prefix.len() <= MAX_PREFIX
        && prefix
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && prefix
            .bytes()
            .next()
            .is_none_or(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be empty or up to {MAX_PREFIX} lowercase letters, digits and `-`, starting with a letter or digit"
        ))
    }
}

/// The tenant's workspace: `prefix` + tenant id, unchanged. Injective by construction (no case
/// folding, no character replacement: two tenants can never share a workspace); a tenant id
/// that does not make a valid name is refused, never rewritten into one.
pub fn for_tenant(prefix: &str, tenant: &str) -> Result<String, String> {
    let name = format!("{prefix}{tenant}");
    if valid(&name) {
        Ok(name)
    } else {
        Err(format!(
            "tenant `{tenant}` has no MLflow workspace: `{name}` is not a valid workspace name (2-63 lowercase letters, digits and `-`, starting and ending with a letter or digit, not {})",
            RESERVED.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_grammar() {
        for ok in ["team-a", "ab", "a1", "0x", &"a".repeat(63)] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "a",
            "",
            "Team-a",
            "team_a",
            "-ab",
            "ab-",
            "a.b",
            "a b",
            "tëam",
            &"a".repeat(64),
            "default",
            "workspaces",
            "api",
            "ajax-api",
            "static-files",
        ] {
            assert!(!valid(bad), "{bad}");
        }
    }

    #[test]
    fn mapping_is_prefix_plus_tenant_and_refuses_what_it_cannot_map() {
        assert_eq!(for_tenant("", "team-a").unwrap(), "team-a");
        assert_eq!(for_tenant("t-", "default").unwrap(), "t-default");
        assert!(for_tenant("", "default")
            .unwrap_err()
            .contains("not a valid"));
        assert!(for_tenant("", "Team-A").is_err());
        // A prefix does not launder a reserved name back in.
        assert!(for_tenant("a", "pi").is_err());
        // Different tenants, different workspaces (no folding).
        assert_ne!(for_tenant("x-", "ab").ok(), for_tenant("x-", "a-b").ok());
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("mlflow-").is_ok());
        assert!(check_prefix("-x").is_err());
        assert!(check_prefix("X-").is_err());
        assert!(check_prefix(&"a".repeat(41)).is_err());
    }
}
