//! THE policy table. Every MLflow route the gateway forwards is one row here; every other
//! request is refused (default deny). A new MLflow endpoint stays closed until someone adds its
//! row here, its tests, and its line in `docs/rbac.md`.
//!
//! Each row: where it is mounted, method, route path (after the mount prefix), action class,
//! tenant strategy, and a comment naming what the row protects.

use super::Action;

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
    /// The run (`run_id`, else `run_uuid`) must be the tenant's.
    Run(RunExtra),
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
use Mount::{Ajax2, Api2, Api3, Artifacts, Root};
use RunExtra as RX;
use Strategy::*;

/// The table. Order does not matter: paths are matched by exact segments.
pub const ROWS: &[Row] = &[
    // ---- UI shell and capability probes: no tenant data ----
    // Protects nothing tenant-specific: the single-page UI's HTML/JS.
    row("ui.index", Root, "GET", "", Read, Open),
    row("ui.static", Root, "GET", "static-files/{file...}", Read, Open),
    // The Python client probes the server version before choosing trace/artifact protocols.
    row("server.version", Root, "GET", "version", Read, Open),
    // Capability flags only (store type, multipart support); no tenant data.
    row("server.info", Api3, "GET", "server-info", Read, Open),

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
    row("runs.get", Api2, "GET", "runs/get", Read, Run(RX::None)),
    // Protects other tenants' runs from listing: ids scoped, clause prepended, rows re-checked.
    row("runs.search", Api2, "POST", "runs/search", Read, SearchRuns),
    // Protects another tenant's run status / name.
    row("runs.update", Api2, "POST", "runs/update", Write, Run(RX::None)),
    // Protects another tenant's runs from deletion / resurrection.
    row("runs.delete", Api2, "POST", "runs/delete", Delete, Run(RX::None)),
    row("runs.restore", Api2, "POST", "runs/restore", Delete, Run(RX::None)),
    // Protects run tags and the reserved tenant tag.
    row("runs.set_tag", Api2, "POST", "runs/set-tag", Write, Run(RX::TagKey)),
    row("runs.delete_tag", Api2, "POST", "runs/delete-tag", Write, Run(RX::TagKey)),
    // Protects another tenant's runs (and logged models) from metric injection.
    row("runs.log_metric", Api2, "POST", "runs/log-metric", Write, Run(RX::MetricModel)),
    // Protects another tenant's runs from parameter injection.
    row("runs.log_parameter", Api2, "POST", "runs/log-parameter", Write, Run(RX::None)),
    // Protects runs, models named in metrics, and the reserved tag in batched tags.
    row("runs.log_batch", Api2, "POST", "runs/log-batch", Write, Run(RX::Batch)),
    // Protects another tenant's runs from model metadata injection.
    row("runs.log_model", Api2, "POST", "runs/log-model", Write, Run(RX::None)),
    // Protects runs and the logged models linked as inputs / outputs.
    row("runs.log_inputs", Api2, "POST", "runs/log-inputs", Write, Run(RX::Models)),
    row("runs.log_outputs", Api2, "POST", "runs/outputs", Write, Run(RX::Models)),

    // ---- Metric history: every run id in a list is checked ----
    // Protects another tenant's metric values.
    row("metrics.get_history", Api2, "GET", "metrics/get-history", Read, Run(RX::None)),
    row("metrics.get_history_bulk_interval", Api2, "GET", "metrics/get-history-bulk-interval", Read, RunList("run_ids")),
    row("metrics.get_history_bulk", Ajax2, "GET", "metrics/get-history-bulk", Read, RunList("run_id")),

    // ---- Artifacts through the tracking API ----
    // Protects another tenant's artifact listing.
    row("artifacts.list", Api2, "GET", "artifacts/list", Read, Run(RX::None)),
    // Protects another tenant's artifact files (root route used by older clients and the UI).
    row("artifacts.get", Root, "GET", "get-artifact", Read, Run(RX::None)),

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

    // ---- Explicitly refused (clearer messages than the default deny) ----
    // MLflow reads a GET /graphql body as the query; the UI only POSTs.
    row("graphql.get", Root, "GET", "graphql", Read, Deny("GraphQL queries must be sent with POST")),
    // The UI's run page. Only its four read operations, with ids from `variables.data`
    // checked like the REST routes (GetRun → run, SearchRuns → experiment ids + tenant
    // clause, experiment, metric history run ids); any other document is refused.
    row("graphql.post", Root, "POST", "graphql", Read, Graphql),
    // OTLP appends spans to any trace id (span injection); not decoded by the gateway yet.
    row("otlp.traces", Root, "POST", "v1/traces", Write, Deny("OTLP trace ingestion is not available through the gateway; traces cannot yet be checked per tenant")),
    // Server-wide and code-running features: refused for every tenant.
    row("gateway_proxy.get", Ajax2, "GET", "gateway-proxy", Write, Deny("the AI gateway proxy is server-wide and is refused")),
    row("gateway_proxy.post", Ajax2, "POST", "gateway-proxy", Write, Deny("the AI gateway proxy is server-wide and is refused")),
    row("upload_artifact.ajax", Ajax2, "POST", "upload-artifact", Write, Deny("use the proxied artifact API (mlflow-artifacts) instead")),
];

