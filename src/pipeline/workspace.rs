//! `tenant_isolation=workspace`: settles the caller's MLflow workspace before anything reads
//! MLflow on the caller's behalf. The name comes from the tenant (`vocab::workspace_name`); the
//! workspace must exist (remembered in the key-value store for `ownership_cache_seconds`, else
//! asked of MLflow's workspace API and, with `workspace_provisioning=auto`, created); then the
//! request context is pinned, so every later call to MLflow carries exactly that workspace.

use super::ctx::Ctx;
use super::host::Host;
use crate::config::{Config, WorkspaceConfig};
use crate::error::{GatewayError, Reason};
use crate::identity::{token_cache, Principal};

/// MLflow's capability endpoint; `workspaces_enabled` says whether the header is honoured.
pub const SERVER_INFO: &str = "/api/3.0/mlflow/server-info";
/// MLflow's workspace API (never reachable by tenants: the gateway's own calls only).
const WORKSPACES: &str = "/api/3.0/mlflow/workspaces";

/// Settles and pins the caller's workspace (a no-op in `tag` mode).
pub fn settle<H: Host>(
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let Some(wcfg) = cfg.isolation.workspace() else {
        return Ok(());
    };
    let name = wcfg.workspace_of(&principal.tenant)?;
    let key = format!("ws:v1:{name}");
    let ttl = cfg.ownership_cache_seconds;
    let now = ctx.now_s();
    let fresh = |at: u64| now.saturating_sub(at) < ttl;
    if ttl > 0 {
        // A cached bearer token remembers its tenant's workspace: no read of its own.
        let seen = ctx.token_entry.as_ref().and_then(|e| e.workspace.as_ref());
        if seen.is_some_and(|(n, at)| *n == name && fresh(*at)) {
            ctx.pin(name);
            return Ok(());
        }
        let known = ctx
            .kv_get(&key)?
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok());
        if let Some(at) = known.filter(|at| fresh(*at)) {
            remember_in_token(ctx, &name, at)?;
            ctx.pin(name);
            return Ok(());
        }
    }
    ensure(wcfg, &name, principal, cfg, ctx)?;
    if ttl > 0 {
        ctx.kv_set(&key, now.to_string().as_bytes())?;
        remember_in_token(ctx, &name, now)?;
    }
    ctx.pin(name);
    Ok(())
}

/// Copies the workspace fact into the request's verified-token entry, for the token's next
/// requests.
fn remember_in_token<H: Host>(ctx: &mut Ctx<H>, name: &str, at: u64) -> Result<(), GatewayError> {
    if let Some(entry) = ctx.token_entry.take() {
        if let Some(updated) = token_cache::with_workspace(&entry.stored, name, at) {
            ctx.kv_set(&entry.key, &updated)?;
        }
    }
    Ok(())
}

/// Makes sure the workspace exists: MLflow must have workspaces enabled, and a missing
/// workspace is created (`auto`) or refused (`manual`).
fn ensure<H: Host>(
    wcfg: &WorkspaceConfig,
    name: &str,
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let tenant = principal.tenant.as_str();
    if !workspaces_enabled(cfg, ctx)? {
        ctx.log("error", DISABLED_HINT);
        return Err(GatewayError::new(
            Reason::WorkspacesDisabled,
            "the MLflow server does not have workspaces enabled, so tenants cannot be kept apart; the gateway refuses to serve until it has",
        )
        .with_log_detail(format!(
            "refused a request of tenant `{tenant}`: MLflow does not report workspaces enabled"
        )));
    }
    let found = ctx.own_call(cfg, "GET", &format!("{WORKSPACES}/{name}"), Vec::new())?;
    match found.status {
        200 => Ok(()),
        // Only a member's first request creates its tenant's workspace; a visitor's finds
        // nothing there.
        404 if wcfg.auto_provision && principal.member => {
            let body = serde_json::json!({
                "name": name,
                "description": format!("tenant {tenant} (created by mlflow-enterprise-gateway)"),
            });
            let created = ctx.own_call(cfg, "POST", WORKSPACES, body.to_string().into_bytes())?;
            // 400 RESOURCE_ALREADY_EXISTS: another instance created it a moment ago.
            let raced = created.status == 400
                && serde_json::from_slice::<serde_json::Value>(&created.body)
                    .ok()
                    .is_some_and(|v| v["error_code"] == "RESOURCE_ALREADY_EXISTS");
            if created.status == 200 || created.status == 201 || raced {
                if !raced {
                    ctx.log(
                        "info",
                        &format!("created MLflow workspace `{name}` for tenant `{tenant}`"),
                    );
                }
                Ok(())
            } else {
                Err(provisioning_failed(format!(
                    "creating workspace `{name}` answered {}",
                    created.status
                )))
            }
        }
        404 if !principal.member => Err(GatewayError::new(
            Reason::WorkspaceMissing,
            format!("the MLflow workspace `{name}` does not exist"),
        )),
        404 => Err(GatewayError::new(
            Reason::WorkspaceMissing,
            format!("the MLflow workspace `{name}` of tenant `{tenant}` does not exist; workspaces are created by an operator here (workspace_provisioning=manual)"),
        )),
        s => Err(provisioning_failed(format!(
            "looking up workspace `{name}` answered {s}"
        ))),
    }
}

/// Whether MLflow's `server-info` reports `workspaces_enabled: true`. An answer without the
/// field (MLflow before 3.10) counts as disabled.
pub fn workspaces_enabled<H: Host>(cfg: &Config, ctx: &mut Ctx<H>) -> Result<bool, GatewayError> {
    let resp = ctx.own_call(cfg, "GET", SERVER_INFO, Vec::new())?;
    match resp.status {
        200 => Ok(serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .is_some_and(|v| v["workspaces_enabled"] == true)),
        // An MLflow older than 3.10 has no server-info: no workspaces either.
        404 => Ok(false),
        // Anything else may pass (MLflow starting, overloaded): not a verdict on workspaces.
        s => Err(provisioning_failed(format!(
            "MLflow's {SERVER_INFO} answered {s}: cannot tell whether workspaces are enabled"
        ))),
    }
}

/// The operator's instruction, logged as an error wherever the gateway finds MLflow without
/// workspaces (readiness, a tenant's provisioning).
pub const DISABLED_HINT: &str = "tenant_isolation=workspace, but MLflow's server-info does not report workspaces_enabled: start MLflow 3.10+ with `mlflow server --enable-workspaces` (SQL backend), or set tenant_isolation=tag";

fn provisioning_failed(detail: String) -> GatewayError {
    GatewayError::new(
        Reason::WorkspaceProvisioningFailed,
        "the tenant's MLflow workspace could not be checked or created",
    )
    .with_log_detail(detail)
}
