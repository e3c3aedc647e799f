//! Traces (v2 and v3) and assessments: a trace belongs to its experiment's tenant. Starts name
//! an owned experiment (and may not re-home another tenant's trace), ids are read where each
//! handler reads them, lists and searches are checked element by element.

use super::fields::*;
use super::{Draft, Verify};
use crate::error::{GatewayError, Reason};
use crate::mlflow::json::{opt_str, opt_str_list};
use crate::mlflow::ownership::{valid_experiment_id, valid_model_name, Resource};
use crate::mlflow::responses::ResponseFilter;
use crate::policy::table::{RunIds, TraceIdAt};
use serde_json::Value;

/// A v3 trace location: only an MLflow experiment (other location types are not tenant
/// scoped here); returns its experiment id.
pub(super) fn trace_location(loc: Option<&Value>) -> Result<String, GatewayError> {
    let loc = loc
        .and_then(Value::as_object)
        .ok_or_else(|| missing("trace_location"))?;
    let kind = loc.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "MLFLOW_EXPERIMENT" {
        return Err(GatewayError::new(
            Reason::LocationRefused,
            "only MLFLOW_EXPERIMENT trace locations are allowed through the gateway",
        ));
    }
    let id = loc
        .get("mlflow_experiment")
        .and_then(|e| e.get("experiment_id"))
        .and_then(Value::as_str)
        .ok_or_else(|| missing("mlflow_experiment.experiment_id"))?;
    valid_experiment_id(id)
        .then(|| id.to_string())
        .ok_or_else(|| invalid("experiment_id"))
}
/// StartTraceV3: an owned experiment location; an existing `trace_id` must already be the
/// tenant's (no re-homing); assessments name the same trace.
pub(super) fn start_v3(d: &mut Draft) -> Result<(), GatewayError> {
    let body = d.input.body_mut().ok_or_else(|| missing("trace"))?;
    let info = body
        .get("trace")
        .and_then(|t| t.get("trace_info"))
        .and_then(Value::as_object)
        .ok_or_else(|| missing("trace.trace_info"))?;
    d.checks.push(Resource::Experiment(trace_location(
        info.get("trace_location"),
    )?));
    let id = opt_str(info, "trace_id")?.filter(|s| !s.is_empty());
    if let Some(id) = id {
        d.absent_or_own.push(trace_resource(id)?);
    }
    if let Some(list) = info.get("assessments").and_then(Value::as_array) {
        for a in list {
            let own = a.get("trace_id").and_then(Value::as_str);
            if own.is_some_and(|t| !t.is_empty() && Some(t) != id) {
                return Err(GatewayError::new(
                    Reason::ConflictingIds,
                    "an assessment names another trace than the one being started",
                ));
            }
        }
    }
    Ok(())
}

/// StartTrace (v2): an owned experiment.
pub(super) fn start_v2(d: &mut Draft) -> Result<(), GatewayError> {
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    Ok(())
}

/// By trace id, read where the handler reads it (`TraceIdAt`); an assessment names the same
/// trace; `tag_key` rows need `key`.
pub(super) fn trace(d: &mut Draft, at: TraceIdAt, tag_key: bool) -> Result<(), GatewayError> {
    let m = d.m;
    let id = trace_id_at(m, &d.input, at)?;
    d.checks.push(trace_resource(&id)?);
    if let Some(body) = d.input.body_mut() {
        let named = body
            .get("assessment")
            .and_then(|a| a.get("trace_id"))
            .and_then(Value::as_str);
        if named.is_some_and(|t| !t.is_empty() && t != id) {
            return Err(GatewayError::new(
                Reason::ConflictingIds,
                "`assessment.trace_id` differs from the trace in the path",
            ));
        }
    }
    if let Some(p) = d.input.str_field("path")? {
        check_relative_path(&p)?;
    }
    if tag_key && d.input.str_field("key")?.is_none() {
        return Err(missing("key"));
    }
    Ok(())
}

