"""A job started from the MLflow UI in a real headless Chromium, through the gateway (issue 31):
a team-a editor runs an LLM judge on traces from the experiment's Traces tab (select the traces,
Actions, "Run judges", tick the experiment's registered judge, "Run judge"), as MLflow 3.17.2's UI
does it: `POST /ajax-api/3.0/mlflow/scorer/invoke` (row `jobs.invoke_scorer`), then polling
`GET /ajax-api/3.0/jobs/<id>` (row `jobs.get`). MLflow accepts the job and its job runner
runs the judge with the tenant's AI gateway endpoint (a loopback model server that answers as a
judge), writing assessments on the tenant's traces. A team-a viewer doing the same is refused
by the gateway (403 PERMISSION_DENIED, reason `rbac`, MLflow never asked), and the UI shows
the gateway's message in its "Judge ... failed" banner. The browser is driven by
tests/ui/judge_check.cjs; screenshots are saved under tests/e2e/.artifacts/ui/."""

import json
import os
import shutil
import subprocess

import pytest

import genai_rows
from conftest import ARTIFACTS, REPO, WORKSPACES, Caller, unique
from genai_rows import ModelServer
from test_genai_services import endpoint_for

R3 = "/api/3.0/mlflow"
MLFLOW_ENV = genai_rows.MLFLOW_ENV
MLFLOW_JOBS = True  # the judge runs in MLflow's job runner

workspace_only = pytest.mark.skipif(
    not WORKSPACES, reason="the AI gateway and jobs need workspaces (tag mode refuses them: test_policy_rows)")

JUDGE = "polite"


@pytest.fixture(scope="module")
def model():
    """The loopback model server answering every chat as an LLM judge that finds the guideline
    met, so that the judge's job ends with an assessment (a key other than GOOD_KEY: 401)."""
    m = ModelServer(reply=lambda body: json.dumps({"result": "yes", "rationale": "The response is polite."}))
    yield m
    m.stop()


@pytest.fixture(scope="module")
def judged(a, model):
    """team-a's experiment with three traces (their inputs carry a marker the page is waited
    for) and a registered judge calling team-a's endpoint, created through the gateway."""
    endpoint = endpoint_for(a, model, ModelServer.GOOD_KEY)
    marker = unique("q")
    with a.mlflow() as mlflow:
        exp_id = mlflow.set_experiment(unique("judge-ui")).experiment_id

        @mlflow.trace
        def answer(question):
            return "Paris is the capital of France."

        for i in range(3):
            answer(f"{marker} question {i}: what is the capital of France?")
        mlflow.flush_trace_async_logging()
        traces = [t.info.trace_id for t in mlflow.search_traces(locations=[exp_id], return_type="list")]
        from mlflow.genai.scorers import Guidelines

        Guidelines(name=JUDGE, guidelines=["The response must be polite."],
                   model=f"gateway:/{endpoint}").register(experiment_id=exp_id)
    assert len(traces) == 3, traces
    return {"exp": exp_id, "traces": sorted(traces), "marker": marker}


def run_ui(gw, judged, role: str, isolation: str) -> dict:
    node = shutil.which("node")
    node_path = os.environ.get("UI_NODE_PATH")
    if not node or not node_path or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("node, playwright-core (UI_NODE_PATH) and /usr/bin/chromium are required (scripts/test.sh installs them)")
    out = ARTIFACTS / "ui"
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [node, str(REPO / "tests/ui/judge_check.cjs"), gw.url, judged["exp"], JUDGE, judged["marker"], role,
         str(out), isolation],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NODE_PATH": node_path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # The UI flow itself, whatever the role: the traces listed, "Run judges" offered, the dialog
    # for the three selected traces with the registered judge ticked.
    assert result["traces_shown"] and result["run_judges_offered"], result
    assert result["dialog_title"] == "Run judge on 3 traces", result
    assert result["judge_listed"] and result["judge_ticked"], result
    for shot in ("traces", "dialog", "banner"):
        assert (out / f"judge-{role}-{shot}.png").stat().st_size > 0
    # Exactly one judge request, for the experiment's three traces.
    assert len(result["invokes"]) == 1, result
    invoke = result["invokes"][0]
    assert (invoke["method"], invoke["experiment_id"], invoke["scorer_name"]) == ("POST", judged["exp"], JUDGE), invoke
    assert sorted(invoke["trace_ids"]) == judged["traces"], invoke
    return result


