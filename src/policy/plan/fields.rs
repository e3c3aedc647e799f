//! Reading a request's fields exactly as MLflow's handlers read them: the query for GET, the
//! JSON body otherwise, ids from the place (and under the name) the row's handler uses, with
//! every other place that names the object required to agree. Shared by the strategy families.

use crate::error::{GatewayError, Reason};
use crate::mlflow::json::{opt_str, opt_str_list};
use crate::mlflow::ownership::{
    valid_experiment_id, valid_model_id, valid_model_name, valid_run_id, valid_trace_id, Resource,
};
use crate::mlflow::query::Query;
use crate::mlflow::MAX_FILTER_BYTES;
use crate::policy::route::Matched;
use crate::policy::table::{Child, RunIds, TraceIdAt};
use serde_json::{Map, Value};

/// MLflow caps id lists at 100 (metric history) and scopes at a few hundred; the gateway refuses
/// longer lists rather than pre-flighting them all.
pub(super) const MAX_IDS: usize = 100;
/// Where MLflow reads this request's fields from.
pub(super) enum Input {
    Query(Query),
    Body(Map<String, Value>),
    /// Raw bytes (artifact uploads): no fields.
    Raw,
}
impl Input {
    pub(super) fn str_field(&self, field: &str) -> Result<Option<String>, GatewayError> {
        match self {
            Input::Query(q) => Ok(q.get(field).map(str::to_string)),
            Input::Body(m) => Ok(opt_str(m, field)?
                .filter(|s| !s.is_empty())
                .map(str::to_string)),
            Input::Raw => Ok(None),
        }
    }
    /// A repeated query parameter or a JSON string array.
    pub(super) fn str_list(&self, field: &str) -> Result<Vec<String>, GatewayError> {
        match self {
            Input::Query(q) => Ok(q.get_all(field).into_iter().map(str::to_string).collect()),
            Input::Body(m) => opt_str_list(m, field),
            Input::Raw => Ok(Vec::new()),
        }
    }
    pub(super) fn body_mut(&mut self) -> Option<&mut Map<String, Value>> {
        match self {
            Input::Body(m) => Some(m),
            _ => None,
        }
    }
}
pub(super) fn missing(field: &str) -> GatewayError {
    GatewayError::new(
        Reason::MissingField,
        format!("missing required field `{field}`"),
    )
}
pub(super) fn invalid(field: &str) -> GatewayError {
    GatewayError::new(
        Reason::InvalidField,
        format!("field `{field}` is not a valid id"),
    )
}
/// Refuses id lists longer than the gateway pre-flights.
pub(super) fn bounded(len: usize, field: &str) -> Result<(), GatewayError> {
    if len > MAX_IDS {
        return Err(GatewayError::new(
            Reason::InvalidField,
            format!("too many `{field}`"),
        ));
    }
    Ok(())
}
pub(super) fn experiment_id(input: &Input) -> Result<String, GatewayError> {
    let id = input
        .str_field("experiment_id")?
        .ok_or_else(|| missing("experiment_id"))?;
    valid_experiment_id(&id)
        .then_some(id)
        .ok_or_else(|| invalid("experiment_id"))
}
/// The run id exactly as the row's handler reads it: `run_id or run_uuid` (the first non-empty
/// acts; both set and different is refused), or `run_id` alone where the request message has
/// no `run_uuid` (a `run_uuid` there is refused: MLflow would act on an empty id).
pub(super) fn run_id(input: &Input, ids: RunIds) -> Result<String, GatewayError> {
    let uuid = input.str_field("run_uuid")?;
    match ids {
        RunIds::OrUuid => pick_run(input.str_field("run_id")?, uuid),
        RunIds::IdOnly if uuid.is_some() => Err(GatewayError::new(
            Reason::ConflictingIds,
            "this route reads only `run_id`; `run_uuid` is not accepted",
        )),
        RunIds::IdOnly => pick_run(input.str_field("run_id")?, None),
    }
}
pub(super) fn pick_run(a: Option<String>, b: Option<String>) -> Result<String, GatewayError> {
    let id = match (a, b) {
        (Some(a), Some(b)) if a != b => {
            return Err(GatewayError::new(
                Reason::ConflictingIds,
                "`run_id` and `run_uuid` name different runs",
            ))
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => return Err(missing("run_id")),
    };
    valid_run_id(&id)
        .then_some(id)
        .ok_or_else(|| invalid("run_id"))
}
pub(super) fn experiment_ids(m: &Map<String, Value>) -> Result<Vec<String>, GatewayError> {
    experiment_scope(opt_str_list(m, "experiment_ids")?)
}
/// A search scope: at least one, at most `MAX_IDS` valid experiment ids, sorted and unique.
pub(super) fn experiment_scope(ids: Vec<String>) -> Result<Vec<String>, GatewayError> {
    if ids.is_empty() {
        return Err(GatewayError::new(
            Reason::ScopeRequired,
            "`experiment_ids` must name at least one of your experiments",
        ));
    }
    bounded(ids.len(), "experiment_ids")?;
    for id in &ids {
        if !valid_experiment_id(id) {
            return Err(invalid("experiment_ids"));
        }
    }
    let mut uniq = ids;
    uniq.sort();
    uniq.dedup();
    Ok(uniq)
}
/// `tags.\`<key>\` = '<tenant>'` prepended to the user's filter (never appended, never LIKE).
/// The tenant id charset is restricted at identity time, the key charset at config time.
pub fn scoped_filter(
    tenant_key: &str,
    tenant: &str,
    user: Option<&str>,
) -> Result<String, GatewayError> {
    let clause = format!("tags.`{tenant_key}` = '{tenant}'");
    match user.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(clause),
        Some(u) if u.len() > MAX_FILTER_BYTES => Err(GatewayError::new(
            Reason::InvalidField,
            "filter is longer than the gateway accepts",
        )),
        Some(u) => Ok(format!("{clause} AND {u}")),
    }
}
/// Relative paths inside a run's artifacts (`/get-artifact`, `artifacts/list`): no traversal.
pub(super) fn check_relative_path(p: &str) -> Result<(), GatewayError> {
    let bad = p.starts_with('/')
        || p.contains(['\\', '%', '#'])
        || p.chars().any(char::is_control)
        || p.split('/').any(|s| s == "..");
    if bad {
        return Err(GatewayError::new(
            Reason::InvalidPath,
            "artifact path is not a plain relative path",
        ));
    }
    Ok(())
}
/// An optional run id field: when given, the run must be the tenant's.
pub(super) fn optional_run(input: &Input, field: &str) -> Result<Option<Resource>, GatewayError> {
    match input.str_field(field)? {
        None => Ok(None),
        Some(run) if valid_run_id(&run) => Ok(Some(Resource::Run(run))),
        Some(_) => Err(invalid(field)),
    }
}
pub(super) fn model_id_check(id: &str) -> Result<Resource, GatewayError> {
    valid_model_id(id)
        .then(|| Resource::LoggedModel(id.to_string()))
        .ok_or_else(|| invalid("model_id"))
}
pub(super) fn list_model_ids(
    m: &Map<String, Value>,
    list: &str,
) -> Result<Vec<Resource>, GatewayError> {
    let mut out = Vec::new();
    if let Some(items) = m.get(list).and_then(Value::as_array) {
        for item in items {
            if let Some(id) = item
                .get("model_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                out.push(model_id_check(id)?);
            }
        }
    }
    Ok(out)
}
/// A registered-model / prompt name from `field` (required).
pub(super) fn model_name(input: &Input, field: &str) -> Result<String, GatewayError> {
    let name = input.str_field(field)?.ok_or_else(|| missing(field))?;
    valid_model_name(&name)
        .then_some(name)
        .ok_or_else(|| invalid(field))
}
/// An object id given in the path, in the fields (any of `names`), or several of these: every
/// place that names it must agree. MLflow acts on the path's on most routes but on the body's
/// on some (logged-model finalize), so the gateway refuses any disagreement rather than guess.
pub(super) fn path_or_field(
    m: &Matched,
    input: &Input,
    names: &[&str],
    what: &str,
) -> Result<String, GatewayError> {
    let mut found: Option<String> = names.iter().find_map(|n| m.param(n)).map(str::to_string);
    let in_path = found.is_some();
    for n in names {
        match (input.str_field(n)?, &found) {
            (Some(v), Some(f)) if v != *f => {
                return Err(GatewayError::new(
                    Reason::ConflictingIds,
                    if in_path {
                        format!("the {what} id in the body differs from the one in the path")
                    } else {
                        format!("the request names two different {what} ids")
                    },
                ))
            }
            (Some(v), None) => found = Some(v),
            _ => {}
        }
    }
    found.ok_or_else(|| missing(names.first().copied().unwrap_or("id")))
}
/// The GenAI object named in the path or the fields (see `path_or_field`); its id must be
/// well-formed (`d-…`, `ls-…`, `rq-…`, `iss-…`).
pub(super) fn child_resource(
    m: &Matched,
    input: &Input,
    child: Child,
) -> Result<Resource, GatewayError> {
    let field = child.field();
    let id = path_or_field(m, input, &[field], field.trim_end_matches("_id"))?;
    if !valid_model_id(&id) {
        return Err(invalid(child.field()));
    }
    Ok(match child {
        Child::Dataset => Resource::Dataset(id),
        Child::LabelSchema => Resource::LabelSchema(id),
        Child::ReviewQueue => Resource::ReviewQueue(id),
        Child::Issue => Resource::Issue(id),
    })
}
/// The trace id where the row's handler reads it (see `TraceIdAt`).
pub(super) fn trace_id_at(
    m: &Matched,
    input: &Input,
    at: TraceIdAt,
) -> Result<String, GatewayError> {
    const NAMES: [&str; 2] = ["trace_id", "request_id"];
    match at {
        TraceIdAt::Path => path_or_field(m, input, &NAMES, "trace"),
        TraceIdAt::Field(name) => {
            for other in NAMES.iter().filter(|n| **n != name) {
                if input.str_field(other)?.is_some() {
                    return Err(GatewayError::new(
                        Reason::ConflictingIds,
                        format!("this route reads the trace id only from `{name}`; `{other}` is not accepted"),
                    ));
                }
            }
            input.str_field(name)?.ok_or_else(|| missing(name))
        }
    }
}
pub(super) fn trace_resource(id: &str) -> Result<Resource, GatewayError> {
    valid_trace_id(id)
        .then(|| Resource::Trace(id.to_string()))
        .ok_or_else(|| invalid("trace_id"))
}
/// A non-empty, bounded list of trace ids, each to be checked.
pub(super) fn trace_ids(ids: &[String], field: &str) -> Result<Vec<Resource>, GatewayError> {
    if ids.is_empty() {
        return Err(missing(field));
    }
    bounded(ids.len(), field)?;
    ids.iter().map(|i| trace_resource(i)).collect()
}
