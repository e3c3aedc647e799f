"""Store-level isolation (issue 19): each tenant an MLflow workspace pinned by the gateway, with
the real MLflow client against a real `mlflow server --enable-workspaces`. What users see differ
by mode (names per tenant vs global) and is asserted for the run's mode; the workspace mechanics
(pinning, provisioning, the workspace API, refusing an MLflow without workspaces) are
workspace-mode tests."""

import uuid

import pytest
import requests
from mlflow.exceptions import MlflowException

from conftest import WORKSPACES, Caller, Gateway, MlflowServer, unique

workspace_only = pytest.mark.skipif(not WORKSPACES, reason="workspace mode only (E2E_ISOLATION=workspace)")


def tenant() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


def test_two_tenants_can_both_name_things_churn(gw, isolation):
    """An experiment, a registered model and a prompt called the same in two tenants: in
    workspace mode each tenant has its own, sees only its own; in tag mode names are global and
    the second tenant is told the name is taken. (Within one workspace a prompt cannot share a
    registered model's name: MLflow keeps both in one name space, so the prompt is `<name>-p`.)"""
    a, b = Caller(gw, tenant=tenant()), Caller(gw, tenant=tenant())
    name = unique("churn")
    prompt = name + "-p"
    with a.mlflow() as mlflow:
        exp_a = mlflow.create_experiment(name)
        mlflow.MlflowClient().create_registered_model(name)
        mlflow.genai.register_prompt(name=prompt, template="a: {{x}}")
    with b.mlflow() as mlflow:
        if isolation == "workspace":
            exp_b = mlflow.create_experiment(name)
            assert exp_b != exp_a
            mlflow.MlflowClient().create_registered_model(name)
            mlflow.genai.register_prompt(name=prompt, template="b: {{x}}")
            assert mlflow.get_experiment_by_name(name).experiment_id == exp_b
            assert mlflow.genai.load_prompt(f"prompts:/{prompt}/1", cache_ttl_seconds=0).template == "b: {{x}}"
            assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == [name]
            assert [p.name for p in mlflow.genai.search_prompts()] == [prompt]
        else:
            with pytest.raises(MlflowException, match="already exists"):
                mlflow.create_experiment(name)
            with pytest.raises(MlflowException, match="already exists"):
                mlflow.MlflowClient().create_registered_model(name)
            with pytest.raises(MlflowException, match="already exists"):
                mlflow.genai.register_prompt(name=prompt, template="b: {{x}}")
    with a.mlflow() as mlflow:
        assert mlflow.get_experiment_by_name(name).experiment_id == exp_a
        assert mlflow.genai.load_prompt(f"prompts:/{prompt}/1", cache_ttl_seconds=0).template == "a: {{x}}"
        assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == [name]
        assert [e.experiment_id for e in mlflow.search_experiments()] == [exp_a]


def test_start_run_without_an_experiment_says_what_to_do(gw, monkeypatch):
    """MLflow has no per-workspace Default experiment; the client's fallback (experiment 0)
    belongs to no tenant, and the refusal tells the user to set an experiment."""
    import mlflow.tracking.fluent as fluent

    # A fresh client process: no experiment chosen by an earlier test in this one.
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    with Caller(gw, tenant=tenant()).mlflow() as mlflow:
        with pytest.raises(MlflowException) as e:
            mlflow.start_run()
        assert "Default experiment" in str(e.value) and "set_experiment" in str(e.value)
        mlflow.set_experiment(unique("then-it-works"))
        with mlflow.start_run():
            mlflow.log_metric("m", 1.0)



def audit_reason(gw, r) -> str:
    return gw.audit_for(r.headers["x-request-id"])[0]["reason"]


