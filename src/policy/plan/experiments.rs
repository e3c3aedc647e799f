//! Experiments and runs: a tenant owns an experiment by its tenant tag; a run belongs to its
//! experiment's tenant. Creates get the tenant tag (and the authenticated author), searches
//! the tenant clause and a response check, everything else names an owned experiment or run.

use super::fields::*;
use super::tag_guard::RUN_AUTHOR_TAG;
use super::Draft;
use crate::error::{GatewayError, Reason};
use crate::mlflow::json::opt_str;
use crate::mlflow::ownership::{valid_run_id, Resource};
use crate::mlflow::responses::ResponseFilter;
use crate::mlflow::tags::{parse_tags, to_json, with_tenant};
use crate::policy::table::{RunExtra, RunIds};
use serde_json::Value;

/// `experiments/create`: tenant tag injected; `artifact_location` refused (it could aim runs at
/// another tenant's artifacts).
pub(super) fn create_experiment(d: &mut Draft) -> Result<(), GatewayError> {
    let (tenant, key) = (d.tenant(), d.tag_key());
    let body = d.input.body_mut().ok_or_else(|| missing("name"))?;
    if opt_str(body, "artifact_location")?.is_some_and(|s| !s.is_empty()) {
        return Err(GatewayError::new(
            Reason::ArtifactLocationRefused,
            "`artifact_location` is refused: experiments store artifacts under the server's proxied artifact root",
        ));
    }
    let tags = with_tenant(parse_tags(body.get("tags"))?, key, tenant)?;
    body.insert("tags".into(), to_json(&tags));
    Ok(())
}

/// Experiment searches: the tenant clause goes first in `filter`; foreign rows are dropped.
pub(super) fn search_experiments(d: &mut Draft) -> Result<(), GatewayError> {
    let (tenant, key) = (d.tenant(), d.tag_key());
    match &mut d.input {
        Input::Query(q) => {
            let f = scoped_filter(key, tenant, q.get("filter"))?;
            q.set("filter", f);
        }
        Input::Body(b) => {
            let f = scoped_filter(key, tenant, opt_str(b, "filter")?)?;
            b.insert("filter".into(), Value::String(f));
        }
        Input::Raw => {}
    }
    d.filter = Some(ResponseFilter::Experiments);
    Ok(())
}

/// `get-by-name`: answered exactly like MLflow's 404 unless the experiment is the tenant's.
pub(super) fn experiment_by_name(d: &mut Draft) -> Result<(), GatewayError> {
    let name = d
        .input
        .str_field("experiment_name")?
        .ok_or_else(|| missing("experiment_name"))?;
    d.filter = Some(ResponseFilter::ExperimentByName { name });
    Ok(())
}

/// By `experiment_id` (query on GET, body otherwise); `tag_key` rows need the tag `key`.
pub(super) fn experiment(d: &mut Draft, tag_key: bool) -> Result<(), GatewayError> {
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    if tag_key && d.input.str_field("key")?.is_none() {
        return Err(missing("key"));
    }
    Ok(())
}

/// `runs/create`: owned experiment; tenant tag injected; the author (`mlflow.user`, `user_id`)
/// is the authenticated subject.
pub(super) fn create_run(d: &mut Draft) -> Result<(), GatewayError> {
    let (tenant, key) = (d.tenant(), d.tag_key());
    let exp = experiment_id(&d.input)?;
    d.checks.push(Resource::Experiment(exp));
    let body = d.input.body_mut().ok_or_else(|| missing("experiment_id"))?;
    let mut tags = parse_tags(body.get("tags"))?;
    // Attribution integrity: the author is the authenticated subject, whatever the
    // client claims.
    tags.retain(|(k, _)| k != RUN_AUTHOR_TAG);
    tags.push((RUN_AUTHOR_TAG.into(), d.principal.subject.clone()));
    let tags = with_tenant(tags, key, tenant)?;
    body.insert("tags".into(), to_json(&tags));
    body.insert("user_id".into(), Value::String(d.principal.subject.clone()));
    Ok(())
}

/// `runs/search`: every experiment id owned (non-empty), tenant clause first, rows re-checked.
pub(super) fn search_runs(d: &mut Draft) -> Result<(), GatewayError> {
    let (tenant, key) = (d.tenant(), d.tag_key());
    let body = d
        .input
        .body_mut()
        .ok_or_else(|| missing("experiment_ids"))?;
    let ids = experiment_ids(body)?;
    d.checks
        .extend(ids.iter().cloned().map(Resource::Experiment));
    let f = scoped_filter(key, tenant, opt_str(body, "filter")?)?;
    body.insert("filter".into(), Value::String(f));
    d.filter = Some(ResponseFilter::Runs {
        experiment_ids: ids,
    });
    Ok(())
}

/// By run id, read as the handler reads it (`RunIds`); the extras name models or a relative path.
pub(super) fn run(d: &mut Draft, ids: RunIds, extra: RunExtra) -> Result<(), GatewayError> {
    d.checks.push(Resource::Run(run_id(&d.input, ids)?));
    if let Some(p) = d.input.str_field("path")? {
        check_relative_path(&p)?;
    }
    match extra {
        RunExtra::None => {}
        RunExtra::TagKey => {
            d.input.str_field("key")?.ok_or_else(|| missing("key"))?;
        }
        RunExtra::MetricModel => {
            if let Some(id) = d.input.str_field("model_id")? {
                d.refer(model_id_check(&id)?);
            }
        }
        RunExtra::Batch => {
            let body = d.input.body_mut().ok_or_else(|| missing("run_id"))?;
            let models = list_model_ids(body, "metrics")?;
            d.refer_all(models);
        }
        RunExtra::Models => {
            let body = d.input.body_mut().ok_or_else(|| missing("run_id"))?;
            let models = list_model_ids(body, "models")?;
            d.refer_all(models);
        }
    }
    Ok(())
}

/// Every run id of a repeated query parameter.
pub(super) fn run_list(d: &mut Draft, field: &str) -> Result<(), GatewayError> {
    let Input::Query(q) = &d.input else {
        return Err(missing(field));
    };
    let ids = q.get_all(field);
    if ids.is_empty() {
        return Err(missing(field));
    }
    bounded(ids.len(), field)?;
    for id in ids {
        if !valid_run_id(id) {
            return Err(invalid(field));
        }
        d.checks.push(Resource::Run(id.to_string()));
    }
    Ok(())
}
