//! From an allowed route to a concrete plan: RBAC first, then MLflow's own parsing rules for the
//! request (query for GET, body for POST/PUT, body only for PATCH/DELETE), then the row's tenant
//! strategy: which resources must be the caller's, how the upstream request is rewritten, and
//! which response check applies. Each strategy family has its own file, with its rules next
//! to it; this file reads the request, runs the tag guard and hands the draft to the family.

mod artifacts;
mod experiments;
mod fields;
mod genai;
mod graphql;
mod models;
mod services;
mod tag_guard;
mod traces;
mod workspaces;

use super::route::Matched;
use super::table::{Body, Strategy};
use super::{Role, Row};
use crate::config::Config;
use crate::error::{GatewayError, Reason};
use crate::identity::Principal;
use crate::mlflow::json::{parse_object_body, serialize_judged_first};
use crate::mlflow::ownership::Resource;
use crate::mlflow::query::Query;
use crate::mlflow::responses::ResponseFilter;
use crate::request::Incoming;
use fields::Input;
use tag_guard::guard_tags;

pub use fields::scoped_filter;
pub use genai::keeps_an_experiment;
pub use models::source_check;

/// The body to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPlan {
    /// The client's bytes, unchanged (artifact uploads, bodiless requests).
    Original,
    /// The JSON body as checked (and rewritten), re-serialised.
    Replace(Vec<u8>),
    /// The client's compressed body as the gateway inflated and checked it (OTLP): sent with
    /// the client's content type and no `Content-Encoding`, so MLflow stores what was checked.
    Inflated(Vec<u8>),
}
/// An object MLflow creates by itself while answering a permitted request, which the gateway
/// records as the caller's tenant's after a successful answer (`pipeline::claim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The run the answer names (`run_id`, `job.run_id`): MLflow's job starters create it
    /// without the tenant tag run searches keep rows by.
    Run,
    /// The experiment an AI gateway endpoint's answer names when the request named none
    /// (MLflow creates `gateway/<endpoint name>`, untagged).
    EndpointExperiment,
}
/// A check on MLflow's current state that ownership alone does not cover, made by the pipeline
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
/// What a registry request touches that `protected_aliases` may guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protect {
    /// Sets, moves or deletes this alias.
    Alias(String),
    /// Changes this version (deletes it, changes its tags or stage).
    Version(String),
}
/// What the pipeline must do for an allowed request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub row: &'static Row,
    /// Every resource that must belong to the caller's tenant before forwarding.
    pub checks: Vec<Resource>,
    /// The checks that name an object the request links to rather than the one it acts on
    /// (a version's source run, a dataset's experiments, a metric's model): a subset of
    /// `checks`, refused in every enforcement mode, because once stored such a link crosses
    /// the tenant wall where no store-level isolation looks.
    pub references: Vec<Resource>,
    /// A protected-alias rule on the registered model the request acts on: the decision then
    /// needs `MANAGE` when the alias (or an alias of the version) is protected.
    pub protect: Option<Protect>,
    /// An artifact read (download or listing): the path from the experiment on. A caller who
    /// may not read the experiment may still read the files of a model version it may read
    /// (`pipeline::ownership::shared_through_version`).
    pub artifact_read: Option<Vec<String>>,
    /// Resources that must be absent or the caller's (an upsert may create them).
    pub absent_or_own: Vec<Resource>,
    /// Checks on MLflow's state made after the ownership checks.
    pub verify: Vec<Verify>,
    /// Upstream path (absolute, canonical) and query (re-encoded, may be empty).
    pub path: String,
    pub query: String,
    pub body: BodyPlan,
    pub filter: Option<ResponseFilter>,
    /// What to claim for the tenant once MLflow answers 200.
    pub claim: Option<Claim>,
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
    Err(GatewayError::new(
        Reason::Rbac,
        format!(
            "{held} does not permit the `{}` action on {}; it requires {}",
            row.action.as_str(),
            row.id,
            needed.join(" or ")
        ),
    ))
}
/// A plan under construction: the request, and what the row's strategy has decided so far.
struct Draft<'a> {
    req: &'a Incoming,
    m: &'a Matched,
    principal: &'a Principal,
    cfg: &'a Config,
    input: Input,
    checks: Vec<Resource>,
    references: Vec<Resource>,
    absent_or_own: Vec<Resource>,
    verify: Vec<Verify>,
    protect: Option<Protect>,
    artifact_read: Option<Vec<String>>,
    filter: Option<ResponseFilter>,
    path: String,
    graphql_body: Option<Vec<u8>>,
    /// A body the strategy made itself (OTLP inflated), sent instead of the client's.
    body_override: Option<BodyPlan>,
    claim: Option<Claim>,
}

