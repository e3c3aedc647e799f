"""Every policy-table row against the real MLflow: the owning tenant succeeds, another tenant
is refused, and the owner's data is unchanged by the refused attempt (read back as the owner).
A coverage test fails when a row of the policy table (tests/data/policy_table.json) has no case here."""

import json
import re
import uuid

import pytest

import genai_rows
from conftest import ROW_IDS, WORKSPACES, Caller, Gateway, pinned, unique

# Workspace mode: the GenAI rows start judges and prompt optimisations (MLflow's job runner), and
# register a webhook to a loopback target (genai_rows.py says why).
MLFLOW_JOBS = WORKSPACES
MLFLOW_ENV = genai_rows.MLFLOW_ENV


@pytest.fixture(scope="module")
def model_server():
    """The GenAI rows' model provider (their endpoints' api_base)."""
    m = genai_rows.ModelServer()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server):
    """The gateway in dev mode, admitting the GenAI rows' webhook target."""
    g = Gateway(workdir / "gw", mlflow_server.url, genai_rows.GATEWAY_VARS).start()
    yield g
    g.stop()



class Objs:
    """Fresh team-a objects for one case, created through the gateway as the owner."""

    def __init__(self, a: Caller):
        self.a = a
        r = a.post("/api/2.0/mlflow/experiments/create", {"name": unique("rows")})
        assert r.status_code == 200, r.text
        self.exp = r.json()["experiment_id"]
        self.exp_name = a.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": self.exp}).json()["experiment"]["name"]
        r = a.post("/api/2.0/mlflow/runs/create", {"experiment_id": self.exp, "start_time": 1})
        assert r.status_code == 200, r.text
        self.run = r.json()["run"]["info"]["run_id"]
        assert a.post("/api/2.0/mlflow/runs/log-batch", {
            "run_id": self.run, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}],
            "params": [{"key": "p", "value": "1"}], "tags": [{"key": "t", "value": "1"}]}).status_code == 200
        self.art = f"{self.exp}/{self.run}/artifacts/file.txt"
        assert a.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{self.art}", data=b"payload").status_code == 200
        r = a.post("/api/2.0/mlflow/logged-models", {"experiment_id": self.exp, "name": "lm", "source_run_id": self.run})
        assert r.status_code == 200, r.text
        self.model = r.json()["model"]["info"]["model_id"]
        # Registry: a model with version 1 (from the logged model) and an alias.
        self.rm = unique("rm")
        assert a.post(f"{R2}/registered-models/create", {"name": self.rm}).status_code == 200
        r = a.post(f"{R2}/model-versions/create", {"name": self.rm, "source": f"models:/{self.model}", "model_id": self.model})
        assert r.status_code == 200, r.text
        assert a.post(f"{R2}/registered-models/alias", {"name": self.rm, "alias": "champ", "version": "1"}).status_code == 200
        # A trace with a tag and an assessment.
        self.trace = "tr-" + uuid.uuid4().hex
        r = a.post(f"{R3}/traces", {"trace": {"trace_info": {
            "trace_id": self.trace, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": self.exp}},
            "request_time": "2026-11-23T00:00:00Z", "state": "OK", "tags": {"k": "v"}}}})
        assert r.status_code == 200, r.text
        r = a.post(f"{R3}/traces/{self.trace}/assessments", {"assessment": ASSESSMENT})
        assert r.status_code == 200, r.text
        self.assessment = r.json()["assessment"]["assessment_id"]

    def genai(self):
        """The experiment's GenAI objects: an evaluation dataset with a record, a scorer, a
        label schema, a review queue holding the trace, and an issue found in the run."""
        a = self.a
        r = a.post(f"{R3}/datasets/create", {"name": unique("ds"), "experiment_ids": [self.exp], "tags": json.dumps({"k": "v"})})
        assert r.status_code == 200, r.text
        self.ds = r.json()["dataset"]["dataset_id"]
        r = a.post(f"{R3}/datasets/{self.ds}/records", {"records": json.dumps([{"inputs": {"q": "x"}, "expectations": {"a": "y"}}])})
        assert r.status_code == 200, r.text
        self.record = json.loads(a.get(f"{R3}/datasets/{self.ds}/records").json()["records"])[0]["dataset_record_id"]
        self.scorer = "sc"
        r = a.post(f"{R3}/scorers/register", {"experiment_id": self.exp, "name": self.scorer, "serialized_scorer": "{}"})
        assert r.status_code == 200, r.text
        self.scorer_id = r.json()["scorer_id"]
        self.schema_name = "ls"
        r = a.post(f"{R3}/label-schemas/create", {"experiment_id": self.exp, "name": self.schema_name, "type": "FEEDBACK", "input": {"text": {}}})
        assert r.status_code == 200, r.text
        self.schema = r.json()["label_schema"]["schema_id"]
        self.queue_name = unique("q")
        r = a.post(f"{R3}/review-queues/create", {"experiment_id": self.exp, "name": self.queue_name, "queue_type": "CUSTOM",
                                                   "users": ["alice"], "schema_ids": [self.schema]})
        assert r.status_code == 200, r.text
        self.queue = r.json()["review_queue"]["queue_id"]
        r = a.post(f"{R3}/review-queues/items/add", {"queue_id": self.queue, "item_ids": [self.trace]})
        assert r.status_code == 200, r.text
        self.item = r.json()["items"][0]["item_id"]
        r = a.post(f"{R3}/issues", {"experiment_id": self.exp, "name": "i", "description": "d", "source_run_id": self.run})
        assert r.status_code == 200, r.text
        self.issue = r.json()["issue"]["issue_id"]
        return self

    def state(self):
        a = self.a
        out = {}
        if hasattr(self, "ds"):
            out["ds"] = a.get(f"{R3}/datasets/{self.ds}").json()
            out["ds_exps"] = a.get(f"{R3}/datasets/{self.ds}/experiment-ids").json()
            out["ds_records"] = json.loads(a.get(f"{R3}/datasets/{self.ds}/records").json()["records"])
            out["scorers"] = a.get(f"{R3}/scorers/list", params={"experiment_id": self.exp}).json()
            out["schema"] = a.get(f"{R3}/label-schemas/get", params={"schema_id": self.schema}).json()
            out["queue"] = a.get(f"{R3}/review-queues/get", params={"queue_id": self.queue}).json()
            out["items"] = a.get(f"{R3}/review-queues/items/list", params={"queue_id": self.queue}).json()
            out["issue"] = a.get(f"{R3}/issues/{self.issue}").json()
        if hasattr(self, "secret") and WORKSPACES:
            out.update(genai_rows.state(self))
        out["exp"] = a.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": self.exp}).json()
        out["run"] = a.get("/api/2.0/mlflow/runs/get", params={"run_id": self.run}).json()
        out["hist"] = a.get("/api/2.0/mlflow/metrics/get-history", params={"run_id": self.run, "metric_key": "m"}).json()
        out["art"] = a.get(f"/api/2.0/mlflow-artifacts/artifacts/{self.art}").content
        out["arts"] = a.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{self.exp}/{self.run}/artifacts"}).json()
        out["model"] = a.get(f"/api/2.0/mlflow/logged-models/{self.model}").json()
        out["rm"] = a.get(f"{R2}/registered-models/get", params={"name": self.rm}).json()
        out["mv"] = a.get(f"{R2}/model-versions/get", params={"name": self.rm, "version": "1"}).json()
        out["trace"] = a.get(f"{R2}/traces/{self.trace}/info").json()
        out["assessment"] = a.get(f"{R3}/traces/{self.trace}/assessments/{self.assessment}").json()
        for k in ("exp",):
            out[k]["experiment"].pop("last_update_time", None)
        out["model"]["model"]["info"].pop("last_updated_timestamp_ms", None)
        return out


