"""Plugin configuration, read from ``MLFLOW_GATEWAY_OIDC_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_PREFIX = "MLFLOW_GATEWAY_OIDC_"
GRANTS = ("client_credentials", "refresh_token", "device_code")


class GatewayAuthConfigError(ValueError):
    """The plugin's environment is incomplete or invalid (names the variable, never a secret)."""


@dataclass(frozen=True)
class GatewayAuthConfig:
    issuer: str
    client_id: str
    grant: str = "client_credentials"
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    audience: str | None = None
    resource: str | None = None
    refresh_margin_seconds: float = 30.0
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.grant not in GRANTS:
            raise GatewayAuthConfigError(
                f"{ENV_PREFIX}GRANT={self.grant!r}: expected one of {', '.join(GRANTS)}")
        if not self.issuer.startswith(("https://", "http://")):
            raise GatewayAuthConfigError(f"{ENV_PREFIX}ISSUER must be an http(s) URL")
        if not self.client_id:
            raise GatewayAuthConfigError(f"{ENV_PREFIX}CLIENT_ID is required")
        if self.grant == "client_credentials" and not self.client_secret:
            raise GatewayAuthConfigError(
                f"{ENV_PREFIX}CLIENT_SECRET is required for the client_credentials grant")
        if self.grant == "refresh_token" and not self.refresh_token:
            raise GatewayAuthConfigError(
                f"{ENV_PREFIX}REFRESH_TOKEN is required for the refresh_token grant")
        if self.refresh_margin_seconds < 0 or self.timeout_seconds <= 0:
            raise GatewayAuthConfigError(
                f"{ENV_PREFIX}REFRESH_MARGIN_SECONDS must be >= 0 and "
                f"{ENV_PREFIX}TIMEOUT_SECONDS > 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayAuthConfig:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                return float(raw)
            except ValueError:
                raise GatewayAuthConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a number") from None

        issuer = get("ISSUER")
        if issuer is None:
            raise GatewayAuthConfigError(
                f"{ENV_PREFIX}ISSUER is required with MLFLOW_TRACKING_AUTH=gateway-oidc "
                "(the IdP's issuer URL; endpoints come from its discovery document)")
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=get("CLIENT_ID") or "",
            grant=get("GRANT") or "client_credentials",
            client_secret=get("CLIENT_SECRET"),
            refresh_token=get("REFRESH_TOKEN"),
            scope=get("SCOPE"),
            audience=get("AUDIENCE"),
            resource=get("RESOURCE"),
            refresh_margin_seconds=number("REFRESH_MARGIN_SECONDS", 30.0),
            timeout_seconds=number("TIMEOUT_SECONDS", 30.0),
        )
