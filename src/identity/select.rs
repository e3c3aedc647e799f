//! Which tenant a request acts in. A caller may belong to several tenants (`Identity`); the
//! request picks one with MLflow's own workspace selector, the `X-MLFLOW-WORKSPACE` header
//! (what the MLflow client sends for `MLFLOW_WORKSPACE` / `mlflow.set_workspace()` and the UI
//! sends for its workspace picker), in any spelling a WSGI server reads as that header. Without
//! a selector the caller's first tenant applies. A selected tenant the caller belongs to acts
//! with its roles there; in workspace mode another tenant's workspace may be visited with no
//! role at all (only objects shared with the caller are readable there); tag mode refuses it.

use super::{Identity, Principal};
use crate::config::Config;
use crate::error::{GatewayError, Reason};

/// The workspace the request selects: the distinct non-empty values of every spelling of
/// `X-MLFLOW-WORKSPACE` (case, `_` for `-`). Two different values are refused: MLflow would
/// read one of them, and the gateway must judge the same one.
pub fn selector(headers: &[(String, Vec<u8>)]) -> Result<Option<String>, GatewayError> {
    let mut found: Option<String> = None;
    for (name, value) in headers {
        if name.to_ascii_lowercase().replace('_', "-") != "x-mlflow-workspace" {
            continue;
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| invalid("X-MLFLOW-WORKSPACE is not valid UTF-8"))?
            .trim();
        if value.is_empty() {
            continue;
        }
        match &found {
            Some(f) if f != value => {
                return Err(invalid(
                    "X-MLFLOW-WORKSPACE is sent more than once with different workspaces",
                ))
            }
            _ => found = Some(value.to_string()),
        }
    }
    Ok(found)
}

fn invalid(msg: &str) -> GatewayError {
    GatewayError::new(Reason::WorkspaceHeaderInvalid, msg.to_string())
}

/// The name a tenant is selected by: its workspace in workspace mode, the tenant id in tag mode.
pub fn name_of(tenant: &str, cfg: &Config) -> Option<String> {
    match cfg.isolation.workspace() {
        Some(w) => w.workspace_of(tenant).ok(),
        None => Some(tenant.to_string()),
    }
}

/// The caller acting in the tenant the request selects (`selector`), else in its first.
pub fn acting(
    identity: &Identity,
    selector: Option<&str>,
    cfg: &Config,
) -> Result<Principal, GatewayError> {
    let Some(wanted) = selector else {
        let first = identity
            .memberships
            .first()
            .ok_or_else(|| GatewayError::internal("an identity without a tenant"))?;
        return Ok(identity.acting_as(first));
    };
    if let Some(m) = identity
        .memberships
        .iter()
        .find(|m| name_of(&m.tenant, cfg).as_deref() == Some(wanted))
    {
        return Ok(identity.acting_as(m));
    }
    let Some(w) = cfg.isolation.workspace() else {
        return Err(GatewayError::new(
            Reason::WorkspaceNotMember,
            format!("you do not belong to tenant `{wanted}` (X-MLFLOW-WORKSPACE); with tenant_isolation=tag only your own tenants can be selected"),
        ));
    };
    // Visiting another tenant's workspace: its tenant, if the name is one of a tenant.
    let tenant = wanted
        .strip_prefix(w.prefix.as_str())
        .filter(|t| super::valid_tenant(t) && w.workspace_of(t).ok().as_deref() == Some(wanted))
        .ok_or_else(|| {
            GatewayError::new(
                Reason::WorkspaceNotMember,
                format!("`{wanted}` (X-MLFLOW-WORKSPACE) is not a tenant's workspace"),
            )
        })?;
    Ok(identity.visiting(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{dev_config, workspace_config};
    use crate::identity::{add_membership, Identity};
    use crate::vocab::rbac::Role;

    fn two() -> Identity {
        let mut id = Identity::single("team-a", "alice", vec![Role::Editor]);
        add_membership(&mut id.memberships, "team-b", &[Role::Viewer]);
        id
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_selector_is_every_spelling_of_the_header_and_must_agree() {
        assert_eq!(selector(&h(&[])).unwrap(), None);
        assert_eq!(selector(&h(&[("x-mlflow-workspace", "")])).unwrap(), None);
        let same = h(&[
            ("x-mlflow-workspace", "team-b"),
            ("X_MLFLOW_WORKSPACE", "team-b"),
        ]);
        assert_eq!(selector(&same).unwrap().as_deref(), Some("team-b"));
        let other = h(&[
            ("x-mlflow-workspace", "team-b"),
            ("x_mlflow_workspace", "team-a"),
        ]);
        assert_eq!(
            selector(&other).unwrap_err().reason,
            Reason::WorkspaceHeaderInvalid
        );
    }

    #[test]
    fn members_act_with_their_roles_and_others_visit_in_workspace_mode_only() {
        let ws = workspace_config();
        let p = acting(&two(), None, &ws).unwrap();
        assert_eq!((p.tenant.as_str(), p.member), ("team-a", true));
        assert_eq!(p.roles, vec![Role::Editor]);
        let p = acting(&two(), Some("team-b"), &ws).unwrap();
        assert_eq!(
            (p.tenant.as_str(), p.roles.clone()),
            ("team-b", vec![Role::Viewer])
        );
        assert_eq!(p.tenants, vec!["team-a", "team-b"]);
        let p = acting(&two(), Some("team-c"), &ws).unwrap();
        assert_eq!(
            (p.tenant.as_str(), p.member, p.roles.len()),
            ("team-c", false, 0)
        );
        for bad in ["default", "Team-C", "x"] {
            let e = acting(&two(), Some(bad), &ws).unwrap_err();
            assert_eq!(e.reason, Reason::WorkspaceNotMember, "{bad}");
        }
        let tag = dev_config();
        assert_eq!(
            acting(&two(), Some("team-b"), &tag).unwrap().tenant,
            "team-b"
        );
        let e = acting(&two(), Some("team-c"), &tag).unwrap_err();
        assert_eq!((e.reason, e.status()), (Reason::WorkspaceNotMember, 403));
    }
}
