"""Walking skeleton (dev mode, auth_mode=off): the real MLflow client and plain HTTP through the
real gateway under `spin up` to a real MLflow, with a recording pass-through in front of MLflow
to prove what MLflow received."""

import json
import re
import uuid

import pytest
import requests

from conftest import Caller, Gateway, MlflowServer, unique, wait_until

SECRET = "Bearer secret-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def gw(workdir, proxy):
    g = Gateway(workdir / "gw", proxy.url, {"auth_mode": "off"}).start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def a_run(a):
    """team-a's experiment and run, created and logged to with the real MLflow client."""
    with a.mlflow() as mlflow:
        exp_id = mlflow.set_experiment(unique("skeleton-a")).experiment_id
        with mlflow.start_run() as run:
            mlflow.log_param("lr", "0.1")
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.set_tag("stage", "dev")
        return exp_id, run.info.run_id


def test_healthz_and_readyz(gw):
    assert requests.get(gw.url + "/healthz").json() == {"status": "ok"}
    r = requests.get(gw.url + "/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["mlflow"] == "ok"


def test_same_tenant_reads_back_with_the_client(a, a_run):
    exp_id, run_id = a_run
    with a.mlflow() as mlflow:
        run = mlflow.get_run(run_id)
        assert run.data.params == {"lr": "0.1"}
        assert run.data.tags["stage"] == "dev"
        assert run.data.tags["tenant"] == "team-a"
        # Attribution integrity: user_id and mlflow.user are the authenticated subject.
        assert run.info.user_id == "alice"
        assert run.data.tags["mlflow.user"] == "alice"
        hist = mlflow.MlflowClient().get_metric_history(run_id, "loss")
        assert [m.step for m in hist] == [0, 1, 2, 3, 4]
        found = mlflow.search_runs(experiment_ids=[exp_id], output_format="list")
        assert [r.info.run_id for r in found] == [run_id]


def test_other_tenant_cannot_read_or_search(a_run, b):
    exp_id, run_id = a_run
    import mlflow.exceptions

    with b.mlflow() as mlflow:
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            mlflow.get_run(run_id)
        assert "PERMISSION_DENIED" in str(e.value) or "403" in str(e.value)
        with pytest.raises(mlflow.exceptions.MlflowException):
            mlflow.search_runs(experiment_ids=[exp_id], output_format="list")
        names = [x.experiment_id for x in mlflow.search_experiments()]
        assert exp_id not in names
    r = b.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    assert r.status_code == 403
    assert r.json()["error_code"] == "PERMISSION_DENIED"
    rid = r.headers["x-request-id"]
    assert rid in r.json()["message"]
    # The same on the ajax mirror.
    assert b.get("/ajax-api/2.0/mlflow/runs/get", params={"run_id": run_id}).status_code == 403


def test_unknown_routes_refused_and_never_reach_mlflow(a, proxy):
    marker = uuid.uuid4().hex
    for method, path in [
        ("GET", f"/api/3.0/mlflow/scorers/online-config?x={marker}"),
        ("POST", f"/ajax-api/3.0/jobs/search?x={marker}"),
        ("GET", f"/admin/{marker}"),
        ("DELETE", f"/api/2.0/mlflow/runs/get?run_id={marker}"),
        ("GET", f"/ajax-api/3.0/mlflow/assistant/sessions?x={marker}"),
    ]:
        r = a.request(method, path)
        assert r.status_code == 403, (path, r.text)
        body = r.json()
        assert body["error_code"] == "PERMISSION_DENIED"
        assert "policy does not permit" in body["message"]
    assert not [rec for rec in proxy.records if marker in rec["path"]]


def test_credentials_identity_and_spoofable_headers_never_reach_mlflow(a, proxy, gw, isolation):
    marker = uuid.uuid4().hex
    r = a.get("/api/2.0/mlflow/experiments/search", params={"max_results": "5", "filter": f"name = '{marker}'"},
              headers={"Authorization": SECRET, "X-Forwarded-For": "8.8.8.8",
                       "X-Forwarded-Host": "evil", "X-MLFLOW-WORKSPACE": "team-a", "X_MLFLOW_WORKSPACE": "team-a",
                       "Origin": "http://evil", "Cookie": "session=1", "X-Request-ID": "client-" + marker})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "client-" + marker
    recs = [rec for rec in proxy.records if marker in rec["path"]]
    assert len(recs) == 1
    h = recs[0]["headers"]
    for gone in ["authorization", "cookie", "x-forwarded-host", "origin", "x-tenant", "x-subject",
                 "x_mlflow_workspace"]:
        assert gone not in h, gone
    # The workspace header: exactly the caller's own in workspace mode, none in tag mode.
    pinned = [v for k, v in recs[0]["header_list"] if k.replace("_", "-") == "x-mlflow-workspace"]
    assert pinned == (["team-a"] if isolation == "workspace" else [])
    assert [v for k, v in recs[0]["header_list"] if k == "x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-request-id"] == "client-" + marker
    # The token is nowhere in the gateway's output either (audit, logs).
    assert SECRET.split()[1] not in gw.log_text()
    # Spellings of the workspace header naming different workspaces: refused, never forwarded.
    r = a.get("/api/2.0/mlflow/experiments/search", params={"filter": f"name = '{marker}-2'"},
              headers={"X-MLFLOW-WORKSPACE": "team-a", "X_MLFLOW_WORKSPACE": "ws2"})
    assert r.status_code == 400, r.text
    assert not [rec for rec in proxy.records if f"{marker}-2" in rec["path"]]


def test_request_id_generated_when_absent_or_insane(a):
    r = a.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"},
              headers={"X-Request-ID": "bad id with spaces"})
    rid = r.headers["x-request-id"]
    assert rid != "bad id with spaces" and re.fullmatch(r"[0-9a-f]{32}", rid)


