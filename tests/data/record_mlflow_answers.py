"""Records real MLflow answers for the pipeline's native tests (src/pipeline/tests.rs): runs the
pinned MLflow's own Flask app in-process on a throw-away SQLite store, makes the calls the
tests replay, and writes each answer (status + body) to tests/data/recorded/. The workspace
answers (server-info and the workspace API, which the Flask app alone does not serve) come from
a real `mlflow server`, once with `--enable-workspaces` and once without. Rerun after an
MLflow upgrade:

    $VENV/bin/python tests/data/record_mlflow_answers.py
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

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
    answers.update(record_server_answers())
    meta = {"mlflow_version": mlflow.__version__, "experiment_team_a": exp, "experiment_team_b": other, "run": run}
    OUT.mkdir(exist_ok=True)
    (OUT / "answers.json").write_text(json.dumps({"meta": meta, "answers": answers}, indent=1, sort_keys=True) + "\n")


def record_server_answers() -> dict:
    """Answers of a real `mlflow server`: server-info without and with workspaces, and the
    workspace API calls the gateway makes when it provisions a tenant's workspace."""
    out = {}

    def http(name, method, url, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        out[name] = {"status": status, "body": text}

    for workspaces in (False, True):
        tmp = tempfile.mkdtemp()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mlflow_bin = str(pathlib.Path(sys.executable).parent / "mlflow")
        args = [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
                "--artifacts-destination", f"{tmp}/artifacts"]
        if workspaces:
            args.append("--enable-workspaces")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(base + "/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            suffix = "workspaces" if workspaces else "tag"
            http(f"server_info_{suffix}", "GET", base + "/api/3.0/mlflow/server-info")
            if workspaces:
                ws = base + "/api/3.0/mlflow/workspaces"
                http("workspace_get_missing", "GET", ws + "/team-a")
                http("workspace_create", "POST", ws,
                     {"name": "team-a", "description": "tenant team-a (created by mlflow-enterprise-gateway)"})
                http("workspace_create_exists", "POST", ws, {"name": "team-a"})
                http("workspace_get", "GET", ws + "/team-a")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


if __name__ == "__main__":
    main()
