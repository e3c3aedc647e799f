"""Records real MLflow answers for the pipeline's native tests (src/pipeline/tests.rs): runs the
pinned MLflow's own Flask app in-process on a throw-away SQLite store, makes the calls the
tests replay, and writes each answer (status + body) to tests/data/recorded/. Rerun after an
MLflow upgrade:

    $VENV/bin/python tests/data/record_mlflow_answers.py
"""

import json
import os
import pathlib
import tempfile

OUT = pathlib.Path(__file__).parent / "recorded"


def main():
    tmp = tempfile.mkdtemp()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    os.environ["_MLFLOW_SERVER_FILE_STORE"] = f"sqlite:///{tmp}/mlflow.db"
    os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = "mlflow-artifacts:/"
    os.environ["_MLFLOW_SERVER_ARTIFACT_DESTINATION"] = f"{tmp}/artifacts"
    os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "true"
    import mlflow
    from mlflow.server import app

    c = app.test_client()
    answers = {}

    def call(name, method, path, **kw):
        r = c.open(path, method=method, **kw)
        answers[name] = {"status": r.status_code, "body": r.get_data(as_text=True)}
        return r

    r = call("experiments_create", "POST", "/api/2.0/mlflow/experiments/create",
             json={"name": "churn", "tags": [{"key": "tenant", "value": "team-a"}]})
    exp = r.get_json()["experiment_id"]
    call("experiments_get_team_a", "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={exp}")
    r = c.post("/api/2.0/mlflow/experiments/create", json={"name": "other", "tags": [{"key": "tenant", "value": "team-b"}]})
    other = r.get_json()["experiment_id"]
    call("experiments_get_team_b", "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={other}")
    call("experiments_get_default", "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0")
    call("experiments_get_missing", "GET", "/api/2.0/mlflow/experiments/get?experiment_id=999")
    r = call("runs_create", "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": exp, "start_time": 1})
    run = r.get_json()["run"]["info"]["run_id"]
    call("runs_get", "GET", f"/api/2.0/mlflow/runs/get?run_id={run}")
    call("runs_log_metric", "POST", "/api/2.0/mlflow/runs/log-metric",
         json={"run_id": run, "key": "m", "value": 1.0, "timestamp": 1})
    call("health", "GET", "/health")
    meta = {"mlflow_version": mlflow.__version__, "experiment_team_a": exp, "experiment_team_b": other, "run": run}
    OUT.mkdir(exist_ok=True)
    (OUT / "answers.json").write_text(json.dumps({"meta": meta, "answers": answers}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