/// Route families refused as a whole: every MLflow route of the pinned version that has no row
/// must fall under one of these prefixes (checked against the installed MLflow's route list by
/// `tests/e2e/test_route_inventory.py`), so an MLflow upgrade cannot open a route silently.
/// Prefixes are matched on the path after the API mount (`/api/2.0/mlflow/`, …) or, for
/// root-level routes, after the leading `/`.
pub const DENIED_FAMILIES: &[(&str, &str)] = &[
    // Server-wide or code-running features: no tenant may reach them.
    (
        "webhooks",
        "webhooks are server-wide (they receive every tenant's events)",
    ),
    (
        "gateway/",
        "the AI gateway (configuration and invocation) is server-wide",
    ),
    ("gateway-proxy", "the AI gateway proxy is server-wide"),
    ("jobs", "server-side jobs are refused"),
    ("ajax-api/3.0/jobs", "server-side jobs are refused"),
    (
        "assistant",
        "the MLflow assistant runs commands on the server",
    ),
    ("mcp-servers", "the MCP server registry is server-wide"),
    ("demo/", "demo data generation is server-wide"),
    ("workspaces", "the workspaces API is server-wide"),
    (
        "prompt-optimization",
        "prompt optimisation runs server-side jobs",
    ),
    ("scorer/invoke", "server-side scorer invocation runs code"),
    ("issues/invoke", "server-side issue detection runs code"),
    ("genai/", "server-side evaluation runs code"),
    (
        "runs/create-promptlab-run",
        "prompt-lab runs call the AI gateway",
    ),
    ("ui-telemetry", "UI telemetry is not forwarded"),
    ("unified-traces", "a Databricks-only route"),
    ("get-online-trace-details", "a Databricks-only route"),
    ("api/2.0mlflow/", "a broken MLflow route (missing slash)"),
    (
        "ajax-api/2.0mlflow/",
        "a broken MLflow route (missing slash)",
    ),
    ("health", "the gateway answers /healthz and /readyz itself"),
    ("build/", "legacy UI asset route"),
    // Tenant-scoped families whose rows have not landed yet: closed until they do.
    (
        "registered-models",
        "the model registry is not yet scoped per tenant",
    ),
    (
        "model-versions",
        "the model registry is not yet scoped per tenant",
    ),
    ("traces", "traces are not yet scoped per tenant"),
    ("get-trace-artifact", "traces are not yet scoped per tenant"),
    (
        "datasets",
        "evaluation datasets are not yet scoped per tenant",
    ),
    (
        "experiments/search-datasets",
        "evaluation datasets are not yet scoped per tenant",
    ),
    ("scorers", "scorers are not yet scoped per tenant"),
    (
        "label-schemas",
        "label schemas are not yet scoped per tenant",
    ),
    (
        "review-queues",
        "review queues are not yet scoped per tenant",
    ),
    ("issues", "issues are not yet scoped per tenant"),
    (
        "artifacts/presigned-",
        "presigned artifact URLs bypass the proxy",
    ),
    ("presigned/", "presigned artifact URLs bypass the proxy"),
];
