"""The grant helpers (mlflow_gateway_auth.grant / revoke / grants) against a real HTTP server
standing in for the gateway's endpoint: what they send (method, path, query, body, the MLflow
client's credentials and workspace header) and how they answer (parsed JSON, MlflowException
with the gateway's error). tests/e2e/test_tenants.py runs them against the real gateway."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from mlflow.exceptions import MlflowException, RestException

from conftest import RESOURCE, SECRET, Provider
from mlflow_gateway_auth import grant, grants, revoke


class Endpoint:
    """A real HTTP server that records each request and answers the next scripted reply
    (status, body bytes, content type); by default 200 with a JSON echo of the request."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.replies: list[tuple[int, bytes, str]] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                rec = {"method": self.command, "path": url.path, "query": parse_qsl(url.query),
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "json": json.loads(body) if body else None}
                endpoint.seen.append(rec)
                if endpoint.replies:
                    status, data, ctype = endpoint.replies.pop(0)
                else:
                    status, ctype = 200, "application/json"
                    data = json.dumps({"echo": {"method": rec["method"], "json": rec["json"]}}).encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_POST = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, status: int, body: object, ctype: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.replies.append((status, data, ctype))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    import mlflow

    e = Endpoint()
    for var in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_AUTH", "MLFLOW_WORKSPACE",
                "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(e.url + "/gw")
    yield e
    mlflow.set_tracking_uri(None)
    mlflow.set_workspace(None)
    e.stop()


def test_each_helper_sends_its_request_and_returns_the_answer(endpoint: Endpoint) -> None:
    answer = {"resource": "experiments/12", "grant": {"subject": "user:bob", "level": "READ"},
              "previous": None}
    endpoint.reply(200, answer)
    assert grant("experiments/12", "user:bob", "READ") == answer
    endpoint.reply(200, {"resource": "registered-models/a b/c", "grants": []})
    assert grants("registered-models/a b/c") == {"resource": "registered-models/a b/c", "grants": []}
    endpoint.reply(200, {"resource": "prompts/p", "revoked": {"subject": "group:ops"}, "previous": "EDIT"})
    assert revoke("prompts/p", "group:ops")["previous"] == "EDIT"
    put, get, delete = endpoint.seen
    assert (put["method"], put["path"], put["query"]) == ("PUT", "/gw/_gateway/v1/grants", [])
    assert put["json"] == {"resource": "experiments/12", "subject": "user:bob", "level": "READ"}
    assert put["headers"]["content-type"] == "application/json"
    # GET: the resource in the query (a name with a space and a slash survives the round trip)
    assert (get["method"], get["path"], get["json"]) == ("GET", "/gw/_gateway/v1/grants", None)
    assert get["query"] == [("resource", "registered-models/a b/c")]
    assert (delete["method"], delete["query"]) == ("DELETE", [])
    assert delete["json"] == {"resource": "prompts/p", "subject": "group:ops"}
    # No credentials configured: none sent; no workspace selected: no header.
    for rec in endpoint.seen:
        assert "authorization" not in rec["headers"] and "x-mlflow-workspace" not in rec["headers"]


def test_the_clients_token_and_workspace_are_sent(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123")
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")
    grants("experiments/1")
    assert endpoint.seen[-1]["headers"]["authorization"] == "Bearer tok-123"
    assert endpoint.seen[-1]["headers"]["x-mlflow-workspace"] == "team-a"
    # mlflow.set_workspace() wins over the environment, as for every MLflow call.
    mlflow.set_workspace("team-b")
    revoke("experiments/1", "user:bob")
    assert endpoint.seen[-1]["headers"]["x-mlflow-workspace"] == "team-b"


def test_basic_auth_of_the_client_is_sent(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "u")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "p")
    grants("experiments/1")
    assert endpoint.seen[-1]["headers"]["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_the_auth_plugin_supplies_the_token(endpoint: Endpoint, idp: Provider,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_TRACKING_AUTH=gateway-oidc: the helper's request carries the plugin's access
    token from the real oidc-provider, as every MLflow call does."""
    env = {"MLFLOW_TRACKING_AUTH": "gateway-oidc", "MLFLOW_GATEWAY_OIDC_ISSUER": idp.issuer,
           "MLFLOW_GATEWAY_OIDC_CLIENT_ID": "svc-unit", "MLFLOW_GATEWAY_OIDC_CLIENT_SECRET": SECRET,
           "MLFLOW_GATEWAY_OIDC_RESOURCE": RESOURCE}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    grant("experiments/7", "tenant:team-b", "READ")
    auth = endpoint.seen[-1]["headers"]["authorization"]
    assert auth.startswith("Bearer ")
    claims = jwt.decode(auth.removeprefix("Bearer "), options={"verify_signature": False})
    assert claims["sub"] == "svc-unit" and claims["aud"] == "mlflow"


@pytest.mark.parametrize(("status", "error_code"), [
    (403, "PERMISSION_DENIED"), (400, "INVALID_PARAMETER_VALUE"), (404, "RESOURCE_DOES_NOT_EXIST")])
def test_a_refusal_raises_with_the_gateways_error(endpoint: Endpoint, status: int, error_code: str) -> None:
    message = "only MANAGE holders of experiment 12 change its grants"
    endpoint.reply(status, {"error_code": error_code, "message": message})
    with pytest.raises(RestException) as e:
        grant("experiments/12", "user:bob", "READ")
    assert e.value.error_code == error_code
    assert message in str(e.value)


def test_an_answer_that_is_not_the_gateways_raises(endpoint: Endpoint) -> None:
    endpoint.reply(502, b"<html>bad gateway</html>", "text/html")
    with pytest.raises(MlflowException, match="502"):
        grants("experiments/1")
    endpoint.reply(200, b"<html>an MLflow without the gateway</html>", "text/html")
    with pytest.raises(MlflowException, match="gateway"):
        grants("experiments/1")
    endpoint.reply(200, [1, 2])
    with pytest.raises(MlflowException, match="JSON object"):
        grants("experiments/1")


@pytest.mark.parametrize("args", [("", "user:bob", "READ"), ("experiments/1", None, "READ"),
                                  ("experiments/1", "user:bob", 3)])
def test_arguments_must_be_strings(endpoint: Endpoint, args: tuple) -> None:
    with pytest.raises(MlflowException) as e:
        grant(*args)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert endpoint.seen == []


def test_a_tracking_uri_that_is_not_a_server_is_refused(endpoint: Endpoint, tmp_path) -> None:
    import mlflow

    for uri in [(tmp_path / "mlruns").as_uri(), "postgresql://u:db-password@127.0.0.1/mlflow"]:
        mlflow.set_tracking_uri(uri)
        with pytest.raises(MlflowException, match="MLFLOW_TRACKING_URI") as e:
            grants("experiments/1")
        assert "db-password" not in str(e.value)
    assert endpoint.seen == []
