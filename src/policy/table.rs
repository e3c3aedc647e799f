//! THE policy table. Every MLflow route the gateway forwards is one row here; every other
//! request is refused (default deny). A new MLflow endpoint stays closed until someone adds its
//! row here, its tests, and its line in `docs/rbac.md`.
//!
//! Each row: where it is mounted, method, route path (after the mount prefix), action class,
//! tenant strategy, and a comment naming what the row protects.

use super::Action;
use crate::mlflow::tags::Tagged;

/// Where a route lives. MLflow serves its API under `/api/...` and mirrors it under
/// `/ajax-api/...` with the same handler, so one row covers both mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// `/api/2.0/mlflow/…` and `/ajax-api/2.0/mlflow/…`
    Api2,
    /// `/api/3.0/mlflow/…` and `/ajax-api/3.0/mlflow/…`
    Api3,
    /// `/ajax-api/2.0/mlflow/…` only (hand-written Flask routes).
    Ajax2,
    /// `/ajax-api/3.0/mlflow/…` only.
    Ajax3,
    /// `/api/2.0/mlflow-artifacts/…` and `/ajax-api/2.0/mlflow-artifacts/…` (proxied artifacts)
    Artifacts,
    /// Root-level (`/version`, `/get-artifact`, UI files).
    Root,
}

/// Which extra fields of a run-scoped request name other resources or tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunExtra {
    None,
    /// Body `key` is a tag key: the reserved tenant key is refused.
    TagKey,
    /// Body `model_id` (optional) must be a logged model of the tenant.
    MetricModel,
    /// `log-batch`: `tags[].key` reserved-key check, `metrics[].model_id` ownership.
    Batch,
    /// `models[].model_id` ownership (log-inputs, outputs).
    Models,
}

/// Which fields name the run, as the row's MLflow handler reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunIds {
    /// `run_id or run_uuid` (the first non-empty acts); both given and different is refused.
    OrUuid,
    /// `run_id` only: the request message has no `run_uuid` field, so MLflow would act on an
    /// empty id; a `run_uuid` is refused.
    IdOnly,
}

/// Where the row's MLflow handler reads the trace id from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceIdAt {
    /// The `{trace_id}` / `{request_id}` path segment; a body or query `trace_id` /
    /// `request_id` must name the same trace.
    Path,
    /// Exactly this field; the other spelling (`trace_id` / `request_id`) is refused, since
    /// MLflow ignores it and the gateway would be judging a different id.
    Field(&'static str),
}

/// A GenAI object kept per experiment (or, for datasets, linked to experiments), named by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// `{dataset_id}` in the path.
    Dataset,
    /// `schema_id` (query or body).
    LabelSchema,
    /// `queue_id` (query or body).
    ReviewQueue,
    /// `{issue_id}` in the path (and, if present, the same `issue_id` in the body).
    Issue,
}

impl Child {
    /// The path parameter / field that names the object.
    pub fn field(self) -> &'static str {
        match self {
            Child::Dataset => "dataset_id",
            Child::LabelSchema => "schema_id",
            Child::ReviewQueue => "queue_id",
            Child::Issue => "issue_id",
        }
    }
}

/// Which protected-alias rule a registry row is under (`protected_aliases`): the row then needs
/// `MANAGE` on the model instead of its action's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasGuard {
    /// No alias rule.
    None,
    /// Sets, moves or deletes the alias in the body's `alias`: a protected one needs `MANAGE`.
    Alias,
    /// Acts on the version in the body's `version`: a version carrying a protected alias
    /// cannot be changed below `MANAGE`.
    Version,
}

/// What a `Workspaced` row checks besides the caller's membership and role: MLflow keeps the
/// row's objects per workspace, and these are the fields it leaves unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsRule {
    /// Nothing more: every id the request names is looked up inside the pinned workspace.
    Plain,
    /// As `Plain`, and the body is not read (a FastAPI route whose fields name no tenant data;
    /// its schema has camelCase fields the strict JSON rule would refuse).
    Opaque,
    /// AI gateway endpoint create / update: the usage-tracking `experiment_id` is tenant data
    /// (MLflow does not check it), and an experiment MLflow creates for the endpoint is
    /// claimed with the tenant tag after the answer.
    GatewayEndpoint,
    /// AI gateway endpoint tags: the body `key` is a tag key (the gateway's reserved keys are
    /// refused, as on every object).
    EndpointTag,
    /// AI gateway budget create / update: `target_scope: GLOBAL` is refused (MLflow applies
    /// and lists it in every workspace).
    Budget,
    /// Webhook create / update: the target `url` must pass `webhook_allowed_hosts`
    /// (`mlflow::webhooks`).
    Webhook,
}

