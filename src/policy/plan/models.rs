//! Logged models (they live in an experiment) and the model registry (registered models and
//! prompts carry their own tenant tag; versions belong to their model). A model version's
//! `source` must stay inside the tenant.

use super::fields::*;
use super::{Draft, Protect};
use crate::error::{GatewayError, Reason};
use crate::mlflow::artifacts;
use crate::mlflow::ownership::{valid_model_id, valid_run_id, Resource};
use crate::mlflow::responses::ResponseFilter;
use crate::mlflow::tags::Tagged;
use crate::mlflow::tags::{parse_tags, to_json, with_tenant};
use crate::policy::table::{AliasGuard, Strategy};

/// Where a model version's files may come from (leak §2.4 #3): the tenant's own run
/// (`runs:/<run>/…`), logged model (`models:/<m-id>`), experiment artifacts
/// (`mlflow-artifacts:/<exp>/…`), the prompt registry's placeholder, or an operator-allowed
/// prefix with `{tenant}` expanded. In workspace mode (`workspace` is the caller's) an
/// experiment artifact source may also be rooted at `workspaces/<own workspace>/`. Returns the
/// resources that must be the tenant's.
pub fn source_check(
    source: &str,
    tenant: &str,
    workspace: Option<&str>,
    prefixes: &[String],
) -> Result<Vec<Resource>, GatewayError> {
    let refused = || {
        GatewayError::new(
            Reason::SourceRefused,
            "model version `source` must be runs:/<your run>/<path>, models:/<your logged model>, \
             mlflow-artifacts:/<your experiment>/<path> or a prefix allowed by the operator",
        )
    };
    // MLflow accepts this placeholder only for prompt versions; it names no files.
    if source == "dummy-source" {
        return Ok(Vec::new());
    }
    // `models:/<m-id>` names a logged model; MLflow reads `models:/<a>/<b>` as registered model
    // `a`, version or stage `b`, so a tail is refused rather than judged as a logged model.
    if let Some(id) = source.strip_prefix("models:/") {
        if !valid_model_id(id) {
            return Err(refused());
        }
        return Ok(vec![Resource::LoggedModel(id.to_string())]);
    }
    // `runs:/<run>[/<relative path>]`: the run must be the tenant's.
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_run_id(id) || (!tail.is_empty() && check_relative_path(tail).is_err()) {
            return Err(refused());
        }
        return Ok(vec![Resource::Run(id.to_string())]);
    }
    if let Some(rest) = source.strip_prefix("mlflow-artifacts:/") {
        let ap = artifacts::from_decoded(rest).map_err(|_| refused())?;
        if !ap.in_workspace(workspace) && workspace.is_none() {
            // Tag mode in front of an MLflow started with workspaces: its artifact URIs are
            // rooted at `workspaces/default/`, which tag mode cannot judge.
            return Err(GatewayError::new(
                Reason::SourceRefused,
                "model version `source` names an MLflow workspace, but the gateway runs with                  tenant_isolation=tag: start MLflow without --enable-workspaces for tag mode, or                  use tenant_isolation=workspace",
            ));
        }
        if !ap.in_workspace(workspace) {
            return Err(refused());
        }
        return Ok(vec![Resource::Experiment(ap.experiment_id().to_string())]);
    }
    for p in prefixes {
        let own = p.replace("{tenant}", tenant);
        if let Some(rest) = source.strip_prefix(own.as_str()) {
            if !rest.is_empty() {
                check_relative_path(rest).map_err(|_| refused())?;
                if rest.contains(['?', '#']) {
                    return Err(refused());
                }
                return Ok(Vec::new());
            }
        }
    }
    Err(refused())
}
/// A logged model in an owned experiment (and from an owned source run).
pub(super) fn create_logged_model(d: &mut Draft) -> Result<(), GatewayError> {
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    let source = optional_run(&d.input, "source_run_id")?;
    d.refer_all(source);
    Ok(())
}

/// Logged-model search: every experiment id owned (non-empty), rows re-checked.
pub(super) fn search_logged_models(d: &mut Draft) -> Result<(), GatewayError> {
    let body = d
        .input
        .body_mut()
        .ok_or_else(|| missing("experiment_ids"))?;
    let ids = experiment_ids(body)?;
    d.checks
        .extend(ids.iter().cloned().map(Resource::Experiment));
    d.filter = Some(ResponseFilter::LoggedModels {
        experiment_ids: ids,
    });
    Ok(())
}

