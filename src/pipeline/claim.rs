//! After MLflow's answer: objects MLflow creates by itself while serving a permitted request
//! (the run of an evaluation, issue-detection or prompt-optimisation job, or of the prompt lab; the usage experiment
//! of an AI gateway endpoint) carry no tenant tag, so the tenant's run searches would not list
//! them and the ownership checks would treat them as nobody's. The gateway tags them as the
//! caller's tenant's, through its own call pinned to the caller's workspace (where MLflow just
//! created them). A claim that fails leaves MLflow's answer as it is (the request was done) and
//! is logged for the operator: the object stays untagged, which hides it and never exposes it.

use super::ctx::Ctx;
use super::host::Host;
use super::ownership::{current_owner, Owner};
use crate::config::Config;
use crate::error::GatewayError;
use crate::identity::Principal;
use crate::mlflow::ownership::Resource;
use crate::mlflow::responses;
use crate::policy::plan::Claim;
use serde_json::json;

/// Records the object `claim` names in the answer `body` as the caller's tenant's.
pub fn claim<H: Host>(
    claim: Claim,
    body: &[u8],
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) {
    let (what, result) = match claim {
        Claim::Run => match responses::created_run(body) {
            Some(run) => (format!("run {run}"), tag_run(&run, principal, cfg, ctx)),
            None => return,
        },
        Claim::EndpointExperiment => match responses::endpoint_experiment(body) {
            Some(exp) => (
                format!("experiment {exp}"),
                tag_experiment(&exp, principal, cfg, ctx),
            ),
            None => return,
        },
    };
    if let Err(e) = result {
        let detail = e.log_detail.as_deref().unwrap_or(e.message.as_str());
        ctx.log(
            "error",
            &format!("could not tag {what}, created by MLflow for this request, as tenant `{}`: {detail}", principal.tenant),
        );
    }
}

fn tag_run<H: Host>(
    run: &str,
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let body = json!({"run_id": run, "key": cfg.tenant_tag_key, "value": principal.tenant});
    set_tag("/api/2.0/mlflow/runs/set-tag", body, cfg, ctx)
}

/// Tags an experiment nobody owns yet; one already the caller's is left alone, and one of
/// another tenant (impossible with the workspace pinned) is a policy fault, not retagged.
fn tag_experiment<H: Host>(
    exp: &str,
    principal: &Principal,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let res = Resource::Experiment(exp.to_string());
    match current_owner(&res, cfg, ctx)? {
        Owner::Nobody => {}
        Owner::Tenant(o) if o.tenant == principal.tenant => return Ok(()),
        Owner::Tenant(_) | Owner::Missing => {
            return Err(GatewayError::internal(
                "the experiment is another tenant's or absent; left alone",
            ))
        }
    }
    let body = json!({"experiment_id": exp, "key": cfg.tenant_tag_key, "value": principal.tenant});
    set_tag(
        "/api/2.0/mlflow/experiments/set-experiment-tag",
        body,
        cfg,
        ctx,
    )?;
    if let Some(k) = res.cache_key() {
        ctx.kv_delete(&k)?;
    }
    Ok(())
}

/// Sets a tag through the gateway's own call, pinned to the caller's workspace.
fn set_tag<H: Host>(
    path: &str,
    body: serde_json::Value,
    cfg: &Config,
    ctx: &mut Ctx<H>,
) -> Result<(), GatewayError> {
    let status = ctx
        .pinned_call(cfg, "POST", path, body.to_string().into_bytes())?
        .status;
    if status == 200 {
        Ok(())
    } else {
        Err(GatewayError::internal(format!("{path} answered {status}")))
    }
}
