"""``MLFLOW_TRACKING_AUTH=gateway-dev``: the gateway's header dev mode (``auth_mode=off``).

A gateway in dev mode trusts ``X-Tenant`` / ``X-Subject`` / ``X-Roles`` / ``X-Groups`` headers
instead of tokens (for local development and demos only: anyone who can reach it can claim any
tenant). This provider adds them to every request of MLflow's client, tracking, registry and
artifacts alike, from the environment:

* ``MLFLOW_GATEWAY_DEV_TENANT`` (required): ``team-a``, or several tenants with their roles
  (``team-a, team-b=viewer``: the first is the default; ``MLFLOW_WORKSPACE`` selects another);
* ``MLFLOW_GATEWAY_DEV_SUBJECT``: the user (MLflow's ``user_id``); the gateway's default is
  ``anonymous``;
* ``MLFLOW_GATEWAY_DEV_ROLES``: ``viewer``, ``editor`` or ``admin`` (comma list) for the
  tenants named without a role; the gateway's default is ``dev_default_role``;
* ``MLFLOW_GATEWAY_DEV_GROUPS``: the caller's groups (for ``group:`` grants), comma list.

A gateway in ``auth_mode=oidc`` refuses these headers (400): use ``gateway-oidc`` there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider

from mlflow_gateway_auth.config import GatewayAuthConfigError

NAME = "gateway-dev"

# environment variable -> header
VARIABLES = {
    "MLFLOW_GATEWAY_DEV_TENANT": "X-Tenant",
    "MLFLOW_GATEWAY_DEV_SUBJECT": "X-Subject",
    "MLFLOW_GATEWAY_DEV_ROLES": "X-Roles",
    "MLFLOW_GATEWAY_DEV_GROUPS": "X-Groups",
}


@dataclass(frozen=True)
class GatewayDevHeaders:
    """The identity headers of dev mode, read from the environment."""

    headers: tuple[tuple[str, str], ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayDevHeaders:
        env = os.environ if env is None else env
        headers = []
        for variable, header in VARIABLES.items():
            value = env.get(variable, "").strip()
            if not value:
                continue
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise GatewayAuthConfigError(f"{variable} must not contain control characters")
            headers.append((header, value))
        if not any(h == "X-Tenant" for h, _ in headers):
            raise GatewayAuthConfigError(
                "MLFLOW_GATEWAY_DEV_TENANT is required with MLFLOW_TRACKING_AUTH=gateway-dev "
                "(e.g. team-a, or team-a, team-b=viewer)")
        return cls(tuple(headers))


class GatewayDevAuth(requests.auth.AuthBase):
    """Adds the dev-mode identity headers to a request (and no Authorization header)."""

    def __init__(self, dev: GatewayDevHeaders):
        self.dev = dev

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        for header, value in self.dev.headers:
            r.headers[header] = value
        return r


class GatewayDevAuthProvider(RequestAuthProvider):
    def get_name(self) -> str:
        return NAME

    def get_auth(self) -> GatewayDevAuth:
        return GatewayDevAuth(GatewayDevHeaders.from_env())