/// How a row keeps tenants apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// No tenant data behind the route: any authenticated principal whose role permits it.
    Open,
    /// Refused for everyone, with this explanation.
    Deny(&'static str),
    /// Inject the tenant tag; refuse `artifact_location`.
    CreateExperiment,
    /// Prepend the tenant clause to `filter`; drop foreign rows from the answer.
    SearchExperiments,
    /// Forward, then answer exactly like MLflow's 404 unless the experiment is the tenant's.
    ExperimentByName,
    /// The `experiment_id` (query on GET, body otherwise) must be the tenant's. `tag_key`:
    /// the body `key` is a tag key (reserved key refused).
    Experiment { tag_key: bool },
    /// Experiment must be the tenant's; tenant tag injected; `user_id` = subject.
    CreateRun,
    /// `experiment_ids` must all be the tenant's (non-empty); tenant clause prepended; foreign
    /// rows dropped from the answer.
    SearchRuns,
    /// The run (read as the handler reads it, see `RunIds`) must be the tenant's.
    Run(RunIds, RunExtra),
    /// Every run id in the repeated query parameter must be the tenant's.
    RunList(&'static str),
    /// Proxied artifact `<experiment>/...` path in the URL must be the tenant's.
    ArtifactPath,
    /// Listing with `?path=<experiment>/...` (required).
    ArtifactList,
    /// Multipart upload: URL path as `ArtifactPath`, body `path` a bare file name.
    ArtifactMpu,
    /// Create a logged model in an owned experiment (`source_run_id` owned too).
    CreateLoggedModel,
    /// `experiment_ids` must all be the tenant's (non-empty).
    SearchLoggedModels,
    /// `/graphql`: only the UI's read operations; ids in `variables.data` checked as for the
    /// matching REST route (see `mlflow::graphql`).
    Graphql,
    /// The logged model in the URL (`{model_id}`) must be the tenant's. `tags`: the body
    /// `tags` or the `{tag_key}` path segment are tag keys (reserved key refused).
    LoggedModel { tags: bool },
    /// Inject the tenant tag into a new registered model or prompt (global names: a taken
    /// name still answers `RESOURCE_ALREADY_EXISTS`).
    CreateRegisteredModel,
    /// Prepend the tenant clause to `filter`; drop foreign rows from the answer.
    SearchRegisteredModels,
    /// The registered model (or prompt) `name` must be the tenant's; another tenant's name is
    /// answered exactly like an absent one (404). `tags`: the row sets or deletes a tag of
    /// this kind (body `key`).
    Registry {
        tags: Option<Tagged>,
        guard: AliasGuard,
    },
    /// New version of an owned model: tenant tag injected; `run_id`, `model_id` owned; `source`
    /// only inside the tenant's own runs, logged models, experiments or allowed prefixes.
    CreateModelVersion,
    /// Prepend the tenant clause (on version tags) to `filter`; drop foreign rows.
    SearchModelVersions,
    /// StartTraceV3: location is an owned experiment; an existing `trace_id` must already be
    /// the tenant's (no re-homing of another tenant's trace).
    StartTraceV3,
    /// StartTrace (v2): `experiment_id` owned; trace tags checked for the reserved key.
    StartTraceV2,
    /// The trace, read where the handler reads it (`TraceIdAt`), must be the tenant's.
    /// `tag_key`: body `key` is a trace tag key.
    Trace { id: TraceIdAt, tag_key: bool },
    /// `get-trace-artifact`: the trace (`request_id`, the only field MLflow reads) must be the
    /// tenant's, and its data locations its own (`mlflow::locations`): MLflow serves whatever
    /// the trace's location tags name.
    TraceArtifact,
    /// Every trace id in this list field (query or body) must be the tenant's.
    TraceList(&'static str),
    /// `traces/search` (v3): every `locations[]` an owned MLflow experiment; rows re-checked.
    SearchTracesV3,
    /// `traces` search (v2): `experiment_ids` owned (non-empty); rows re-checked.
    SearchTracesV2,
    /// `experiment_ids` (query on GET, body otherwise) must all be the tenant's (non-empty);
    /// no rows to re-check.
    ExperimentScope,
    /// `datasets/create`: as `ExperimentScope`, and the dataset's `tags` are checked.
    CreateDataset,
    /// `scorers/list`: `experiment_id` or a non-empty `experiment_ids`, all the tenant's (an
    /// unscoped list returns every experiment's scorers).
    ScorerList,
    /// The GenAI object must be the tenant's (its experiment, or all of a dataset's).
    Object(Child),
    /// `issues` create: experiment and `source_run_id` owned; `created_by` = the subject.
    CreateIssue,
    /// Review item status: the queue owned; `completed_by` = the subject (MLflow stamps it only
    /// when its own auth app runs, and otherwise takes the client's word).
    ReviewItemStatus,
    /// `scorers/online-configs`: scorer ids only (MLflow's client asks when listing scorers);
    /// configs of other tenants' experiments are dropped from the answer.
    OnlineConfigs,
    /// Dataset `add-experiments` / `remove-experiments`: the dataset and every listed
    /// experiment must be the tenant's. `remove`: the dataset must keep at least one
    /// experiment (a dataset linked to none belongs to nobody, not even an admin could reach
    /// it again: removing the last link destroys it, which is `DELETE datasets/{id}`'s job).
    DatasetExperiments { remove: bool },
    /// `delete-traces`: `experiment_id` owned and every `request_ids[]` the tenant's.
    DeleteTraces,
    /// `link-to-run`: `run_id` and every `trace_ids[]` the tenant's.
    LinkTracesToRun,
    /// `link-prompts`: `trace_id` and every `prompt_versions[].name` the tenant's.
    LinkPrompts,
    /// `workspaces` list: answered with the caller's own workspace alone (workspace mode;
    /// refused in tag mode, where workspaces are not used).
    WorkspaceList,
    /// `workspaces/{workspace_name}`: the caller's own workspace only; any other name answers
    /// exactly like an absent one (workspace mode; refused in tag mode).
    WorkspaceGet,
    /// OTLP span ingestion (`POST /v1/traces`): the `x-mlflow-experiment-id` header's
    /// experiment and `x-mlflow-run-id` run the caller's; every span's trace (decoded as
    /// MLflow will name it) absent or the caller's to write; a compressed body is inflated.
    Otlp,
    /// A service MLflow keeps per workspace (AI gateway configuration, jobs, webhooks, MCP
    /// servers): workspace mode, members only, the role decides, `WsRule` adds the rest.
    Workspaced(WsRule),
    /// An AI gateway invocation: as `Workspaced(Plain)`, body unread, a successful answer
    /// piped as it streams, an error answer scrubbed of anything shaped like a credential.
    Invocation,
    /// A judge, evaluation or issue-detection job started from the UI: the experiment and
    /// every `trace_ids[]` the caller's to write (workspace mode).
    JudgeJob,
    /// `prompt-optimization/jobs`: the experiment the caller's; the source prompt and dataset
    /// readable (workspace mode).
    PromptOptimization,
    /// A job listing by `experiment_id` (required, the caller's; workspace mode).
    JobScope,
    /// `runs/create-promptlab-run`: the experiment the caller's, `user_id` the subject, no
    /// `tags` (MLflow 3.17.2's handler fails on any); the run is claimed for the tenant after
    /// the answer (both modes).
    PromptLabRun,
}

/// How a strategy's requests carry their fields, besides the query of a `GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A strict JSON object; the listed fields are maps whose keys are user data (tag names,
    /// metadata), exempt from the camelCase rule.
    Json { maps: &'static [&'static str] },
    /// Bytes the planner does not parse as JSON: an artifact's content, a GraphQL document
    /// (checked by `mlflow::graphql`).
    Raw,
}

/// Everything a strategy decides outside its planning function, declared once per strategy
/// (`Strategy::shape`, an exhaustive match): the compiler asks a new strategy for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// How a non-`GET` request carries its fields.
    pub body: Body,
    /// The field that may repeat in a `GET` query (MLflow reads it as a list), if any.
    pub list: Option<&'static str>,
    /// Artifact bytes: an upload with a large declared length is streamed in, and a download
    /// without a response check is piped out, unread (`forward::body_intake`,
    /// `pipeline::check_answer`).
    pub streams: bool,
    /// Counted by the rate limits; only the UI shell and capability probes are not (one page
    /// load fetches dozens of static files).
    pub rate_limited: bool,
    /// The kind of object whose tags the rows write or delete, if any: every such tag goes
    /// through `mlflow::tags::guard` (a test walks the table against MLflow's tag-carrying
    /// request messages).
    pub tags: Option<Tagged>,
    /// The gateway writes the tenant tag itself (creates): an identical tenant tag from the
    /// client is accepted, any other value is a conflict.
    pub injects_tenant: bool,
    /// The gateway sets the run's author tag (`mlflow.user`) to the subject.
    pub sets_author: bool,
    /// A successful answer is piped to the client as it arrives (a model's streamed tokens);
    /// an error answer is read and scrubbed (`mlflow::provider_errors`).
    pub pipes_answers: bool,
}

/// A JSON body with no user-data maps, no list, counted, no tags: what most strategies are.
const JSON: Shape = Shape {
    body: Body::Json { maps: &[] },
    list: None,
    streams: false,
    rate_limited: true,
    tags: None,
    injects_tenant: false,
    sets_author: false,
    pipes_answers: false,
};

/// A JSON strategy whose `GET` query may repeat `field`.
const fn listing(field: &'static str) -> Shape {
    Shape {
        list: Some(field),
        ..JSON
    }
}

/// A JSON strategy whose rows write tags of `kind`.
const fn tagging(kind: Tagged) -> Shape {
    Shape {
        tags: Some(kind),
        ..JSON
    }
}

/// The assessment's user-data maps (metadata, feedback and expectation values).
const ASSESSMENT_MAPS: &[&str] = &[
    "assessment.metadata",
    "assessment.feedback.value",
    "assessment.expectation.value",
];

