//! Validated claims → `Identity`: tenants from `tenant_claim` (one or a list) and from groups
//! that fit `tenant_group_pattern`, subject from `subject_claim`, roles from the union of
//! `role_claim` paths mapped through `role_aliases`, groups from `group_claim`.

use super::{add_membership, normalize_roles, valid_subject, valid_tenant, Identity};
use crate::config::Config;
use crate::error::{GatewayError, Reason};
pub use crate::vocab::group_pattern::GroupPattern;
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
    strings_at(claims, &cfg.role_claims)
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

/// String values under every path of `paths` (a string, or an array of strings).
fn strings_at(claims: &Map<String, Value>, paths: &[Vec<String>]) -> Vec<String> {
    let mut out = Vec::new();
    for path in paths {
        match get_path(claims, path) {
            Some(Value::String(s)) => out.push(s.clone()),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
    }
    out
}

fn tenant_invalid(msg: &str) -> GatewayError {
    GatewayError::new(Reason::TenantClaimInvalid, msg.to_string())
}

/// Validated claims → the caller's identity: its tenants from `tenant_claim` (one string or a
/// list; the roles of `role_claim` apply in each) and from groups that fit
/// `tenant_group_pattern` (the role the group names, through `role_aliases`), its groups, and
/// its subject.
pub fn identity_from_claims(
    claims: &Map<String, Value>,
    cfg: &Config,
) -> Result<Identity, GatewayError> {
    let claimed: Vec<String> = match get_path(claims, &cfg.tenant_claim) {
        None => Vec::new(),
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                tenant_invalid("the token's tenant claim must be a string or a list of strings")
            })?,
        Some(_) => {
            return Err(tenant_invalid(
                "the token's tenant claim must be a string or a list of strings",
            ))
        }
    };
    let mut memberships = Vec::new();
    if !claimed.is_empty() {
        let roles = canonical_roles(&role_names(claims, cfg), cfg);
        for t in &claimed {
            if !valid_tenant(t) {
                return Err(tenant_invalid(
                    "the token's tenant claim must be 1-63 characters of [A-Za-z0-9._-]",
                ));
            }
            add_membership(&mut memberships, t, &roles);
        }
    }
    let groups = strings_at(claims, &cfg.group_claims);
    if let Some(pattern) = &cfg.tenant_group_pattern {
        for g in &groups {
            let Some((tenant, role)) = pattern.captures(g) else {
                continue;
            };
            let role = cfg
                .role_aliases
                .iter()
                .find(|(alias, _)| alias == role)
                .map(|(_, r)| *r);
            if let (true, Some(role)) = (valid_tenant(tenant), role) {
                add_membership(&mut memberships, tenant, &[role]);
            }
        }
    }
    if memberships.is_empty() {
        return Err(tenant_invalid(
            "the token names no tenant (tenant claim or a group that fits tenant_group_pattern)",
        ));
    }
    let subject = match get_path(claims, &cfg.subject_claim) {
        Some(Value::String(s)) if valid_subject(s) => s.clone(),
        _ => {
            return Err(GatewayError::new(
                Reason::SubjectClaimInvalid,
                "the token's subject claim is missing or not a printable string",
            ))
        }
    };
    Ok(Identity {
        subject,
        memberships,
        groups,
    })
}
