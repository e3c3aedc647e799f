"""OIDC mode under real `spin up`: tokens minted here with real keys, served from a real JWKS
endpoint on 127.0.0.1, used by the real MLflow client (MLFLOW_TRACKING_TOKEN) and curl-style
HTTP. Faults are real: the JWKS server is stopped, `spin up` restarted on the same key-value
store, the Redis behind a key-value store stopped."""

import time
import uuid

import jwt as pyjwt
import pytest
import requests

from conftest import (Caller, Gateway, IdP, SigningKey, unique,
                      wait_until)


@pytest.fixture(scope="module")
def idp():
    i = IdP()
    i.keys = [SigningKey("k-rsa-1", "RS256"), SigningKey("k-ec-1", "ES256"), SigningKey("k-ed-1", "EdDSA")]
    i.start()
    yield i
    i.stop()


@pytest.fixture(scope="module")
def gw(workdir, proxy, idp):
    g = Gateway(workdir / "gw", proxy.url, idp.gateway_vars()).start()
    yield g
    g.stop()


def test_client_with_tracking_token_and_tenant_isolation(gw, idp, proxy):
    a = Caller(gw, token=idp.mint(idp.keys[0], tenant="team-a", sub="alice"))
    b = Caller(gw, token=idp.mint(idp.keys[1], tenant="team-b", sub="bob"))
    with a.mlflow() as mlflow:
        exp_id = mlflow.set_experiment(unique("oidc-a")).experiment_id
        with mlflow.start_run() as run:
            mlflow.log_metric("acc", 0.9)
        got = mlflow.get_run(run.info.run_id)
        assert got.data.metrics["acc"] == 0.9
        assert got.info.user_id == "alice"
        assert got.data.tags["tenant"] == "team-a"
    import mlflow.exceptions

    with b.mlflow() as mlflow:
        with pytest.raises(mlflow.exceptions.MlflowException):
            mlflow.get_run(run.info.run_id)
        assert exp_id not in [e.experiment_id for e in mlflow.search_experiments()]
    # The bearer token never reached MLflow.
    assert proxy.records
    assert all("authorization" not in rec["headers"] for rec in proxy.records)


@pytest.mark.parametrize("key_index", [0, 1, 2], ids=["RS256", "ES256", "EdDSA"])
def test_each_algorithm_verifies_in_the_component(gw, idp, key_index):
    c = Caller(gw, token=idp.mint(idp.keys[key_index], tenant="team-a"))
    assert c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200


def test_missing_and_bad_tokens_are_401_with_reason(gw, idp):
    r = Caller(gw).get("/api/2.0/mlflow/experiments/search")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="mlflow", error="invalid_token"'
    assert r.json()["error_code"] == "UNAUTHENTICATED"
    assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "token_missing"
    cases = {
        "token_expired": idp.mint(idp.keys[0], lifetime=-3600),
        "wrong_audience": idp.mint(idp.keys[0], aud="other"),
        "wrong_issuer": idp.mint(idp.keys[0], iss=idp.origin + "/realms/other"),
        "token_malformed": "not.a.jwt",
    }
    forged = SigningKey("k-rsa-1", "RS256")  # same kid, key not in the JWKS
    cases["bad_signature"] = idp.mint(forged)
    for reason, token in cases.items():
        r = Caller(gw, token=token).get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 401, (reason, r.text)
        line = gw.audit_for(r.headers["x-request-id"])[0]
        assert line["reason"] == reason
        assert line["decision"] == "deny"
        assert token not in gw.log_text()


def test_identity_headers_refused_in_oidc_mode(gw, idp):
    token = idp.mint(idp.keys[0], tenant="team-a")
    for h in ["X-Tenant", "X-Subject"]:
        r = Caller(gw, token=token, extra={h: "team-b"}).get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 400, h
        assert "oidc" in r.json()["message"]


def test_tenant_claim_must_be_valid(gw, idp):
    # A list of tenants is valid (a member of several); a list with a bad id, or an empty one, is not.
    for bad in [None, "team a", ["team-a", "team a"], [], [7]]:
        r = Caller(gw, token=idp.mint(idp.keys[0], tenant=None, tenant_id=bad)).get(
            "/api/2.0/mlflow/experiments/search")
        assert r.status_code == 403, bad
        assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "tenant_claim_invalid"


def test_readyz_reports_signing_keys(gw):
    r = requests.get(gw.url + "/readyz")
    assert r.status_code == 200 and r.json()["signing_keys"] == "ok"