@workspace_only
def test_a_client_chosen_workspace_selects_but_never_opens_another_tenants_data(gw, mlflow_server, monkeypatch):
    """The workspace header is MLflow's own selector (issue 34): a's own workspace selects it; b's
    workspace is only visited (no role there, nothing shared: nothing of b's is visible and
    nothing of a's either); MLflow's `default` and names that are no tenant's are refused."""
    a, b = Caller(gw, tenant=tenant()), Caller(gw, tenant=tenant())
    with b.mlflow() as mlflow:
        secret = mlflow.create_experiment(unique("b-private"))
    with a.mlflow() as mlflow:
        mine = mlflow.create_experiment(unique("a-own"))
    search = "/api/2.0/mlflow/experiments/search"
    # Every spelling MLflow would honour.
    for header in ["X-MLFLOW-WORKSPACE", "x-mlflow-workspace", "X_MLFLOW_WORKSPACE"]:
        r = a.get(search, params={"max_results": 100}, headers={header: a.tenant})
        assert r.status_code == 200, r.text
        assert [e["experiment_id"] for e in r.json().get("experiments", [])] == [mine]
        r = a.get(search, params={"max_results": 100}, headers={header: b.tenant})
        assert r.status_code == 200, r.text
        assert r.json().get("experiments", []) == [], (header, r.text)
        r = a.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": secret},
                  headers={header: b.tenant})
        assert r.status_code in (403, 404), r.text
        # A visitor writes nothing there.
        r = a.post("/api/2.0/mlflow/experiments/create", {"name": unique("intruder")},
                   headers={header: b.tenant})
        assert r.status_code == 403 and "no role" in r.json()["message"], r.text
        for value in ["default", "not a name"]:
            r = a.get(search, params={"max_results": 100}, headers={header: value})
            assert r.status_code == 403 and audit_reason(gw, r) == "workspace_not_member", r.text
    # Two spellings naming different workspaces: MLflow would read one of them; refused.
    r = a.get(search, params={"max_results": 100},
              headers={"X-MLFLOW-WORKSPACE": a.tenant, "X_MLFLOW_WORKSPACE": b.tenant})
    assert r.status_code == 400 and audit_reason(gw, r) == "workspace_header_invalid", r.text
    # The real client with MLFLOW_WORKSPACE set to another tenant's workspace: it checks
    # server-info (workspaces on), sends the header, and sees nothing there.
    monkeypatch.setenv("MLFLOW_WORKSPACE", b.tenant)
    with a.mlflow() as mlflow:
        assert [e.experiment_id for e in mlflow.search_experiments()] == []
    monkeypatch.setenv("MLFLOW_WORKSPACE", a.tenant)
    with a.mlflow() as mlflow:
        assert [e.experiment_id for e in mlflow.search_experiments()] == [mine]
    # What MLflow holds: a's experiment is in a's workspace, b's in b's.
    direct = f"{mlflow_server.url}/api/2.0/mlflow/experiments/get"
    got = requests.get(direct, params={"experiment_id": mine},
                       headers={"X-MLFLOW-WORKSPACE": a.tenant}, timeout=30)
    assert got.status_code == 200
    got = requests.get(direct, params={"experiment_id": mine},
                       headers={"X-MLFLOW-WORKSPACE": b.tenant}, timeout=30)
    assert got.status_code == 404


