"""Obtains access tokens from the IdP (OAuth2 via authlib), caches them in memory and refreshes
them before they expire. One `TokenSource` is shared by every thread of a process."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from mlflow_gateway_auth.config import GatewayAuthConfig

_logger = logging.getLogger(__name__)

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class GatewayAuthError(RuntimeError):
    """The IdP refused or could not be asked. The message names the IdP, the grant, the client
    and the IdP's OAuth2 error code; it never contains a secret or a token."""

    def __init__(self, message: str, error: str | None = None):
        super().__init__(message)
        self.error = error


DevicePrompt = Callable[[dict[str, Any]], None]


def print_device_prompt(answer: dict[str, Any]) -> None:
    """Default device-flow prompt: tells the person at the terminal where to approve."""
    uri = answer.get("verification_uri_complete") or answer.get("verification_uri")
    print(
        f"To let MLflow act for you, open {uri} and enter the code {answer.get('user_code')}"
        f" (valid {answer.get('expires_in', '?')} s).",
        file=sys.stderr, flush=True,
    )


_device_prompt: DevicePrompt = print_device_prompt


def set_device_prompt(prompt: DevicePrompt | None) -> None:
    """Replaces how the device flow shows its user code (e.g. a notebook widget); None restores
    the default, a line on stderr. The callback gets the IdP's device authorization answer."""
    global _device_prompt
    _device_prompt = prompt or print_device_prompt


class TokenSource:
    """Thread-safe cache of one access token for one configuration."""

    def __init__(self, config: GatewayAuthConfig, device_prompt: DevicePrompt | None = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self._device_prompt = device_prompt
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._access_token: str | None = None
        self._refresh_at = 0.0
        self._refresh_token = config.refresh_token
        self.fetches = 0  # how many tokens were obtained (for tests and diagnostics)

    # ------------------------------------------------------------------ public

    def token(self) -> str:
        """A valid access token, from the cache or fetched now."""
        with self._lock:
            if self._access_token is None or self._clock() >= self._refresh_at:
                self._fetch_locked()
            assert self._access_token is not None
            return self._access_token

    def invalidate(self, rejected: str) -> None:
        """Forgets `rejected` (a token the server refused), so the next call fetches anew."""
        with self._lock:
            if self._access_token == rejected:
                self._access_token = None

    # ------------------------------------------------------------------ IdP

    def _describe(self, grant: str) -> str:
        return f"the IdP {self.config.issuer} refused the {grant} grant for client {self.config.client_id!r}"

    def _discover(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.config.issuer + "/.well-known/openid-configuration"
            try:
                resp = requests.get(url, timeout=self.config.timeout_seconds)
                resp.raise_for_status()
                meta = resp.json()
            except (requests.RequestException, ValueError) as e:
                raise GatewayAuthError(f"OIDC discovery failed at {url}: {e}") from None
            if not isinstance(meta, dict) or "token_endpoint" not in meta:
                raise GatewayAuthError(f"OIDC discovery at {url} has no token_endpoint")
            if meta.get("issuer", "").rstrip("/") != self.config.issuer:
                raise GatewayAuthError(
                    f"OIDC discovery at {url} names issuer {meta.get('issuer')!r}, "
                    f"not {self.config.issuer!r}")
            self._metadata = meta
        return self._metadata

    def _session(self) -> OAuth2Session:
        c = self.config
        return OAuth2Session(
            client_id=c.client_id,
            client_secret=c.client_secret,
            scope=c.scope,
            token_endpoint_auth_method="client_secret_basic" if c.client_secret else "none",
        )

    def _extra(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self.config.audience:
            extra["audience"] = self.config.audience
        if self.config.resource:
            extra["resource"] = self.config.resource
        return extra

    def _fetch_locked(self) -> None:
        c = self.config
        endpoint = self._discover()["token_endpoint"]
        grant = c.grant
        with self._session() as session:
            try:
                if self._refresh_token and grant in ("refresh_token", "device_code"):
                    grant = "refresh_token"
                    token = session.refresh_token(endpoint, refresh_token=self._refresh_token,
                                                  timeout=c.timeout_seconds, **self._extra())
                elif grant == "client_credentials":
                    token = session.fetch_token(endpoint, grant_type="client_credentials",
                                                timeout=c.timeout_seconds, **self._extra())
                elif grant == "device_code":
                    token = self._device_flow(session, endpoint)
                else:
                    raise GatewayAuthError(f"no refresh token left for client {c.client_id!r}")
            except AuthlibBaseError as e:
                desc = f" ({e.description})" if e.description else ""
                raise GatewayAuthError(f"{self._describe(grant)}: {e.error}{desc}",
                                       error=e.error) from None
            except requests.RequestException as e:
                raise GatewayAuthError(f"could not reach the IdP token endpoint {endpoint}: "
                                       f"{type(e).__name__}") from None
        access = token.get("access_token")
        if not access:
            raise GatewayAuthError(f"{self._describe(grant)}: the answer has no access_token")
        lifetime = float(token.get("expires_in") or 300)
        now = self._clock()
        margin = min(c.refresh_margin_seconds, lifetime / 2)
        self._access_token = access
        self._refresh_at = now + lifetime - margin
        if token.get("refresh_token"):
            self._refresh_token = token["refresh_token"]  # rotated refresh tokens
        self.fetches += 1
        _logger.debug("obtained an access token (%s grant, %.0f s lifetime)", grant, lifetime)

    def _device_flow(self, session: OAuth2Session, endpoint: str) -> Any:
        """RFC 8628: ask for a user code, show it, poll the token endpoint until approved."""
        c = self.config
        device_endpoint = self._discover().get("device_authorization_endpoint")
        if not device_endpoint:
            raise GatewayAuthError(f"the IdP {c.issuer} offers no device authorization endpoint")
        body = {"client_id": c.client_id, **self._extra()}
        if c.scope:
            body["scope"] = c.scope
        auth = (c.client_id, c.client_secret) if c.client_secret else None
        try:
            resp = requests.post(device_endpoint, data=body, auth=auth, timeout=c.timeout_seconds)
            answer = resp.json()
        except (requests.RequestException, ValueError) as e:
            raise GatewayAuthError(f"device authorization at {device_endpoint} failed: "
                                   f"{type(e).__name__}") from None
        if "error" in answer or "device_code" not in answer:
            raise GatewayAuthError(
                f"{self._describe('device_code')}: {answer.get('error', 'no device_code')}"
                + (f" ({answer['error_description']})" if answer.get("error_description") else ""),
                error=answer.get("error"))
        (self._device_prompt or _device_prompt)(answer)
        interval = float(answer.get("interval") or 5)
        deadline = time.monotonic() + float(answer.get("expires_in") or 600)
        while True:
            try:
                return session.fetch_token(endpoint, grant_type=DEVICE_CODE_GRANT,
                                           device_code=answer["device_code"],
                                           timeout=c.timeout_seconds)
            except AuthlibBaseError as e:
                if e.error == "slow_down":
                    interval += 5
                elif e.error != "authorization_pending":
                    raise
            if time.monotonic() + interval > deadline:
                raise GatewayAuthError(f"{self._describe('device_code')}: the user code expired "
                                       "before anyone approved it", error="expired_token")
            time.sleep(interval)
