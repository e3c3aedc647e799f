from __future__ import annotations

import pytest

from mlflow_gateway_auth import GatewayAuthConfig, GatewayAuthConfigError

BASE = {"MLFLOW_GATEWAY_OIDC_ISSUER": "https://idp.example.com/realms/ml/",
        "MLFLOW_GATEWAY_OIDC_CLIENT_ID": "svc-team-a",
        "MLFLOW_GATEWAY_OIDC_CLIENT_SECRET": "s3cret-value"}


def test_defaults_and_secret_not_in_repr() -> None:
    c = GatewayAuthConfig.from_env(BASE)
    assert c.issuer == "https://idp.example.com/realms/ml"
    assert c.grant == "client_credentials" and c.refresh_margin_seconds == 30.0
    assert "s3cret-value" not in repr(c)


@pytest.mark.parametrize(("env", "names"), [
    ({}, "MLFLOW_GATEWAY_OIDC_ISSUER"),
    ({**BASE, "MLFLOW_GATEWAY_OIDC_GRANT": "password"}, "MLFLOW_GATEWAY_OIDC_GRANT"),
    ({**BASE, "MLFLOW_GATEWAY_OIDC_CLIENT_SECRET": ""}, "MLFLOW_GATEWAY_OIDC_CLIENT_SECRET"),
    ({**BASE, "MLFLOW_GATEWAY_OIDC_GRANT": "refresh_token"}, "MLFLOW_GATEWAY_OIDC_REFRESH_TOKEN"),
    ({**BASE, "MLFLOW_GATEWAY_OIDC_CLIENT_ID": ""}, "MLFLOW_GATEWAY_OIDC_CLIENT_ID"),
    ({**BASE, "MLFLOW_GATEWAY_OIDC_ISSUER": "idp.example.com"}, "MLFLOW_GATEWAY_OIDC_ISSUER"),
    ({**BASE, "MLFLOW_GATEWAY_OIDC_TIMEOUT_SECONDS": "soon"}, "MLFLOW_GATEWAY_OIDC_TIMEOUT_SECONDS"),
])
def test_invalid_environment_names_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(GatewayAuthConfigError, match=names) as e:
        GatewayAuthConfig.from_env(env)
    assert "s3cret-value" not in str(e.value)


def test_device_code_needs_no_secret() -> None:
    env = {**BASE, "MLFLOW_GATEWAY_OIDC_GRANT": "device_code", "MLFLOW_GATEWAY_OIDC_CLIENT_SECRET": ""}
    assert GatewayAuthConfig.from_env(env).client_secret is None


def test_entry_point_is_registered_with_mlflow() -> None:
    from mlflow.tracking.request_auth.registry import _request_auth_provider_registry

    assert "gateway-oidc" in [p.get_name() for p in _request_auth_provider_registry]