def test_key_rotation_and_refresh_rate_limit(workdir, mlflow_server):
    idp = IdP()
    idp.keys = [SigningKey("old", "RS256")]
    idp.start()
    gw = Gateway(workdir / "gw-rotate", mlflow_server.url,
                 idp.gateway_vars(jwks_min_refresh_seconds="0")).start()
    try:
        assert Caller(gw, token=idp.mint(idp.keys[0])).get(
            "/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        new = SigningKey("new", "RS256")
        token = idp.mint(new)
        assert Caller(gw, token=token).get("/api/2.0/mlflow/experiments/search").status_code == 401
        idp.keys.append(new)  # the IdP publishes the new key
        assert Caller(gw, token=token).get(
            "/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
    finally:
        gw.stop()
    # With the default min refresh interval, random kids cause no further fetches.
    gw = Gateway(workdir / "gw-ratelimit", mlflow_server.url, idp.gateway_vars()).start()
    try:
        assert Caller(gw, token=idp.mint(new)).get(
            "/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        before = idp.fetches
        for _ in range(5):
            r = Caller(gw, token=idp.mint(SigningKey(uuid.uuid4().hex, "RS256"))).get(
                "/api/2.0/mlflow/experiments/search")
            assert r.status_code == 401
            assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "unknown_kid"
        assert idp.fetches == before
    finally:
        gw.stop()
        idp.stop()


def test_verified_token_cache_never_outlives_token_or_key(workdir, mlflow_server):
    """A token's second use reuses its first full check (audit `token_check`); a key replaced
    under the same `kid`, a token past its `exp` and `token_cache_seconds=0` all go back to a
    full check, which refuses what it must."""
    idp = IdP()
    idp.keys = [SigningKey("k1", "RS256")]
    idp.start()
    search = ("/api/2.0/mlflow/experiments/search", {"max_results": "1"})

    def use(g, token):
        r = Caller(g, token=token).get(search[0], params=search[1])
        return r.status_code, g.audit_for(r.headers["x-request-id"])[0]

    gw = Gateway(workdir / "gw-tokcache", mlflow_server.url,
                 idp.gateway_vars(jwks_cache_seconds="0", jwks_min_refresh_seconds="0",
                                  clock_skew_seconds="0")).start()
    try:
        token = idp.mint(idp.keys[0], tenant="team-a", sub="carol", roles=("viewer",))
        seen = [use(gw, token) for _ in range(3)]
        assert [s for s, _ in seen] == [200, 200, 200]
        assert [a["token_check"] for _, a in seen] == ["verified", "cached", "cached"]
        assert {(a["tenant"], a["subject"], tuple(a["roles"])) for _, a in seen} == {("team-a", "carol", ("viewer",))}
        # The KV store holds the verdict, never the token.
        assert all(token.encode() not in f.read_bytes() for f in gw.workdir.glob("kv.db*"))

        # The IdP replaces the key under the same kid: the cached verdict dies with the old key.
        idp.keys = [SigningKey("k1", "RS256")]
        status, audit = use(gw, token)
        assert (status, audit["reason"]) == (401, "bad_signature")
        assert "token_check" not in audit

        # A cached verdict never outlives the token's exp.
        short = idp.mint(idp.keys[0], tenant="team-a", lifetime=3)
        exp = pyjwt.decode(short, options={"verify_signature": False})["exp"]
        assert [use(gw, short)[1]["token_check"] for _ in range(2)] == ["verified", "cached"]
        wait_until(lambda: time.time() > exp + 1.5, "the token to expire", timeout=15)
        status, audit = use(gw, short)
        assert (status, audit["reason"]) == (401, "token_expired")
    finally:
        gw.stop()
    off = Gateway(workdir / "gw-tokcache-off", mlflow_server.url,
                  idp.gateway_vars(token_cache_seconds="0")).start()
    try:
        token = idp.mint(idp.keys[0], tenant="team-a")
        assert [use(off, token)[1]["token_check"] for _ in range(2)] == ["verified", "verified"]
    finally:
        off.stop()
        idp.stop()


def test_keys_live_in_kv_idp_outage_and_cold_cache(workdir, mlflow_server):
    idp = IdP()
    idp.keys = [SigningKey("k1", "ES256")]
    idp.start()
    gw = Gateway(workdir / "gw-outage", mlflow_server.url, idp.gateway_vars()).start()
    c = lambda g: Caller(g, token=idp.mint(idp.keys[0]))  # noqa: E731
    try:
        assert c(gw).get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        idp.stop()
        assert c(gw).get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        # A new `spin up` on the same key-value store: the keys come from KV, not memory.
        gw.restart()
        assert c(gw).get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
    finally:
        gw.stop()
    cold = Gateway(workdir / "gw-cold", mlflow_server.url, idp.gateway_vars()).start()
    try:
        r = c(cold).get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 503, r.text
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert cold.audit_for(r.headers["x-request-id"])[0]["reason"] == "jwks_unavailable"
        assert requests.get(cold.url + "/readyz").status_code == 503
    finally:
        cold.stop()


def test_stale_keys_expire_and_malformed_jwks_never_replaces_good_keys(workdir, mlflow_server):
    idp = IdP()
    idp.keys = [SigningKey("k1", "RS256")]
    idp.start()
    gw = Gateway(workdir / "gw-stale", mlflow_server.url,
                 idp.gateway_vars(jwks_cache_seconds="0", jwks_min_refresh_seconds="0",
                                  jwks_max_stale_seconds="2")).start()
    token = idp.mint(idp.keys[0])
    try:
        assert Caller(gw, token=token).get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        idp.jwks_body = b'{"keys": "garbage"}'
        fetched_at = time.time()
        r = Caller(gw, token=token).get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"})
        assert r.status_code == 200, r.text  # the good cached keys stay
        idp.stop()
        # Past jwks_max_stale_seconds with the IdP down: fail closed.
        wait_until(lambda: time.time() > fetched_at + 4, "stale window to pass", timeout=10)
        r = Caller(gw, token=token).get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 503
    finally:
        gw.stop()


def test_jwks_uri_outside_idp_origin_is_a_config_error(workdir, mlflow_server, idp):
    gw = Gateway(workdir / "gw-badjwks", mlflow_server.url,
                 idp.gateway_vars(jwks_uri="http://127.0.0.2:1/certs")).start()
    try:
        r = Caller(gw, token=idp.mint(idp.keys[0])).get("/api/2.0/mlflow/experiments/search")
        assert r.status_code == 501  # not retried by the MLflow client (docs/audit.md)
        wait_until(lambda: "jwks_uri" in gw.log_text(), "log names jwks_uri", timeout=20)
    finally:
        gw.stop()



def test_redis_key_value_store_stopped_never_allows(workdir, proxy, idp, redis_server):
    """Redis behind the store stopped while the gateway runs. Spin 4.0.2's Redis store blocks the
    key-value call while it reconnects (a host behaviour the guest cannot time out), so the
    request must end in 503 or in a client timeout, and must never be forwarded or allowed."""
    port, redis = redis_server
    gw = Gateway(workdir / "gw-redis", proxy.url, idp.gateway_vars(), kv="redis",
                 redis_url=f"redis://127.0.0.1:{port}").start()
    try:
        c = Caller(gw, token=idp.mint(idp.keys[0], tenant="team-a"))
        assert c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        redis.stop()
        marker = uuid.uuid4().hex
        rid = "redis-down-" + marker
        try:
            r = requests.get(gw.url + "/api/2.0/mlflow/experiments/search",
                             params={"max_results": "1", "filter": f"name = '{marker}'"},
                             headers={**c.headers, "X-Request-ID": rid}, timeout=15)
            assert r.status_code == 503, r.text
        except requests.exceptions.ReadTimeout:
            pass
        assert not [rec for rec in proxy.records if marker in rec["path"]]
        assert not [a for a in gw.audit_lines_settled() if a["request_id"] == rid and a["decision"] == "allow"]
    finally:
        gw.stop()


def test_failing_key_value_store_is_503(workdir, mlflow_server, idp):
    """The SQLite file behind the default store is destroyed under a running gateway."""
    gw = Gateway(workdir / "gw-kv-corrupt", mlflow_server.url, idp.gateway_vars(), kv="spin").start()
    try:
        c = Caller(gw, token=idp.mint(idp.keys[0], tenant="team-a"))
        assert c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"}).status_code == 200
        with open(gw.workdir / "kv.db", "r+b") as f:
            f.write(b"not a database" * 1000)
        r = c.get("/api/2.0/mlflow/experiments/search", params={"max_results": "1"})
        assert r.status_code == 503, r.text
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "kv_unavailable"
    finally:
        gw.stop()