@workspace_only
def test_the_workspace_api_shows_only_the_own_workspace(gw):
    a = Caller(gw, tenant=tenant())
    b = Caller(gw, tenant=tenant())
    b.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1})  # b's is provisioned
    for mount in ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"]:
        r = a.get(f"{mount}/workspaces")
        assert r.status_code == 200, r.text
        assert [w["name"] for w in r.json()["workspaces"]] == [a.tenant]
        assert a.get(f"{mount}/workspaces/{a.tenant}").json()["workspace"]["name"] == a.tenant
        for other in [b.tenant, "default", "nope-" + uuid.uuid4().hex[:6]]:
            r = a.get(f"{mount}/workspaces/{other}")
            assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
        # Tenants never administer workspaces: create, update, delete are refused.
        for method, path, body in [
            ("POST", "workspaces", {"name": "mine-" + uuid.uuid4().hex[:6]}),
            ("POST", "workspaces", {"name": b.tenant, "default_artifact_root": "/tmp/x"}),
            ("PATCH", f"workspaces/{a.tenant}", {"description": "x"}),
            ("DELETE", f"workspaces/{b.tenant}", None),
        ]:
            r = a.request(method, f"{mount}/{path}", json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
    info = a.get("/api/3.0/mlflow/server-info").json()
    assert info["workspaces_enabled"] is True


@workspace_only
def test_artifacts_of_a_tenant_live_in_its_workspace_tree(gw, mlflow_server):
    a = Caller(gw, tenant=tenant())
    with a.mlflow() as mlflow:
        mlflow.set_experiment(unique("ws-artifacts"))
        with mlflow.start_run():
            mlflow.log_text("hello", "notes/hello.txt")
    root = mlflow_server.workdir / "artifacts"
    found = list(root.rglob("hello.txt"))
    assert found, "artifact not written"
    assert all(f"workspaces/{a.tenant}/" in str(p.relative_to(root)) + "/" for p in found), found


@workspace_only
def test_manual_provisioning_refuses_until_an_operator_creates_the_workspace(workdir, mlflow_server):
    gw = Gateway(workdir / "gw-manual", mlflow_server.url,
                 {"auth_mode": "off", "workspace_provisioning": "manual"}).start()
    try:
        t = tenant()
        caller = Caller(gw, tenant=t)
        r = caller.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                       headers={"X-Request-ID": "manual-" + t})
        assert r.status_code == 403, r.text
        assert "workspace_provisioning=manual" in r.json()["message"]
        assert gw.audit_for("manual-" + t)[0]["reason"] == "workspace_missing"
        created = requests.post(f"{mlflow_server.url}/api/3.0/mlflow/workspaces",
                                json={"name": t}, timeout=30)
        assert created.status_code == 201, created.text
        r = caller.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1})
        assert r.status_code == 200, r.text
    finally:
        gw.stop()


@workspace_only
def test_an_mlflow_without_workspaces_is_never_served_open(workdir):
    """Workspace mode in front of an MLflow started without --enable-workspaces: readiness
    fails, tenant requests get 501 (a lasting misconfiguration the MLflow client shows at once
    instead of retrying, docs/audit.md) and nothing reaches MLflow; the log says what to fix."""
    plain = MlflowServer(workdir / "mlflow-plain", workspaces=False).start()
    gw = Gateway(workdir / "gw-plain", plain.url, {"auth_mode": "off"}).start()
    try:
        r = requests.get(gw.url + "/readyz", timeout=30)
        assert r.status_code == 503
        assert r.json()["workspaces"] == "unavailable" and r.json()["isolation"] == "workspace"
        caller = Caller(gw, tenant=tenant())
        r = caller.post("/api/2.0/mlflow/experiments/create", {"name": unique("open")},
                        headers={"X-Request-ID": "plain-1"})
        assert r.status_code == 501, r.text
        assert "--enable-workspaces" in r.text or "workspaces enabled" in r.text, r.text
        assert gw.audit_for("plain-1")[0]["reason"] == "workspaces_disabled"
        listed = requests.get(f"{plain.url}/api/2.0/mlflow/experiments/search",
                              params={"max_results": 100}, timeout=30).json()
        assert [e["name"] for e in listed["experiments"]] == ["Default"]
        assert "--enable-workspaces" in gw.log_text()
    finally:
        gw.stop()
        plain.stop()


def test_audit_line_names_the_workspace(gw, isolation):
    t = tenant()
    Caller(gw, tenant=t).get("/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                             headers={"X-Request-ID": "ws-audit-" + t})
    line = gw.audit_for("ws-audit-" + t)[0]
    if isolation == "workspace":
        assert line["workspace"] == t
    else:
        assert "workspace" not in line