impl Strategy {
    /// This strategy's declaration (`Shape`). Exhaustive on purpose: a new strategy must
    /// decide every field.
    pub const fn shape(self) -> Shape {
        use RunExtra as RX;
        match self {
            Strategy::Open => Shape {
                rate_limited: false,
                ..JSON
            },
            Strategy::Deny(_) => JSON,
            Strategy::CreateExperiment => Shape {
                body: Body::Json { maps: &["tags"] },
                injects_tenant: true,
                ..tagging(Tagged::Experiment)
            },
            Strategy::SearchExperiments | Strategy::ExperimentByName => JSON,
            Strategy::Experiment { tag_key: true } => tagging(Tagged::Experiment),
            Strategy::Experiment { tag_key: false } => JSON,
            Strategy::CreateRun => Shape {
                body: Body::Json { maps: &["tags"] },
                injects_tenant: true,
                sets_author: true,
                ..tagging(Tagged::Run)
            },
            Strategy::SearchRuns => JSON,
            Strategy::Run(_, RX::TagKey | RX::Batch) => tagging(Tagged::Run),
            // `log-inputs`: `datasets[].tags` describe the input, not the run.
            Strategy::Run(_, RX::Models) => tagging(Tagged::RunInput),
            Strategy::Run(_, RX::None | RX::MetricModel) => JSON,
            Strategy::RunList(field) => listing(field),
            Strategy::ArtifactPath => Shape {
                body: Body::Raw,
                streams: true,
                ..JSON
            },
            Strategy::ArtifactList | Strategy::ArtifactMpu => JSON,
            Strategy::CreateLoggedModel => tagging(Tagged::LoggedModel),
            Strategy::SearchLoggedModels => JSON,
            Strategy::Graphql => Shape {
                body: Body::Raw,
                ..JSON
            },
            Strategy::LoggedModel { tags: true } => tagging(Tagged::LoggedModel),
            Strategy::LoggedModel { tags: false } => JSON,
            Strategy::CreateRegisteredModel => Shape {
                injects_tenant: true,
                ..tagging(Tagged::RegisteredModel)
            },
            Strategy::SearchRegisteredModels | Strategy::SearchModelVersions => JSON,
            Strategy::Registry { tags, .. } => Shape {
                tags,
                ..listing("stages")
            },
            Strategy::CreateModelVersion => Shape {
                injects_tenant: true,
                ..tagging(Tagged::ModelVersion)
            },
            // Start (v2, v3), end (v2) and the tag routes (v2, v3) all carry trace tags.
            Strategy::StartTraceV3 => Shape {
                body: Body::Json {
                    maps: &[
                        "trace.trace_info.trace_metadata",
                        "trace.trace_info.tags",
                        "trace.trace_info.assessments.metadata",
                        "trace.trace_info.assessments.feedback.value",
                        "trace.trace_info.assessments.expectation.value",
                    ],
                },
                ..tagging(Tagged::Trace)
            },
            Strategy::StartTraceV2 => tagging(Tagged::Trace),
            Strategy::Trace { .. } => Shape {
                body: Body::Json {
                    maps: ASSESSMENT_MAPS,
                },
                ..tagging(Tagged::Trace)
            },
            Strategy::TraceArtifact => JSON,
            Strategy::TraceList(field) => listing(field),
            Strategy::SearchTracesV3 => JSON,
            Strategy::SearchTracesV2 | Strategy::ExperimentScope | Strategy::ScorerList => {
                listing("experiment_ids")
            }
            Strategy::CreateDataset => Shape {
                tags: Some(Tagged::Dataset),
                ..listing("experiment_ids")
            },
            Strategy::Object(Child::Dataset) => tagging(Tagged::Dataset),
            Strategy::Object(Child::LabelSchema | Child::ReviewQueue | Child::Issue) => JSON,
            Strategy::CreateIssue | Strategy::ReviewItemStatus => JSON,
            Strategy::OnlineConfigs => listing("scorer_ids"),
            Strategy::DatasetExperiments { .. }
            | Strategy::DeleteTraces
            | Strategy::LinkTracesToRun
            | Strategy::LinkPrompts
            | Strategy::WorkspaceList
            | Strategy::WorkspaceGet => JSON,
            Strategy::Otlp | Strategy::Workspaced(WsRule::Opaque) => Shape {
                body: Body::Raw,
                ..JSON
            },
            Strategy::Workspaced(WsRule::EndpointTag) => tagging(Tagged::GatewayEndpoint),
            // Secrets' values and auth settings are maps of provider-defined keys.
            Strategy::Workspaced(_) => Shape {
                body: Body::Json {
                    maps: &["secret_value", "auth_config"],
                },
                ..JSON
            },
            Strategy::Invocation => Shape {
                body: Body::Raw,
                pipes_answers: true,
                ..JSON
            },
            Strategy::JudgeJob => JSON,
            // The job's `tags` are judged as run tags (MLflow 3.17.2 only echoes them back).
            Strategy::PromptOptimization => tagging(Tagged::Run),
            Strategy::JobScope | Strategy::PromptLabRun => JSON,
        }
    }

    /// The kind of object whose tags this strategy's rows write or delete (`Shape::tags`).
    pub const fn tags(self) -> Option<Tagged> {
        self.shape().tags
    }
}

/// One row of the policy table.
#[derive(Debug)]
pub struct Row {
    /// Stable id, written to audit lines as `route`.
    pub id: &'static str,
    pub mount: Mount,
    pub method: &'static str,
    /// Path after the mount prefix; `{x}` is one segment, `{x...}` the (non-empty) rest.
    pub path: &'static str,
    pub action: Action,
    pub strategy: Strategy,
}

impl Row {
    /// Whether the row's answers may carry an experiment's or a registered model's tags (where
    /// the gateway's grant tags live, `mlflow::grants::hide_grant_tags`); never a row that
    /// serves a file a client stored.
    pub fn shows_object_tags(&self) -> bool {
        matches!(
            self.strategy,
            Strategy::SearchExperiments
                | Strategy::ExperimentByName
                | Strategy::Experiment { .. }
                | Strategy::CreateExperiment
                | Strategy::SearchRegisteredModels
                | Strategy::CreateRegisteredModel
                | Strategy::Registry { .. }
                | Strategy::Graphql
        ) && !self.path.ends_with("get-artifact")
    }
}

const fn row(
    id: &'static str,
    mount: Mount,
    method: &'static str,
    path: &'static str,
    action: Action,
    strategy: Strategy,
) -> Row {
    Row {
        id,
        mount,
        method,
        path,
        action,
        strategy,
    }
}

use Action::{Delete, Manage, Read, Write};
use Mount::{Ajax2, Ajax3, Api2, Api3, Artifacts, Root};
use RunExtra as RX;
use RunIds::{IdOnly, OrUuid};
use Strategy::*;
use TraceIdAt::{Field, Path};

