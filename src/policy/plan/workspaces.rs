//! MLflow's workspace API as a caller sees it: the workspaces it may enter (its tenants', the
//! one it visits) and nothing else. MLflow would list every workspace (every tenant's name) and
//! show any; the gateway keeps only those in the list, and answers any other name as absent.
//! In `tag` mode workspaces are not used, so both rows are refused.

use super::Draft;
use crate::error::{GatewayError, Reason};
use crate::mlflow::responses::ResponseFilter;

/// The caller's workspace, or the refusal when the gateway does not use workspaces.
fn own(d: &Draft) -> Result<String, GatewayError> {
    d.own_workspace()?.ok_or_else(|| {
        GatewayError::new(
            Reason::RouteDenied,
            "the gateway policy does not permit this route: workspaces are not used here (tenant_isolation=tag keeps tenants apart by tags)",
        )
    })
}

/// The workspaces of the caller's tenants, and the one it acts in.
fn enterable(d: &Draft) -> Result<(Vec<String>, Vec<String>), GatewayError> {
    let acting = own(d)?;
    let members: Vec<String> = d
        .principal
        .tenants
        .iter()
        .filter_map(|t| d.cfg.isolation.workspace()?.workspace_of(t).ok())
        .collect();
    let mut allowed = members.clone();
    if !allowed.contains(&acting) {
        allowed.push(acting);
    }
    Ok((allowed, members))
}

/// `GET workspaces`: MLflow's list, kept to the workspaces the caller may enter (the pipeline
/// adds those where something is shared with it).
pub(super) fn list(d: &mut Draft) -> Result<(), GatewayError> {
    let (allowed, members) = enterable(d)?;
    d.filter = Some(ResponseFilter::WorkspaceList { allowed, members });
    Ok(())
}

/// `GET workspaces/{workspace_name}`: only a workspace the caller may enter is forwarded. The
/// raw segment is compared, so a percent-encoded spelling of a name is refused too (never
/// decoded into someone else's).
pub(super) fn get(d: &mut Draft) -> Result<(), GatewayError> {
    let (allowed, _) = enterable(d)?;
    let asked = d.m.param("workspace_name").unwrap_or_default();
    if !allowed.iter().any(|a| a == asked) {
        return Err(GatewayError::as_absent(
            Reason::TenantMismatch,
            format!("Workspace '{asked}' not found"),
        ));
    }
    Ok(())
}
