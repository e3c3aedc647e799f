"""The token cache against the real oidc-provider (see conftest.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import jwt
import pytest
import requests

from conftest import RESOURCE, SECRET, Provider
from mlflow_gateway_auth import GatewayAuthConfig, GatewayAuthError, GatewayBearerAuth, TokenSource


def config(idp: Provider, secret: str = SECRET, **kw: object) -> GatewayAuthConfig:
    return GatewayAuthConfig(issuer=idp.issuer, client_id="svc-unit", client_secret=secret,
                             resource=RESOURCE, **kw)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_client_credentials_token_carries_tenant_and_is_cached(idp: Provider) -> None:
    source = TokenSource(config(idp))
    token = source.token()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "mlflow" and claims["tenant_id"] == "team-a"
    assert claims["sub"] == "svc-unit" and claims["roles"] == ["editor"]
    assert source.token() == token and source.fetches == 1


def test_refreshes_before_expiry_with_margin(idp: Provider) -> None:
    clock = Clock()
    source = TokenSource(config(idp, refresh_margin_seconds=10.0), clock=clock)
    first = source.token()
    clock.now += 60 - 10 - 1  # lifetime 60 s, margin 10 s: still fresh
    assert source.token() == first and source.fetches == 1
    clock.now += 2  # inside the margin
    assert source.token() != first and source.fetches == 2


def test_margin_is_at_most_half_the_lifetime(idp: Provider) -> None:
    clock = Clock()
    source = TokenSource(config(idp, refresh_margin_seconds=3600.0), clock=clock)
    first = source.token()
    assert source.token() == first  # a margin above the lifetime does not mean "always refetch"
    clock.now += 31
    source.token()
    assert source.fetches == 2


def test_threads_share_one_fetch(idp: Provider) -> None:
    source = TokenSource(config(idp))
    barrier = threading.Barrier(16)
    got: list[str] = []

    def worker() -> None:
        barrier.wait()
        got.append(source.token())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(got) == 16 and len(set(got)) == 1 and source.fetches == 1


def test_refusal_names_idp_grant_client_and_error_but_not_the_secret(idp: Provider) -> None:
    wrong = "wrong-secret-0123456789abcdef"
    with pytest.raises(GatewayAuthError) as e:
        TokenSource(config(idp, secret=wrong)).token()
    msg = str(e.value)
    assert e.value.error == "invalid_client"
    assert idp.issuer in msg and "client_credentials" in msg and "'svc-unit'" in msg
    assert wrong not in msg


def test_unreachable_issuer_is_a_clear_error() -> None:
    with socket_port() as port:
        c = GatewayAuthConfig(issuer=f"http://127.0.0.1:{port}", client_id="x", client_secret="y",
                              timeout_seconds=2)
        with pytest.raises(GatewayAuthError, match="OIDC discovery failed"):
            TokenSource(c).token()


class socket_port:
    """A port nobody listens on."""

    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return int(self.s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.s.close()


@pytest.fixture
def resource_server() -> Iterator[tuple[str, list[str]]]:
    """A resource server that refuses the first bearer token it sees (e.g. revoked early)."""
    seen: list[str] = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            auth = self.headers.get("authorization", "")
            seen.append(auth)
            status = 401 if auth == seen[0] else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def test_a_401_gets_one_fresh_token_and_one_retry(
        idp: Provider, resource_server: tuple[str, list[str]]) -> None:
    url, seen = resource_server
    source = TokenSource(config(idp))
    r = requests.post(url, data=b"payload", auth=GatewayBearerAuth(source), timeout=10)
    assert r.status_code == 200 and len(seen) == 2 and seen[0] != seen[1]
    assert source.fetches == 2 and len(r.history) == 1
