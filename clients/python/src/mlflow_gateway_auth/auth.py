"""The `requests` auth object MLflow attaches to every REST and artifact call."""

from __future__ import annotations

import logging
from typing import Any

import requests
from requests.auth import AuthBase

from mlflow_gateway_auth.tokens import TokenSource

_logger = logging.getLogger(__name__)


class GatewayBearerAuth(AuthBase):
    """Sets ``Authorization: Bearer <token>`` from a shared `TokenSource`. If the gateway answers
    401 to a token, the token is dropped and the request is sent once more with a fresh one
    (only when its body can be replayed)."""

    def __init__(self, source: TokenSource):
        self.source = source

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.source.token()
        r.headers["Authorization"] = f"Bearer {token}"
        body_pos = None
        if hasattr(r.body, "tell"):
            try:
                body_pos = r.body.tell()  # type: ignore[union-attr]
            except OSError:
                body_pos = None
        r.register_hook("response", _RetryOn401(self.source, token, body_pos))
        return r


class _RetryOn401:
    def __init__(self, source: TokenSource, token: str, body_pos: int | None):
        self.source, self.token, self.body_pos = source, token, body_pos
        self.done = False

    def __call__(self, resp: requests.Response, **kwargs: Any) -> requests.Response:
        if resp.status_code != 401 or self.done:
            return resp
        self.done = True
        req = resp.request.copy()
        body: Any = req.body
        if body is not None and not isinstance(body, (bytes, str)):
            if self.body_pos is None or not hasattr(body, "seek"):
                return resp  # a streamed body cannot be sent twice
            body.seek(self.body_pos)
        _logger.info("the gateway refused the access token (401); fetching a new one once")
        self.source.invalidate(self.token)
        resp.content  # noqa: B018 - drain, so the connection can be reused
        resp.close()
        req.headers["Authorization"] = f"Bearer {self.source.token()}"
        req.hooks = {"response": []}  # no second retry
        conn = resp.connection
        retried = conn.send(req, **kwargs)
        retried.history.append(resp)
        retried.request = req
        return retried