@workspace_only
def test_a_viewer_starting_a_judge_from_the_ui_is_refused_with_a_clear_message(gw, judged, model, isolation):
    calls = len(model.seen)
    result = run_ui(gw, judged, "viewer", isolation)
    invoke = result["invokes"][0]
    assert (invoke["status"], invoke["error_code"], invoke["job_ids"]) == (403, "PERMISSION_DENIED", []), invoke
    assert "needs EDIT" in invoke["message"], invoke
    # The UI shows the gateway's answer word for word in its judge banner.
    assert result["banner"] == f'Judge "{JUDGE}" failed: {invoke["message"]}', result
    assert result["error_shown"] and result["jobs"] == {}, result
    line = gw.audit_for(invoke["request_id"])[0]
    assert (line["route"], line["decision"], line["reason"], line["upstream_status"]) == (
        "jobs.invoke_scorer", "deny", "rbac", None), line
    assert (line["tenant"], line["subject"], line["roles"]) == ("team-a", "viewer-user", ["viewer"]), line
    assert len(model.seen) == calls  # no judge ran
    for trace in judged["traces"]:
        info = Caller(gw, tenant="team-a", subject="alice").get(f"{R3}/traces/{trace}").json()["trace"]["trace_info"]
        assert not [x for x in info.get("assessments", []) if x.get("assessment_name") == JUDGE], info


@workspace_only
def test_an_editor_starts_a_judge_from_the_ui_and_mlflow_runs_it(gw, judged, model, isolation):
    calls = len(model.seen)
    result = run_ui(gw, judged, "editor", isolation)
    invoke = result["invokes"][0]
    assert (invoke["status"], invoke["error_code"]) == (200, None), invoke
    assert len(invoke["job_ids"]) == 1, invoke
    job = invoke["job_ids"][0]
    line = gw.audit_for(invoke["request_id"])[0]
    assert (line["route"], line["decision"], line["upstream_status"], line["workspace"]) == (
        "jobs.invoke_scorer", "allow", 200, "team-a"), line
    assert (line["tenant"], line["subject"], line["roles"]) == ("team-a", "editor-user", ["editor"]), line
    # The UI polled the job through the gateway until MLflow's job runner finished it, and said so.
    assert result["jobs"] == {job: {"http_status": 200, "status": "SUCCEEDED", "job_name": "invoke_scorer"}}, result
    assert result["banner"] == f'Judge "{JUDGE}" completed successfully.' and not result["error_shown"], result
    polls = [x for x in gw.audit_lines_settled() if x["route"] == "jobs.get" and x["subject"] == "editor-user"]
    assert polls and all(x["decision"] == "allow" for x in polls), polls
    # The judge called team-a's endpoint (its model, with its key) about team-a's traces ...
    asked = model.seen[calls:]
    assert asked and all(x["key"] == ModelServer.GOOD_KEY for x in asked), asked
    assert judged["marker"] in json.dumps([x["body"] for x in asked])
    # ... and wrote its verdict on each of them.
    a = Caller(gw, tenant="team-a", subject="alice")
    for trace in judged["traces"]:
        info = a.get(f"{R3}/traces/{trace}").json()["trace"]["trace_info"]
        verdicts = [x["feedback"]["value"] for x in info.get("assessments", []) if x.get("assessment_name") == JUDGE]
        assert verdicts == ["yes"], info
