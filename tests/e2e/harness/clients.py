"""Clients: one identity at the gateway (dev-mode headers or a bearer token) over plain HTTP,
byte-exact HTTP, or the real MLflow Python client pointed at the gateway."""

from __future__ import annotations

import contextlib
import http.client
import os

import requests

from .gateway import Gateway


class _Headers:
    current: dict[str, str] = {}


def _register_header_provider():
    """The MLflow client's request-header provider plugin hook, used to add tenant headers."""
    from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider
    from mlflow.tracking.request_header.registry import _request_header_provider_registry

    class TenantHeaderProvider(RequestHeaderProvider):
        def in_context(self):
            return bool(_Headers.current)

        def request_headers(self):
            return dict(_Headers.current)

    _request_header_provider_registry.register(TenantHeaderProvider)


_register_header_provider()


class Caller:
    """One identity at the gateway: dev-mode headers or a bearer token."""

    def __init__(self, gw: Gateway, tenant: str | None = None, subject: str | None = None,
                 roles: str | None = None, token: str | None = None, extra: dict | None = None):
        self.gw, self.tenant, self.token = gw, tenant, token
        h = {}
        if tenant is not None:
            h["X-Tenant"] = tenant
        if subject is not None:
            h["X-Subject"] = subject
        if roles is not None:
            h["X-Roles"] = roles
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.update(extra or {})
        self.headers = h

    def request(self, method: str, path: str, **kw) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.gw.url + path, headers=headers, timeout=60, **kw)

    def raw(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        """Sends `path` byte-for-byte (requests would normalise percent-encodings)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=60)
        conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json=body if body is not None else {}, **kw)

    @contextlib.contextmanager
    def mlflow(self):
        """The real MLflow client pointed at the gateway as this caller."""
        import mlflow

        old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN")}
        os.environ["MLFLOW_TRACKING_URI"] = self.gw.url
        if self.token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.token
            _Headers.current = {}
        else:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
            _Headers.current = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        mlflow.set_tracking_uri(self.gw.url)
        try:
            yield mlflow
        finally:
            with contextlib.suppress(Exception):
                while mlflow.active_run():
                    mlflow.end_run()
            _Headers.current = {}
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
