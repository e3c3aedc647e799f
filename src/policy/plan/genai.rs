//! GenAI objects kept per experiment (scorers, label schemas, review queues, issues) and
//! evaluation datasets (a tenant's when all their experiments are).

use super::fields::*;
use super::{Draft, Verify};
use crate::error::{GatewayError, Reason};
use crate::mlflow::ownership::{valid_model_id, Resource};
use crate::mlflow::responses::ResponseFilter;
use crate::policy::table::Child;
use serde_json::Value;

/// Refuses unlinking experiments from a dataset when none would remain: a dataset linked to no
/// experiment belongs to nobody and no one could reach it again through the gateway.
pub fn keeps_an_experiment(
    dataset: &str,
    linked: &[String],
    removed: &[String],
) -> Result<(), GatewayError> {
    if linked.iter().all(|e| removed.contains(e)) {
        return Err(GatewayError::new(
            Reason::OrphanRefused,
            format!(
                "removing these experiments would leave dataset {dataset} linked to none, and so owned by nobody; delete the dataset instead (admin)"
            ),
        ));
    }
    Ok(())
}
/// `issues` create: owned experiment and source run; `created_by` is the subject.
pub(super) fn create_issue(d: &mut Draft) -> Result<(), GatewayError> {
    let principal = d.principal;
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    let source = optional_run(&d.input, "source_run_id")?;
    d.refer_all(source);
    let body = d.input.body_mut().ok_or_else(|| missing("experiment_id"))?;
    body.insert(
        "created_by".into(),
        Value::String(principal.subject.clone()),
    );
    Ok(())
}

/// A review item's status: the queue owned; `completed_by` is the subject.
pub(super) fn review_item_status(d: &mut Draft) -> Result<(), GatewayError> {
    let m = d.m;
    let principal = d.principal;
    d.checks
        .push(child_resource(m, &d.input, Child::ReviewQueue)?);
    let body = d.input.body_mut().ok_or_else(|| missing("queue_id"))?;
    // Reopening clears the reviewer, as MLflow's own auth app does.
    if body.get("status").and_then(Value::as_str) == Some("PENDING") {
        body.remove("completed_by");
    } else {
        body.insert(
            "completed_by".into(),
            Value::String(principal.subject.clone()),
        );
    }
    Ok(())
}

/// A non-empty scope of owned experiments (an unscoped search answers every tenant's rows).
pub(super) fn scoped(d: &mut Draft) -> Result<(), GatewayError> {
    let ids = experiment_scope(d.input.str_list("experiment_ids")?)?;
    d.checks.extend(ids.into_iter().map(Resource::Experiment));
    Ok(())
}

/// `datasets/create`: as `scoped`, and the experiments are links the new dataset keeps.
pub(super) fn create_dataset(d: &mut Draft) -> Result<(), GatewayError> {
    let ids = experiment_scope(d.input.str_list("experiment_ids")?)?;
    d.refer_all(ids.into_iter().map(Resource::Experiment));
    Ok(())
}

/// `scorers/list`: `experiment_id` or a non-empty `experiment_ids`, not both.
pub(super) fn scorer_list(d: &mut Draft) -> Result<(), GatewayError> {
    let many = d.input.str_list("experiment_ids")?;
    let ids = match d.input.str_field("experiment_id")? {
        Some(_) if !many.is_empty() => {
            return Err(GatewayError::new(
                Reason::ConflictingIds,
                "give either `experiment_id` or `experiment_ids`, not both",
            ))
        }
        Some(one) => vec![one],
        None => many,
    };
    let ids = experiment_scope(ids)?;
    d.checks.extend(ids.into_iter().map(Resource::Experiment));
    Ok(())
}

/// A GenAI object by id: its experiment (or all of a dataset's) owned.
pub(super) fn object(d: &mut Draft, child: Child) -> Result<(), GatewayError> {
    let m = d.m;
    d.checks.push(child_resource(m, &d.input, child)?);
    Ok(())
}

/// `scorers/online-configs`: scorer ids only; configs of foreign experiments are dropped.
pub(super) fn online_configs(d: &mut Draft) -> Result<(), GatewayError> {
    let ids = d.input.str_list("scorer_ids")?;
    if ids.is_empty() {
        return Err(missing("scorer_ids"));
    }
    bounded(ids.len(), "scorer_ids")?;
    if !ids.iter().all(|i| valid_model_id(i)) {
        return Err(invalid("scorer_ids"));
    }
    d.filter = Some(ResponseFilter::OnlineConfigs { owned: Vec::new() });
    Ok(())
}

/// Dataset links: the dataset and every listed experiment owned; removing links must leave one.
pub(super) fn dataset_experiments(d: &mut Draft, remove: bool) -> Result<(), GatewayError> {
    let m = d.m;
    let dataset = child_resource(m, &d.input, Child::Dataset)?;
    let ids = experiment_scope(d.input.str_list("experiment_ids")?)?;
    if remove {
        d.verify.push(Verify::KeepsAnExperiment {
            dataset: dataset.id().to_string(),
            removed: ids.clone(),
        });
    }
    d.checks.push(dataset);
    d.refer_all(ids.into_iter().map(Resource::Experiment));
    Ok(())
}