/// `get-trace-artifact`: `request_id` (the only field MLflow reads) owned, and the trace's data
/// location its own (`Verify::TraceLocation`).
pub(super) fn trace_artifact(d: &mut Draft) -> Result<(), GatewayError> {
    let m = d.m;
    let id = trace_id_at(m, &d.input, TraceIdAt::Field("request_id"))?;
    d.checks.push(trace_resource(&id)?);
    if let Some(p) = d.input.str_field("path")? {
        check_relative_path(&p)?;
    }
    d.verify.push(Verify::TraceLocation(id));
    Ok(())
}

/// Every trace id of a list field.
pub(super) fn trace_list(d: &mut Draft, field: &str) -> Result<(), GatewayError> {
    d.checks
        .extend(trace_ids(&d.input.str_list(field)?, field)?);
    Ok(())
}

/// Trace search (v3): every `locations[]` an owned MLflow experiment; rows re-checked.
pub(super) fn search_v3(d: &mut Draft) -> Result<(), GatewayError> {
    let body = d.input.body_mut().ok_or_else(|| missing("locations"))?;
    let mut ids = Vec::new();
    match body.get("locations") {
        Some(Value::Array(locs)) if !locs.is_empty() => {
            for l in locs {
                ids.push(trace_location(Some(l))?);
            }
        }
        _ => {
            return Err(GatewayError::new(
                Reason::ScopeRequired,
                "`locations` must name at least one of your experiments",
            ))
        }
    }
    if body.contains_key("experiment_ids") {
        return Err(GatewayError::new(
            Reason::InvalidField,
            "give the experiments to search as `locations`, not `experiment_ids`",
        ));
    }
    bounded(ids.len(), "locations")?;
    ids.sort();
    ids.dedup();
    d.checks
        .extend(ids.iter().cloned().map(Resource::Experiment));
    d.filter = Some(ResponseFilter::TracesV3 {
        experiment_ids: ids,
    });
    Ok(())
}

/// Trace search (v2): `experiment_ids` owned (non-empty); rows re-checked.
pub(super) fn search_v2(d: &mut Draft) -> Result<(), GatewayError> {
    if !matches!(d.input, Input::Query(_)) {
        return Err(missing("experiment_ids"));
    }
    let ids = experiment_scope(d.input.str_list("experiment_ids")?)?;
    d.checks
        .extend(ids.iter().cloned().map(Resource::Experiment));
    d.filter = Some(ResponseFilter::TracesV2 {
        experiment_ids: ids,
    });
    Ok(())
}

/// `delete-traces`: the experiment and every listed trace owned.
pub(super) fn delete_traces(d: &mut Draft) -> Result<(), GatewayError> {
    d.checks
        .push(Resource::Experiment(experiment_id(&d.input)?));
    let body = d.input.body_mut().ok_or_else(|| missing("experiment_id"))?;
    let ids = opt_str_list(body, "request_ids")?;
    if !ids.is_empty() {
        d.checks.extend(trace_ids(&ids, "request_ids")?);
    }
    Ok(())
}

/// `link-to-run`: `run_id` (the only spelling MLflow reads) and every trace owned; both sides
/// of a link are references.
pub(super) fn link_to_run(d: &mut Draft) -> Result<(), GatewayError> {
    d.refer(Resource::Run(run_id(&d.input, RunIds::IdOnly)?));
    let body = d.input.body_mut().ok_or_else(|| missing("trace_ids"))?;
    let traces = trace_ids(&opt_str_list(body, "trace_ids")?, "trace_ids")?;
    d.refer_all(traces);
    Ok(())
}

/// `link-prompts`: the trace and every prompt owned; both sides of a link are references.
pub(super) fn link_prompts(d: &mut Draft) -> Result<(), GatewayError> {
    let id = d
        .input
        .str_field("trace_id")?
        .ok_or_else(|| missing("trace_id"))?;
    d.refer(trace_resource(&id)?);
    let body = d.input.body_mut().ok_or_else(|| missing("trace_id"))?;
    let versions = body
        .get("prompt_versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("prompt_versions"))?;
    bounded(versions.len(), "prompt_versions")?;
    let names = versions
        .iter()
        .map(|v| {
            v.get("name")
                .and_then(Value::as_str)
                .filter(|n| valid_model_name(n))
                .map(|n| Resource::RegisteredModel(n.to_string()))
                .ok_or_else(|| invalid("prompt_versions[].name"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    d.refer_all(names);
    Ok(())
}
