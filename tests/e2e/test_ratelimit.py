"""Rate limits (issue 22): per subject and per tenant, reads and writes apart, counted with the
key-value store's atomic increment, on SQLite (the run's store) and on Redis (Spin keeps
counters there as decimal strings). Over the limit: 429 in MLflow's error shape with
`Retry-After`, nothing forwarded; the real MLflow client retries and every point arrives."""

import uuid

import pytest

from conftest import Caller, Gateway

LIMITS = {"auth_mode": "off", "rate_limit_subject_writes": "3", "rate_limit_window_seconds": "5"}


def writes_until_limited(c: Caller, exp: str, attempts: int = 40):
    """Writes as `c` until one is refused; returns that response and the request ids sent."""
    run = c.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp})
    assert run.status_code == 200, run.text
    run_id = run.json()["run"]["info"]["run_id"]
    for step in range(attempts):
        rid = f"rl-{uuid.uuid4().hex}"
        r = c.post("/api/2.0/mlflow/runs/log-metric",
                   {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": step},
                   headers={"X-Request-ID": rid})
        if r.status_code != 200:
            return r, rid
    pytest.fail(f"no write of {attempts} was limited")


def own_experiment(gw: Gateway, tenant: str) -> str:
    r = Caller(gw, tenant=tenant, subject="setup").post(
        "/api/2.0/mlflow/experiments/create", {"name": f"rl-{uuid.uuid4().hex[:8]}"})
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def check_limited(gw: Gateway):
    exp = own_experiment(gw, "team-a")
    r, rid = writes_until_limited(Caller(gw, tenant="team-a", subject="looper"), exp)
    assert r.status_code == 429, r.text
    assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "limit of 3 write requests per 5 s" in r.json()["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 5
    line = gw.audit_for(rid)[0]
    assert (line["status"], line["reason"], line["upstream_status"]) == (429, "rate_limited", None)
    # Reads are counted apart; another subject of the tenant has its own count.
    assert Caller(gw, tenant="team-a", subject="looper").get(
        "/api/2.0/mlflow/experiments/get", params={"experiment_id": exp}).status_code == 200
    assert Caller(gw, tenant="team-a", subject="other").post(
        "/api/2.0/mlflow/runs/create", {"experiment_id": exp}).status_code == 200


def test_over_the_limit_is_429_with_retry_after(workdir, mlflow_server):
    gw = Gateway(workdir / "gw-limits", mlflow_server.url, LIMITS).start()
    try:
        check_limited(gw)
    finally:
        gw.stop()


def test_limits_count_on_redis_too(workdir, mlflow_server, redis_server):
    port, _ = redis_server
    gw = Gateway(workdir / "gw-limits-redis", mlflow_server.url, LIMITS, kv="redis",
                 redis_url=f"redis://127.0.0.1:{port}").start()
    try:
        check_limited(gw)
    finally:
        gw.stop()


def test_the_mlflow_client_backs_off_and_every_point_arrives(workdir, mlflow_server, monkeypatch):
    gw = Gateway(workdir / "gw-limits-client", mlflow_server.url, LIMITS).start()
    try:
        # The client's own retry policy (the suite turns it off elsewhere): 429 is one of its
        # transient codes, and it waits for Retry-After.
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "10")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        c = Caller(gw, tenant="team-a", subject="trainer")
        with c.mlflow() as mlflow:
            mlflow.set_experiment(f"rl-client-{uuid.uuid4().hex[:8]}")
            with mlflow.start_run() as run:
                for step in range(10):
                    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(10))
        limited = [a for a in gw.audit_lines_settled() if a.get("subject") == "trainer" and a["status"] == 429]
        assert limited and all(a["reason"] == "rate_limited" for a in limited)
    finally:
        gw.stop()
