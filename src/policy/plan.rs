//! From an allowed route to a concrete plan: RBAC first, then MLflow's own parsing rules for the
//! request (query for GET, body for POST/PUT, body only for PATCH/DELETE), then the row's tenant
//! strategy: which resources must be the caller's, how the upstream request is rewritten, and
//! which response check applies.

use super::route::Matched;
use super::table::{RunExtra, Strategy};
use super::{Role, Row};
use crate::config::Config;
use crate::error::{GatewayError, Reason};
use crate::identity::Principal;
use crate::mlflow::artifacts::{self, ArtifactPath};
use crate::mlflow::graphql::{self, Operation};
use crate::mlflow::json::{opt_str, opt_str_list, parse_object_body};
use crate::mlflow::ownership::{valid_experiment_id, valid_model_id, valid_run_id, Resource};
use crate::mlflow::query::Query;
use crate::mlflow::responses::ResponseFilter;
use crate::mlflow::tags::{parse_tags, refuse_reserved, to_json, with_tenant};
use crate::mlflow::MAX_FILTER_BYTES;
use crate::request::Incoming;
use serde_json::{Map, Value};

/// MLflow caps id lists at 100 (metric history) and scopes at a few hundred; the gateway refuses
/// longer lists rather than pre-flighting them all.
const MAX_IDS: usize = 100;

/// The body to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPlan {
    /// The client's bytes, unchanged (artifact uploads, bodies the strategy only read).
    Original,
    /// A rewritten JSON body.
    Replace(Vec<u8>),
}

/// What the shell must do for an allowed request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub row: &'static Row,
    /// Every resource that must belong to the caller's tenant before forwarding.
    pub checks: Vec<Resource>,
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

fn experiment_id(input: &Input) -> Result<String, GatewayError> {
    let id = input
        .str_field("experiment_id")?
        .ok_or_else(|| missing("experiment_id"))?;
    valid_experiment_id(&id)
        .then_some(id)
        .ok_or_else(|| invalid("experiment_id"))
}

/// MLflow's handlers read `run_id or run_uuid`: the first non-empty one acts. Both set and
/// different is refused.
fn run_id(input: &Input) -> Result<String, GatewayError> {
    pick_run(input.str_field("run_id")?, input.str_field("run_uuid")?)
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
    let ids = opt_str_list(m, "experiment_ids")?;
    if ids.is_empty() {
        return Err(GatewayError::bad_request(
            Reason::ScopeRequired,
            "`experiment_ids` must name at least one of your experiments",
        ));
    }
    if ids.len() > MAX_IDS {
        return Err(GatewayError::bad_request(
            Reason::InvalidField,
            "too many `experiment_ids`",
        ));
    }
    for id in &ids {
        if !valid_experiment_id(id) {
            return Err(invalid("experiment_ids"));
        }
    }
    let mut uniq = ids.clone();
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
        Strategy::RunList(f) => &[f][..],
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
                let map_fields: &[&str] = match row.strategy {
                    Strategy::CreateExperiment | Strategy::CreateRun => &["tags"],
                    _ => &[],
                };
                Input::Body(parse_object_body(&req.body, map_fields)?)
            }
        }
    };

    let tenant = principal.tenant.as_str();
    let key = cfg.tenant_tag_key.as_str();
    let mut checks = Vec::new();
    let mut filter = None;
    let mut rewritten = false;
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
            rewritten = true;
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
                    rewritten = true;
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
            if tag_key {
                refuse_reserved(&input.str_field("key")?.ok_or_else(|| missing("key"))?, key)?;
            }
        }
        Strategy::CreateRun => {
            let exp = experiment_id(&input)?;
            checks.push(Resource::Experiment(exp));
            let body = input.body_mut().ok_or_else(|| missing("experiment_id"))?;
            let mut tags = parse_tags(body.get("tags"))?;
            // Attribution integrity: the author is the authenticated subject, whatever the
            // client claims.
            tags.retain(|(k, _)| k != "mlflow.user");
            tags.push(("mlflow.user".into(), principal.subject.clone()));
            let tags = with_tenant(tags, key, tenant)?;
            body.insert("tags".into(), to_json(&tags));
            body.insert("user_id".into(), Value::String(principal.subject.clone()));
            rewritten = true;
        }
        Strategy::SearchRuns => {
            let body = input.body_mut().ok_or_else(|| missing("experiment_ids"))?;
            let ids = experiment_ids(body)?;
            checks.extend(ids.iter().cloned().map(Resource::Experiment));
            let f = scoped_filter(key, tenant, opt_str(body, "filter")?)?;
            body.insert("filter".into(), Value::String(f));
            rewritten = true;
            filter = Some(ResponseFilter::Runs {
                experiment_ids: ids,
            });
        }
        Strategy::Run(extra) => {
            checks.push(Resource::Run(run_id(&input)?));
            if let Some(p) = input.str_field("path")? {
                check_relative_path(&p)?;
            }
            match extra {
                RunExtra::None => {}
                RunExtra::TagKey => {
                    refuse_reserved(&input.str_field("key")?.ok_or_else(|| missing("key"))?, key)?
                }
                RunExtra::MetricModel => {
                    if let Some(id) = input.str_field("model_id")? {
                        checks.push(model_id_check(&id)?);
                    }
                }
                RunExtra::Batch => {
                    let body = input.body_mut().ok_or_else(|| missing("run_id"))?;
                    for (k, _) in parse_tags(body.get("tags"))? {
                        refuse_reserved(&k, key)?;
                    }
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
            if ids.len() > MAX_IDS {
                return Err(GatewayError::bad_request(
                    Reason::InvalidField,
                    format!("too many `{field}`"),
                ));
            }
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
            if let Some(run) = input.str_field("source_run_id")? {
                if !valid_run_id(&run) {
                    return Err(invalid("source_run_id"));
                }
                checks.push(Resource::Run(run));
            }
            let body = input.body_mut().ok_or_else(|| missing("experiment_id"))?;
            for (k, _) in parse_tags(body.get("tags"))? {
                refuse_reserved(&k, key)?;
            }
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
                    graphql_body = Some(Value::Object(g.body).to_string().into_bytes());
                }
            }
        }
        Strategy::LoggedModel { tags } => {
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
            if tags {
                if let Some(k) = m.param("tag_key") {
                    refuse_reserved(k, key)?;
                }
                if let Some(body) = input.body_mut() {
                    for (k, _) in parse_tags(body.get("tags"))? {
                        refuse_reserved(&k, key)?;
                    }
                }
            }
        }
    }

    let query = match &input {
        Input::Query(q) if !q.is_empty() => q.encode(),
        _ => String::new(),
    };
    let body = match (&input, rewritten, graphql_body) {
        (_, _, Some(b)) => BodyPlan::Replace(b),
        (Input::Body(map), true, None) => {
            BodyPlan::Replace(Value::Object(map.clone()).to_string().into_bytes())
        }
        _ => BodyPlan::Original,
    };
    checks.sort();
    checks.dedup();
    Ok(Plan {
        row,
        checks,
        path,
        query,
        body,
        filter,
    })
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
pub fn judge(res: &Resource, owner: &Owner, principal: &Principal) -> Result<(), GatewayError> {
    let reason = match owner {
        Owner::Tenant(t) if *t == principal.tenant => return Ok(()),
        Owner::Tenant(_) | Owner::Nobody => Reason::TenantMismatch,
        Owner::Missing => Reason::ResourceNotFound,
    };
    Err(GatewayError::forbidden(
        reason,
        format!(
            "{} {} does not exist or belongs to another tenant",
            res.kind(),
            res.id()
        ),
    ))
}
