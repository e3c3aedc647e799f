//! `auth_mode=off`: identity from trusted headers, for local development and demos only.
//! `X-Tenant` is required, `X-Subject`, `X-Roles` and `X-Groups` optional; any `Authorization` header is
//! ignored (and never forwarded), which the identity step notes in a warning log line.

use super::{add_membership, valid_subject, valid_tenant, Identity};
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

/// Builds the caller's identity from dev-mode headers. `X-Tenant` names one tenant or several
/// (`team-a, team-b=viewer`): a bare tenant gets the roles of `X-Roles` (else
/// `dev_default_role`), `tenant=role` that role; the first is the default. `X-Groups` lists
/// the caller's groups (for `group:` grants).
pub fn authenticate(req: &Incoming, cfg: &Config) -> Result<Identity, GatewayError> {
    let tenants =
        single_header(req, "x-tenant", Reason::TenantHeaderInvalid)?.ok_or_else(|| {
            GatewayError::new(
                Reason::TenantHeaderMissing,
                "X-Tenant header is required (auth_mode=off)",
            )
        })?;
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
    let roles_invalid = || {
        GatewayError::new(
            Reason::RolesHeaderInvalid,
            "X-Roles must be a comma list of viewer, editor, admin",
        )
    };
    let default_roles: Vec<Role> = match single_header(req, "x-roles", Reason::RolesHeaderInvalid)?
    {
        None => cfg.dev_default_role.into_iter().collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| Role::parse(name).ok_or_else(roles_invalid))
            .collect::<Result<_, _>>()?,
    };
    let mut memberships = Vec::new();
    for item in tenants.split(',').map(str::trim) {
        let (tenant, roles) = match item.split_once('=') {
            Some((t, r)) => (
                t.trim(),
                vec![Role::parse(r.trim()).ok_or_else(roles_invalid)?],
            ),
            None => (item, default_roles.clone()),
        };
        if !valid_tenant(tenant) {
            return Err(GatewayError::new(
                Reason::TenantHeaderInvalid,
                "X-Tenant must be a comma list of tenants (1-63 characters of [A-Za-z0-9._-], starting with a letter or digit), each optionally `=role`",
            ));
        }
        add_membership(&mut memberships, tenant, &roles);
    }
    let groups = match single_header(req, "x-groups", Reason::TenantHeaderInvalid)? {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
    };
    Ok(Identity {
        subject,
        memberships,
        groups,
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
        assert_eq!(
            p,
            Identity::single("team-a", ANONYMOUS_SUBJECT, vec![Role::Admin])
        );
    }

    #[test]
    fn roles_header_parses_canonical_roles_only() {
        let cfg = dev_config();
        let p = authenticate(
            &req(&[("x-tenant", "t"), ("x-roles", "viewer, editor")]),
            &cfg,
        )
        .unwrap();
        assert_eq!(p.memberships[0].roles, vec![Role::Viewer, Role::Editor]);
        let e = authenticate(&req(&[("x-tenant", "t"), ("x-roles", "root")]), &cfg).unwrap_err();
        assert_eq!(e.reason, Reason::RolesHeaderInvalid);
    }

    #[test]
    fn several_tenants_with_their_roles_and_groups() {
        let cfg = dev_config();
        let p = authenticate(
            &req(&[
                ("x-tenant", "team-a, team-b=viewer, team-a=admin"),
                ("x-roles", "editor"),
                ("x-groups", "ml-ops, reviewers"),
            ]),
            &cfg,
        )
        .unwrap();
        let got: Vec<(&str, Vec<Role>)> = p
            .memberships
            .iter()
            .map(|m| (m.tenant.as_str(), m.roles.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("team-a", vec![Role::Editor, Role::Admin]),
                ("team-b", vec![Role::Viewer])
            ]
        );
        assert_eq!(p.first_tenant(), Some("team-a"));
        assert_eq!(p.groups, vec!["ml-ops", "reviewers"]);
        for bad in ["team-a,", "team-a=root", "=viewer"] {
            let e = authenticate(&req(&[("x-tenant", bad)]), &cfg).unwrap_err();
            assert!(
                matches!(
                    e.reason,
                    Reason::TenantHeaderInvalid | Reason::RolesHeaderInvalid
                ),
                "{bad}"
            );
        }
    }
}
