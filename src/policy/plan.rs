//! From an allowed route to a concrete plan: RBAC first, then MLflow's own parsing rules for the
//! request (query for GET, body for POST/PUT, body only for PATCH/DELETE), then the row's tenant
//! strategy: which resources must be the caller's, how the upstream request is rewritten, and
//! which response check applies.

use super::route::Matched;
use super::table::{Child, RunExtra, RunIds, Strategy, TraceIdAt};
use super::{Role, Row};
use crate::config::Config;
use crate::error::{GatewayError, Reason};
use crate::identity::Principal;
use crate::mlflow::artifacts::{self, ArtifactPath};
use crate::mlflow::graphql::{self, Operation};
use crate::mlflow::json::{opt_str, opt_str_list, parse_object_body, serialize_judged_first};
use crate::mlflow::ownership::{
    valid_experiment_id, valid_model_id, valid_model_name, valid_run_id, valid_trace_id, Resource,
};
use crate::mlflow::query::Query;
use crate::mlflow::responses::registered_model_not_found;
use crate::mlflow::responses::ResponseFilter;
use crate::mlflow::tags::{self, parse_tags, to_json, with_tenant, Tagged};
use crate::mlflow::MAX_FILTER_BYTES;
use crate::request::Incoming;
use serde_json::{Map, Value};

/// MLflow caps id lists at 100 (metric history) and scopes at a few hundred; the gateway refuses
/// longer lists rather than pre-flighting them all.
const MAX_IDS: usize = 100;

/// The body to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPlan {
    /// The client's bytes, unchanged (artifact uploads, bodiless requests).
    Original,
    /// The JSON body as checked (and rewritten), re-serialised.
    Replace(Vec<u8>),
}

/// A check on MLflow's current state that ownership alone does not cover, made by the shell
/// after the ownership checks pass (its facts are never cached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// The trace's data locations must be its canonical ones (`mlflow::locations`).
    TraceLocation(String),
    /// Unlinking these experiments must leave the dataset linked to at least one.
    KeepsAnExperiment {
        dataset: String,
        removed: Vec<String>,
    },
}

/// What the shell must do for an allowed request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub row: &'static Row,
    /// Every resource that must belong to the caller's tenant before forwarding.
    pub checks: Vec<Resource>,
    /// Resources that must be absent or the caller's (an upsert may create them).
    pub absent_or_own: Vec<Resource>,
    /// Checks on MLflow's state made after the ownership checks.
    pub verify: Vec<Verify>,
    /// Upstream path (absolute, canonical) and query (re-encoded, may be empty).
    pub path: String,
    pub query: String,
    pub body: BodyPlan,
    pub filter: Option<ResponseFilter>,
}

