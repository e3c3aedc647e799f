"""Cross-tenant leaks found by a review of the gateway, each as an attacker would try it against
the real MLflow, and the classes behind them (docs/threat-model.md, "Classes of parser and
trust bugs"):

1. two names for one id: the id the gateway judges must be the id MLflow's handler acts on
   (the table-driven parity test sends every row's id in each place MLflow reads it);
2. MLflow acts on a partly parsed body: judged fields are forwarded first;
3. location tags: a trace's data location is written only by MLflow and checked before
   `get-trace-artifact`;
4. protected tags: one guard for the tenant, attribution and location tags;
5. role classes by effect: unlinking a dataset's last experiment is refused.

Every test here fails against the gateway before these fixes."""

import itertools
import json
import uuid

import pytest
import requests

import genai_rows
from conftest import POLICY_TABLE, WORKSPACES, Caller, pinned, unique
from test_policy_rows import ASSESSMENT, R2, R3, Objs

AJAX2 = "/ajax-api/2.0/mlflow"
AJAX3 = "/ajax-api/3.0/mlflow"


def objs(c):
    """A tenant's objects, its dataset linked to a second experiment (so that one link can be
    removed)."""
    o = Objs(c).genai()
    r = c.post(f"{R2}/experiments/create", {"name": unique("exp2")})
    assert r.status_code == 200, r.text
    o.exp2 = r.json()["experiment_id"]
    assert c.post(f"{R3}/datasets/{o.ds}/add-experiments", {"experiment_ids": [o.exp2]}).status_code == 200
    return o


@pytest.fixture(scope="module")
def oa(a):
    return objs(a)


@pytest.fixture(scope="module")
def ob(b):
    return objs(b)


def call(gw, tenant, method, path, query=None, body=None):
    """One request as `tenant`; returns (response, audit line)."""
    rid = "leak-" + uuid.uuid4().hex
    c = Caller(gw, tenant=tenant, subject=tenant + "-user", extra={"X-Request-ID": rid})
    r = c.request(method, path, params=query, json=body if method != "GET" else None)
    return r, gw.audit_for(rid)[0]


def spans_of(o):
    """The spans MLflow stores for `o.trace` (uploaded as the trace's data artifact)."""
    return f"secret-span-{o.a.tenant}"


def upload_spans(o):
    """Stores trace data for o.trace the way the MLflow client does (proxied artifact under the
    trace's own location), with a marker naming the tenant."""
    data = {"spans": [{"name": spans_of(o), "trace_id": "x", "span_id": "y", "attributes": {}}]}
    path = f"{o.exp}/traces/{o.trace}/artifacts/traces.json"
    r = o.a.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", data=json.dumps(data).encode())
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 1. two names for one id

@pytest.mark.parametrize("mount", [AJAX2, AJAX3])
def test_get_trace_artifact_judges_the_id_mlflow_reads(gw, oa, ob, mount):
    upload_spans(oa)
    upload_spans(ob)
    # The owner reads its own spans by the name MLflow reads (`request_id`).
    r, line = call(gw, "team-a", "GET", f"{mount}/get-trace-artifact", {"request_id": oa.trace})
    assert r.status_code == 200 and spans_of(oa) in r.text, r.text
    # team-b names its own trace as `trace_id` and team-a's as `request_id`: refused, nothing
    # of team-a's in the answer (before the fix: 200 with team-a's spans).
    for query in ({"trace_id": ob.trace, "request_id": oa.trace},
                  {"request_id": oa.trace, "trace_id": ob.trace},
                  {"trace_id": ob.trace, "request_id": ob.trace},
                  {"request_id": oa.trace}):
        r, line = call(gw, "team-b", "GET", f"{mount}/get-trace-artifact", query)
        assert r.status_code in (400, 403), (query, r.text)
        assert spans_of(oa) not in r.text
        assert line["decision"] == "deny" and line["upstream_status"] is None


