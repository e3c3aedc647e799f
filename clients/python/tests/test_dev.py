"""`MLFLOW_TRACKING_AUTH=gateway-dev`: the dev-mode identity headers from the environment, as
MLflow's client finds the provider through its entry point (the e2e tests run it against a
gateway in auth_mode=off)."""

from __future__ import annotations

import pytest
import requests

from mlflow_gateway_auth.config import GatewayAuthConfigError
from mlflow_gateway_auth.dev import GatewayDevAuth, GatewayDevHeaders


def prepared(env: dict[str, str]) -> requests.PreparedRequest:
    req = requests.Request("GET", "http://127.0.0.1:1/api/2.0/mlflow/experiments/search").prepare()
    return GatewayDevAuth(GatewayDevHeaders.from_env(env))(req)


def test_headers_from_the_environment() -> None:
    r = prepared({"MLFLOW_GATEWAY_DEV_TENANT": " team-a, team-b=viewer ",
                  "MLFLOW_GATEWAY_DEV_SUBJECT": "alice", "MLFLOW_GATEWAY_DEV_ROLES": "editor",
                  "MLFLOW_GATEWAY_DEV_GROUPS": "ml-platform"})
    assert r.headers["X-Tenant"] == "team-a, team-b=viewer"
    assert (r.headers["X-Subject"], r.headers["X-Roles"], r.headers["X-Groups"]) == (
        "alice", "editor", "ml-platform")
    assert "Authorization" not in r.headers


def test_only_the_tenant_is_required() -> None:
    r = prepared({"MLFLOW_GATEWAY_DEV_TENANT": "team-a", "MLFLOW_GATEWAY_DEV_SUBJECT": ""})
    assert r.headers["X-Tenant"] == "team-a"
    assert not {"X-Subject", "X-Roles", "X-Groups"} & set(r.headers)


@pytest.mark.parametrize(("env", "names"), [
    ({}, "MLFLOW_GATEWAY_DEV_TENANT"),
    ({"MLFLOW_GATEWAY_DEV_TENANT": "  "}, "MLFLOW_GATEWAY_DEV_TENANT"),
    ({"MLFLOW_GATEWAY_DEV_TENANT": "team-a", "MLFLOW_GATEWAY_DEV_SUBJECT": "a\r\nX-Tenant: b"},
     "MLFLOW_GATEWAY_DEV_SUBJECT"),
])
def test_invalid_environment_names_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(GatewayAuthConfigError, match=names):
        GatewayDevHeaders.from_env(env)


def test_mlflow_finds_the_provider_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking.request_auth.registry import fetch_auth

    monkeypatch.setenv("MLFLOW_GATEWAY_DEV_TENANT", "team-b")
    auth = fetch_auth("gateway-dev")
    assert isinstance(auth, GatewayDevAuth)
    assert dict(auth.dev.headers) == {"X-Tenant": "team-b"}