def J(method, path, body=None, params=None):
    return lambda c, o: c.request(method, path.format(o=o), json=body(o) if body else None,
                                  params=params(o) if params else None)


# The MLflow UI's run-page query (as Apollo sends it, with __typename).
GQL_GET_RUN = """query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetRun(input: $data) {
    apiError { helpUrl code message __typename }
    run { info { runName status runUuid experimentId __typename }
          experiment { experimentId name tags { key value __typename } __typename }
          modelVersions { status version name source __typename }
          data { metrics { key value step timestamp __typename } params { key value __typename } __typename }
          __typename }
    __typename
  }
}"""
GQL_SEARCH_RUNS = """query SearchRuns($data: MlflowSearchRunsInput!) {
  mlflowSearchRuns(input: $data) { apiError { code message } runs { info { runUuid experimentId } } nextPageToken }
}"""

R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"
AJ = "/ajax-api/2.0/mlflow"
AJ3 = "/ajax-api/3.0/mlflow"
MA = "/api/2.0/mlflow-artifacts"
ASSESSMENT = {"assessment_name": "quality", "source": {"source_type": "HUMAN", "source_id": "alice"},
              "feedback": {"value": True}}
LOC = lambda o: {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": o.exp}}  # noqa: E731

# id: (call, owner_ok, other_status[, prep])
#   owner_ok: expected owner status (int) or "forwarded" (gateway allowed; MLflow's own answer)
#   other_status: what another tenant gets; None for open rows (any tenant allowed), "hidden"
#   for searches (200 without the owner's objects).
#   prep: run as the owner before the attempts (e.g. delete before restore).
CASES = {
    "ui.index": (J("GET", "/"), 200, None),
    "ui.static": (J("GET", "/static-files/favicon.ico"), 200, None),
    "server.version": (J("GET", "/version"), 200, None),
    "server.info": (J("GET", "/api/3.0/mlflow/server-info"), 200, None),
    # Workspace mode: each tenant sees its own workspace only; tag mode does not use them.
    "workspaces.list": (J("GET", R3 + "/workspaces"), 200, "own_workspace") if WORKSPACES else
                       (J("GET", R3 + "/workspaces"), 403, 403),
    "workspaces.get": (J("GET", R3 + "/workspaces/team-a"), 200, 404) if WORKSPACES else
                      (J("GET", R3 + "/workspaces/team-a"), 403, 403),
    "experiments.create": (
        lambda c, o: c.post(f"{R2}/experiments/create", {"name": unique("c"), "tags": [{"key": "tenant", "value": "team-a"}]}),
        200, 403),
    "experiments.search.get": (J("GET", R2 + "/experiments/search", params=lambda o: {"max_results": "1000"}), 200, "hidden"),
    "experiments.search": (J("POST", R2 + "/experiments/search", body=lambda o: {"max_results": 1000}), 200, "hidden"),
    "experiments.get": (J("GET", R2 + "/experiments/get", params=lambda o: {"experiment_id": o.exp}), 200, 403),
    "experiments.get_by_name": (J("GET", R2 + "/experiments/get-by-name", params=lambda o: {"experiment_name": o.exp_name}), 200, 404),
    "experiments.update": (J("POST", R2 + "/experiments/update", body=lambda o: {"experiment_id": o.exp, "new_name": unique("renamed")}), 200, 403),
    "experiments.delete": (J("POST", R2 + "/experiments/delete", body=lambda o: {"experiment_id": o.exp}), 200, 403),
    "experiments.restore": (J("POST", R2 + "/experiments/restore", body=lambda o: {"experiment_id": o.exp}), 200, 403,
                            lambda o: o.a.post(f"{R2}/experiments/delete", {"experiment_id": o.exp})),
    "experiments.set_tag": (J("POST", R2 + "/experiments/set-experiment-tag", body=lambda o: {"experiment_id": o.exp, "key": "k", "value": "v"}), 200, 403),
    "experiments.delete_tag": (J("POST", R2 + "/experiments/delete-experiment-tag", body=lambda o: {"experiment_id": o.exp, "key": "mlflow.note.content"}), "forwarded", 403),
    "runs.create": (J("POST", R2 + "/runs/create", body=lambda o: {"experiment_id": o.exp}), 200, 403),
    "runs.get": (J("GET", R2 + "/runs/get", params=lambda o: {"run_id": o.run}), 200, 403),
    "runs.search": (J("POST", R2 + "/runs/search", body=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    "runs.update": (J("POST", R2 + "/runs/update", body=lambda o: {"run_id": o.run, "status": "FINISHED"}), 200, 403),
    "runs.delete": (J("POST", R2 + "/runs/delete", body=lambda o: {"run_id": o.run}), 200, 403),
    "runs.restore": (J("POST", R2 + "/runs/restore", body=lambda o: {"run_id": o.run}), 200, 403,
                     lambda o: o.a.post(f"{R2}/runs/delete", {"run_id": o.run})),
    "runs.set_tag": (J("POST", R2 + "/runs/set-tag", body=lambda o: {"run_id": o.run, "key": "k", "value": "v"}), 200, 403),
    "runs.delete_tag": (J("POST", R2 + "/runs/delete-tag", body=lambda o: {"run_id": o.run, "key": "t"}), 200, 403),
    "runs.log_metric": (J("POST", R2 + "/runs/log-metric", body=lambda o: {"run_id": o.run, "key": "m", "value": 9.0, "timestamp": 2, "step": 1}), 200, 403),
    "runs.log_parameter": (J("POST", R2 + "/runs/log-parameter", body=lambda o: {"run_id": o.run, "key": "p2", "value": "x"}), 200, 403),
    "runs.log_batch": (J("POST", R2 + "/runs/log-batch", body=lambda o: {"run_id": o.run, "metrics": [{"key": "m", "value": 5.0, "timestamp": 3, "step": 2}]}), 200, 403),
    "runs.log_model": (J("POST", R2 + "/runs/log-model", body=lambda o: {"run_id": o.run, "model_json": json.dumps({"artifact_path": "m", "flavors": {}, "run_id": o.run, "utc_time_created": "2026-01-01 00:00:00.000000"})}), 200, 403),
    "runs.log_inputs": (J("POST", R2 + "/runs/log-inputs", body=lambda o: {"run_id": o.run, "models": [{"model_id": o.model}]}), 200, 403),
    "runs.log_outputs": (J("POST", R2 + "/runs/outputs", body=lambda o: {"run_id": o.run, "models": [{"model_id": o.model, "step": 0}]}), 200, 403),
    "metrics.get_history": (J("GET", R2 + "/metrics/get-history", params=lambda o: {"run_id": o.run, "metric_key": "m"}), 200, 403),
    "metrics.get_history_bulk_interval": (J("GET", R2 + "/metrics/get-history-bulk-interval", params=lambda o: {"run_ids": [o.run], "metric_key": "m", "max_results": "10"}), 200, 403),
    "metrics.get_history_bulk": (J("GET", AJ + "/metrics/get-history-bulk", params=lambda o: {"run_id": [o.run], "metric_key": "m"}), 200, 403),
    "artifacts.list": (J("GET", R2 + "/artifacts/list", params=lambda o: {"run_id": o.run}), 200, 403),
    "artifacts.get": (J("GET", "/get-artifact", params=lambda o: {"run_id": o.run, "path": "file.txt"}), 200, 403),
    "mlflow_artifacts.list": (J("GET", MA + "/artifacts", params=lambda o: {"path": f"{o.exp}/{o.run}/artifacts"}), 200, 403),
    "mlflow_artifacts.download": (J("GET", MA + "/artifacts/{o.art}"), 200, 403),
    "mlflow_artifacts.upload": (lambda c, o: c.request("PUT", f"{MA}/artifacts/{o.art}", data=b"overwritten"), 200, 403),
    "mlflow_artifacts.delete": (J("DELETE", MA + "/artifacts/{o.art}"), 200, 403),
    "mlflow_artifacts.mpu_create": (J("POST", MA + "/mpu/create/{o.exp}/{o.run}/artifacts", body=lambda o: {"path": "big.bin", "num_parts": 1}), "forwarded", 403),
    "mlflow_artifacts.mpu_complete": (J("POST", MA + "/mpu/complete/{o.exp}/{o.run}/artifacts", body=lambda o: {"path": "big.bin", "upload_id": "u", "parts": []}), "forwarded", 403),
    "mlflow_artifacts.mpu_abort": (J("POST", MA + "/mpu/abort/{o.exp}/{o.run}/artifacts", body=lambda o: {"path": "big.bin", "upload_id": "u"}), "forwarded", 403),
    "logged_models.create": (J("POST", R2 + "/logged-models", body=lambda o: {"experiment_id": o.exp, "name": "lm2"}), 200, 403),
    "logged_models.search": (J("POST", R2 + "/logged-models/search", body=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    "logged_models.get": (J("GET", R2 + "/logged-models/{o.model}"), 200, 403),
    "logged_models.finalize": (J("PATCH", R2 + "/logged-models/{o.model}", body=lambda o: {"model_id": o.model, "status": "LOGGED_MODEL_READY"}), 200, 403),
    "logged_models.delete": (J("DELETE", R2 + "/logged-models/{o.model}"), 200, 403),
    "logged_models.set_tags": (J("PATCH", R2 + "/logged-models/{o.model}/tags", body=lambda o: {"model_id": o.model, "tags": [{"key": "k", "value": "v"}]}), 200, 403),
    "logged_models.delete_tag": (J("DELETE", R2 + "/logged-models/{o.model}/tags/mlflow.source.name"), "forwarded", 403),
    "logged_models.log_params": (J("POST", R2 + "/logged-models/{o.model}/params", body=lambda o: {"model_id": o.model, "params": [{"key": "k", "value": "v"}]}), 200, 403),
    "logged_models.list_artifacts": (J("GET", R2 + "/logged-models/{o.model}/artifacts/directories"), "forwarded", 403),
    "logged_models.get_artifact": (J("GET", AJ + "/logged-models/{o.model}/artifacts/files", params=lambda o: {"artifact_file_path": "MLmodel"}), "forwarded", 403),
    # Registry and prompts: another tenant's name answers like an absent one (404).
    "registered_models.create": (
        lambda c, o: c.post(f"{R2}/registered-models/create", {"name": unique("c"), "tags": [{"key": "tenant", "value": "team-a"}]}),
        200, 403),
    "registered_models.search": (J("GET", R2 + "/registered-models/search", params=lambda o: {"filter": f"name = '{o.rm}'"}), 200, "hidden"),
    "registered_models.get": (J("GET", R2 + "/registered-models/get", params=lambda o: {"name": o.rm}), 200, 404),
    "registered_models.get_latest_versions.get": (J("GET", R2 + "/registered-models/get-latest-versions", params=lambda o: {"name": o.rm}), 200, 404),
    "registered_models.get_latest_versions": (J("POST", R2 + "/registered-models/get-latest-versions", body=lambda o: {"name": o.rm}), 200, 404),
    "registered_models.get_by_alias": (J("GET", R2 + "/registered-models/alias", params=lambda o: {"name": o.rm, "alias": "champ"}), 200, 404),
    "registered_models.rename": (J("POST", R2 + "/registered-models/rename", body=lambda o: {"name": o.rm, "new_name": unique("renamed")}), 200, 404),
    "registered_models.update": (J("PATCH", R2 + "/registered-models/update", body=lambda o: {"name": o.rm, "description": "d"}), 200, 404),
    "registered_models.delete": (J("DELETE", R2 + "/registered-models/delete", body=lambda o: {"name": o.rm}), 200, 404),
    "registered_models.set_tag": (J("POST", R2 + "/registered-models/set-tag", body=lambda o: {"name": o.rm, "key": "k", "value": "v"}), 200, 404),
    "registered_models.delete_tag": (J("DELETE", R2 + "/registered-models/delete-tag", body=lambda o: {"name": o.rm, "key": "k"}), "forwarded", 404),
    "registered_models.set_alias": (J("POST", R2 + "/registered-models/alias", body=lambda o: {"name": o.rm, "alias": "other", "version": "1"}), 200, 404),
    "registered_models.delete_alias": (J("DELETE", R2 + "/registered-models/alias", body=lambda o: {"name": o.rm, "alias": "champ"}), 200, 404),
    "model_versions.create": (J("POST", R2 + "/model-versions/create", body=lambda o: {"name": o.rm, "source": f"models:/{o.model}", "model_id": o.model}), 200, 403),
    "model_versions.search": (J("GET", R2 + "/model-versions/search", params=lambda o: {"filter": f"name = '{o.rm}'"}), 200, "hidden"),
    "model_versions.get": (J("GET", R2 + "/model-versions/get", params=lambda o: {"name": o.rm, "version": "1"}), 200, 404),
    "model_versions.get_download_uri": (J("GET", R2 + "/model-versions/get-download-uri", params=lambda o: {"name": o.rm, "version": "1"}), 200, 404),
    "model_versions.get_artifact": (J("GET", "/model-versions/get-artifact", params=lambda o: {"name": o.rm, "version": "1", "path": "MLmodel"}), "forwarded", 404),
    "model_versions.update": (J("PATCH", R2 + "/model-versions/update", body=lambda o: {"name": o.rm, "version": "1", "description": "d"}), 200, 404),
    "model_versions.transition_stage": (J("POST", R2 + "/model-versions/transition-stage", body=lambda o: {"name": o.rm, "version": "1", "stage": "Staging", "archive_existing_versions": False}), 200, 404),
    "model_versions.delete": (J("DELETE", R2 + "/model-versions/delete", body=lambda o: {"name": o.rm, "version": "1"}), 200, 404),
    "model_versions.set_tag": (J("POST", R2 + "/model-versions/set-tag", body=lambda o: {"name": o.rm, "version": "1", "key": "k", "value": "v"}), 200, 404),
    "model_versions.delete_tag": (J("DELETE", R2 + "/model-versions/delete-tag", body=lambda o: {"name": o.rm, "version": "1", "key": "k"}), "forwarded", 404),
    # Traces (v3) and assessments.
    "traces.start_v3": (lambda c, o: c.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": "tr-" + uuid.uuid4().hex, "trace_location": LOC(o), "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}}), 200, 403),
    "traces.get_v3": (J("GET", R3 + "/traces/{o.trace}"), 200, 403),
    "traces.get_info_v3": (J("GET", R3 + "/traces/get", params=lambda o: {"trace_id": o.trace}), "forwarded", 403),
    "traces.batch_get": (J("GET", R3 + "/traces/batchGet", params=lambda o: {"trace_ids": [o.trace]}), "forwarded", 403),
    "traces.batch_get_infos": (J("POST", R3 + "/traces/batchGetInfos", body=lambda o: {"trace_ids": [o.trace]}), 200, 403),
    "traces.search_v3": (J("POST", R3 + "/traces/search", body=lambda o: {"locations": [LOC(o)]}), 200, 403),
    "traces.filter_correlation": (J("POST", R3 + "/traces/calculate-filter-correlation", body=lambda o: {
        "experiment_ids": [o.exp], "filter_string1": "trace.status = 'OK'", "filter_string2": "trace.status = 'ERROR'"}), "forwarded", 403),
    "traces.metrics": (J("POST", R3 + "/traces/metrics", body=lambda o: {
        "experiment_ids": [o.exp], "view_type": "TRACES", "metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}]}), "forwarded", 403),
    "traces.delete_v3": (J("POST", R3 + "/traces/delete-traces", body=lambda o: {"experiment_id": o.exp, "request_ids": [o.trace]}), 200, 403),
    "traces.set_tag_v3": (J("PATCH", R3 + "/traces/{o.trace}/tags", body=lambda o: {"key": "k2", "value": "v"}), 200, 403),
    "traces.delete_tag_v3": (J("DELETE", R3 + "/traces/{o.trace}/tags", body=lambda o: {"key": "k"}), "forwarded", 403),
    "assessments.create": (J("POST", R3 + "/traces/{o.trace}/assessments", body=lambda o: {"assessment": ASSESSMENT}), 200, 403),
    "assessments.get": (J("GET", R3 + "/traces/{o.trace}/assessments/{o.assessment}"), 200, 403),
    "assessments.update": (J("PATCH", R3 + "/traces/{o.trace}/assessments/{o.assessment}", body=lambda o: {
        "assessment": {"feedback": {"value": False}}, "update_mask": "feedback"}), "forwarded", 403),
    "assessments.delete": (J("DELETE", R3 + "/traces/{o.trace}/assessments/{o.assessment}"), 200, 403),
    "traces.get_artifact": (J("GET", AJ + "/get-trace-artifact", params=lambda o: {"request_id": o.trace}), "forwarded", 403),
    "traces.get_artifact_v3": (J("GET", AJ3 + "/get-trace-artifact", params=lambda o: {"request_id": o.trace}), "forwarded", 403),
    # Traces (v2 API).
    "traces.start_v2": (J("POST", R2 + "/traces", body=lambda o: {"experiment_id": o.exp, "timestamp_ms": 1, "request_metadata": [], "tags": []}), "forwarded", 403),
    "traces.end_v2": (J("PATCH", R2 + "/traces/{o.trace}", body=lambda o: {"timestamp_ms": 2, "status": "OK"}), "forwarded", 403),
    "traces.get_info_v2": (J("GET", R2 + "/traces/{o.trace}/info"), 200, 403),
    "traces.set_tag_v2": (J("PATCH", R2 + "/traces/{o.trace}/tags", body=lambda o: {"key": "k3", "value": "v"}), 200, 403),
    "traces.delete_tag_v2": (J("DELETE", R2 + "/traces/{o.trace}/tags", body=lambda o: {"key": "k"}), "forwarded", 403),
    "traces.search_v2": (J("GET", R2 + "/traces", params=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    "traces.delete_v2": (J("POST", R2 + "/traces/delete-traces", body=lambda o: {"experiment_id": o.exp, "request_ids": [o.trace]}), 200, 403),
    "traces.link_to_run": (J("POST", R2 + "/traces/link-to-run", body=lambda o: {"run_id": o.run, "trace_ids": [o.trace]}), "forwarded", 403),
    "traces.link_prompts": (J("POST", R2 + "/traces/link-prompts", body=lambda o: {"trace_id": o.trace, "prompt_versions": [{"name": o.rm, "version": "1"}]}), "forwarded", 404),
    # Evaluation datasets.
    "datasets.create": (J("POST", R3 + "/datasets/create", body=lambda o: {"name": unique("ds"), "experiment_ids": [o.exp]}), 200, 403),
    "datasets.search.get": (J("GET", R3 + "/datasets/search", params=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    "datasets.search": (J("POST", R3 + "/datasets/search", body=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    "experiments.search_datasets": (J("POST", AJ + "/experiments/search-datasets", body=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    "datasets.get": (J("GET", R3 + "/datasets/{o.ds}"), 200, 403),
    "datasets.experiment_ids": (J("GET", R3 + "/datasets/{o.ds}/experiment-ids"), 200, 403),
    "datasets.delete": (J("DELETE", R3 + "/datasets/{o.ds}"), 200, 403),
    "datasets.records.get": (J("GET", R3 + "/datasets/{o.ds}/records"), 200, 403),
    "datasets.records.upsert": (J("POST", R3 + "/datasets/{o.ds}/records", body=lambda o: {
        "records": json.dumps([{"inputs": {"q": "injected"}, "expectations": {"a": "z"}}])}), 200, 403),
    "datasets.records.delete": (J("DELETE", R3 + "/datasets/{o.ds}/records", body=lambda o: {"dataset_record_ids": [o.record]}), 200, 403),
    "datasets.set_tags": (J("PATCH", R3 + "/datasets/{o.ds}/tags", body=lambda o: {"tags": json.dumps({"k": "v2"})}), 200, 403),
    "datasets.delete_tag": (J("DELETE", R3 + "/datasets/{o.ds}/tags/k"), 200, 403),
    "datasets.add_experiments": (J("POST", R3 + "/datasets/{o.ds}/add-experiments", body=lambda o: {"experiment_ids": [o.exp]}), 200, 403),
    # The dataset keeps a second owned experiment: removing the last link is refused (see
    # test_leaks.py::test_unlinking_a_datasets_last_experiment_is_refused).
    "datasets.remove_experiments": (J("POST", R3 + "/datasets/{o.ds}/remove-experiments", body=lambda o: {"experiment_ids": [o.exp]}), 200, 403,
                                    lambda o: link_second_experiment(o)),
    # Scorers.
    "scorers.register": (J("POST", R3 + "/scorers/register", body=lambda o: {"experiment_id": o.exp, "name": "sc2", "serialized_scorer": "{}"}), 200, 403),
    "scorers.list": (J("GET", R3 + "/scorers/list", params=lambda o: {"experiment_id": o.exp}), 200, 403),
    "scorers.get": (J("GET", R3 + "/scorers/get", params=lambda o: {"experiment_id": o.exp, "name": o.scorer}), 200, 403),
    "scorers.versions": (J("GET", R3 + "/scorers/versions", params=lambda o: {"experiment_id": o.exp, "name": o.scorer}), 200, 403),
    "scorers.delete": (J("DELETE", R3 + "/scorers/delete", body=lambda o: {"experiment_id": o.exp, "name": o.scorer}), 200, 403),
    # Label schemas, review queues, issues.
    "label_schemas.create": (J("POST", R3 + "/label-schemas/create", body=lambda o: {
        "experiment_id": o.exp, "name": unique("ls"), "type": "EXPECTATION", "input": {"text": {}}}), 200, 403),
    "label_schemas.get": (J("GET", R3 + "/label-schemas/get", params=lambda o: {"schema_id": o.schema}), 200, 403),
    "label_schemas.get_by_name": (J("GET", R3 + "/label-schemas/get-by-name", params=lambda o: {"experiment_id": o.exp, "name": o.schema_name}), 200, 403),
    "label_schemas.list": (J("GET", R3 + "/label-schemas/list", params=lambda o: {"experiment_id": o.exp}), 200, 403),
    "label_schemas.update": (J("PATCH", R3 + "/label-schemas/update", body=lambda o: {"schema_id": o.schema, "instruction": "changed"}), 200, 403),
    "label_schemas.delete": (J("DELETE", R3 + "/label-schemas/delete", body=lambda o: {"schema_id": o.schema}), 200, 403),
    "review_queues.create": (J("POST", R3 + "/review-queues/create", body=lambda o: {
        "experiment_id": o.exp, "name": unique("q"), "queue_type": "CUSTOM", "users": ["bob"]}), 200, 403),
    "review_queues.get_or_create_user": (J("POST", R3 + "/review-queues/get-or-create-user", body=lambda o: {"experiment_id": o.exp, "user": "alice"}), 200, 403),
    "review_queues.get": (J("GET", R3 + "/review-queues/get", params=lambda o: {"queue_id": o.queue}), 200, 403),
    "review_queues.get_by_name": (J("GET", R3 + "/review-queues/get-by-name", params=lambda o: {"experiment_id": o.exp, "name": o.queue_name}), 200, 403),
    "review_queues.list": (J("GET", R3 + "/review-queues/list", params=lambda o: {"experiment_id": o.exp}), 200, 403),
    "review_queues.update": (J("POST", R3 + "/review-queues/update", body=lambda o: {"queue_id": o.queue, "name": unique("q")}), 200, 403),
    "review_queues.delete": (J("POST", R3 + "/review-queues/delete", body=lambda o: {"queue_id": o.queue}), 200, 403),
    "review_queues.items.list": (J("GET", R3 + "/review-queues/items/list", params=lambda o: {"queue_id": o.queue}), 200, 403),
    "review_queues.items.add": (J("POST", R3 + "/review-queues/items/add", body=lambda o: {"queue_id": o.queue, "item_ids": [o.trace]}), 200, 403),
    "review_queues.items.remove": (J("POST", R3 + "/review-queues/items/remove", body=lambda o: {"queue_id": o.queue, "item_ids": [o.item]}), 200, 403),
    "review_queues.items.set_status": (J("POST", R3 + "/review-queues/items/set-status", body=lambda o: {
        "queue_id": o.queue, "item_id": o.item, "status": "COMPLETE"}), 200, 403),
    "issues.create": (J("POST", R3 + "/issues", body=lambda o: {"experiment_id": o.exp, "name": "i2", "description": "d", "source_run_id": o.run}), 200, 403),
    "issues.get": (J("GET", R3 + "/issues/{o.issue}"), 200, 403),
    "issues.update": (J("PATCH", R3 + "/issues/{o.issue}", body=lambda o: {"issue_id": o.issue, "name": "renamed"}), 200, 403),
    "issues.search": (J("POST", R3 + "/issues/search", body=lambda o: {"experiment_id": o.exp}), 200, 403),
    "scorers.online_configs": (J("GET", R3 + "/scorers/online-configs", params=lambda o: {"scorer_ids": [o.scorer_id]}), 200, None),
    "scorers.online_config": (J("PUT", R3 + "/scorers/online-config", body=lambda o: {"experiment_id": o.exp, "name": "sc"}), 403, 403),
    # Refused for everyone.
    "graphql.get": (J("GET", "/graphql"), 403, 403),
    "graphql.post": (lambda c, o: c.post("/graphql", {"operationName": "GetRun", "query": GQL_GET_RUN,
                                                      "variables": {"data": {"runId": o.run}}}), 200, 403),
    "gateway_proxy.get": (J("GET", AJ + "/gateway-proxy"), 403, 403),
    "gateway_proxy.post": (lambda c, o: c.post(AJ + "/gateway-proxy", {"gateway_path": "x"}), 403, 403),
    "upload_artifact.ajax": (lambda c, o: c.request("POST", AJ + "/upload-artifact", data=b"x"), 403, 403),
}


CASES.update(genai_rows.cases())

GENAI_ROWS = ("datasets.", "experiments.search_datasets", "scorers.", "label_schemas.", "review_queues.", "issues.")


def test_every_row_has_a_case():
    assert sorted(ROW_IDS) == sorted(CASES), (set(ROW_IDS) ^ set(CASES))


def link_second_experiment(o):
    r = o.a.post("/api/2.0/mlflow/experiments/create", {"name": unique("rows2")})
    assert r.status_code == 200, r.text
    o.exp2 = r.json()["experiment_id"]
    return o.a.post(f"{R3}/datasets/{o.ds}/add-experiments", {"experiment_ids": [o.exp2]})


def mentions_owner(resp, o):
    return o.exp in resp.text or o.run in resp.text


@pytest.mark.parametrize("row_id", sorted(CASES))
def test_row_owner_allowed_other_refused(row_id, a, b, gw, model_server):
    call, owner_ok, other, *prep = CASES[row_id]
    o = Objs(a)
    if row_id.startswith(GENAI_ROWS) or row_id in genai_rows.prefixes():
        o.genai()
    if row_id in genai_rows.prefixes():
        genai_rows.create(o, jobs=genai_rows.needs_jobs(row_id), api_base=model_server.url)
    for p in prep:
        assert p(o).status_code == 200
    before = o.state()
    rid = "rows-" + uuid.uuid4().hex
    r = call(Caller(gw, tenant="team-b", subject="bob", extra={"X-Request-ID": rid}), o)
    if other is None:
        assert r.status_code == 200, r.text
    elif other == "own_workspace":
        assert r.status_code == 200, r.text
        assert [w["name"] for w in r.json()["workspaces"]] == ["team-b"], r.text
    elif other == "own":
        # Allowed, in the caller's own workspace (MLflow names are per workspace).
        assert r.status_code == 200, (row_id, r.text)
        assert gw.audit_for(rid)[0]["decision"] == "allow"
    elif other == "absent":
        # Pinned to the caller's workspace, where MLflow has no such id: MLflow's own 404.
        assert r.status_code == 404, (row_id, r.status_code, r.text)
        line = gw.audit_for(rid)[0]
        assert (line["decision"], line["upstream_status"]) == ("allow", 404), line
    elif other == "not_listed":
        assert r.status_code == 200, (row_id, r.text)
        assert not [i for i in genai_rows.owner_ids(o) if i in r.text], (row_id, r.text)
    elif other == "hidden":
        assert r.status_code == 200, r.text
        assert o.exp not in [e["experiment_id"] for e in r.json().get("experiments", [])]
        assert o.rm not in r.text and o.trace not in r.text
    else:
        assert r.status_code == other, (row_id, r.status_code, r.text)
        if other == 404:
            # No existence oracle: byte-for-byte MLflow's own answer for an absent name.
            missing = unique("missing")
            if row_id.startswith("experiments."):
                m = Caller(gw, tenant="team-b").get(f"{R2}/experiments/get-by-name", params={"experiment_name": missing})
                taken = o.exp_name
            elif row_id.startswith("workspaces."):
                m = Caller(gw, tenant="team-b").get(f"{R3}/workspaces/{missing}")
                taken = "team-a"
            else:
                m = Caller(gw, tenant="team-b").get(f"{R2}/registered-models/get", params={"name": missing})
                taken = o.rm
            assert m.status_code == 404
            assert r.content.replace(taken.encode(), b"N") == m.content.replace(missing.encode(), b"N")
            assert sorted(r.headers) == sorted(m.headers)
        else:
            assert r.json()["error_code"] == "PERMISSION_DENIED"
        line = gw.audit_for(rid)[0]
        if WORKSPACES and row_id == "experiments.get_by_name":
            # The name is looked up in team-b's own workspace, where MLflow has no such
            # experiment: MLflow itself answers 404 (the gateway's answer check stays on).
            assert (line["decision"], line["upstream_status"]) == ("allow", 404), line
        else:
            assert line["decision"] == "deny"
        if other == 403:  # refused before anything was forwarded
            assert line["upstream_status"] is None
    assert o.state() == before, f"{row_id}: owner's data changed by another tenant's request"

    rid = "rows-" + uuid.uuid4().hex
    r = call(Caller(gw, tenant="team-a", subject="alice", extra={"X-Request-ID": rid}), o)
    line = gw.audit_for(rid)[0]
    if owner_ok == "forwarded":
        assert line["decision"] == "allow", (row_id, r.text)
    elif owner_ok == 403:
        assert r.status_code == 403 and line["reason"] == "route_denied", r.text
    else:
        assert r.status_code == owner_ok, (row_id, r.status_code, r.text)
        assert line["decision"] == "allow" and line["route"] == row_id
    if other == "hidden":
        assert o.exp in [e["experiment_id"] for e in r.json().get("experiments", [])] or o.rm in r.text
    if other == "own_workspace":
        assert [w["name"] for w in r.json()["workspaces"]] == ["team-a"], r.text
    if other == "not_listed":
        assert [i for i in genai_rows.owner_ids(o) if i in r.text], (row_id, r.text)


def test_reserved_tenant_tag_is_immutable(a):
    o = Objs(a)
    for call in [
        lambda: a.post(f"{R2}/runs/set-tag", {"run_id": o.run, "key": "tenant", "value": "team-b"}),
        lambda: a.post(f"{R2}/runs/set-tag", {"run_id": o.run, "key": "TENANT", "value": "x"}),
        lambda: a.post(f"{R2}/runs/delete-tag", {"run_id": o.run, "key": "tenant"}),
        lambda: a.post(f"{R2}/runs/log-batch", {"run_id": o.run, "tags": [{"key": "Tenant", "value": "b"}]}),
        lambda: a.post(f"{R2}/experiments/set-experiment-tag", {"experiment_id": o.exp, "key": "tenant", "value": "team-b"}),
        lambda: a.post(f"{R2}/experiments/delete-experiment-tag", {"experiment_id": o.exp, "key": "tenant"}),
        lambda: a.request("PATCH", f"{R2}/logged-models/{o.model}/tags", json={"model_id": o.model, "tags": [{"key": "tenant", "value": "b"}]}),
        lambda: a.request("DELETE", f"{R2}/logged-models/{o.model}/tags/tenant"),
        lambda: a.post(f"{R2}/experiments/create", {"name": unique("x"), "tags": [{"key": "tenant", "value": "team-b"}]}),
    ]:
        r = call()
        assert r.status_code == 403, r.text
    tags = {t["key"]: t["value"] for t in a.get(f"{R2}/experiments/get", params={"experiment_id": o.exp}).json()["experiment"]["tags"]}
    assert tags["tenant"] == "team-a"


def test_default_and_untagged_experiments_belong_to_nobody(a, mlflow_server):
    import requests

    r = a.get(f"{R2}/experiments/get", params={"experiment_id": "0"})
    assert r.status_code == 403
    r = a.post(f"{R2}/runs/create", {"experiment_id": "0"})
    assert r.status_code == 403
    # An experiment created directly on MLflow (not through the gateway) has no tenant tag.
    direct = requests.post(f"{mlflow_server.url}{R2}/experiments/create", json={"name": unique("direct")}).json()["experiment_id"]
    assert a.get(f"{R2}/experiments/get", params={"experiment_id": direct}).status_code == 403
    ids = [e["experiment_id"] for e in a.get(f"{R2}/experiments/search", params={"max_results": "1000"}).json().get("experiments", [])]
    assert "0" not in ids and direct not in ids


def test_artifact_location_and_path_encodings_refused(a, b):
    o = Objs(a)
    r = a.post(f"{R2}/experiments/create", {"name": unique("loc"), "artifact_location": f"mlflow-artifacts:/{o.exp}"})
    assert r.status_code == 403
    # Root listing, double encoding, encoded slash, dot segments.
    assert b.get(f"{MA}/artifacts").status_code == 400
    for path in [f"%25{ord(o.exp[0]):02X}{o.exp[1:]}/{o.run}/artifacts/file.txt",
                 f"%2525{ord(o.exp[0]):02X}{o.exp[1:]}/{o.run}/artifacts/file.txt",
                 f"{o.exp}%2F{o.run}/artifacts/file.txt",
                 f"./{o.exp}/{o.run}/artifacts/file.txt",
                 f"{o.exp}/./{o.run}/artifacts/file.txt",
                 f"{o.exp}/{o.run}/../{o.run}/artifacts/file.txt"]:
        status, body = b.raw("GET", f"{MA}/artifacts/{path}")
        assert status in (400, 403), (path, status, body)
        assert b"payload" not in body
    status, _ = b.raw("GET", f"{MA}/artifacts?path={o.exp}/{o.run}/artifacts")
    assert status == 403


def test_lists_of_ids_are_checked_element_by_element(a, b):
    oa, ob = Objs(a), Objs(b)
    r = b.get(f"{R2}/metrics/get-history-bulk-interval", params={"run_ids": [ob.run, oa.run], "metric_key": "m", "max_results": "10"})
    assert r.status_code == 403
    r = b.post(f"{R2}/runs/search", {"experiment_ids": [ob.exp, oa.exp]})
    assert r.status_code == 403
    r = b.post(f"{R2}/runs/search", {"experiment_ids": []})
    assert r.status_code == 400
    r = b.post(f"{R2}/runs/log-metric", {"run_id": ob.run, "key": "m", "value": 1, "timestamp": 1, "model_id": oa.model})
    assert r.status_code == 403


def test_graphql_is_limited_to_scoped_ui_queries(a, b):
    oa, ob = Objs(a), Objs(b)
    r = a.post("/graphql", {"operationName": "GetRun", "query": GQL_GET_RUN, "variables": {"data": {"runId": oa.run}}})
    assert r.status_code == 200 and r.json()["data"]["mlflowGetRun"]["run"]["info"]["runUuid"] == oa.run
    search = lambda c, ids, f=None: c.post("/graphql", {  # noqa: E731
        "operationName": "SearchRuns", "query": GQL_SEARCH_RUNS,
        "variables": {"data": {"experimentIds": ids, **({"filter": f} if f else {})}}})
    r = search(a, [oa.exp])
    assert r.status_code == 200, r.text
    assert [x["info"]["runUuid"] for x in r.json()["data"]["mlflowSearchRuns"]["runs"]] == [oa.run]
    assert search(b, [ob.exp, oa.exp]).status_code == 403
    assert search(b, []).status_code == 400
    # Other operations, inline ids, extra root fields and mutations are refused.
    for body in [
        {"operationName": "X", "query": "query X { mlflowGetRun(input: {runId: \"%s\"}) { run { info { runUuid } } } }" % oa.run},
        {"query": "{ mlflowGetRun(input: {runId: \"%s\"}) { run { info { runUuid } } } }" % oa.run},
        {"operationName": "GetRun", "query": GQL_GET_RUN.replace("mlflowGetRun(input: $data)", 'mlflowGetRun(input: {runId: "%s"})' % oa.run),
         "variables": {"data": {"runId": ob.run}}},
        {"operationName": "T", "query": "mutation T { testMutation(inputString: \"x\") { output } }"},
    ]:
        r = b.post("/graphql", body)
        assert r.status_code in (400, 403), (body, r.text)
        assert oa.run not in r.text or "PERMISSION_DENIED" in r.text


def test_body_methods_read_the_body_only_and_run_uuid_aliases(a, b):
    """MLflow reads PATCH/DELETE from the body whatever the query says, and resolves
    `run_id or run_uuid`: the gateway refuses a query on body methods and checks the run that
    MLflow will act on."""
    oa, ob = Objs(a), Objs(b)
    # DELETE with the owner's id in the query and a foreign id in a text/plain body.
    r = b.request("DELETE", f"{R2}/logged-models/{ob.model}/tags/k?model_id={ob.model}")
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = b.request("PATCH", f"{R2}/logged-models/{ob.model}?x=1", data=json.dumps({"model_id": ob.model}),
                  headers={"Content-Type": "text/plain"})
    assert r.status_code == 400
    # Body model_id disagreeing with the path.
    r = b.request("PATCH", f"{R2}/logged-models/{ob.model}", json={"model_id": oa.model, "status": "LOGGED_MODEL_READY"})
    assert r.status_code == 400
    # run_id null / empty falls through to run_uuid exactly as MLflow does.
    for body in [{"run_id": None, "run_uuid": oa.run}, {"run_id": "", "run_uuid": oa.run}]:
        r = b.post(f"{R2}/runs/log-metric", {**body, "key": "m", "value": 1, "timestamp": 1})
        assert r.status_code == 403, r.text
    before = Objs.state(oa)
    r = b.post(f"{R2}/runs/set-tag", {"run_id": ob.run, "run_uuid": oa.run, "key": "x", "value": "y"})
    assert r.status_code == 400
    assert Objs.state(oa) == before


def test_large_artifacts_stream_through_and_stay_scoped(a, b, mlflow_server):
    """Artifacts above the streaming threshold (1 MiB) are piped in both directions: the bytes
    arrive intact, the MLflow client's own upload and download work, and a foreign tenant's
    large upload is refused without a byte reaching MLflow."""
    import hashlib
    import os

    o = Objs(a)
    data = os.urandom(3 * 1024 * 1024 + 7)
    path = f"{MA}/artifacts/{o.exp}/{o.run}/artifacts/big.bin"
    r = a.request("PUT", path, data=data)
    assert r.status_code == 200, r.text
    # Read back directly from MLflow, and through the gateway.
    direct = requests_get(f"{mlflow_server.url}{path}", a.tenant)
    assert hashlib.sha256(direct).digest() == hashlib.sha256(data).digest()
    r = a.get(path)
    assert r.status_code == 200 and r.content == data
    assert r.headers.get("x-request-id")
    # A generator body (chunked, no content-length) is buffered and still arrives intact.
    r = a.request("PUT", path.replace("big.bin", "chunked.bin"), data=iter([data[:1000], data[1000:]]))
    assert r.status_code == 200, r.text
    assert a.get(path.replace("big.bin", "chunked.bin")).content == data
    # Another tenant: large upload refused before MLflow sees it; download refused.
    r = b.request("PUT", path.replace("big.bin", "evil.bin"), data=data)
    assert r.status_code == 403
    assert b.get(path).status_code == 403
    listing = requests_get(f"{mlflow_server.url}{MA}/artifacts?path={o.exp}/{o.run}/artifacts", a.tenant)
    assert b"evil.bin" not in listing
    # The MLflow client through the gateway: log and download a large artifact.
    with a.mlflow() as mlflow:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "weights.bin")
            with open(src, "wb") as f:
                f.write(data)
            mlflow.MlflowClient().log_artifact(o.run, src)
            got = mlflow.artifacts.download_artifacts(run_id=o.run, artifact_path="weights.bin", dst_path=os.path.join(d, "out"))
            with open(got, "rb") as f:
                assert f.read() == data


def requests_get(url: str, tenant: str) -> bytes:
    """A direct GET to MLflow about `tenant`'s data (its workspace pinned in workspace mode)."""
    import requests

    r = requests.get(url, headers=pinned(tenant), timeout=60)
    assert r.status_code == 200, r.text
    return r.content