def test_dev_identity_header_rules(gw, a_run):
    _, run_id = a_run
    none = Caller(gw)
    r = none.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    assert r.status_code == 400 and "X-Tenant" in r.json()["message"]
    r = Caller(gw, tenant="team'a").get("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    assert r.status_code == 400
    # Authorization is ignored in dev mode: identity still comes from X-Tenant.
    r = Caller(gw, tenant="team-a", extra={"Authorization": SECRET}).get(
        "/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    assert r.status_code == 200


def test_runs_create_tag_rules(a, a_run):
    exp_id, _ = a_run
    r = a.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp_id, "tags": {"k": "v"}})
    assert r.status_code == 200, r.text
    tags = {t["key"]: t["value"] for t in r.json()["run"]["data"]["tags"]}
    assert tags["k"] == "v" and tags["tenant"] == "team-a"
    r = a.post("/api/2.0/mlflow/runs/create",
               {"experiment_id": exp_id, "tags": [{"key": "tenant", "value": "team-b"}]})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = a.post("/api/2.0/mlflow/runs/create",
               {"experiment_id": exp_id, "tags": [{"key": "tenant", "value": "team-a"}]})
    assert r.status_code == 200


def test_runs_search_gets_the_tenant_clause(a, a_run, proxy):
    exp_id, run_id = a_run
    r = a.post("/api/2.0/mlflow/runs/search",
               {"experiment_ids": [exp_id], "filter": "params.lr = '0.1'"})
    assert r.status_code == 200
    assert run_id in [x["info"]["run_id"] for x in r.json()["runs"]]
    sent = [json.loads(rec["body"]) for rec in proxy.records
            if rec["path"].endswith("/runs/search") and b"params.lr" in rec["body"]]
    assert sent[-1]["filter"] == "tags.`tenant` = 'team-a' AND params.lr = '0.1'"
    # An attempt to widen the filter cannot escape the prepended clause.
    r = a.post("/api/2.0/mlflow/runs/search",
               {"experiment_ids": [exp_id], "filter": "tags.tenant = 'team-b' OR 1=1"})
    assert r.status_code == 400