/// The table, one row per line so each reads as a sentence (hence `rustfmt::skip`). Order does
/// not matter: paths are matched by exact segments, and a literal
/// segment wins over a `{param}` (as in Flask), so `traces/search` never reads as a trace id.
#[rustfmt::skip]
pub const ROWS: &[Row] = &[
    // ---- UI shell and capability probes: no tenant data ----
    // Protects nothing tenant-specific: the single-page UI's HTML/JS.
    row("ui.index", Root, "GET", "", Read, Open),
    row("ui.static", Root, "GET", "static-files/{file...}", Read, Open),
    // The Python client probes the server version before choosing trace/artifact protocols.
    row("server.version", Root, "GET", "version", Read, Open),
    // Capability flags only (store type, multipart support, workspaces_enabled, which the
    // client reads when MLFLOW_WORKSPACE is set); no tenant data.
    row("server.info", Api3, "GET", "server-info", Read, Open),

    // ---- Workspaces (tenant_isolation=workspace): the tenant's own, nothing else ----
    // Protects the list of tenants: MLflow lists every workspace; the tenant gets its own.
    row("workspaces.list", Api3, "GET", "workspaces", Read, WorkspaceList),
    // Protects other tenants' workspace metadata: another name answers like an absent one.
    // Create, update and delete have no row (the gateway provisions; operators administer).
    row("workspaces.get", Api3, "GET", "workspaces/{workspace_name}", Read, WorkspaceGet),

    // ---- Experiments: a tenant owns an experiment by its tenant tag ----
    // Protects the ownership record: tag injected, foreign tenant tag refused, and
    // `artifact_location` refused (it could point runs into another tenant's artifacts).
    row("experiments.create", Api2, "POST", "experiments/create", Write, CreateExperiment),
    // Protects other tenants' experiment list: tenant clause prepended, foreign rows dropped.
    row("experiments.search.get", Api2, "GET", "experiments/search", Read, SearchExperiments),
    row("experiments.search", Api2, "POST", "experiments/search", Read, SearchExperiments),
    // Protects another tenant's experiment metadata and tags.
    row("experiments.get", Api2, "GET", "experiments/get", Read, Experiment { tag_key: false }),
    // Protects experiment names: a foreign name answers exactly like an absent one (no oracle).
    row("experiments.get_by_name", Api2, "GET", "experiments/get-by-name", Read, ExperimentByName),
    // Protects another tenant's experiment from being renamed.
    row("experiments.update", Api2, "POST", "experiments/update", Manage, Experiment { tag_key: false }),
    // Protects another tenant's experiment from deletion / resurrection.
    row("experiments.delete", Api2, "POST", "experiments/delete", Delete, Experiment { tag_key: false }),
    row("experiments.restore", Api2, "POST", "experiments/restore", Delete, Experiment { tag_key: false }),
    // Protects experiment tags, and the tenant tag itself (reserved key refused).
    row("experiments.set_tag", Api2, "POST", "experiments/set-experiment-tag", Write, Experiment { tag_key: true }),
    row("experiments.delete_tag", Api2, "POST", "experiments/delete-experiment-tag", Write, Experiment { tag_key: true }),

    // ---- Runs: a run belongs to its experiment's tenant ----
    // Protects foreign experiments from receiving runs; tags the run; fixes attribution.
    row("runs.create", Api2, "POST", "runs/create", Write, CreateRun),
    // Protects another tenant's run data.
    row("runs.get", Api2, "GET", "runs/get", Read, Run(OrUuid, RX::None)),
    // Protects other tenants' runs from listing: ids scoped, clause prepended, rows re-checked.
    row("runs.search", Api2, "POST", "runs/search", Read, SearchRuns),
    // Protects another tenant's run status / name.
    row("runs.update", Api2, "POST", "runs/update", Write, Run(OrUuid, RX::None)),
    // Protects another tenant's runs from deletion / resurrection.
    row("runs.delete", Api2, "POST", "runs/delete", Delete, Run(IdOnly, RX::None)),
    row("runs.restore", Api2, "POST", "runs/restore", Delete, Run(IdOnly, RX::None)),
    // Protects run tags and the reserved tenant tag.
    row("runs.set_tag", Api2, "POST", "runs/set-tag", Write, Run(OrUuid, RX::TagKey)),
    row("runs.delete_tag", Api2, "POST", "runs/delete-tag", Write, Run(IdOnly, RX::TagKey)),
    // Protects another tenant's runs (and logged models) from metric injection.
    row("runs.log_metric", Api2, "POST", "runs/log-metric", Write, Run(OrUuid, RX::MetricModel)),
    // Protects another tenant's runs from parameter injection.
    row("runs.log_parameter", Api2, "POST", "runs/log-parameter", Write, Run(OrUuid, RX::None)),
    // Protects runs, models named in metrics, and the reserved tag in batched tags.
    row("runs.log_batch", Api2, "POST", "runs/log-batch", Write, Run(IdOnly, RX::Batch)),
    // Protects another tenant's runs from model metadata injection.
    row("runs.log_model", Api2, "POST", "runs/log-model", Write, Run(IdOnly, RX::None)),
    // Protects runs and the logged models linked as inputs / outputs.
    row("runs.log_inputs", Api2, "POST", "runs/log-inputs", Write, Run(IdOnly, RX::Models)),
    row("runs.log_outputs", Api2, "POST", "runs/outputs", Write, Run(IdOnly, RX::Models)),

    // ---- Metric history: every run id in a list is checked ----
    // Protects another tenant's metric values.
    row("metrics.get_history", Api2, "GET", "metrics/get-history", Read, Run(OrUuid, RX::None)),
    row("metrics.get_history_bulk_interval", Api2, "GET", "metrics/get-history-bulk-interval", Read, RunList("run_ids")),
    row("metrics.get_history_bulk", Ajax2, "GET", "metrics/get-history-bulk", Read, RunList("run_id")),

    // ---- Artifacts through the tracking API ----
    // Protects another tenant's artifact listing.
    row("artifacts.list", Api2, "GET", "artifacts/list", Read, Run(OrUuid, RX::None)),
    // Protects another tenant's artifact files (root route used by older clients and the UI).
    row("artifacts.get", Root, "GET", "get-artifact", Read, Run(OrUuid, RX::None)),

    // ---- Proxied artifact store: `<experiment_id>/...` must be the tenant's ----
    // Protects the artifact root listing (every experiment id) and foreign listings.
    row("mlflow_artifacts.list", Artifacts, "GET", "artifacts", Read, ArtifactList),
    // Protects another tenant's artifact bytes: download, upload, deletion.
    row("mlflow_artifacts.download", Artifacts, "GET", "artifacts/{path...}", Read, ArtifactPath),
    row("mlflow_artifacts.upload", Artifacts, "PUT", "artifacts/{path...}", Write, ArtifactPath),
    row("mlflow_artifacts.delete", Artifacts, "DELETE", "artifacts/{path...}", Delete, ArtifactPath),
    // Protects multipart uploads into another tenant's artifacts.
    row("mlflow_artifacts.mpu_create", Artifacts, "POST", "mpu/create/{path...}", Write, ArtifactMpu),
    row("mlflow_artifacts.mpu_complete", Artifacts, "POST", "mpu/complete/{path...}", Write, ArtifactMpu),
    row("mlflow_artifacts.mpu_abort", Artifacts, "POST", "mpu/abort/{path...}", Write, ArtifactMpu),

    // ---- Logged models (MLflow 3): belong to their experiment's tenant ----
    // Protects foreign experiments (and source runs) from receiving models.
    row("logged_models.create", Api2, "POST", "logged-models", Write, CreateLoggedModel),
    // Protects other tenants' models from listing (experiment ids scoped).
    row("logged_models.search", Api2, "POST", "logged-models/search", Read, SearchLoggedModels),
    // Protects another tenant's model metadata, finalisation and deletion.
    row("logged_models.get", Api2, "GET", "logged-models/{model_id}", Read, LoggedModel { tags: false }),
    row("logged_models.finalize", Api2, "PATCH", "logged-models/{model_id}", Write, LoggedModel { tags: false }),
    row("logged_models.delete", Api2, "DELETE", "logged-models/{model_id}", Delete, LoggedModel { tags: false }),
    // Protects model tags and the reserved tenant tag.
    row("logged_models.set_tags", Api2, "PATCH", "logged-models/{model_id}/tags", Write, LoggedModel { tags: true }),
    row("logged_models.delete_tag", Api2, "DELETE", "logged-models/{model_id}/tags/{tag_key}", Write, LoggedModel { tags: true }),
    // Protects model params and artifact listings.
    row("logged_models.log_params", Api2, "POST", "logged-models/{model_id}/params", Write, LoggedModel { tags: false }),
    row("logged_models.list_artifacts", Api2, "GET", "logged-models/{model_id}/artifacts/directories", Read, LoggedModel { tags: false }),
    row("logged_models.get_artifact", Ajax2, "GET", "logged-models/{model_id}/artifacts/files", Read, LoggedModel { tags: false }),

    // ---- Model registry and prompts: a tenant owns a registered model by its tenant tag ----
    // Protects the ownership record of a new model / prompt (tag injected, foreign refused).
    row("registered_models.create", Api2, "POST", "registered-models/create", Write, CreateRegisteredModel),
    // Protects other tenants' model and prompt lists: tenant clause prepended, rows re-checked.
    row("registered_models.search", Api2, "GET", "registered-models/search", Read, SearchRegisteredModels),
    // Protects another tenant's model metadata; a foreign name answers like an absent one.
    row("registered_models.get", Api2, "GET", "registered-models/get", Read, Registry { tags: None, guard: AliasGuard::None }),
    row("registered_models.get_latest_versions.get", Api2, "GET", "registered-models/get-latest-versions", Read, Registry { tags: None, guard: AliasGuard::None }),
    row("registered_models.get_latest_versions", Api2, "POST", "registered-models/get-latest-versions", Read, Registry { tags: None, guard: AliasGuard::None }),
    row("registered_models.get_by_alias", Api2, "GET", "registered-models/alias", Read, Registry { tags: None, guard: AliasGuard::None }),
    // Protects another tenant's model from renaming (names are what clients load by).
    row("registered_models.rename", Api2, "POST", "registered-models/rename", Manage, Registry { tags: None, guard: AliasGuard::None }),
    // Protects another tenant's model description.
    row("registered_models.update", Api2, "PATCH", "registered-models/update", Write, Registry { tags: None, guard: AliasGuard::None }),
    // Protects another tenant's model (and all its versions) from deletion; body only, as MLflow reads it.
    row("registered_models.delete", Api2, "DELETE", "registered-models/delete", Delete, Registry { tags: None, guard: AliasGuard::None }),
    // Protects model tags and the reserved tenant tag.
    row("registered_models.set_tag", Api2, "POST", "registered-models/set-tag", Write, Registry { tags: Some(Tagged::RegisteredModel), guard: AliasGuard::None }),
    row("registered_models.delete_tag", Api2, "DELETE", "registered-models/delete-tag", Write, Registry { tags: Some(Tagged::RegisteredModel), guard: AliasGuard::None }),
    // Protects which version another tenant's `@alias` loads; an ordinary alias is edit-class
    // (as in MLflow's own auth), a protected one (`protected_aliases`) needs MANAGE.
    row("registered_models.set_alias", Api2, "POST", "registered-models/alias", Write, Registry { tags: None, guard: AliasGuard::Alias }),
    row("registered_models.delete_alias", Api2, "DELETE", "registered-models/alias", Write, Registry { tags: None, guard: AliasGuard::Alias }),

    // ---- Model versions: belong to their registered model's tenant ----
    // Protects foreign models from new versions and every tenant's artifacts from being
    // registered as a version's source (run, logged model and source all checked).
    row("model_versions.create", Api2, "POST", "model-versions/create", Write, CreateModelVersion),
    // Protects other tenants' version lists (tenant clause on version tags, rows re-checked).
    row("model_versions.search", Api2, "GET", "model-versions/search", Read, SearchModelVersions),
    // Protects another tenant's version metadata, download URI and files.
    row("model_versions.get", Api2, "GET", "model-versions/get", Read, Registry { tags: None, guard: AliasGuard::None }),
    row("model_versions.get_download_uri", Api2, "GET", "model-versions/get-download-uri", Read, Registry { tags: None, guard: AliasGuard::None }),
    row("model_versions.get_artifact", Root, "GET", "model-versions/get-artifact", Read, Registry { tags: None, guard: AliasGuard::None }),
    // Protects another tenant's version description, stage and existence.
    row("model_versions.update", Api2, "PATCH", "model-versions/update", Write, Registry { tags: None, guard: AliasGuard::None }),
    row("model_versions.transition_stage", Api2, "POST", "model-versions/transition-stage", Manage, Registry { tags: None, guard: AliasGuard::Version }),
    row("model_versions.delete", Api2, "DELETE", "model-versions/delete", Delete, Registry { tags: None, guard: AliasGuard::Version }),
    // Protects version tags and the reserved tenant tag.
    row("model_versions.set_tag", Api2, "POST", "model-versions/set-tag", Write, Registry { tags: Some(Tagged::ModelVersion), guard: AliasGuard::Version }),
    row("model_versions.delete_tag", Api2, "DELETE", "model-versions/delete-tag", Write, Registry { tags: Some(Tagged::ModelVersion), guard: AliasGuard::Version }),

    // ---- Traces (v3) and assessments: a trace belongs to its experiment's tenant ----
    // Protects foreign experiments from receiving traces and foreign traces from re-homing.
    row("traces.start_v3", Api3, "POST", "traces", Write, StartTraceV3),
    // Protects another tenant's trace data.
    row("traces.get_v3", Api3, "GET", "traces/{trace_id}", Read, Trace { id: Path, tag_key: false }),
    row("traces.get_info_v3", Api3, "GET", "traces/get", Read, Trace { id: Field("trace_id"), tag_key: false }),
    // Protects other tenants' traces from id-list reads (every id checked).
    row("traces.batch_get", Api3, "GET", "traces/batchGet", Read, TraceList("trace_ids")),
    row("traces.batch_get_infos", Api3, "POST", "traces/batchGetInfos", Read, TraceList("trace_ids")),
    // Protects other tenants' trace lists (locations scoped, rows re-checked).
    row("traces.search_v3", Api3, "POST", "traces/search", Read, SearchTracesV3),
    // Protects other tenants' trace statistics.
    row("traces.filter_correlation", Api3, "POST", "traces/calculate-filter-correlation", Read, ExperimentScope),
    row("traces.metrics", Api3, "POST", "traces/metrics", Read, ExperimentScope),
    // Protects another tenant's traces from deletion (experiment and every id checked).
    row("traces.delete_v3", Api3, "POST", "traces/delete-traces", Delete, DeleteTraces),
    // Protects trace tags and the reserved tenant tag.
    row("traces.set_tag_v3", Api3, "PATCH", "traces/{trace_id}/tags", Write, Trace { id: Path, tag_key: true }),
    row("traces.delete_tag_v3", Api3, "DELETE", "traces/{trace_id}/tags", Write, Trace { id: Path, tag_key: true }),
    // Protects another tenant's traces from feedback / expectation injection and reads.
    row("assessments.create", Api3, "POST", "traces/{trace_id}/assessments", Write, Trace { id: Path, tag_key: false }),
    row("assessments.get", Api3, "GET", "traces/{trace_id}/assessments/{assessment_id}", Read, Trace { id: Path, tag_key: false }),
    row("assessments.update", Api3, "PATCH", "traces/{trace_id}/assessments/{assessment_id}", Write, Trace { id: Path, tag_key: false }),
    row("assessments.delete", Api3, "DELETE", "traces/{trace_id}/assessments/{assessment_id}", Delete, Trace { id: Path, tag_key: false }),
    // Protects another tenant's span data and attachments (UI trace view).
    row("traces.get_artifact", Ajax2, "GET", "get-trace-artifact", Read, TraceArtifact),
    row("traces.get_artifact_v3", Ajax3, "GET", "get-trace-artifact", Read, TraceArtifact),

    // ---- Traces (v2 API, still served) ----
    // Protects foreign experiments from receiving traces; reserved tag refused.
    row("traces.start_v2", Api2, "POST", "traces", Write, StartTraceV2),
    // Protects another tenant's trace from being ended / overwritten.
    row("traces.end_v2", Api2, "PATCH", "traces/{request_id}", Write, Trace { id: Path, tag_key: false }),
    row("traces.get_info_v2", Api2, "GET", "traces/{request_id}/info", Read, Trace { id: Path, tag_key: false }),
    row("traces.set_tag_v2", Api2, "PATCH", "traces/{request_id}/tags", Write, Trace { id: Path, tag_key: true }),
    row("traces.delete_tag_v2", Api2, "DELETE", "traces/{request_id}/tags", Write, Trace { id: Path, tag_key: true }),
    // Protects other tenants' trace lists (experiment ids scoped, rows re-checked).
    row("traces.search_v2", Api2, "GET", "traces", Read, SearchTracesV2),
    row("traces.delete_v2", Api2, "POST", "traces/delete-traces", Delete, DeleteTraces),
    // Protects another tenant's runs and traces from being linked.
    row("traces.link_to_run", Api2, "POST", "traces/link-to-run", Write, LinkTracesToRun),
    // Protects another tenant's traces and prompts from being linked.
    row("traces.link_prompts", Api2, "POST", "traces/link-prompts", Write, LinkPrompts),

    // ---- Evaluation datasets: a dataset is a tenant's when all its experiments are ----
    // Protects foreign experiments from being linked to a new dataset (every id owned).
    row("datasets.create", Api3, "POST", "datasets/create", Write, CreateDataset),
    // Protects other tenants' datasets from listing: an unscoped search returns every dataset
    // (§2.4 #4), so a non-empty scope of owned experiments is required.
    row("datasets.search.get", Api3, "GET", "datasets/search", Read, ExperimentScope),
    row("datasets.search", Api3, "POST", "datasets/search", Read, ExperimentScope),
    row("experiments.search_datasets", Ajax2, "POST", "experiments/search-datasets", Read, ExperimentScope),
    // Protects another tenant's dataset metadata, experiment links and existence.
    row("datasets.get", Api3, "GET", "datasets/{dataset_id}", Read, Object(Child::Dataset)),
    row("datasets.experiment_ids", Api3, "GET", "datasets/{dataset_id}/experiment-ids", Read, Object(Child::Dataset)),
    row("datasets.delete", Api3, "DELETE", "datasets/{dataset_id}", Delete, Object(Child::Dataset)),
    // Protects another tenant's evaluation records (reads, upserts, deletions).
    row("datasets.records.get", Api3, "GET", "datasets/{dataset_id}/records", Read, Object(Child::Dataset)),
    row("datasets.records.upsert", Api3, "POST", "datasets/{dataset_id}/records", Write, Object(Child::Dataset)),
    row("datasets.records.delete", Api3, "DELETE", "datasets/{dataset_id}/records", Delete, Object(Child::Dataset)),
    // Protects another tenant's dataset tags.
    row("datasets.set_tags", Api3, "PATCH", "datasets/{dataset_id}/tags", Write, Object(Child::Dataset)),
    row("datasets.delete_tag", Api3, "DELETE", "datasets/{dataset_id}/tags/{key}", Write, Object(Child::Dataset)),
    // Protects datasets and experiments from cross-tenant links (both sides owned).
    row("datasets.add_experiments", Api3, "POST", "datasets/{dataset_id}/add-experiments", Write, DatasetExperiments { remove: false }),
    row("datasets.remove_experiments", Api3, "POST", "datasets/{dataset_id}/remove-experiments", Write, DatasetExperiments { remove: true }),

    // ---- Scorers (LLM judges), stored per experiment; never run through the gateway ----
    // Protects foreign experiments from receiving scorers. MLflow itself refuses code-carrying
    // (decorator) scorers unless its operator opts in; invocation and online scoring are refused.
    row("scorers.register", Api3, "POST", "scorers/register", Write, Experiment { tag_key: false }),
    // Protects other tenants' scorer definitions: an unscoped list returns every experiment's.
    row("scorers.list", Api3, "GET", "scorers/list", Read, ScorerList),
    row("scorers.get", Api3, "GET", "scorers/get", Read, Experiment { tag_key: false }),
    row("scorers.versions", Api3, "GET", "scorers/versions", Read, Experiment { tag_key: false }),
    // Protects another tenant's scorers from deletion.
    row("scorers.delete", Api3, "DELETE", "scorers/delete", Delete, Experiment { tag_key: false }),
    // Protects other tenants' online-scoring settings (the client reads them when listing
    // scorers): configs outside the caller's experiments are dropped from the answer.
    row("scorers.online_configs", Api3, "GET", "scorers/online-configs", Read, OnlineConfigs),

    // ---- Label schemas, review queues and issues: belong to their experiment's tenant ----
    // Protects foreign experiments from receiving label schemas, and other tenants' schemas.
    row("label_schemas.create", Api3, "POST", "label-schemas/create", Write, Experiment { tag_key: false }),
    row("label_schemas.get", Api3, "GET", "label-schemas/get", Read, Object(Child::LabelSchema)),
    row("label_schemas.get_by_name", Api3, "GET", "label-schemas/get-by-name", Read, Experiment { tag_key: false }),
    row("label_schemas.list", Api3, "GET", "label-schemas/list", Read, Experiment { tag_key: false }),
    row("label_schemas.update", Api3, "PATCH", "label-schemas/update", Write, Object(Child::LabelSchema)),
    row("label_schemas.delete", Api3, "DELETE", "label-schemas/delete", Delete, Object(Child::LabelSchema)),
    // Protects foreign experiments from receiving review queues (MLflow checks that the queue's
    // label schemas and traces are in the queue's experiment), and other tenants' queues.
    row("review_queues.create", Api3, "POST", "review-queues/create", Write, Experiment { tag_key: false }),
    row("review_queues.get_or_create_user", Api3, "POST", "review-queues/get-or-create-user", Write, Experiment { tag_key: false }),
    row("review_queues.get", Api3, "GET", "review-queues/get", Read, Object(Child::ReviewQueue)),
    row("review_queues.get_by_name", Api3, "GET", "review-queues/get-by-name", Read, Experiment { tag_key: false }),
    row("review_queues.list", Api3, "GET", "review-queues/list", Read, Experiment { tag_key: false }),
    row("review_queues.update", Api3, "POST", "review-queues/update", Write, Object(Child::ReviewQueue)),
    row("review_queues.delete", Api3, "POST", "review-queues/delete", Delete, Object(Child::ReviewQueue)),
    // Protects another tenant's review items (MLflow checks added traces are in the queue's
    // experiment); the reviewer recorded on a status change is the authenticated subject.
    row("review_queues.items.list", Api3, "GET", "review-queues/items/list", Read, Object(Child::ReviewQueue)),
    row("review_queues.items.add", Api3, "POST", "review-queues/items/add", Write, Object(Child::ReviewQueue)),
    row("review_queues.items.remove", Api3, "POST", "review-queues/items/remove", Write, Object(Child::ReviewQueue)),
    row("review_queues.items.set_status", Api3, "POST", "review-queues/items/set-status", Write, ReviewItemStatus),
    // Protects foreign experiments (and source runs) from receiving issues; fixes attribution.
    row("issues.create", Api3, "POST", "issues", Write, CreateIssue),
    // Protects another tenant's issues; an unscoped search returns every issue, so the
    // experiment is required.
    row("issues.get", Api3, "GET", "issues/{issue_id}", Read, Object(Child::Issue)),
    row("issues.update", Api3, "PATCH", "issues/{issue_id}", Write, Object(Child::Issue)),
    row("issues.search", Api3, "POST", "issues/search", Read, Experiment { tag_key: false }),

    // ---- OTLP span ingestion (both modes): spans are decoded as MLflow will store them ----
    // Protects foreign experiments and runs from receiving traces, and another tenant's traces
    // from appended spans: the header experiment and run must be the caller's, and every
    // span's trace absent (created in the header experiment) or the caller's to write.
    row("otlp.traces", Root, "POST", "v1/traces", Write, Otlp),

    // ---- AI gateway configuration (workspace mode, members only): MLflow keeps secrets,
    // model definitions, endpoints, guardrails and budgets per workspace; configuring them
    // is admin-class, and secrets are seen by admins only (masked by MLflow) ----
    // Protects the tenant's provider keys: create, rotate, delete and read metadata.
    row("ai_gateway.secrets.create", Api3, "POST", "gateway/secrets/create", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.secrets.get", Api3, "GET", "gateway/secrets/get", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.secrets.list", Api3, "GET", "gateway/secrets/list", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.secrets.update", Api3, "POST", "gateway/secrets/update", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.secrets.delete", Api3, "DELETE", "gateway/secrets/delete", Delete, Workspaced(WsRule::Plain)),
    // Protects nothing tenant-specific: whether secrets can be stored, the provider catalogue.
    row("ai_gateway.secrets.config", Ajax3, "GET", "gateway/secrets/config", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.supported_providers", Ajax3, "GET", "gateway/supported-providers", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.supported_models", Ajax3, "GET", "gateway/supported-models", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.provider_config", Ajax3, "GET", "gateway/provider-config", Read, Workspaced(WsRule::Plain)),
    // Protects the tenant's model definitions (which secret and model an endpoint uses).
    row("ai_gateway.model_definitions.create", Api3, "POST", "gateway/model-definitions/create", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.model_definitions.get", Api3, "GET", "gateway/model-definitions/get", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.model_definitions.list", Api3, "GET", "gateway/model-definitions/list", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.model_definitions.update", Api3, "POST", "gateway/model-definitions/update", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.model_definitions.delete", Api3, "DELETE", "gateway/model-definitions/delete", Delete, Workspaced(WsRule::Plain)),
    // Protects the tenant's endpoints, and foreign experiments from receiving their usage
    // traces (MLflow does not check `experiment_id`; one it creates is tagged as the tenant's).
    row("ai_gateway.endpoints.create", Api3, "POST", "gateway/endpoints/create", Manage, Workspaced(WsRule::GatewayEndpoint)),
    row("ai_gateway.endpoints.get", Api3, "GET", "gateway/endpoints/get", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.list", Api3, "GET", "gateway/endpoints/list", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.update", Api3, "POST", "gateway/endpoints/update", Manage, Workspaced(WsRule::GatewayEndpoint)),
    row("ai_gateway.endpoints.delete", Api3, "DELETE", "gateway/endpoints/delete", Delete, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.attach_model", Api3, "POST", "gateway/endpoints/models/attach", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.detach_model", Api3, "POST", "gateway/endpoints/models/detach", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.bindings.create", Api3, "POST", "gateway/endpoints/bindings/create", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.bindings.delete", Api3, "DELETE", "gateway/endpoints/bindings/delete", Delete, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.bindings.list", Api3, "GET", "gateway/endpoints/bindings/list", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.endpoints.set_tag", Api3, "POST", "gateway/endpoints/set-tag", Manage, Workspaced(WsRule::EndpointTag)),
    row("ai_gateway.endpoints.delete_tag", Api3, "DELETE", "gateway/endpoints/delete-tag", Manage, Workspaced(WsRule::EndpointTag)),
    // Protects the tenant's guardrails (scorers run on an endpoint's traffic).
    row("ai_gateway.guardrails.create", Api3, "POST", "gateway/guardrails/create", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.get", Api3, "GET", "gateway/guardrails/get", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.list", Api3, "GET", "gateway/guardrails/list", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.delete", Api3, "DELETE", "gateway/guardrails/delete", Delete, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.add_to_endpoint", Api3, "POST", "gateway/guardrails/add-to-endpoint", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.remove_from_endpoint", Api3, "DELETE", "gateway/guardrails/remove-from-endpoint", Delete, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.list_for_endpoint", Api3, "GET", "gateway/guardrails/list-for-endpoint", Read, Workspaced(WsRule::Plain)),
    row("ai_gateway.guardrails.update_config", Api3, "PATCH", "gateway/guardrails/update-config", Manage, Workspaced(WsRule::Plain)),
    // Protects every tenant from another's spending limits: a GLOBAL budget (applied to, and
    // listed in, every workspace) is refused; budgets and their spend are admin-only.
    row("ai_gateway.budgets.create", Api3, "POST", "gateway/budgets/create", Manage, Workspaced(WsRule::Budget)),
    row("ai_gateway.budgets.update", Api3, "POST", "gateway/budgets/update", Manage, Workspaced(WsRule::Budget)),
    row("ai_gateway.budgets.get", Api3, "GET", "gateway/budgets/get", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.budgets.list", Api3, "GET", "gateway/budgets/list", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.budgets.windows", Api3, "GET", "gateway/budgets/windows", Manage, Workspaced(WsRule::Plain)),
    row("ai_gateway.budgets.delete", Api3, "DELETE", "gateway/budgets/delete", Delete, Workspaced(WsRule::Plain)),

    // ---- AI gateway invocations (workspace mode, members only): MLflow resolves the
    // endpoint inside the pinned workspace, with that workspace's secret; editor-class ----
    // Protects another tenant's endpoints and keys from use, and the tenant's key from being
    // echoed back in a provider's error (scrubbed).
    row("ai_gateway.invoke", Root, "POST", "gateway/{endpoint_name}/mlflow/invocations", Write, Invocation),
    row("ai_gateway.chat_completions", Root, "POST", "gateway/mlflow/v1/chat/completions", Write, Invocation),
    row("ai_gateway.openai.chat_completions", Root, "POST", "gateway/openai/v1/chat/completions", Write, Invocation),
    row("ai_gateway.openai.embeddings", Root, "POST", "gateway/openai/v1/embeddings", Write, Invocation),
    row("ai_gateway.openai.responses", Root, "POST", "gateway/openai/v1/responses", Write, Invocation),
    row("ai_gateway.openai.responses_compact", Root, "POST", "gateway/openai/v1/responses/compact", Write, Invocation),
    row("ai_gateway.anthropic.messages", Root, "POST", "gateway/anthropic/v1/messages", Write, Invocation),
    row("ai_gateway.gemini.generate", Root, "POST", "gateway/gemini/v1beta/models/{model_action}", Write, Invocation),
    row("ai_gateway.typesafe", Root, "POST", "gateway/typesafe/v1/systemone", Write, Invocation),
    // The raw proxy: the caller picks the path on the endpoint's provider (MLflow keeps its
    // connect-time address check on this route).
    row("ai_gateway.proxy", Root, "POST", "gateway/proxy/{endpoint_name}/{path...}", Write, Invocation),
    // Protects other tenants' endpoint names (the list is the workspace's).
    row("ai_gateway.models", Root, "GET", "gateway/mlflow/v1/models", Read, Workspaced(WsRule::Plain)),

    // ---- Server-side jobs: judges, evaluation, issue detection (workspace mode; the UI's
    // buttons), editor-class; jobs are kept per workspace ----
    // Protects foreign experiments and traces from judges' assessments and evaluation runs.
    row("jobs.invoke_scorer", Ajax3, "POST", "scorer/invoke", Write, JudgeJob),
    row("jobs.invoke_evaluate", Ajax3, "POST", "genai/evaluate/invoke", Write, JudgeJob),
    row("jobs.invoke_issue_detection", Ajax3, "POST", "issues/invoke", Write, JudgeJob),
    // Protects other tenants' jobs (their parameters name experiments, traces, scorers).
    row("jobs.get", Root, "GET", "ajax-api/3.0/jobs/{job_id}", Read, Workspaced(WsRule::Plain)),
    row("jobs.cancel", Root, "PATCH", "ajax-api/3.0/jobs/cancel/{job_id}", Write, Workspaced(WsRule::Plain)),
    row("jobs.get_status", Ajax3, "GET", "jobs/{job_id}", Read, Workspaced(WsRule::Plain)),
    row("jobs.cancel_status", Ajax3, "PATCH", "jobs/cancel/{job_id}", Write, Workspaced(WsRule::Plain)),
    // Protects foreign experiments from optimisation runs, and foreign prompts and datasets
    // from being read by one.
    row("prompt_optimization.create", Api3, "POST", "prompt-optimization/jobs", Write, PromptOptimization),
    row("prompt_optimization.get", Api3, "GET", "prompt-optimization/jobs/{job_id}", Read, Workspaced(WsRule::Plain)),
    row("prompt_optimization.cancel", Api3, "POST", "prompt-optimization/jobs/{job_id}/cancel", Write, Workspaced(WsRule::Plain)),
    row("prompt_optimization.delete", Api3, "DELETE", "prompt-optimization/jobs/{job_id}", Delete, Workspaced(WsRule::Plain)),
    row("prompt_optimization.search.get", Api3, "GET", "prompt-optimization/jobs/search", Read, JobScope),
    row("prompt_optimization.search", Api3, "POST", "prompt-optimization/jobs/search", Read, JobScope),
    // Protects foreign experiments from prompt-lab runs (MLflow calls no model here: the run
    // and its params); attribution fixed, the run tagged as the tenant's after the answer.
    row("runs.create_promptlab", Ajax2, "POST", "runs/create-promptlab-run", Write, PromptLabRun),

    // ---- Webhooks (workspace mode, members only), admin-class: MLflow keeps them per
    // workspace; the target must pass the operator's allow-list ----
    // Protects every host the MLflow server reaches from server-side request forgery.
    row("webhooks.create", Api2, "POST", "webhooks", Manage, Workspaced(WsRule::Webhook)),
    row("webhooks.update", Api2, "PATCH", "webhooks/{webhook_id}", Manage, Workspaced(WsRule::Webhook)),
    // Protects the tenant's webhook targets and their test answers.
    row("webhooks.list", Api2, "GET", "webhooks", Manage, Workspaced(WsRule::Plain)),
    row("webhooks.get", Api2, "GET", "webhooks/{webhook_id}", Manage, Workspaced(WsRule::Plain)),
    row("webhooks.delete", Api2, "DELETE", "webhooks/{webhook_id}", Delete, Workspaced(WsRule::Plain)),
    row("webhooks.test", Api2, "POST", "webhooks/{webhook_id}/test", Manage, Workspaced(WsRule::Plain)),

    // ---- MCP server registry (workspace mode, members only): kept per workspace, metadata
    // only (MLflow calls none of the registered servers); admin to configure ----
    // Protects the tenant's registry entries (servers, versions, aliases, endpoints, tags).
    row("mcp_servers.search", Api3, "GET", "mcp-servers", Read, Workspaced(WsRule::Opaque)),
    row("mcp_servers.create", Api3, "POST", "mcp-servers", Manage, Workspaced(WsRule::Opaque)),
    row("mcp_servers.get", Api3, "GET", "mcp-servers/{name...}", Read, Workspaced(WsRule::Opaque)),
    row("mcp_servers.add", Api3, "POST", "mcp-servers/{name...}", Manage, Workspaced(WsRule::Opaque)),
    row("mcp_servers.update", Api3, "PATCH", "mcp-servers/{name...}", Manage, Workspaced(WsRule::Opaque)),
    row("mcp_servers.delete", Api3, "DELETE", "mcp-servers/{name...}", Delete, Workspaced(WsRule::Opaque)),

    // ---- Explicitly refused (clearer messages than the default deny) ----
    // MLflow reads a GET /graphql body as the query; the UI only POSTs.
    row("graphql.get", Root, "GET", "graphql", Read, Deny("GraphQL queries must be sent with POST")),
    // The UI's run page. Only its four read operations, with ids from `variables.data`
    // checked like the REST routes (GetRun → run, SearchRuns → experiment ids + tenant
    // clause, experiment, metric history run ids); any other document is refused.
    row("graphql.post", Root, "POST", "graphql", Read, Graphql),
    // Server-wide and code-running features: refused for every tenant. The prompt lab's
    // proxy calls the server-wide MLFLOW_DEPLOYMENTS_TARGET, not a tenant's endpoint.
    row("gateway_proxy.get", Ajax2, "GET", "gateway-proxy", Write, Deny("the AI gateway proxy is server-wide and is refused")),
    row("gateway_proxy.post", Ajax2, "POST", "gateway-proxy", Write, Deny("the AI gateway proxy is server-wide and is refused")),
    row("upload_artifact.ajax", Ajax2, "POST", "upload-artifact", Write, Deny("use the proxied artifact API (mlflow-artifacts) instead")),
    // Online scoring makes the server run registered scorers on every new trace (LLM calls
    // with the server's secrets): configuring it is refused like scorer invocation.
    row("scorers.online_config", Api3, "PUT", "scorers/online-config", Write, Deny("online scoring runs scorers on the server and is refused")),
];

/// Route families refused as a whole: every MLflow route of the pinned version that has no row
/// must fall under one of these prefixes (checked against the installed MLflow's route list by
/// `tests/e2e/test_route_inventory.py`), so an MLflow upgrade cannot open a route silently.
/// Prefixes are matched on the path after the API mount (`/api/2.0/mlflow/`, …) or, for
/// root-level routes, after the leading `/`.
pub const DENIED_FAMILIES: &[(&str, &str)] = &[
    // Server-wide or code-running features: no tenant may reach them.
    ("gateway-proxy", "the AI gateway proxy is server-wide"),
    (
        "ajax-api/3.0/jobs",
        "generic job submission and search skip the checks of the job starters (scorer/invoke, genai/evaluate/invoke, issues/invoke)",
    ),
    (
        "assistant",
        "the MLflow assistant runs commands on the server",
    ),
    ("demo/", "demo data generation is server-wide"),
    (
        "workspaces",
        "workspaces are created by the gateway and administered by operators",
    ),
    ("ui-telemetry", "UI telemetry is not forwarded"),
    ("unified-traces", "a Databricks-only route"),
    (
        "get-trace-artifact",
        "trace artifacts are served only under /ajax-api (the UI's path)",
    ),
    ("get-online-trace-details", "a Databricks-only route"),
    ("api/2.0mlflow/", "a broken MLflow route (missing slash)"),
    (
        "ajax-api/2.0mlflow/",
        "a broken MLflow route (missing slash)",
    ),
    ("health", "the gateway answers /healthz and /readyz itself"),
    ("build/", "legacy UI asset route"),
    (
        "artifacts/presigned-",
        "presigned artifact URLs bypass the proxy",
    ),
    ("presigned/", "presigned artifact URLs bypass the proxy"),
];