/// Refuses the request unless one of the principal's roles permits the row's action.
pub fn check_rbac(row: &Row, principal: &Principal) -> Result<(), GatewayError> {
    if principal.roles.iter().any(|r| r.permits(row.action)) {
        return Ok(());
    }
    let needed: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| r.permits(row.action))
        .map(|r| r.as_str())
        .collect();
    let held = if principal.roles.is_empty() {
        "no recognised role".to_string()
    } else {
        format!(
            "role {}",
            principal
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(GatewayError::forbidden(
        Reason::Rbac,
        format!(
            "{held} does not permit the `{}` action on {}; it requires {}",
            row.action.as_str(),
            row.id,
            needed.join(" or ")
        ),
    ))
}

/// Where MLflow reads this request's fields from.
enum Input {
    Query(Query),
    Body(Map<String, Value>),
    /// Raw bytes (artifact uploads): no fields.
    Raw,
}

impl Input {
    fn str_field(&self, field: &str) -> Result<Option<String>, GatewayError> {
        match self {
            Input::Query(q) => Ok(q.get(field).map(str::to_string)),
            Input::Body(m) => Ok(opt_str(m, field)?
                .filter(|s| !s.is_empty())
                .map(str::to_string)),
            Input::Raw => Ok(None),
        }
    }
    /// A repeated query parameter or a JSON string array.
    fn str_list(&self, field: &str) -> Result<Vec<String>, GatewayError> {
        match self {
            Input::Query(q) => Ok(q.get_all(field).into_iter().map(str::to_string).collect()),
            Input::Body(m) => opt_str_list(m, field),
            Input::Raw => Ok(Vec::new()),
        }
    }
    fn body_mut(&mut self) -> Option<&mut Map<String, Value>> {
        match self {
            Input::Body(m) => Some(m),
            _ => None,
        }
    }
}

fn missing(field: &str) -> GatewayError {
    GatewayError::bad_request(
        Reason::MissingField,
        format!("missing required field `{field}`"),
    )
}

fn invalid(field: &str) -> GatewayError {
    GatewayError::bad_request(
        Reason::InvalidField,
        format!("field `{field}` is not a valid id"),
    )
}

/// Refuses id lists longer than the gateway pre-flights.
fn bounded(len: usize, field: &str) -> Result<(), GatewayError> {
    if len > MAX_IDS {
        return Err(GatewayError::bad_request(
            Reason::InvalidField,
            format!("too many `{field}`"),
        ));
    }
    Ok(())
}

fn experiment_id(input: &Input) -> Result<String, GatewayError> {
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
fn run_id(input: &Input, ids: RunIds) -> Result<String, GatewayError> {
    let uuid = input.str_field("run_uuid")?;
    match ids {
        RunIds::OrUuid => pick_run(input.str_field("run_id")?, uuid),
        RunIds::IdOnly if uuid.is_some() => Err(GatewayError::bad_request(
            Reason::ConflictingIds,
            "this route reads only `run_id`; `run_uuid` is not accepted",
        )),
        RunIds::IdOnly => pick_run(input.str_field("run_id")?, None),
    }
}

fn pick_run(a: Option<String>, b: Option<String>) -> Result<String, GatewayError> {
    let id = match (a, b) {
        (Some(a), Some(b)) if a != b => {
            return Err(GatewayError::bad_request(
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

fn experiment_ids(m: &Map<String, Value>) -> Result<Vec<String>, GatewayError> {
    experiment_scope(opt_str_list(m, "experiment_ids")?)
}

/// A search scope: at least one, at most `MAX_IDS` valid experiment ids, sorted and unique.
fn experiment_scope(ids: Vec<String>) -> Result<Vec<String>, GatewayError> {
    if ids.is_empty() {
        return Err(GatewayError::bad_request(
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
        Some(u) if u.len() > MAX_FILTER_BYTES => Err(GatewayError::bad_request(
            Reason::InvalidField,
            "filter is longer than the gateway accepts",
        )),
        Some(u) => Ok(format!("{clause} AND {u}")),
    }
}

/// Relative paths inside a run's artifacts (`/get-artifact`, `artifacts/list`): no traversal.
fn check_relative_path(p: &str) -> Result<(), GatewayError> {
    let bad = p.starts_with('/')
        || p.contains(['\\', '%', '#'])
        || p.chars().any(char::is_control)
        || p.split('/').any(|s| s == "..");
    if bad {
        return Err(GatewayError::bad_request(
            Reason::InvalidPath,
            "artifact path is not a plain relative path",
        ));
    }
    Ok(())
}

/// An optional run id field: when given, the run must be the tenant's.
fn optional_run(input: &Input, field: &str) -> Result<Option<Resource>, GatewayError> {
    match input.str_field(field)? {
        None => Ok(None),
        Some(run) if valid_run_id(&run) => Ok(Some(Resource::Run(run))),
        Some(_) => Err(invalid(field)),
    }
}

fn model_id_check(id: &str) -> Result<Resource, GatewayError> {
    valid_model_id(id)
        .then(|| Resource::LoggedModel(id.to_string()))
        .ok_or_else(|| invalid("model_id"))
}

fn list_model_ids(m: &Map<String, Value>, list: &str) -> Result<Vec<Resource>, GatewayError> {
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
fn model_name(input: &Input, field: &str) -> Result<String, GatewayError> {
    let name = input.str_field(field)?.ok_or_else(|| missing(field))?;
    valid_model_name(&name)
        .then_some(name)
        .ok_or_else(|| invalid(field))
}

/// An object id given in the path, in the fields (any of `names`), or several of these: every
/// place that names it must agree. MLflow acts on the path's on most routes but on the body's
/// on some (logged-model finalize), so the gateway refuses any disagreement rather than guess.
fn path_or_field(
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
                return Err(GatewayError::bad_request(
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
fn child_resource(m: &Matched, input: &Input, child: Child) -> Result<Resource, GatewayError> {
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
fn trace_id_at(m: &Matched, input: &Input, at: TraceIdAt) -> Result<String, GatewayError> {
    const NAMES: [&str; 2] = ["trace_id", "request_id"];
    match at {
        TraceIdAt::Path => path_or_field(m, input, &NAMES, "trace"),
        TraceIdAt::Field(name) => {
            for other in NAMES.iter().filter(|n| **n != name) {
                if input.str_field(other)?.is_some() {
                    return Err(GatewayError::bad_request(
                        Reason::ConflictingIds,
                        format!("this route reads the trace id only from `{name}`; `{other}` is not accepted"),
                    ));
                }
            }
            input.str_field(name)?.ok_or_else(|| missing(name))
        }
    }
}

fn trace_resource(id: &str) -> Result<Resource, GatewayError> {
    valid_trace_id(id)
        .then(|| Resource::Trace(id.to_string()))
        .ok_or_else(|| invalid("trace_id"))
}

/// A non-empty, bounded list of trace ids, each to be checked.
fn trace_ids(ids: &[String], field: &str) -> Result<Vec<Resource>, GatewayError> {
    if ids.is_empty() {
        return Err(missing(field));
    }
    bounded(ids.len(), field)?;
    ids.iter().map(|i| trace_resource(i)).collect()
}

/// A v3 trace location: only an MLflow experiment (other location types are not tenant
/// scoped here); returns its experiment id.
fn trace_location(loc: Option<&Value>) -> Result<String, GatewayError> {
    let loc = loc
        .and_then(Value::as_object)
        .ok_or_else(|| missing("trace_location"))?;
    let kind = loc.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "MLFLOW_EXPERIMENT" {
        return Err(GatewayError::forbidden(
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

/// Where a model version's files may come from (leak §2.4 #3): the tenant's own run
/// (`runs:/<run>/…`), logged model (`models:/<m-id>`), experiment artifacts
/// (`mlflow-artifacts:/<exp>/…`), the prompt registry's placeholder, or an operator-allowed
/// prefix with `{tenant}` expanded. Returns the resources that must be the tenant's.
pub fn source_check(
    source: &str,
    tenant: &str,
    prefixes: &[String],
) -> Result<Vec<Resource>, GatewayError> {
    let refused = || {
        GatewayError::forbidden(
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

/// Every tag key the request sets or deletes, wherever MLflow's request messages carry one: a
/// single-tag route's `key` (body or query) or `{tag_key}` / `{key}` path segment, a `tags`
/// list or map, StartTraceV3's `trace.trace_info.tags`, log-inputs' `datasets[].tags`.
fn tag_keys(m: &Matched, input: &Input) -> Result<Vec<String>, GatewayError> {
    let mut keys: Vec<String> = ["tag_key", "key"]
        .iter()
        .filter_map(|p| m.param(p))
        .map(str::to_string)
        .collect();
    keys.extend(input.str_field("key")?);
    if let Input::Body(body) = input {
        keys.extend(tags::keys_of(body.get("tags"))?);
        let trace_tags = body
            .get("trace")
            .and_then(|t| t.get("trace_info"))
            .and_then(|i| i.get("tags"));
        keys.extend(tags::keys_of(trace_tags)?);
        if let Some(inputs) = body.get("datasets").and_then(Value::as_array) {
            for d in inputs {
                keys.extend(tags::keys_of(d.get("tags"))?);
            }
        }
    }
    Ok(keys)
}

/// The one place a request's tag writes are checked (`mlflow::tags::guard`), for every row
/// whose strategy declares a tagged kind. On creates the gateway writes the tenant tag itself
/// (`with_tenant` accepts an identical one and refuses any other), and on `runs/create` it
/// replaces `mlflow.user` with the authenticated subject, so those two are left to the rewrite.
fn guard_tags(
    strategy: Strategy,
    kind: Tagged,
    m: &Matched,
    input: &Input,
    tenant_key: &str,
) -> Result<(), GatewayError> {
    for k in tag_keys(m, input)? {
        let rewritten = strategy.injects_tenant() && tags::is_reserved(&k, tenant_key)
            || strategy == Strategy::CreateRun && k == RUN_AUTHOR_TAG;
        if !rewritten {
            tags::guard(kind, &k, tenant_key)?;
        }
    }
    Ok(())
}

/// The run tag MLflow's UI shows as the author; the gateway sets it to the subject.
const RUN_AUTHOR_TAG: &str = "mlflow.user";

/// Builds the plan for an allowed route, or the reason it is refused.
pub fn plan(
    req: &Incoming,
    m: &Matched,
    principal: &Principal,
    cfg: &Config,
) -> Result<Plan, GatewayError> {
    let row = m.row;
    if let Strategy::Deny(why) = row.strategy {
        return Err(GatewayError::forbidden(
            Reason::RouteDenied,
            format!("the gateway policy does not permit this route: {why}"),
        ));
    }
    check_rbac(row, principal)?;

    // Artifact uploads carry bytes; GraphQL bodies are checked by `mlflow::graphql`.
    let raw_body = matches!(row.strategy, Strategy::ArtifactPath | Strategy::Graphql);
    let list_fields: &[&str] = match row.strategy {
        Strategy::RunList(f) | Strategy::TraceList(f) => &[f][..],
        Strategy::SearchTracesV2
        | Strategy::ExperimentScope
        | Strategy::CreateDataset
        | Strategy::ScorerList => &["experiment_ids"],
        Strategy::OnlineConfigs => &["scorer_ids"],
        Strategy::Registry { .. } => &["stages"],
        _ => &[],
    };
    let mut input = match req.method.as_str() {
        "GET" => {
            if !req.body.is_empty() {
                return Err(GatewayError::bad_request(
                    Reason::BodyOnRead,
                    "a GET request must not carry a body (MLflow would read it instead of the query)",
                ));
            }
            Input::Query(Query::parse(&req.query, list_fields)?)
        }
        method => {
            if !req.query.is_empty() {
                return Err(GatewayError::bad_request(
                    Reason::QueryOnBodyMethod,
                    format!("{method} requests carry their fields in the body; the query string must be empty"),
                ));
            }
            if raw_body {
                Input::Raw
            } else {
                // Object-valued fields whose keys are user data, exempt from the camelCase rule.
                let map_fields: &[&str] = match row.strategy {
                    Strategy::CreateExperiment | Strategy::CreateRun => &["tags"],
                    Strategy::StartTraceV3 => &[
                        "trace.trace_info.trace_metadata",
                        "trace.trace_info.tags",
                        "trace.trace_info.assessments.metadata",
                        "trace.trace_info.assessments.feedback.value",
                        "trace.trace_info.assessments.expectation.value",
                    ],
                    Strategy::Trace { .. } => &[
                        "assessment.metadata",
                        "assessment.feedback.value",
                        "assessment.expectation.value",
                    ],
                    _ => &[],
                };
                Input::Body(parse_object_body(&req.body, map_fields)?)
            }
        }
    };

    let tenant = principal.tenant.as_str();
    let key = cfg.tenant_tag_key.as_str();
    if let Some(kind) = row.strategy.tags() {
        guard_tags(row.strategy, kind, m, &input, key)?;
    }
    let mut checks = Vec::new();
    let mut absent_or_own = Vec::new();
    let mut verify = Vec::new();
    let mut filter = None;
    let mut path = req.path.clone();
    let mut graphql_body = None;

    match row.strategy {
        Strategy::Deny(_) | Strategy::Open => {}
        Strategy::CreateExperiment => {
            let body = input.body_mut().ok_or_else(|| missing("name"))?;
            if opt_str(body, "artifact_location")?.is_some_and(|s| !s.is_empty()) {
                return Err(GatewayError::forbidden(
                    Reason::ArtifactLocationRefused,
                    "`artifact_location` is refused: experiments store artifacts under the server's proxied artifact root",
                ));
            }
            let tags = with_tenant(parse_tags(body.get("tags"))?, key, tenant)?;
            body.insert("tags".into(), to_json(&tags));
        }
        Strategy::SearchExperiments => {
            match &mut input {
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
            filter = Some(ResponseFilter::Experiments);
        }
        Strategy::ExperimentByName => {
            let name = input
                .str_field("experiment_name")?
                .ok_or_else(|| missing("experiment_name"))?;
            filter = Some(ResponseFilter::ExperimentByName { name });
        }
        Strategy::Experiment { tag_key } => {
            checks.push(Resource::Experiment(experiment_id(&input)?));
            if tag_key && input.str_field("key")?.is_none() {
                return Err(missing("key"));
            }
        }
        Strategy::CreateIssue => {
            checks.push(Resource::Experiment(experiment_id(&input)?));
            checks.extend(optional_run(&input, "source_run_id")?);
            let body = input.body_mut().ok_or_else(|| missing("experiment_id"))?;
            body.insert(
                "created_by".into(),
                Value::String(principal.subject.clone()),
            );
        }
        Strategy::ReviewItemStatus => {
            checks.push(child_resource(m, &input, Child::ReviewQueue)?);
            let body = input.body_mut().ok_or_else(|| missing("queue_id"))?;
            // Reopening clears the reviewer, as MLflow's own auth app does.
            if body.get("status").and_then(Value::as_str) == Some("PENDING") {
                body.remove("completed_by");
            } else {
                body.insert(
                    "completed_by".into(),
                    Value::String(principal.subject.clone()),
                );
            }
        }
        Strategy::CreateRun => {
            let exp = experiment_id(&input)?;
            checks.push(Resource::Experiment(exp));
            let body = input.body_mut().ok_or_else(|| missing("experiment_id"))?;
            let mut tags = parse_tags(body.get("tags"))?;
            // Attribution integrity: the author is the authenticated subject, whatever the
            // client claims.
            tags.retain(|(k, _)| k != RUN_AUTHOR_TAG);
            tags.push((RUN_AUTHOR_TAG.into(), principal.subject.clone()));
            let tags = with_tenant(tags, key, tenant)?;
            body.insert("tags".into(), to_json(&tags));
            body.insert("user_id".into(), Value::String(principal.subject.clone()));
        }
        Strategy::SearchRuns => {
            let body = input.body_mut().ok_or_else(|| missing("experiment_ids"))?;
            let ids = experiment_ids(body)?;
            checks.extend(ids.iter().cloned().map(Resource::Experiment));
            let f = scoped_filter(key, tenant, opt_str(body, "filter")?)?;
            body.insert("filter".into(), Value::String(f));
            filter = Some(ResponseFilter::Runs {
                experiment_ids: ids,
            });
        }
        Strategy::Run(ids, extra) => {
            checks.push(Resource::Run(run_id(&input, ids)?));
            if let Some(p) = input.str_field("path")? {
                check_relative_path(&p)?;
            }
            match extra {
                RunExtra::None => {}
                RunExtra::TagKey => {
                    input.str_field("key")?.ok_or_else(|| missing("key"))?;
                }
                RunExtra::MetricModel => {
                    if let Some(id) = input.str_field("model_id")? {
                        checks.push(model_id_check(&id)?);
                    }
                }
                RunExtra::Batch => {
                    let body = input.body_mut().ok_or_else(|| missing("run_id"))?;
                    checks.extend(list_model_ids(body, "metrics")?);
                }
                RunExtra::Models => {
                    let body = input.body_mut().ok_or_else(|| missing("run_id"))?;
                    checks.extend(list_model_ids(body, "models")?);
                }
            }
        }
        Strategy::RunList(field) => {
            let Input::Query(q) = &input else {
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
                checks.push(Resource::Run(id.to_string()));
            }
        }
        Strategy::ArtifactPath | Strategy::ArtifactMpu => {
            let tail = m.param("path").ok_or_else(|| missing("path"))?;
            let ap: ArtifactPath = artifacts::from_url_path(tail)?;
            if req.method == "DELETE" && ap.segments.len() < 2 {
                return Err(GatewayError::forbidden(
                    Reason::InvalidPath,
                    "deleting an experiment's whole artifact root is refused",
                ));
            }
            if let Some(body) = input.body_mut() {
                let name = opt_str(body, "path")?.ok_or_else(|| missing("path"))?;
                artifacts::check_file_name(name)?;
            }
            checks.push(Resource::Experiment(ap.experiment_id().to_string()));
            let head = &req.path[..req.path.len() - tail.len()];
            path = format!("{head}{}", ap.encoded());
        }
        Strategy::ArtifactList => {
            let Input::Query(q) = &mut input else {
                return Err(missing("path"));
            };
            let ap = artifacts::from_decoded(q.get("path").unwrap_or(""))?;
            checks.push(Resource::Experiment(ap.experiment_id().to_string()));
            q.set("path", ap.plain());
        }
        Strategy::CreateLoggedModel => {
            checks.push(Resource::Experiment(experiment_id(&input)?));
            checks.extend(optional_run(&input, "source_run_id")?);
        }
        Strategy::SearchLoggedModels => {
            let body = input.body_mut().ok_or_else(|| missing("experiment_ids"))?;
            let ids = experiment_ids(body)?;
            checks.extend(ids.iter().cloned().map(Resource::Experiment));
            filter = Some(ResponseFilter::LoggedModels {
                experiment_ids: ids,
            });
        }
        Strategy::Graphql => {
            let mut g = graphql::parse(&req.body)?;
            let data = g.data();
            let text = |k: &str| -> Result<Option<String>, GatewayError> {
                Ok(opt_str(data, k)?
                    .filter(|s| !s.is_empty())
                    .map(str::to_string))
            };
            match g.operation {
                Operation::GetRun => {
                    let id = pick_run(text("runId")?, text("runUuid")?)?;
                    checks.push(Resource::Run(id));
                }
                Operation::GetExperiment => {
                    let id = text("experimentId")?.ok_or_else(|| missing("experimentId"))?;
                    if !valid_experiment_id(&id) {
                        return Err(invalid("experimentId"));
                    }
                    checks.push(Resource::Experiment(id));
                }
                Operation::GetMetricHistoryBulkInterval => {
                    let ids = opt_str_list(data, "runIds")?;
                    if ids.is_empty() || ids.len() > MAX_IDS || !ids.iter().all(|i| valid_run_id(i))
                    {
                        return Err(invalid("runIds"));
                    }
                    checks.extend(ids.into_iter().map(Resource::Run));
                }
                Operation::SearchRuns => {
                    let mut m = Map::new();
                    m.insert(
                        "experiment_ids".into(),
                        data.get("experimentIds").cloned().unwrap_or(Value::Null),
                    );
                    let ids = experiment_ids(&m)?;
                    let f = scoped_filter(key, tenant, opt_str(data, "filter")?)?;
                    checks.extend(ids.iter().cloned().map(Resource::Experiment));
                    if let Some(d) = g.data_mut() {
                        d.insert("filter".into(), Value::String(f));
                    }
                    filter = Some(ResponseFilter::GraphqlRuns {
                        experiment_ids: ids,
                    });
                }
            }
            // Always the gateway's own body (re-printed query, pinned operation, the checked
            // variable), never the client's bytes.
            graphql_body = Some(g.into_body());
        }
        Strategy::LoggedModel { .. } => {
            let id = m.param("model_id").ok_or_else(|| missing("model_id"))?;
            checks.push(model_id_check(id)?);
            if input.str_field("model_id")?.is_some_and(|b| b != id) {
                return Err(GatewayError::bad_request(
                    Reason::ConflictingIds,
                    "`model_id` in the body differs from the one in the path",
                ));
            }
            if let Some(p) = input
                .str_field("artifact_file_path")?
                .or(input.str_field("artifact_directory_path")?)
            {
                check_relative_path(&p)?;
            }
        }
        Strategy::CreateRegisteredModel => {
            model_name(&input, "name")?;
            let body = input.body_mut().ok_or_else(|| missing("name"))?;
            let tags = with_tenant(parse_tags(body.get("tags"))?, key, tenant)?;
            body.insert("tags".into(), to_json(&tags));
        }
        Strategy::SearchRegisteredModels | Strategy::SearchModelVersions => {
            let Input::Query(q) = &mut input else {
                return Err(missing("filter"));
            };
            let f = scoped_filter(key, tenant, q.get("filter"))?;
            q.set("filter", f);
            filter = Some(if row.strategy == Strategy::SearchRegisteredModels {
                ResponseFilter::RegisteredModels
            } else {
                ResponseFilter::ModelVersions
            });
        }
        Strategy::Registry { tags } => {
            checks.push(Resource::RegisteredModel(model_name(&input, "name")?));
            if input.str_field("new_name")?.is_some() {
                model_name(&input, "new_name")?;
            }
            if let Some(p) = input.str_field("path")? {
                check_relative_path(&p)?;
            }
            if tags.is_some() && input.str_field("key")?.is_none() {
                return Err(missing("key"));
            }
        }
        Strategy::CreateModelVersion => {
            checks.push(Resource::RegisteredModel(model_name(&input, "name")?));
            checks.extend(optional_run(&input, "run_id")?);
            if let Some(id) = input.str_field("model_id")? {
                checks.push(model_id_check(&id)?);
            }
            let source = input
                .str_field("source")?
                .ok_or_else(|| missing("source"))?;
            checks.extend(source_check(&source, tenant, &cfg.model_source_prefixes)?);
            let body = input.body_mut().ok_or_else(|| missing("name"))?;
            let tags = with_tenant(parse_tags(body.get("tags"))?, key, tenant)?;
            body.insert("tags".into(), to_json(&tags));
        }
        Strategy::StartTraceV3 => {
            let body = input.body_mut().ok_or_else(|| missing("trace"))?;
            let info = body
                .get("trace")
                .and_then(|t| t.get("trace_info"))
                .and_then(Value::as_object)
                .ok_or_else(|| missing("trace.trace_info"))?;
            checks.push(Resource::Experiment(trace_location(
                info.get("trace_location"),
            )?));
            let id = opt_str(info, "trace_id")?.filter(|s| !s.is_empty());
            if let Some(id) = id {
                absent_or_own.push(trace_resource(id)?);
            }
            if let Some(list) = info.get("assessments").and_then(Value::as_array) {
                for a in list {
                    let own = a.get("trace_id").and_then(Value::as_str);
                    if own.is_some_and(|t| !t.is_empty() && Some(t) != id) {
                        return Err(GatewayError::bad_request(
                            Reason::ConflictingIds,
                            "an assessment names another trace than the one being started",
                        ));
                    }
                }
            }
        }
        Strategy::StartTraceV2 => {
            checks.push(Resource::Experiment(experiment_id(&input)?));
        }
        Strategy::Trace { id: at, tag_key } => {
            let id = trace_id_at(m, &input, at)?;
            checks.push(trace_resource(&id)?);
            if let Some(body) = input.body_mut() {
                let named = body
                    .get("assessment")
                    .and_then(|a| a.get("trace_id"))
                    .and_then(Value::as_str);
                if named.is_some_and(|t| !t.is_empty() && t != id) {
                    return Err(GatewayError::bad_request(
                        Reason::ConflictingIds,
                        "`assessment.trace_id` differs from the trace in the path",
                    ));
                }
            }
            if let Some(p) = input.str_field("path")? {
                check_relative_path(&p)?;
            }
            if tag_key && input.str_field("key")?.is_none() {
                return Err(missing("key"));
            }
        }
        Strategy::TraceArtifact => {
            let id = trace_id_at(m, &input, TraceIdAt::Field("request_id"))?;
            checks.push(trace_resource(&id)?);
            if let Some(p) = input.str_field("path")? {
                check_relative_path(&p)?;
            }
            verify.push(Verify::TraceLocation(id));
        }
        Strategy::TraceList(field) => {
            checks.extend(trace_ids(&input.str_list(field)?, field)?);
        }
        Strategy::SearchTracesV3 => {
            let body = input.body_mut().ok_or_else(|| missing("locations"))?;
            let mut ids = Vec::new();
            match body.get("locations") {
                Some(Value::Array(locs)) if !locs.is_empty() => {
                    for l in locs {
                        ids.push(trace_location(Some(l))?);
                    }
                }
                _ => {
                    return Err(GatewayError::bad_request(
                        Reason::ScopeRequired,
                        "`locations` must name at least one of your experiments",
                    ))
                }
            }
            if body.contains_key("experiment_ids") {
                return Err(GatewayError::bad_request(
                    Reason::InvalidField,
                    "give the experiments to search as `locations`, not `experiment_ids`",
                ));
            }
            bounded(ids.len(), "locations")?;
            ids.sort();
            ids.dedup();
            checks.extend(ids.iter().cloned().map(Resource::Experiment));
            filter = Some(ResponseFilter::TracesV3 {
                experiment_ids: ids,
            });
        }
        Strategy::SearchTracesV2 => {
            if !matches!(input, Input::Query(_)) {
                return Err(missing("experiment_ids"));
            }
            let ids = experiment_scope(input.str_list("experiment_ids")?)?;
            checks.extend(ids.iter().cloned().map(Resource::Experiment));
            filter = Some(ResponseFilter::TracesV2 {
                experiment_ids: ids,
            });
        }
        Strategy::ExperimentScope | Strategy::CreateDataset => {
            let ids = experiment_scope(input.str_list("experiment_ids")?)?;
            checks.extend(ids.into_iter().map(Resource::Experiment));
        }
        Strategy::ScorerList => {
            let many = input.str_list("experiment_ids")?;
            let ids = match input.str_field("experiment_id")? {
                Some(_) if !many.is_empty() => {
                    return Err(GatewayError::bad_request(
                        Reason::ConflictingIds,
                        "give either `experiment_id` or `experiment_ids`, not both",
                    ))
                }
                Some(one) => vec![one],
                None => many,
            };
            let ids = experiment_scope(ids)?;
            checks.extend(ids.into_iter().map(Resource::Experiment));
        }
        Strategy::Object(child) => checks.push(child_resource(m, &input, child)?),
        Strategy::OnlineConfigs => {
            let ids = input.str_list("scorer_ids")?;
            if ids.is_empty() {
                return Err(missing("scorer_ids"));
            }
            bounded(ids.len(), "scorer_ids")?;
            if !ids.iter().all(|i| valid_model_id(i)) {
                return Err(invalid("scorer_ids"));
            }
            filter = Some(ResponseFilter::OnlineConfigs { owned: Vec::new() });
        }
        Strategy::DatasetExperiments { remove } => {
            let dataset = child_resource(m, &input, Child::Dataset)?;
            let ids = experiment_scope(input.str_list("experiment_ids")?)?;
            if remove {
                verify.push(Verify::KeepsAnExperiment {
                    dataset: dataset.id().to_string(),
                    removed: ids.clone(),
                });
            }
            checks.push(dataset);
            checks.extend(ids.into_iter().map(Resource::Experiment));
        }
        Strategy::DeleteTraces => {
            checks.push(Resource::Experiment(experiment_id(&input)?));
            let body = input.body_mut().ok_or_else(|| missing("experiment_id"))?;
            let ids = opt_str_list(body, "request_ids")?;
            if !ids.is_empty() {
                checks.extend(trace_ids(&ids, "request_ids")?);
            }
        }
        Strategy::LinkTracesToRun => {
            checks.push(Resource::Run(run_id(&input, RunIds::IdOnly)?));
            let body = input.body_mut().ok_or_else(|| missing("trace_ids"))?;
            checks.extend(trace_ids(&opt_str_list(body, "trace_ids")?, "trace_ids")?);
        }
        Strategy::LinkPrompts => {
            let id = input
                .str_field("trace_id")?
                .ok_or_else(|| missing("trace_id"))?;
            checks.push(trace_resource(&id)?);
            let body = input.body_mut().ok_or_else(|| missing("trace_id"))?;
            let versions = body
                .get("prompt_versions")
                .and_then(Value::as_array)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| missing("prompt_versions"))?;
            bounded(versions.len(), "prompt_versions")?;
            for v in versions {
                let name = v
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| valid_model_name(n))
                    .ok_or_else(|| invalid("prompt_versions[].name"))?;
                checks.push(Resource::RegisteredModel(name.to_string()));
            }
        }
    }

    let query = match &input {
        Input::Query(q) if !q.is_empty() => q.encode(),
        _ => String::new(),
    };
    // Every JSON body is re-serialised from what was checked, judged fields first (see
    // `serialize_judged_first`), so a rewrite cannot be forgotten and MLflow's partial parse
    // cannot drop a judged field.
    let body = match (&input, graphql_body) {
        (_, Some(b)) => BodyPlan::Replace(b),
        (Input::Body(map), None) => BodyPlan::Replace(serialize_judged_first(map)),
        _ => BodyPlan::Original,
    };
    checks.sort();
    checks.dedup();
    Ok(Plan {
        row,
        checks,
        absent_or_own,
        verify,
        path,
        query,
        body,
        filter,
    })
}

/// Refuses unlinking experiments from a dataset when none would remain: a dataset linked to no
/// experiment belongs to nobody and no one could reach it again through the gateway.
pub fn keeps_an_experiment(
    dataset: &str,
    linked: &[String],
    removed: &[String],
) -> Result<(), GatewayError> {
    if linked.iter().all(|e| removed.contains(e)) {
        return Err(GatewayError::forbidden(
            Reason::OrphanRefused,
            format!(
                "removing these experiments would leave dataset {dataset} linked to none, and so owned by nobody; delete the dataset instead (admin)"
            ),
        ));
    }
    Ok(())
}

/// The owner of something linked to several experiments (an evaluation dataset): a tenant's
/// only when every experiment is that tenant's; mixed owners belong to nobody; no experiments
/// at all reads as missing (MLflow answers an unknown dataset id with an empty list).
pub fn owner_of_all(owners: impl IntoIterator<Item = Owner>) -> Owner {
    let mut it = owners.into_iter();
    let Some(first) = it.next() else {
        return Owner::Missing;
    };
    if it.any(|o| o != first) {
        return Owner::Nobody;
    }
    first
}

/// What pre-flights established about a resource's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The experiment (of the resource) carries this tenant tag.
    Tenant(String),
    /// The experiment exists but carries no tenant tag (e.g. the Default experiment `0`).
    Nobody,
    /// The resource does not exist.
    Missing,
}

/// Allows only resources of the caller's tenant. Absent, untagged and foreign resources get the
/// same answer, so the response reveals nothing about other tenants; the audit reason differs.
/// Registry names are answered with MLflow's own 404 for an absent model: clients probe a name
/// before creating it (`register_prompt`), and the answer must not tell "taken" from "free".
pub fn judge(res: &Resource, owner: &Owner, principal: &Principal) -> Result<(), GatewayError> {
    let reason = match owner {
        Owner::Tenant(t) if *t == principal.tenant => return Ok(()),
        Owner::Tenant(_) | Owner::Nobody => Reason::TenantMismatch,
        Owner::Missing => Reason::ResourceNotFound,
    };
    if let Resource::RegisteredModel(name) = res {
        return Err(GatewayError::not_found(
            reason,
            registered_model_not_found(name),
        ));
    }
    Err(GatewayError::forbidden(
        reason,
        format!(
            "{} {} does not exist or belongs to another tenant",
            res.kind(),
            res.id()
        ),
    ))
}
