//! Validated claims → `Identity`: tenants from `tenant_claim` (one or a list) and from groups
//! that fit `tenant_group_pattern`, subject from `subject_claim`, roles from the union of
//! `role_claim` paths mapped through `role_aliases`, groups from `group_claim`.

use super::{add_membership, normalize_roles, valid_subject, valid_tenant, Identity};
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

/// `tenant_group_pattern`: a group name that says "this tenant, this role", such as
/// `mlflow/{tenant}/{role}` (Keycloak's full group paths: `/mlflow/{tenant}/{role}`). Each
/// placeholder stands for one or more characters without `/`; the rest is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPattern {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Tenant,
    Role,
}

impl GroupPattern {
    /// Parses a pattern with exactly one `{tenant}` and one `{role}`, not next to each other.
    pub fn parse(raw: &str) -> Result<GroupPattern, String> {
        let mut pieces = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let next = [("{tenant}", Piece::Tenant), ("{role}", Piece::Role)]
                .into_iter()
                .filter_map(|(p, piece)| rest.find(p).map(|i| (i, p.len(), piece)))
                .min_by_key(|(i, _, _)| *i);
            match next {
                Some((i, len, piece)) => {
                    if i > 0 {
                        pieces.push(Piece::Literal(rest[..i].to_string()));
                    }
                    pieces.push(piece);
                    rest = &rest[i + len..];
                }
                None => {
                    pieces.push(Piece::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        let count = |p: &Piece| pieces.iter().filter(|x| *x == p).count();
        if count(&Piece::Tenant) != 1 || count(&Piece::Role) != 1 {
            return Err("must contain `{tenant}` and `{role}` exactly once each".into());
        }
        if pieces
            .windows(2)
            .any(|w| !matches!(w[0], Piece::Literal(_)) && !matches!(w[1], Piece::Literal(_)))
        {
            return Err("`{tenant}` and `{role}` must be separated by literal text".into());
        }
        Ok(GroupPattern { pieces })
    }

    /// The tenant and role name a group names, if it fits the pattern.
    pub fn captures<'g>(&self, group: &'g str) -> Option<(&'g str, &'g str)> {
        let (mut tenant, mut role) = (None, None);
        let mut pos = 0;
        for (i, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(l) => {
                    if !group[pos..].starts_with(l.as_str()) {
                        return None;
                    }
                    pos += l.len();
                }
                Piece::Tenant | Piece::Role => {
                    let end = match self.pieces.get(i + 1) {
                        Some(Piece::Literal(l)) => pos + group[pos..].find(l.as_str())?,
                        _ => group.len(),
                    };
                    let value = &group[pos..end];
                    if value.is_empty() || value.contains('/') {
                        return None;
                    }
                    if *piece == Piece::Tenant {
                        tenant = Some(value);
                    } else {
                        role = Some(value);
                    }
                    pos = end;
                }
            }
        }
        (pos == group.len()).then_some((tenant?, role?))
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