/// By `{model_id}`; a body `model_id` must be the same (finalize acts on the body's).
pub(super) fn logged_model(d: &mut Draft) -> Result<(), GatewayError> {
    let m = d.m;
    let id = m.param("model_id").ok_or_else(|| missing("model_id"))?;
    d.checks.push(model_id_check(id)?);
    if d.input.str_field("model_id")?.is_some_and(|b| b != id) {
        return Err(GatewayError::new(
            Reason::ConflictingIds,
            "`model_id` in the body differs from the one in the path",
        ));
    }
    if let Some(p) = d
        .input
        .str_field("artifact_file_path")?
        .or(d.input.str_field("artifact_directory_path")?)
    {
        check_relative_path(&p)?;
    }
    Ok(())
}

/// Registered model or prompt create: tenant tag injected.
pub(super) fn create_registered_model(d: &mut Draft) -> Result<(), GatewayError> {
    let (tenant, key) = (d.tenant(), d.tag_key());
    model_name(&d.input, "name")?;
    let body = d.input.body_mut().ok_or_else(|| missing("name"))?;
    let tags = with_tenant(parse_tags(body.get("tags"))?, key, tenant)?;
    body.insert("tags".into(), to_json(&tags));
    Ok(())
}

/// Registry searches: tenant clause first (on the model's or the version's tag), rows
/// re-checked.
pub(super) fn search_registry(d: &mut Draft) -> Result<(), GatewayError> {
    let m = d.m;
    let (tenant, key) = (d.tenant(), d.tag_key());
    let Input::Query(q) = &mut d.input else {
        return Err(missing("filter"));
    };
    let f = scoped_filter(key, tenant, q.get("filter"))?;
    q.set("filter", f);
    d.filter = Some(if m.row.strategy == Strategy::SearchRegisteredModels {
        ResponseFilter::RegisteredModels
    } else {
        // The models' names come from the answer; the pipeline resolves which are readable.
        ResponseFilter::ModelVersions {
            readable: Vec::new(),
        }
    });
    Ok(())
}

/// By registered-model `name` (foreign names answer like absent ones); `tags` rows need `key`;
/// an alias-guarded row names what `protected_aliases` may guard.
pub(super) fn registry(
    d: &mut Draft,
    tags: Option<Tagged>,
    guard: AliasGuard,
) -> Result<(), GatewayError> {
    d.checks
        .push(Resource::RegisteredModel(model_name(&d.input, "name")?));
    d.protect = match guard {
        AliasGuard::None => None,
        AliasGuard::Alias => Some(Protect::Alias(
            d.input
                .str_field("alias")?
                .ok_or_else(|| missing("alias"))?,
        )),
        AliasGuard::Version => Some(Protect::Version(
            d.input
                .str_field("version")?
                .ok_or_else(|| missing("version"))?,
        )),
    };
    if d.input.str_field("new_name")?.is_some() {
        model_name(&d.input, "new_name")?;
    }
    if let Some(p) = d.input.str_field("path")? {
        check_relative_path(&p)?;
    }
    if tags.is_some() && d.input.str_field("key")?.is_none() {
        return Err(missing("key"));
    }
    Ok(())
}

/// A version of an owned model: `run_id`, `model_id` and `source` inside the tenant; tenant
/// tag injected.
pub(super) fn create_model_version(d: &mut Draft) -> Result<(), GatewayError> {
    let (tenant, key) = (d.tenant(), d.tag_key());
    d.checks
        .push(Resource::RegisteredModel(model_name(&d.input, "name")?));
    let run = optional_run(&d.input, "run_id")?;
    d.refer_all(run);
    if let Some(id) = d.input.str_field("model_id")? {
        d.refer(model_id_check(&id)?);
    }
    let source = d
        .input
        .str_field("source")?
        .ok_or_else(|| missing("source"))?;
    let sources = source_check(
        &source,
        tenant,
        d.own_workspace()?.as_deref(),
        &d.cfg.model_source_prefixes,
    )?;
    d.refer_all(sources);
    let body = d.input.body_mut().ok_or_else(|| missing("name"))?;
    let tags = with_tenant(parse_tags(body.get("tags"))?, key, tenant)?;
    body.insert("tags".into(), to_json(&tags));
    Ok(())
}
