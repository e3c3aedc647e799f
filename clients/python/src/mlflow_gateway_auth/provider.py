"""MLflow's ``mlflow.request_auth_provider`` entry point: ``MLFLOW_TRACKING_AUTH=gateway-oidc``."""

from __future__ import annotations

import threading

from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider

from mlflow_gateway_auth.auth import GatewayBearerAuth
from mlflow_gateway_auth.config import GatewayAuthConfig
from mlflow_gateway_auth.tokens import TokenSource

NAME = "gateway-oidc"

_sources: dict[GatewayAuthConfig, TokenSource] = {}
_sources_lock = threading.Lock()


def token_source(config: GatewayAuthConfig) -> TokenSource:
    """The process-wide token cache for `config` (MLflow asks for an auth object per request)."""
    with _sources_lock:
        source = _sources.get(config)
        if source is None:
            source = _sources[config] = TokenSource(config)
        return source


class GatewayOidcAuthProvider(RequestAuthProvider):
    def get_name(self) -> str:
        return NAME

    def get_auth(self) -> GatewayBearerAuth:
        return GatewayBearerAuth(token_source(GatewayAuthConfig.from_env()))
