"""What works on MLflow works through the gateway, or says why (issue 35, item 6;
docs/mlflow-differences.md): the real MLflow client, one tenant, against the real MLflow behind
the gateway, for the places a data scientist meets a difference.

* `download_artifacts(run_id, artifact_path=".")` and `list_artifacts(run_id, ".")` work as on
  MLflow (the client lists `<run root>/.`); every other `.` segment is still refused.
* A `trace.text LIKE` search finds a span's content: spans arrive through OTLP, which the gateway
  governs (before, the client fell back to trace artifacts that the search never reads).
* `create-promptlab-run` (the UI's prompt lab) should create a run in the caller's experiment;
  it fails today (MLflow's handler cannot take tags, and the gateway adds the tenant tag).
* The run's user is the verified subject, whatever the client sends.
* Absent and foreign runs get the same answer; absent and foreign registry names MLflow's own."""

import os

import pytest

from conftest import Caller, unique


def refused(fn) -> str:
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the client raises MlflowException or OSError kinds
        return str(e)
    raise AssertionError(f"not refused: {result!r}")


@pytest.fixture(scope="module")
def logged(gw):
    """team-a's run with two files at the root and one under model/."""
    a = Caller(gw, tenant="team-a", subject="alice")
    with a.mlflow() as mlflow:
        mlflow.set_experiment(unique("differences"))
        with mlflow.start_run() as run:
            mlflow.log_text("hello", "a.txt")
            mlflow.log_text("b", "b.txt")
            mlflow.log_text("weights", "model/w.txt")
    return a, run.info.run_id


def test_dot_names_the_runs_artifact_root(logged, tmp_path):
    a, run_id = logged
    with a.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        # As MLflow answers it: the root's entries, named relative to ".".
        listed = sorted(f.path for f in client.list_artifacts(run_id, "."))
        assert listed == ["./a.txt", "./b.txt", "./model"], listed
        assert sorted(f.path for f in client.list_artifacts(run_id)) == ["a.txt", "b.txt", "model"]
        dst = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=".", dst_path=str(tmp_path / "dot"))
        assert sorted(os.listdir(dst)) == ["a.txt", "b.txt", "model"]
        assert open(os.path.join(dst, "model", "w.txt")).read() == "weights"
        dst = client.download_artifacts(run_id, ".", str(tmp_path / "client"))
        assert open(os.path.join(dst, "a.txt")).read() == "hello"
        dst = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="./a.txt",
                                                  dst_path=str(tmp_path / "dot-file"))
        assert open(dst).read() == "hello"
        # Every other dot segment is still refused (MLflow would normalise them).
        text = refused(lambda: mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="model/.", dst_path=str(tmp_path / "other")))
        assert "Failed to download artifacts" in text, text
        for path in ["model/.", "model/./w.txt", "./."]:
            text = refused(lambda: client.list_artifacts(run_id, path))
            assert "INVALID_PARAMETER_VALUE" in text and "segment" in text, (path, text)


def test_a_trace_text_search_finds_a_spans_content(gw, a, b):
    marker = unique("needle")
    with a.mlflow() as mlflow:
        exp_id = mlflow.set_experiment(unique("trace-text")).experiment_id

        @mlflow.trace
        def answer(question):
            return f"the answer to {question}"

        answer(marker)
        mlflow.flush_trace_async_logging()
        trace_id = mlflow.get_last_active_trace_id()
        found = mlflow.search_traces(locations=[exp_id], filter_string=f"trace.text LIKE '%{marker}%'",
                                     return_type="list")
        assert [t.info.trace_id for t in found] == [trace_id]
        assert mlflow.search_traces(locations=[exp_id], filter_string="trace.text LIKE '%no-such-text%'",
                                    return_type="list") == []
    # Spans came through OTLP, governed by the gateway (not the artifact fallback).
    otlp = [x for x in gw.audit_lines_settled() if x.get("route") == "otlp.traces" and x.get("tenant") == "team-a"]
    assert otlp and all(x["decision"] == "allow" for x in otlp), otlp[-3:]
    with b.mlflow() as mlflow:
        text = refused(lambda: mlflow.search_traces(locations=[exp_id],
                                                    filter_string=f"trace.text LIKE '%{marker}%'",
                                                    return_type="list"))
        assert "PERMISSION_DENIED" in text or "RESOURCE_DOES_NOT_EXIST" in text, text


def test_the_prompt_lab_creates_its_run_in_the_callers_experiment(a, b):
    """MLflow 3.17.2's create_promptlab_run_handler passes the body's tags to the store as dicts
    and fails (500) on any tag, so the gateway sends none: the run is tagged as the tenant's
    after MLflow's answer, and a body with tags is refused with a message saying why."""
    exp = a.post("/api/2.0/mlflow/experiments/create", {"name": unique("promptlab")}).json()["experiment_id"]
    # The body the UI's prompt lab sends (mlflow/server/handlers.py create_promptlab_run_handler).
    body = {"experiment_id": exp, "run_name": "lab", "tags": [], "prompt_template": "Say {{x}}",
            "prompt_parameters": [{"key": "x", "value": "hi"}], "model_route": "chat",
            "model_parameters": [{"key": "temperature", "value": "0"}], "model_input": "Say hi",
            "model_output": "hi", "model_output_parameters": [], "mlflow_version": "3.17.2",
            "user_id": "mallory", "start_time": 1}
    r = a.post("/ajax-api/2.0/mlflow/runs/create-promptlab-run", body)
    assert r.status_code == 200, r.text
    info = r.json()["run"]["info"]
    assert info["experiment_id"] == exp and info["user_id"] == "alice", info
    # Claimed for the tenant: listed by the tenant's run search, readable, tagged.
    r = a.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp]})
    assert [x["info"]["run_id"] for x in r.json().get("runs", [])] == [info["run_id"]], r.text
    tags = {t["key"]: t["value"] for t in a.get("/api/2.0/mlflow/runs/get", params={"run_id": info["run_id"]}).json()["run"]["data"]["tags"]}
    assert tags.get("tenant") == "team-a", tags
    r = a.post("/ajax-api/2.0/mlflow/runs/create-promptlab-run", {**body, "tags": [{"key": "k", "value": "v"}]})
    assert r.status_code == 400 and "must be empty" in r.json()["message"], r.text
    r = b.post("/ajax-api/2.0/mlflow/runs/create-promptlab-run", body)
    assert r.status_code in (403, 404), r.text


def test_the_runs_user_is_the_verified_subject(a):
    with a.mlflow() as mlflow:
        mlflow.set_experiment(unique("user"))
        with mlflow.start_run(tags={"mlflow.user": "mallory"}) as run:
            pass
        got = mlflow.get_run(run.info.run_id)
    assert got.info.user_id == "alice"
    assert got.data.tags["mlflow.user"] == "alice"


def test_absent_and_foreign_answer_alike(logged, b):
    _, run_id = logged
    with b.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        foreign = refused(lambda: client.get_run(run_id))
        absent = refused(lambda: client.get_run("0" * 32))
        assert "PERMISSION_DENIED" in foreign and "PERMISSION_DENIED" in absent, (foreign, absent)
        assert "does not exist or belongs to another tenant" in foreign
        # Registry names: MLflow's own "absent" answer, for a foreign name too.
        text = refused(lambda: client.get_registered_model(unique("no-such-model")))
        assert "RESOURCE_DOES_NOT_EXIST" in text, text
