//! Validated claims → `Principal`: tenant from `tenant_claim`, subject from `subject_claim`,
//! roles from the union of `role_claim` paths mapped through `role_aliases`.

use super::{normalize_roles, valid_subject, valid_tenant, Principal};
use crate::config::Config;
use crate::error::{GatewayError, Reason};
use crate::vocab::rbac::Role;
use serde_json::{Map, Value};

/// Follows a dotted path (`realm_access.roles`) through nested objects.
pub fn get_path<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = claims.get(first)?;
    for seg in rest {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

/// Role names found under every configured role claim (strings and arrays of strings).
pub fn role_names(claims: &Map<String, Value>, cfg: &Config) -> Vec<String> {
    let mut names = Vec::new();
    for path in &cfg.role_claims {
        match get_path(claims, path) {
            Some(Value::String(s)) => names.push(s.clone()),
            Some(Value::Array(items)) => {
                names.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
    }
    names
}

/// Maps IdP role/group names to canonical roles (exact, case-sensitive); unknown names are
/// ignored; with none recognised, `default_role` applies.
pub fn canonical_roles(names: &[String], cfg: &Config) -> Vec<Role> {
    let roles: Vec<Role> = names
        .iter()
        .flat_map(|n| {
            cfg.role_aliases
                .iter()
                .filter(move |(alias, _)| alias == n)
                .map(|(_, r)| *r)
        })
        .collect();
    if roles.is_empty() {
        cfg.default_role.into_iter().collect()
    } else {
        normalize_roles(roles)
    }
}

pub fn principal_from_claims(
    claims: &Map<String, Value>,
    cfg: &Config,
) -> Result<Principal, GatewayError> {
    let tenant = match get_path(claims, &cfg.tenant_claim) {
        Some(Value::String(t)) if valid_tenant(t) => t.clone(),
        Some(Value::String(_)) => {
            return Err(GatewayError::new(
                Reason::TenantClaimInvalid,
                "the token's tenant claim must be 1-63 characters of [A-Za-z0-9._-]",
            ))
        }
        Some(_) => {
            return Err(GatewayError::new(
                Reason::TenantClaimInvalid,
                "the token's tenant claim must be a single string",
            ))
        }
        None => {
            return Err(GatewayError::new(
                Reason::TenantClaimInvalid,
                "the token has no tenant claim",
            ))
        }
    };
    let subject = match get_path(claims, &cfg.subject_claim) {
        Some(Value::String(s)) if valid_subject(s) => s.clone(),
        _ => {
            return Err(GatewayError::new(
                Reason::SubjectClaimInvalid,
                "the token's subject claim is missing or not a printable string",
            ))
        }
    };
    let roles = canonical_roles(&role_names(claims, cfg), cfg);
    Ok(Principal {
        tenant,
        subject,
        roles,
    })
}