# Where each row's MLflow handler reads its resource id (mlflow/server/handlers.py of the
# pinned MLflow): the accepted places, and the spellings MLflow does not read, which are
# refused. A place is ("path",) for the URL segment, or (kind, field[, format]) with kind
# q / b (query / JSON body scalar), ql / bl (a list of one id), fn (a function of the id
# giving the whole body, for ids nested in the body).
PATH = ("path",)
Q = lambda n, f=None: ("q", n, f)  # noqa: E731
B = lambda n, f=None: ("b", n, f)  # noqa: E731
QL = lambda n: ("ql", n, None)  # noqa: E731
BL = lambda n: ("bl", n, None)  # noqa: E731
FN = lambda name, fn: ("fn", name, fn)  # noqa: E731
MA = "/api/2.0/mlflow-artifacts"
LOC = lambda v: {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": v}}  # noqa: E731
GQL_RUN = "query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) { run { info { runUuid } } } }"


def R(method, path, attr, places, refused=(), extra=None, fresh=False):
    """A parity row: `path` may hold `{id}` (the id under test) and `{o.x}` (the caller's own
    object x); `extra` is a dict or a function of the caller's own objects; `fresh`: the owner's
    request changes or removes its object, so it gets fresh objects."""
    return (method, path, attr, list(places), list(refused), extra or {}, fresh)


OR_UUID = [Q("run_id"), Q("run_uuid")]
B_OR_UUID = [B("run_id"), B("run_uuid")]
RM = [Q("name")]
BRM = [B("name")]
PARITY = {
    # experiments
    "experiments.get": R("GET", R2 + "/experiments/get", "exp", [Q("experiment_id")]),
    "experiments.update": R("POST", R2 + "/experiments/update", "exp", [B("experiment_id")], extra=lambda o: {"new_name": unique("exp")}),
    "experiments.delete": R("POST", R2 + "/experiments/delete", "exp", [B("experiment_id")], fresh=True),
    "experiments.restore": R("POST", R2 + "/experiments/restore", "exp", [B("experiment_id")]),
    "experiments.set_tag": R("POST", R2 + "/experiments/set-experiment-tag", "exp", [B("experiment_id")], extra={"key": "k", "value": "v"}),
    "experiments.delete_tag": R("POST", R2 + "/experiments/delete-experiment-tag", "exp", [B("experiment_id")], extra={"key": "k"}),
    # runs: `run_id or run_uuid`
    "runs.create": R("POST", R2 + "/runs/create", "exp", [B("experiment_id")]),
    "runs.search": R("POST", R2 + "/runs/search", "exp", [BL("experiment_ids")]),
    "runs.get": R("GET", R2 + "/runs/get", "run", OR_UUID),
    "runs.update": R("POST", R2 + "/runs/update", "run", B_OR_UUID),
    "runs.set_tag": R("POST", R2 + "/runs/set-tag", "run", B_OR_UUID, extra={"key": "k", "value": "v"}),
    "runs.log_metric": R("POST", R2 + "/runs/log-metric", "run", B_OR_UUID, extra={"key": "m", "value": 1.0, "timestamp": 1}),
    "runs.log_parameter": R("POST", R2 + "/runs/log-parameter", "run", B_OR_UUID, extra={"key": "p2", "value": "1"}),
    "metrics.get_history": R("GET", R2 + "/metrics/get-history", "run", OR_UUID, extra={"metric_key": "m"}),
    "artifacts.list": R("GET", R2 + "/artifacts/list", "run", OR_UUID),
    "artifacts.get": R("GET", "/get-artifact", "run", OR_UUID, extra={"path": "file.txt"}),
    "metrics.get_history_bulk_interval": R("GET", R2 + "/metrics/get-history-bulk-interval", "run", [QL("run_ids")], extra={"metric_key": "m"}),
    "metrics.get_history_bulk": R("GET", AJAX2 + "/metrics/get-history-bulk", "run", [QL("run_id")], extra={"metric_key": "m"}),
    # runs: `run_id` only (the message has no `run_uuid`)
    "runs.delete_tag": R("POST", R2 + "/runs/delete-tag", "run", [B("run_id")], [B("run_uuid")], extra={"key": "k"}),
    "runs.log_batch": R("POST", R2 + "/runs/log-batch", "run", [B("run_id")], [B("run_uuid")]),
    "runs.log_model": R("POST", R2 + "/runs/log-model", "run", [B("run_id")], [B("run_uuid")], extra={"model_json": "{}"}),
    "runs.log_inputs": R("POST", R2 + "/runs/log-inputs", "run", [B("run_id")], [B("run_uuid")]),
    "runs.log_outputs": R("POST", R2 + "/runs/outputs", "run", [B("run_id")], [B("run_uuid")]),
    "runs.delete": R("POST", R2 + "/runs/delete", "run", [B("run_id")], [B("run_uuid")], fresh=True),
    "runs.restore": R("POST", R2 + "/runs/restore", "run", [B("run_id")], [B("run_uuid")]),
    "traces.link_to_run": R("POST", R2 + "/traces/link-to-run", "run", [B("run_id")], [B("run_uuid")], extra=lambda o: {"trace_ids": [o.trace]}),
    # proxied artifacts: the experiment is the first path segment
    "mlflow_artifacts.list": R("GET", MA + "/artifacts", "exp", [Q("path", "{}/parity")]),
    "mlflow_artifacts.download": R("GET", MA + "/artifacts/{id}/parity/f.txt", "exp", [PATH]),
    "mlflow_artifacts.upload": R("PUT", MA + "/artifacts/{id}/parity/f.txt", "exp", [PATH]),
    "mlflow_artifacts.delete": R("DELETE", MA + "/artifacts/{id}/parity/f.txt", "exp", [PATH]),
    "mlflow_artifacts.mpu_create": R("POST", MA + "/mpu/create/{id}/parity", "exp", [PATH], extra={"path": "big.bin", "num_parts": 1}),
    "mlflow_artifacts.mpu_complete": R("POST", MA + "/mpu/complete/{id}/parity", "exp", [PATH], extra={"path": "big.bin", "upload_id": "u", "parts": []}),
    "mlflow_artifacts.mpu_abort": R("POST", MA + "/mpu/abort/{id}/parity", "exp", [PATH], extra={"path": "big.bin", "upload_id": "u"}),
    # logged models: the path, and a body `model_id` (finalize acts on the body's!)
    "logged_models.create": R("POST", R2 + "/logged-models", "exp", [B("experiment_id")], extra={"name": "lm2"}),
    "logged_models.search": R("POST", R2 + "/logged-models/search", "exp", [BL("experiment_ids")]),
    "logged_models.get": R("GET", R2 + "/logged-models/{id}", "model", [PATH, Q("model_id")]),
    "logged_models.finalize": R("PATCH", R2 + "/logged-models/{id}", "model", [PATH, B("model_id")], extra={"status": "LOGGED_MODEL_READY"}),
    "logged_models.delete": R("DELETE", R2 + "/logged-models/{id}", "model", [PATH, B("model_id")], fresh=True),
    "logged_models.set_tags": R("PATCH", R2 + "/logged-models/{id}/tags", "model", [PATH, B("model_id")], extra={"tags": [{"key": "k", "value": "v"}]}),
    "logged_models.delete_tag": R("DELETE", R2 + "/logged-models/{id}/tags/k", "model", [PATH, B("model_id")]),
    "logged_models.log_params": R("POST", R2 + "/logged-models/{id}/params", "model", [PATH, B("model_id")], extra={"params": [{"key": "p", "value": "1"}]}),
    "logged_models.list_artifacts": R("GET", R2 + "/logged-models/{id}/artifacts/directories", "model", [PATH]),
    "logged_models.get_artifact": R("GET", AJAX2 + "/logged-models/{id}/artifacts/files", "model", [PATH], extra={"artifact_file_path": "MLmodel"}),
    # registered models and versions: by name
    "registered_models.get": R("GET", R2 + "/registered-models/get", "rm", RM),
    "registered_models.get_latest_versions.get": R("GET", R2 + "/registered-models/get-latest-versions", "rm", RM),
    "registered_models.get_latest_versions": R("POST", R2 + "/registered-models/get-latest-versions", "rm", BRM),
    "registered_models.get_by_alias": R("GET", R2 + "/registered-models/alias", "rm", RM, extra={"alias": "champ"}),
    "registered_models.rename": R("POST", R2 + "/registered-models/rename", "rm", BRM, extra=lambda o: {"new_name": unique("rm")}, fresh=True),
    "registered_models.update": R("PATCH", R2 + "/registered-models/update", "rm", BRM, extra={"description": "d"}),
    "registered_models.delete": R("DELETE", R2 + "/registered-models/delete", "rm", BRM, fresh=True),
    "registered_models.set_tag": R("POST", R2 + "/registered-models/set-tag", "rm", BRM, extra={"key": "k", "value": "v"}),
    "registered_models.delete_tag": R("DELETE", R2 + "/registered-models/delete-tag", "rm", BRM, extra={"key": "k"}),
    "registered_models.set_alias": R("POST", R2 + "/registered-models/alias", "rm", BRM, extra={"alias": "a2", "version": "1"}),
    "registered_models.delete_alias": R("DELETE", R2 + "/registered-models/alias", "rm", BRM, extra={"alias": "a2"}),
    "model_versions.create": R("POST", R2 + "/model-versions/create", "rm", BRM, extra={"source": "dummy-source"}),
    "model_versions.get": R("GET", R2 + "/model-versions/get", "rm", RM, extra={"version": "1"}),
    "model_versions.get_download_uri": R("GET", R2 + "/model-versions/get-download-uri", "rm", RM, extra={"version": "1"}),
    "model_versions.get_artifact": R("GET", "/model-versions/get-artifact", "rm", RM, extra={"version": "1", "path": "MLmodel"}),
    "model_versions.update": R("PATCH", R2 + "/model-versions/update", "rm", BRM, extra={"version": "1", "description": "d"}),
    "model_versions.transition_stage": R("POST", R2 + "/model-versions/transition-stage", "rm", BRM, extra={"version": "1", "stage": "Staging", "archive_existing_versions": False}),
    "model_versions.delete": R("DELETE", R2 + "/model-versions/delete", "rm", BRM, extra={"version": "1"}, fresh=True),
    "model_versions.set_tag": R("POST", R2 + "/model-versions/set-tag", "rm", BRM, extra={"version": "1", "key": "k", "value": "v"}),
    "model_versions.delete_tag": R("DELETE", R2 + "/model-versions/delete-tag", "rm", BRM, extra={"version": "1", "key": "k"}),
    # traces: the path segment, with any body or query spelling required to agree
    "traces.start_v3": R("POST", R3 + "/traces", "exp", [FN("trace_location", lambda v: {"trace": {"trace_info": {
        "trace_location": LOC(v), "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}})]),
    "traces.get_v3": R("GET", R3 + "/traces/{id}", "trace", [PATH, Q("trace_id"), Q("request_id")]),
    "traces.set_tag_v3": R("PATCH", R3 + "/traces/{id}/tags", "trace", [PATH, B("trace_id"), B("request_id")], extra={"key": "k2", "value": "v"}),
    "traces.delete_tag_v3": R("DELETE", R3 + "/traces/{id}/tags", "trace", [PATH, B("trace_id"), B("request_id")], extra={"key": "k3"}),
    "assessments.create": R("POST", R3 + "/traces/{id}/assessments", "trace", [PATH, B("trace_id")], extra={"assessment": ASSESSMENT}),
    "assessments.get": R("GET", R3 + "/traces/{id}/assessments/{o.assessment}", "trace", [PATH, Q("trace_id")]),
    "assessments.update": R("PATCH", R3 + "/traces/{id}/assessments/{o.assessment}", "trace", [PATH, B("trace_id")], extra={"assessment": {"assessment_name": "quality"}, "update_mask": "assessmentName"}),
    "assessments.delete": R("DELETE", R3 + "/traces/{id}/assessments/{o.assessment}", "trace", [PATH, B("trace_id")], fresh=True),
    "traces.start_v2": R("POST", R2 + "/traces", "exp", [B("experiment_id")], extra={"timestamp_ms": 1}),
    "traces.end_v2": R("PATCH", R2 + "/traces/{id}", "trace", [PATH, B("request_id"), B("trace_id")], extra={"timestamp_ms": 2, "status": "OK"}),
    "traces.get_info_v2": R("GET", R2 + "/traces/{id}/info", "trace", [PATH, Q("request_id"), Q("trace_id")]),
    "traces.set_tag_v2": R("PATCH", R2 + "/traces/{id}/tags", "trace", [PATH, B("request_id"), B("trace_id")], extra={"key": "k4", "value": "v"}),
    "traces.delete_tag_v2": R("DELETE", R2 + "/traces/{id}/tags", "trace", [PATH, B("request_id"), B("trace_id")], extra={"key": "k4"}),
    # traces: one query field, the other spelling refused
    "traces.get_info_v3": R("GET", R3 + "/traces/get", "trace", [Q("trace_id")], [Q("request_id")]),
    "traces.get_artifact": R("GET", AJAX2 + "/get-trace-artifact", "trace", [Q("request_id")], [Q("trace_id")]),
    "traces.get_artifact_v3": R("GET", AJAX3 + "/get-trace-artifact", "trace", [Q("request_id")], [Q("trace_id")]),
    # traces: lists and scopes
    "traces.batch_get": R("GET", R3 + "/traces/batchGet", "trace", [QL("trace_ids")]),
    "traces.batch_get_infos": R("POST", R3 + "/traces/batchGetInfos", "trace", [BL("trace_ids")]),
    "traces.search_v3": R("POST", R3 + "/traces/search", "exp", [FN("locations", lambda v: {"locations": [LOC(v)]})]),
    "traces.search_v2": R("GET", R2 + "/traces", "exp", [QL("experiment_ids")]),
    "traces.filter_correlation": R("POST", R3 + "/traces/calculate-filter-correlation", "exp", [BL("experiment_ids")]),
    "traces.metrics": R("POST", R3 + "/traces/metrics", "exp", [BL("experiment_ids")]),
    "traces.delete_v3": R("POST", R3 + "/traces/delete-traces", "exp", [B("experiment_id")], extra={"max_timestamp_millis": 1}),
    "traces.delete_v2": R("POST", R2 + "/traces/delete-traces", "exp", [B("experiment_id")], extra={"max_timestamp_millis": 1}),
    "traces.link_prompts": R("POST", R2 + "/traces/link-prompts", "trace", [B("trace_id")], extra=lambda o: {"prompt_versions": [{"name": o.rm, "version": "1"}]}),
    # evaluation datasets: the path with an agreeing body, or the scope
    "datasets.create": R("POST", R3 + "/datasets/create", "exp", [BL("experiment_ids")], extra=lambda o: {"name": unique("ds")}),
    "datasets.search.get": R("GET", R3 + "/datasets/search", "exp", [QL("experiment_ids")]),
    "datasets.search": R("POST", R3 + "/datasets/search", "exp", [BL("experiment_ids")]),
    "experiments.search_datasets": R("POST", AJAX2 + "/experiments/search-datasets", "exp", [BL("experiment_ids")]),
    "datasets.get": R("GET", R3 + "/datasets/{id}", "ds", [PATH, Q("dataset_id")]),
    "datasets.experiment_ids": R("GET", R3 + "/datasets/{id}/experiment-ids", "ds", [PATH, Q("dataset_id")]),
    "datasets.delete": R("DELETE", R3 + "/datasets/{id}", "ds", [PATH, B("dataset_id")], fresh=True),
    "datasets.records.get": R("GET", R3 + "/datasets/{id}/records", "ds", [PATH, Q("dataset_id")]),
    "datasets.records.upsert": R("POST", R3 + "/datasets/{id}/records", "ds", [PATH, B("dataset_id")], extra={"records": json.dumps([{"inputs": {"q": "z"}}])}),
    "datasets.records.delete": R("DELETE", R3 + "/datasets/{id}/records", "ds", [PATH, B("dataset_id")], extra={"dataset_record_ids": ["none"]}),
    "datasets.set_tags": R("PATCH", R3 + "/datasets/{id}/tags", "ds", [PATH, B("dataset_id")], extra={"tags": json.dumps({"k": "v"})}),
    "datasets.delete_tag": R("DELETE", R3 + "/datasets/{id}/tags/k", "ds", [PATH, B("dataset_id")]),
    "datasets.add_experiments": R("POST", R3 + "/datasets/{id}/add-experiments", "ds", [PATH, B("dataset_id")], extra=lambda o: {"experiment_ids": [o.exp2]}),
    "datasets.remove_experiments": R("POST", R3 + "/datasets/{id}/remove-experiments", "ds", [PATH, B("dataset_id")], extra=lambda o: {"experiment_ids": [o.exp2]}),
    # scorers, label schemas, review queues, issues
    "scorers.register": R("POST", R3 + "/scorers/register", "exp", [B("experiment_id")], extra={"name": "sc2", "serialized_scorer": "{}"}),
    "scorers.list": R("GET", R3 + "/scorers/list", "exp", [Q("experiment_id"), QL("experiment_ids")]),
    "scorers.get": R("GET", R3 + "/scorers/get", "exp", [Q("experiment_id")], extra={"name": "sc"}),
    "scorers.versions": R("GET", R3 + "/scorers/versions", "exp", [Q("experiment_id")], extra={"name": "sc"}),
    "scorers.delete": R("DELETE", R3 + "/scorers/delete", "exp", [B("experiment_id")], extra={"name": "absent"}),
    "label_schemas.create": R("POST", R3 + "/label-schemas/create", "exp", [B("experiment_id")], extra=lambda o: {"name": unique("ls"), "type": "FEEDBACK", "input": {"text": {}}}),
    "label_schemas.get": R("GET", R3 + "/label-schemas/get", "schema", [Q("schema_id")]),
    "label_schemas.get_by_name": R("GET", R3 + "/label-schemas/get-by-name", "exp", [Q("experiment_id")], extra={"name": "ls"}),
    "label_schemas.list": R("GET", R3 + "/label-schemas/list", "exp", [Q("experiment_id")]),
    "label_schemas.update": R("PATCH", R3 + "/label-schemas/update", "schema", [B("schema_id")]),
    "label_schemas.delete": R("DELETE", R3 + "/label-schemas/delete", "schema", [B("schema_id")], fresh=True),
    "review_queues.create": R("POST", R3 + "/review-queues/create", "exp", [B("experiment_id")], extra=lambda o: {"name": unique("q"), "queue_type": "CUSTOM"}),
    "review_queues.get_or_create_user": R("POST", R3 + "/review-queues/get-or-create-user", "exp", [B("experiment_id")], extra={"user": "alice"}),
    "review_queues.get": R("GET", R3 + "/review-queues/get", "queue", [Q("queue_id")]),
    "review_queues.get_by_name": R("GET", R3 + "/review-queues/get-by-name", "exp", [Q("experiment_id")], extra={"name": "q"}),
    "review_queues.list": R("GET", R3 + "/review-queues/list", "exp", [Q("experiment_id")]),
    "review_queues.update": R("POST", R3 + "/review-queues/update", "queue", [B("queue_id")]),
    "review_queues.delete": R("POST", R3 + "/review-queues/delete", "queue", [B("queue_id")], fresh=True),
    "review_queues.items.list": R("GET", R3 + "/review-queues/items/list", "queue", [Q("queue_id")]),
    "review_queues.items.add": R("POST", R3 + "/review-queues/items/add", "queue", [B("queue_id")], extra=lambda o: {"item_ids": [o.trace]}),
    "review_queues.items.remove": R("POST", R3 + "/review-queues/items/remove", "queue", [B("queue_id")], extra={"item_ids": ["none"]}),
    "review_queues.items.set_status": R("POST", R3 + "/review-queues/items/set-status", "queue", [B("queue_id")], extra=lambda o: {"item_id": o.item, "status": "COMPLETED"}),
    "issues.create": R("POST", R3 + "/issues", "exp", [B("experiment_id")], extra={"name": "i2", "description": "d"}),
    "issues.get": R("GET", R3 + "/issues/{id}", "issue", [PATH, Q("issue_id")]),
    "issues.update": R("PATCH", R3 + "/issues/{id}", "issue", [PATH, B("issue_id")], extra={"description": "d2"}),
    "issues.search": R("POST", R3 + "/issues/search", "exp", [B("experiment_id")]),
    # GraphQL: ids only in `variables.data` (test_graphql_parity.py covers the document itself)
    "graphql.post": R("POST", "/graphql", "run", [
        FN("runId", lambda v: {"operationName": "GetRun", "query": GQL_RUN, "variables": {"data": {"runId": v}}}),
        FN("runUuid", lambda v: {"operationName": "GetRun", "query": GQL_RUN, "variables": {"data": {"runUuid": v}}})]),
}

# Rows that name no resource by id: creates by name, searches answered through the tenant
# clause and a response check, the name lookup answered like MLflow's 404, and the online
# scoring configs (scorer ids, answer filtered), and the workspace rows (the workspace is the
# caller's by construction, named by the tenant; a foreign name is answered as absent). Their
# owner/other cases are in test_policy_rows.py, the workspace mechanics in test_workspaces.py.
NO_ID = {"experiments.create", "experiments.search.get", "experiments.search", "experiments.get_by_name",
         "registered_models.create", "registered_models.search", "model_versions.search",
         "scorers.online_configs", "workspaces.list", "workspaces.get"}

# The GenAI services (docs/genai.md). Their own objects (secrets, endpoints, jobs, webhooks, MCP
# servers...) are MLflow's to scope: the request is pinned to the caller's workspace and the
# gateway judges no id of theirs (strategies Workspaced and Invocation; test_policy_rows.py shows
# another tenant's ids answered as absent). OTLP names its experiment and run in headers and its
# traces inside the spans (test_genai_services.py, test_genai_otlp.py). The ids these services
# take of tenant data are judged where MLflow reads them, the JSON body:
NO_ID |= {r["id"] for r in POLICY_TABLE["rows"] if r["strategy"] in ("Workspaced", "Invocation", "Otlp")} - {
    "ai_gateway.endpoints.create", "ai_gateway.endpoints.update"}
GENAI_PARITY = {
    "runs.create_promptlab": R("POST", AJAX2 + "/runs/create-promptlab-run", "exp", [B("experiment_id")], extra={"prompt_template": "t"}),
    "jobs.invoke_scorer": R("POST", AJAX3 + "/scorer/invoke", "exp", [B("experiment_id")], extra=lambda o: {
        "trace_ids": [o.trace], "serialized_scorer": genai_rows.serialized_judge("none")}),
    "jobs.invoke_evaluate": R("POST", AJAX3 + "/genai/evaluate/invoke", "exp", [B("experiment_id")], extra=lambda o: {
        "trace_ids": [o.trace], "serialized_scorers": [genai_rows.serialized_judge("none")]}),
    "jobs.invoke_issue_detection": R("POST", AJAX3 + "/issues/invoke", "exp", [B("experiment_id")], extra=lambda o: {
        "trace_ids": [o.trace], "categories": ["correctness"], "provider": "openai", "endpoint_name": "none"}),
    "prompt_optimization.create": R("POST", R3 + "/prompt-optimization/jobs", "exp", [B("experiment_id")], extra=lambda o: {
        "source_prompt_uri": f"prompts:/{o.rm}/1", "config": {"optimizer_type": "OPTIMIZER_TYPE_GEPA"}}),
    "prompt_optimization.search.get": R("GET", R3 + "/prompt-optimization/jobs/search", "exp", [Q("experiment_id")]),
    "prompt_optimization.search": R("POST", R3 + "/prompt-optimization/jobs/search", "exp", [B("experiment_id")]),
    "ai_gateway.endpoints.create": R("POST", R3 + "/gateway/endpoints/create", "exp", [B("experiment_id")], extra=lambda o: {
        "name": unique("ep"), "model_configs": []}),
    "ai_gateway.endpoints.update": R("POST", R3 + "/gateway/endpoints/update", "exp", [B("experiment_id")], extra={"endpoint_id": "e-none"}),
}
# Prompt-lab runs are governed in both modes; the rest only with workspaces (tag mode refuses
# them for everyone, test_policy_rows.py).
PARITY.update({k: v for k, v in GENAI_PARITY.items() if WORKSPACES or k == "runs.create_promptlab"})
NO_ID |= set(GENAI_PARITY) - set(PARITY)


def test_parity_covers_every_row_with_an_id():
    rows = POLICY_TABLE["rows"]
    with_id = {r["id"] for r in rows if r["strategy"] not in ("Open", "deny")} - NO_ID
    assert with_id - set(PARITY) == set(), "rows with an id but no parity case"
    assert set(PARITY) - with_id == set(), "parity cases for rows that are gone"


def merge(into: dict, extra: dict):
    """Deep-merges `extra` into `into` (two nested places of one body)."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v


def send(gw, tenant, row, values, own):
    """Sends `row` as `tenant` (whose objects are `own`) with `values` ({place: id}); the path
    segment defaults to the first id."""
    method, path, _attr, _ok, _refused, extra, _fresh = PARITY[row]
    if callable(extra):
        extra = extra(own)
    query = dict(extra) if method == "GET" else {}
    body = {} if method == "GET" else dict(extra)
    seg = values.get(PATH, next(iter(values.values())))
    for place, v in values.items():
        if place == PATH:
            continue
        kind, name, fmt = place
        if kind == "fn":
            merge(body, fmt(v))
            continue
        value = [v] if kind in ("ql", "bl") else (fmt.format(v) if fmt else v)
        (query if kind[0] == "q" else body)[name] = value
    path = path.replace("{id}", seg).format(o=own)
    return call(gw, tenant, method, path, query, body)


@pytest.mark.parametrize("row", list(PARITY))
def test_every_row_judges_the_id_mlflow_acts_on(gw, a, oa, ob, row):
    """For every row with an id: the owner gets through with the id in each place MLflow reads
    it; another tenant never does, with the id in any one place, with two places naming
    different objects (in both orders), or with a spelling MLflow does not read."""
    _m, path, attr, accepted, refused, _x, fresh = PARITY[row]
    mine_o = fresh_objs(a, oa) if fresh else oa
    mine, theirs = getattr(mine_o, attr), getattr(ob, attr)
    in_path = "{id}" in path
    fields = [p for p in accepted if p != PATH]

    def places(p, v):
        # A path row always carries its id in the path; a field repeats it there.
        return {PATH: v} if p == PATH else ({PATH: v, p: v} if in_path else {p: v})

    for p in accepted:
        r, line = send(gw, "team-b", row, places(p, mine), ob)
        assert line["decision"] == "deny", (row, p, r.text)
        if fresh and p != accepted[0]:
            continue  # the owner's first request changed the object
        r, line = send(gw, "team-a", row, places(p, mine), mine_o)
        assert line["decision"] == "allow", (row, p, r.text)
    # Two places naming different objects, in both orders: never forwarded.
    pairs = [(PATH, f) for f in fields] if in_path else list(itertools.combinations(fields, 2))
    pairs += [(f, g) for f, g in itertools.combinations(fields, 2) if in_path]
    for p1, p2 in pairs:
        for v1, v2 in ((theirs, mine), (mine, theirs)):
            values = {p1: v1, p2: v2}
            if in_path and PATH not in values:
                values[PATH] = v1
            r, line = send(gw, "team-b", row, values, ob)
            assert line["decision"] == "deny" and line["upstream_status"] is None, (row, values, r.text)
    # A spelling MLflow does not read never smuggles a foreign id past the check.
    for alias in refused:
        for v1, v2 in ((theirs, mine), (mine, theirs)):
            r, line = send(gw, "team-b", row, {accepted[0]: v1, alias: v2}, ob)
            assert line["decision"] == "deny" and line["upstream_status"] is None, (row, alias, r.text)
            assert r.status_code in (400, 403, 404)


def fresh_objs(a, oa):
    o = Objs(a).genai()
    o.exp2 = oa.exp2
    return o


# ---------------------------------------------------------------- 2. partial parse

@pytest.mark.parametrize("path,body", [
    (R3 + "/issues/search", lambda o: {"max_results": "x", "experiment_id": o.exp}),
    (R3 + "/datasets/search", lambda o: {"order_by": [1], "experiment_ids": [o.exp]}),
    (R3 + "/datasets/search", lambda o: {"max_results": 99999999999, "experiment_ids": [o.exp]}),
])
def test_a_mistyped_field_cannot_empty_a_scope(gw, oa, ob, path, body):
    """MLflow swallows a protobuf parse error and runs the handler on the fields parsed so far;
    an empty scope means every experiment. Before the fix, team-b's own-scoped search with a bad
    field first returned team-a's issues and datasets."""
    r, line = call(gw, "team-b", "POST", path, body=body(ob))
    assert line["decision"] == "allow"
    assert oa.issue not in r.text and oa.ds not in r.text, r.text


# ---------------------------------------------------------------- 3. trace location tags

LOCATION_TAGS = ["mlflow.artifactLocation", "mlflow.trace.spansLocation", "mlflow.trace.archiveLocation"]


def artifact_root(gw, tenant: str, exp: str) -> str:
    """An experiment's artifact location as MLflow stored it: `mlflow-artifacts:/<exp>`, or
    `mlflow-artifacts:/workspaces/<workspace>/<exp>` in workspace mode."""
    r = Caller(gw, tenant=tenant).get(f"{R2}/experiments/get", params={"experiment_id": exp})
    assert r.status_code == 200, r.text
    return r.json()["experiment"]["artifact_location"]


@pytest.mark.parametrize("key", LOCATION_TAGS)
def test_trace_location_tags_cannot_be_written_on_any_route(gw, a, oa, ob, key):
    foreign = f"{artifact_root(gw, 'team-b', ob.exp)}/traces/{ob.trace}/artifacts"
    value = "ARCHIVE_REPO" if key.endswith("spansLocation") else foreign
    new_trace = "tr-" + uuid.uuid4().hex
    loc = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": oa.exp}}
    attempts = [
        ("PATCH", f"{R3}/traces/{oa.trace}/tags", {"key": key, "value": value}),
        ("DELETE", f"{R3}/traces/{oa.trace}/tags", {"key": key}),
        ("PATCH", f"{R2}/traces/{oa.trace}/tags", {"key": key, "value": value}),
        ("DELETE", f"{R2}/traces/{oa.trace}/tags", {"key": key}),
        ("PATCH", f"{R2}/traces/{oa.trace}", {"request_id": oa.trace, "timestamp_ms": 2, "status": "OK",
                                               "tags": [{"key": key, "value": value}]}),
        ("POST", f"{R2}/traces", {"experiment_id": oa.exp, "timestamp_ms": 1, "tags": [{"key": key, "value": value}]}),
        ("POST", f"{R3}/traces", {"trace": {"trace_info": {"trace_id": new_trace, "trace_location": loc,
                                                           "request_time": "2026-11-23T00:00:00Z", "state": "OK",
                                                           "tags": {key: value}}}}),
    ]
    for method, path, body in attempts:
        r, line = call(gw, "team-a", method, path, body=body)
        assert r.status_code == 403, (method, path, r.text)
        assert line["reason"] == "reserved_tag" and line["upstream_status"] is None
        assert r.json()["error_code"] == "PERMISSION_DENIED"
    info = a.get(f"{R2}/traces/{oa.trace}/info").json()["trace_info"]
    tags = {t["key"]: t["value"] for t in info.get("tags", [])}
    assert tags.get("mlflow.artifactLocation") == f"{artifact_root(gw, 'team-a', oa.exp)}/traces/{oa.trace}/artifacts"


@pytest.mark.parametrize("planted", [
    "foreign",  # another tenant's spans
    "file:///etc",  # a directory on the MLflow host
    "traversal",  # own prefix, then `..` into another experiment
])
def test_get_trace_artifact_serves_only_the_traces_own_location(gw, mlflow_server, a, oa, ob, planted):
    """A location tag that is not the trace's own (planted directly in MLflow, as data written
    before the gateway or by a route MLflow did not block) is never followed through the gateway."""
    upload_spans(ob)
    t = Objs(a)  # a fresh trace of team-a's
    own = f"{artifact_root(gw, 'team-a', t.exp)}/traces/{t.trace}/artifacts"
    value = {
        "foreign": f"{artifact_root(gw, 'team-b', ob.exp)}/traces/{ob.trace}/artifacts",
        "file:///etc": "file:///etc",
        "traversal": f"{own}/../../../{ob.exp}/traces/{ob.trace}/artifacts",
    }[planted]
    r = requests.patch(f"{mlflow_server.url}{R3}/traces/{t.trace}/tags", headers=pinned("team-a"),
                       json={"key": "mlflow.artifactLocation", "value": value}, timeout=30)
    assert r.status_code == 200, r.text
    r, line = call(gw, "team-a", "GET", f"{AJAX2}/get-trace-artifact", {"request_id": t.trace})
    assert r.status_code == 403, r.text
    assert line["reason"] == "location_refused"
    assert spans_of(ob) not in r.text
    # Put back, the trace's own location is served again.
    requests.patch(f"{mlflow_server.url}{R3}/traces/{t.trace}/tags", headers=pinned("team-a"),
                   json={"key": "mlflow.artifactLocation", "value": own}, timeout=30)
    upload_spans(t)
    r, line = call(gw, "team-a", "GET", f"{AJAX2}/get-trace-artifact", {"request_id": t.trace})
    assert r.status_code == 200 and line["decision"] == "allow", r.text


# ---------------------------------------------------------------- 4. protected tags

def test_end_trace_v2_cannot_set_the_tenant_tag(gw, oa):
    r, line = call(gw, "team-a", "PATCH", f"{R2}/traces/{oa.trace}",
                   body={"request_id": oa.trace, "timestamp_ms": 2, "status": "OK",
                         "tags": [{"key": "tenant", "value": "team-b"}]})
    assert r.status_code == 403 and line["reason"] == "reserved_tag", r.text


def test_run_attribution_cannot_be_forged_after_creation(gw, a, oa):
    attempts = [
        ("POST", f"{R2}/runs/set-tag", {"run_id": oa.run, "key": "mlflow.user", "value": "mallory"}),
        ("POST", f"{R2}/runs/set-tag", {"run_id": oa.run, "key": "MLflow.User", "value": "mallory"}),
        ("POST", f"{R2}/runs/delete-tag", {"run_id": oa.run, "key": "mlflow.user"}),
        ("POST", f"{R2}/runs/log-batch", {"run_id": oa.run, "tags": [{"key": "mlflow.user", "value": "mallory"}]}),
    ]
    for method, path, body in attempts:
        r, line = call(gw, "team-a", method, path, body=body)
        assert r.status_code == 403 and line["reason"] == "reserved_tag", (path, r.text)
    run = a.get(f"{R2}/runs/get", params={"run_id": oa.run}).json()["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.user"] == "alice"
    # Ordinary tags still work.
    r, _ = call(gw, "team-a", "POST", f"{R2}/runs/set-tag", body={"run_id": oa.run, "key": "note", "value": "x"})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 5. role classes by effect

def test_unlinking_a_datasets_last_experiment_is_refused(gw, a, oa):
    r = a.post(f"{R3}/datasets/create", {"name": unique("ds"), "experiment_ids": [oa.exp]})
    assert r.status_code == 200, r.text
    ds = r.json()["dataset"]["dataset_id"]
    r, line = call(gw, "team-a", "POST", f"{R3}/datasets/{ds}/remove-experiments", body={"experiment_ids": [oa.exp]})
    assert r.status_code == 403 and line["reason"] == "orphan_refused", r.text
    assert "delete the dataset instead" in r.json()["message"]
    assert a.get(f"{R3}/datasets/{ds}/experiment-ids").json()["experiment_ids"] == [oa.exp]
    # The dataset is still the tenant's, and deleting it stays an admin's job.
    r, line = call(gw, "team-a", "DELETE", f"{R3}/datasets/{ds}")
    assert line["decision"] == "allow", r.text
