//! `auth_mode=off`: identity from trusted headers, for local development and demos only.
//! `X-Tenant` is required, `X-Subject` and `X-Roles` optional; any `Authorization` header is
//! ignored (and never forwarded), which the identity step notes in a warning log line.

use super::{normalize_roles, valid_subject, valid_tenant, Principal};
use crate::config::Config;
use crate::error::{GatewayError, Reason};
use crate::request::Incoming;
use crate::vocab::rbac::Role;

/// Subject recorded when dev mode receives no `X-Subject`.
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

fn single_header<'a>(
    req: &'a Incoming,
    name: &str,
    reason: Reason,
) -> Result<Option<&'a str>, GatewayError> {
    let values = req.header_values(name);
    match values.as_slice() {
        [] => Ok(None),
        [v] => std::str::from_utf8(v)
            .map(|s| Some(s.trim()))
            .map_err(|_| GatewayError::new(reason, format!("header {name} is not valid UTF-8"))),
        _ => Err(GatewayError::new(
            reason,
            format!("header {name} must appear at most once"),
        )),
    }
}

/// Builds the principal from dev-mode headers.
pub fn authenticate(req: &Incoming, cfg: &Config) -> Result<Principal, GatewayError> {
    let tenant = single_header(req, "x-tenant", Reason::TenantHeaderInvalid)?.ok_or_else(|| {
        GatewayError::new(
            Reason::TenantHeaderMissing,
            "X-Tenant header is required (auth_mode=off)",
        )
    })?;
    if !valid_tenant(tenant) {
        return Err(GatewayError::new(
            Reason::TenantHeaderInvalid,
            "X-Tenant must be 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit",
        ));
    }
    let subject = match single_header(req, "x-subject", Reason::TenantHeaderInvalid)? {
        None => ANONYMOUS_SUBJECT.to_string(),
        Some(s) if valid_subject(s) => s.to_string(),
        Some(_) => {
            return Err(GatewayError::new(
                Reason::TenantHeaderInvalid,
                "X-Subject must be 1-256 printable characters",
            ))
        }
    };
    let roles = match single_header(req, "x-roles", Reason::RolesHeaderInvalid)? {
        None => cfg.dev_default_role.into_iter().collect(),
        Some(list) => {
            let mut roles = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                roles.push(Role::parse(name).ok_or_else(|| {
                    GatewayError::new(
                        Reason::RolesHeaderInvalid,
                        "X-Roles must be a comma list of viewer, editor, admin",
                    )
                })?);
            }
            roles
        }
    };
    Ok(Principal {
        tenant: tenant.to_string(),
        subject,
        roles: normalize_roles(roles),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::dev_config;

    fn req(headers: &[(&str, &str)]) -> Incoming {
        Incoming::for_test("GET", "/api/2.0/mlflow/runs/get", "", headers, b"")
    }

    #[test]
    fn tenant_required_and_validated() {
        let cfg = dev_config();
        let e = authenticate(&req(&[]), &cfg).unwrap_err();
        assert_eq!(e.reason, Reason::TenantHeaderMissing);
        assert_eq!(e.status(), 400);
        let e = authenticate(&req(&[("x-tenant", "a'b")]), &cfg).unwrap_err();
        assert_eq!(e.reason, Reason::TenantHeaderInvalid);
        let e = authenticate(&req(&[("x-tenant", "a"), ("x-tenant", "b")]), &cfg).unwrap_err();
        assert_eq!(e.reason, Reason::TenantHeaderInvalid);
    }

    #[test]
    fn authorization_is_ignored_and_defaults_apply() {
        let cfg = dev_config();
        let p = authenticate(
            &req(&[("x-tenant", "team-a"), ("authorization", "Bearer whatever")]),
            &cfg,
        )
        .unwrap();
        assert_eq!(p.tenant, "team-a");
        assert_eq!(p.subject, ANONYMOUS_SUBJECT);
        assert_eq!(p.roles, vec![Role::Admin]);
    }

    #[test]
    fn roles_header_parses_canonical_roles_only() {
        let cfg = dev_config();
        let p = authenticate(
            &req(&[("x-tenant", "t"), ("x-roles", "viewer, editor")]),
            &cfg,
        )
        .unwrap();
        assert_eq!(p.roles, vec![Role::Viewer, Role::Editor]);
        let e = authenticate(&req(&[("x-tenant", "t"), ("x-roles", "root")]), &cfg).unwrap_err();
        assert_eq!(e.reason, Reason::RolesHeaderInvalid);
    }
}
