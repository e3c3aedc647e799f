//! MLflow's workspace API as a tenant sees it: its own workspace and nothing else. MLflow would
//! list every workspace (every tenant's name) and show any; the gateway answers the list with
//! the caller's workspace alone and any other name as absent. In `tag` mode workspaces are not
//! used, so both rows are refused.

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

/// `GET workspaces`: a get of the caller's own workspace, answered as a one-item list.
pub(super) fn list(d: &mut Draft) -> Result<(), GatewayError> {
    let ws = own(d)?;
    d.path = format!("{}workspaces/{ws}", d.m.prefix);
    d.filter = Some(ResponseFilter::WorkspaceList);
    Ok(())
}

/// `GET workspaces/{workspace_name}`: only the caller's own name is forwarded. The raw segment
/// is compared, so a percent-encoded spelling of the own name is refused too (never decoded
/// into someone else's).
pub(super) fn get(d: &mut Draft) -> Result<(), GatewayError> {
    let ws = own(d)?;
    let asked = d.m.param("workspace_name").unwrap_or_default();
    if asked != ws {
        return Err(GatewayError::as_absent(
            Reason::TenantMismatch,
            format!("Workspace '{asked}' not found"),
        ));
    }
    Ok(())
}