impl<'a> Draft<'a> {
    fn tenant(&self) -> &'a str {
        self.principal.tenant.as_str()
    }
    fn tag_key(&self) -> &'a str {
        self.cfg.tenant_tag_key.as_str()
    }
    /// A resource the request links to (see `Plan::references`): judged like every check,
    /// never waived.
    fn refer(&mut self, res: Resource) {
        self.references.push(res.clone());
        self.checks.push(res);
    }
    fn refer_all(&mut self, all: impl IntoIterator<Item = Resource>) {
        for res in all {
            self.refer(res);
        }
    }
    /// The caller's workspace in workspace mode (`None` in tag mode).
    fn own_workspace(&self) -> Result<Option<String>, GatewayError> {
        self.cfg
            .isolation
            .workspace()
            .map(|w| w.workspace_of(self.tenant()))
            .transpose()
    }
}

/// Reads the request's fields where MLflow reads them: the query for GET (a body there is
/// refused, MLflow would read it instead), the body otherwise (a query there is refused),
/// strict JSON with the camelCase rule, raw bytes for artifact uploads and GraphQL.
fn read_input(req: &Incoming, strategy: Strategy) -> Result<Input, GatewayError> {
    let shape = strategy.shape();
    let input = match req.method.as_str() {
        "GET" => {
            if !req.body.is_empty() {
                return Err(GatewayError::new(
                    Reason::BodyOnRead,
                    "a GET request must not carry a body (MLflow would read it instead of the query)",
                ));
            }
            Input::Query(Query::parse(&req.query, shape.list.as_slice())?)
        }
        method => {
            if !req.query.is_empty() {
                return Err(GatewayError::new(
                    Reason::QueryOnBodyMethod,
                    format!("{method} requests carry their fields in the body; the query string must be empty"),
                ));
            }
            match shape.body {
                Body::Raw => Input::Raw,
                Body::Json { maps } => Input::Body(parse_object_body(&req.body, maps)?),
            }
        }
    };
    Ok(input)
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
        return Err(GatewayError::new(
            Reason::RouteDenied,
            format!("the gateway policy does not permit this route: {why}"),
        ));
    }

    let input = read_input(req, row.strategy)?;
    if let Some(kind) = row.strategy.tags() {
        guard_tags(row.strategy, kind, m, &input, &cfg.tenant_tag_key)?;
    }
    let mut d = Draft {
        req,
        m,
        principal,
        cfg,
        input,
        checks: Vec::new(),
        references: Vec::new(),
        absent_or_own: Vec::new(),
        verify: Vec::new(),
        protect: None,
        artifact_read: None,
        filter: None,
        path: req.path.clone(),
        graphql_body: None,
        body_override: None,
        claim: None,
    };
    match row.strategy {
        Strategy::Deny(_) | Strategy::Open => Ok(()),
        Strategy::CreateExperiment => experiments::create_experiment(&mut d),
        Strategy::SearchExperiments => experiments::search_experiments(&mut d),
        Strategy::ExperimentByName => experiments::experiment_by_name(&mut d),
        Strategy::Experiment { tag_key } => experiments::experiment(&mut d, tag_key),
        Strategy::CreateIssue => genai::create_issue(&mut d),
        Strategy::ReviewItemStatus => genai::review_item_status(&mut d),
        Strategy::CreateRun => experiments::create_run(&mut d),
        Strategy::SearchRuns => experiments::search_runs(&mut d),
        Strategy::Run(ids, extra) => experiments::run(&mut d, ids, extra),
        Strategy::RunList(field) => experiments::run_list(&mut d, field),
        Strategy::ArtifactPath | Strategy::ArtifactMpu => artifacts::artifact_path(&mut d),
        Strategy::ArtifactList => artifacts::artifact_list(&mut d),
        Strategy::CreateLoggedModel => models::create_logged_model(&mut d),
        Strategy::SearchLoggedModels => models::search_logged_models(&mut d),
        Strategy::Graphql => graphql::graphql(&mut d),
        Strategy::LoggedModel { .. } => models::logged_model(&mut d),
        Strategy::CreateRegisteredModel => models::create_registered_model(&mut d),
        Strategy::SearchRegisteredModels | Strategy::SearchModelVersions => {
            models::search_registry(&mut d)
        }
        Strategy::Registry { tags, guard } => models::registry(&mut d, tags, guard),
        Strategy::CreateModelVersion => models::create_model_version(&mut d),
        Strategy::StartTraceV3 => traces::start_v3(&mut d),
        Strategy::StartTraceV2 => traces::start_v2(&mut d),
        Strategy::Trace { id: at, tag_key } => traces::trace(&mut d, at, tag_key),
        Strategy::TraceArtifact => traces::trace_artifact(&mut d),
        Strategy::TraceList(field) => traces::trace_list(&mut d, field),
        Strategy::SearchTracesV3 => traces::search_v3(&mut d),
        Strategy::SearchTracesV2 => traces::search_v2(&mut d),
        Strategy::ExperimentScope => genai::scoped(&mut d),
        Strategy::CreateDataset => genai::create_dataset(&mut d),
        Strategy::ScorerList => genai::scorer_list(&mut d),
        Strategy::Object(child) => genai::object(&mut d, child),
        Strategy::OnlineConfigs => genai::online_configs(&mut d),
        Strategy::DatasetExperiments { remove } => genai::dataset_experiments(&mut d, remove),
        Strategy::DeleteTraces => traces::delete_traces(&mut d),
        Strategy::LinkTracesToRun => traces::link_to_run(&mut d),
        Strategy::LinkPrompts => traces::link_prompts(&mut d),
        Strategy::WorkspaceList => workspaces::list(&mut d),
        Strategy::WorkspaceGet => workspaces::get(&mut d),
        Strategy::Otlp => services::otlp(&mut d),
        Strategy::Workspaced(rule) => services::workspaced(&mut d, rule),
        Strategy::Invocation => services::invocation(&mut d),
        Strategy::JudgeJob => services::judge_job(&mut d),
        Strategy::PromptOptimization => services::prompt_optimization(&mut d),
        Strategy::JobScope => services::job_scope(&mut d),
        Strategy::PromptLabRun => services::prompt_lab_run(&mut d),
    }?;

    let query = match &d.input {
        Input::Query(q) if !q.is_empty() => q.encode(),
        _ => String::new(),
    };
    // Every JSON body is re-serialised from what was checked, judged fields first (see
    // `serialize_judged_first`), so a rewrite cannot be forgotten and MLflow's partial parse
    // cannot drop a judged field.
    let body = match (&d.input, d.graphql_body, d.body_override) {
        (_, _, Some(own)) => own,
        (_, Some(b), None) => BodyPlan::Replace(b),
        (Input::Body(map), None, None) => BodyPlan::Replace(serialize_judged_first(map)),
        _ => BodyPlan::Original,
    };
    let mut checks = d.checks;
    checks.sort();
    checks.dedup();
    let mut references = d.references;
    references.sort();
    references.dedup();
    Ok(Plan {
        row,
        checks,
        references,
        protect: d.protect,
        artifact_read: d.artifact_read,
        absent_or_own: d.absent_or_own,
        verify: d.verify,
        path: d.path,
        query,
        body,
        filter: d.filter,
        claim: d.claim,
    })
}