@pytest.mark.parametrize("raw,reason", [
    (b'{"experiment_ids": ["1"], "experiment_ids": ["2"]}', "duplicate"),
    (b'{"experimentIds": ["1"]}', "camelCase"),
    (b'"{\\"experiment_ids\\": [\\"1\\"]}"', "JSON object"),
    (b'{"experiment_ids": ["1"]', "valid JSON"),
])
def test_parser_disagreements_are_refused(a, raw, reason):
    r = a.request("POST", "/api/2.0/mlflow/runs/search", data=raw,
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"]


def test_query_and_get_body_ambiguities_are_refused(a, a_run, b):
    _, run_id = a_run
    r = a.get(f"/api/2.0/mlflow/runs/get?run_id={run_id}&run_id=other")
    assert r.status_code == 400 and "repeated" in r.json()["message"]
    # MLflow reads a GET body when there is no query string: refused, not ignored.
    r = b.request("GET", "/api/2.0/mlflow/runs/get", data=json.dumps({"run_id": run_id}),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = a.get(f"/api/2.0/mlflow/runs/get?run_id={run_id}&run_uuid=0000")
    assert r.status_code == 400
    for path in ["/api/2.0/mlflow/runs/%67et", "/api/2.0/mlflow%2Fruns/get",
                 "/api/2.0/mlflow//runs/get", "/api/2.0/mlflow/runs/get/"]:
        status, body = a.raw("GET", f"{path}?run_id={run_id}")
        assert status == 400, (path, body)
        assert json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE"


def test_one_audit_line_per_request(gw, a, a_run):
    _, run_id = a_run
    rid = "audit-" + uuid.uuid4().hex
    a.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}, headers={"X-Request-ID": rid})
    lines = gw.audit_for(rid)
    assert len(lines) == 1
    line = lines[0]
    assert line["decision"] == "allow" and line["reason"] == "allowed"
    assert line["tenant"] == "team-a" and line["subject"] == "alice"
    assert line["route"] == "runs.get" and line["action"] == "read"
    assert line["status"] == 200 and line["upstream_status"] == 200
    assert line["auth_mode"] == "off" and line["method"] == "GET"
    rid2 = "audit-" + uuid.uuid4().hex
    Caller(gw, tenant="team-b").get("/api/2.0/mlflow/runs/get", params={"run_id": run_id},
                                    headers={"X-Request-ID": rid2})
    deny = gw.audit_for(rid2)
    assert len(deny) == 1 and deny[0]["decision"] == "deny"
    assert deny[0]["reason"] == "tenant_mismatch" and deny[0]["upstream_status"] is None


def test_upstream_down_is_502_and_timeout_is_504(workdir, a_run):
    """Real faults: MLflow stopped (connection refused), and a listener that never answers."""
    import socket

    mlf = MlflowServer(workdir / "mlflow-fault").start()
    gw = Gateway(workdir / "gw-fault", mlf.url, {"auth_mode": "off", "ownership_cache_seconds": "0"}).start()
    try:
        c = Caller(gw, tenant="team-a")
        assert c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        mlf.stop()
        r = c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"})
        assert r.status_code == 502, r.text
        body = r.json()
        assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "127.0.0.1" not in body["message"] and "refused" not in body["message"].lower()
        assert requests.get(gw.url + "/readyz").status_code == 503
    finally:
        gw.stop()
        mlf.stop()

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    port = hang.getsockname()[1]
    gw = Gateway(workdir / "gw-hang", f"http://127.0.0.1:{port}",
                 {"auth_mode": "off", "request_timeout_seconds": "2"}).start()
    try:
        r = Caller(gw, tenant="team-a").get("/api/2.0/mlflow/experiments/search",
                                            params={"max_results": "1"})
        assert r.status_code == 504, r.text
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    finally:
        gw.stop()
        hang.close()


def test_bad_target_base_url_is_a_clear_config_error(workdir, mlflow_server):
    gw = Gateway(workdir / "gw-badcfg", mlflow_server.url,
                 {"auth_mode": "off", "target_base_url": "http://10.1.2.3:5000"}).start()
    try:
        r = Caller(gw, tenant="team-a").get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 501  # not retried by the MLflow client (docs/audit.md)
        body = r.json()
        rid = r.headers["x-request-id"]
        assert body["error_code"] == "INTERNAL_ERROR" and rid in body["message"]
        assert "10.1.2.3" not in r.text
        wait_until(lambda: "target_base_url" in gw.log_text() and rid in gw.log_text(),
                   "config error log line", timeout=20)
        # Health stays up (liveness), readiness fails.
        assert requests.get(gw.url + "/healthz").status_code == 200
        assert requests.get(gw.url + "/readyz").status_code == 501
    finally:
        gw.stop()


def test_oidc_mode_without_issuer_never_allows(workdir, mlflow_server):
    gw = Gateway(workdir / "gw-oidc-unset", mlflow_server.url, {"auth_mode": "oidc"}).start()
    try:
        r = Caller(gw, tenant="team-a").get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 501
        wait_until(lambda: "oidc_issuer" in gw.log_text(), "log names oidc_issuer", timeout=20)
    finally:
        gw.stop()


def test_demo_script_prints_success(gw):
    import os
    import subprocess

    from conftest import REPO

    out = subprocess.run([str(REPO / "demo" / "run_demo.sh")], capture_output=True, text=True,
                         env={**os.environ, "GATEWAY_URL": gw.url}, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "SUCCESS"
