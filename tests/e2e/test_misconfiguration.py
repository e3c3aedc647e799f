"""Misconfiguration reaches people fast (issue 35, item 4), under real `spin up` with the real
`oidc-provider` and the real MLflow client (with the project's auth plugin, default retry
settings):

* an issuer spelled `localhost` while the IdP calls itself `127.0.0.1`: `/readyz` says
  `"issuer": "mismatch"` and logs one line naming `oidc_issuer` and both values; the client shows
  the error within 10 s (501: not among the statuses MLflow's client retries for minutes);
* MLflow unreachable: the operator lines of a request and of `/readyz` name MLflow's URL.

Neither depends on the isolation mode (the gateways here pin `tenant_isolation=tag`, and both
answers come before any workspace step): mode_independent, run once
(harness/selection.py)."""

import time

import pytest
import requests

from conftest import Caller, Gateway, OidcProvider, environment, free_port, unique, wait_until

SECRET = "misconfiguration-machine-secret-0123456789"
MACHINE = {"client_id": "svc-team-a", "client_secret": SECRET, "grant_types": ["client_credentials"],
           "response_types": [], "redirect_uris": [], "tenant_id": "team-a", "roles": ["editor"]}


def not_ready_lines(gw: Gateway) -> list[str]:
    return [l for l in gw.log_text().splitlines() if "not ready:" in l]


@pytest.fixture(scope="module")
def idp(workdir):
    p = OidcProvider(workdir / "idp", [MACHINE], ttl=300).start()
    yield p
    p.stop()


def test_an_issuer_the_idp_does_not_call_itself_is_reported_at_once(workdir, mlflow_server, idp):
    wrong = f"http://localhost:{idp.port}"
    gw = Gateway(workdir / "gw-issuer", mlflow_server.url,
                 idp.gateway_vars(oidc_issuer=wrong, idp_origin=wrong, tenant_isolation="tag")).start()
    try:
        r = requests.get(gw.url + "/readyz", timeout=60)
        assert r.status_code == 503, r.text
        assert r.json()["issuer"] == "mismatch" and r.json()["mlflow"] == "ok", r.text
        wait_until(lambda: not_ready_lines(gw), "the not-ready line", timeout=20)
        (line,) = not_ready_lines(gw)
        assert "oidc_issuer" in line and wrong in line and idp.issuer in line, line

        # The MLflow client, as a user configures it (the IdP's real issuer), default retries.
        env = idp.plugin_env("svc-team-a", SECRET)
        with environment({**env, "MLFLOW_TRACKING_URI": gw.url}):
            import mlflow
            from mlflow.exceptions import MlflowException

            mlflow.set_tracking_uri(gw.url)
            started = time.monotonic()
            with pytest.raises(MlflowException) as e:
                mlflow.MlflowClient().search_experiments(max_results=1)
            took = time.monotonic() - started
        assert took < 10, f"the client took {took:.1f} s to show the error"
        assert "gateway configuration is invalid" in str(e.value), str(e.value)
        # The client's message carries the error id; the operator line with that id names the fix.
        audit = [a for a in gw.audit_lines_settled() if a.get("reason") == "config_invalid"]
        assert audit and {a["status"] for a in audit} == {501}, audit
        rid = audit[-1]["request_id"]
        assert rid in str(e.value)
        wait_until(lambda: any(rid in l and "oidc_issuer" in l and idp.issuer in l
                               for l in gw.log_text().splitlines()), "the request's operator line", timeout=20)
        print(f"MEASURE client error with a wrong issuer: {took:.2f} s")
    finally:
        gw.stop()


def test_mlflow_unreachable_lines_name_its_url(workdir):
    closed = f"http://127.0.0.1:{free_port()}"
    gw = Gateway(workdir / "gw-unreachable", closed, {"tenant_isolation": "tag"}).start()
    try:
        r = Caller(gw, tenant=unique("team"), subject="alice").get("/api/2.0/mlflow/experiments/search")
        assert r.status_code in (502, 503), r.text
        assert closed not in r.text
        wait_until(lambda: any(closed in l and "target_base_url" in l for l in gw.log_text().splitlines()),
                   "an operator line naming MLflow's URL", timeout=20)
        r = requests.get(gw.url + "/readyz", timeout=60)
        assert r.status_code == 503 and r.json()["mlflow"] == "unavailable", r.text
        wait_until(lambda: not_ready_lines(gw), "the not-ready line", timeout=20)
        (line,) = not_ready_lines(gw)
        assert f"MLflow at {closed}" in line and "target_base_url" in line, line
    finally:
        gw.stop()
