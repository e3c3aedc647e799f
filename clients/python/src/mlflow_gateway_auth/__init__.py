"""MLflow request auth plugin for mlflow-enterprise-gateway (``MLFLOW_TRACKING_AUTH=gateway-oidc``)."""

from mlflow_gateway_auth.config import GatewayAuthConfig, GatewayAuthConfigError
from mlflow_gateway_auth.tokens import GatewayAuthError, TokenSource, set_device_prompt
from mlflow_gateway_auth.auth import GatewayBearerAuth
from mlflow_gateway_auth.sharing import grant, grants, revoke

__all__ = [
    "GatewayAuthConfig",
    "GatewayAuthConfigError",
    "GatewayAuthError",
    "GatewayBearerAuth",
    "TokenSource",
    "grant",
    "grants",
    "revoke",
    "set_device_prompt",
]
