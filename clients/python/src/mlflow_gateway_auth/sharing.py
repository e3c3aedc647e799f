"""Grants on an experiment, a registered model or a prompt, through the gateway's
``/_gateway/v1/grants`` endpoint.

The calls go to ``MLFLOW_TRACKING_URI`` with MLflow's own request machinery
(``mlflow.utils.rest_utils.http_request`` with the tracking store's host credentials), so they
carry exactly what the MLflow client would send: ``MLFLOW_TRACKING_TOKEN`` or the auth plugin
of ``MLFLOW_TRACKING_AUTH`` (``gateway-oidc``: this package), the request headers of MLflow's
header-provider plugins, and the workspace of ``MLFLOW_WORKSPACE`` / ``mlflow.set_workspace()``
as ``X-MLFLOW-WORKSPACE`` (the gateway resolves the resource in that workspace). A refusal
raises ``MlflowException`` with the gateway's error code and message.

    >>> from mlflow_gateway_auth import grant, grants, revoke
    >>> grant("experiments/12", "user:bob@example.com", "READ")
    {'resource': 'experiments/12', 'grant': {'subject': 'user:bob@example.com', 'level': 'READ'}, 'previous': None}
    >>> grants("experiments/12")["grants"]
    [{'subject': 'user:bob@example.com', 'level': 'READ'}]
    >>> revoke("experiments/12", "user:bob@example.com")["previous"]
    'READ'
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

#: The gateway's grants endpoint (relative to the tracking URI).
GRANTS_PATH = "/_gateway/v1/grants"

#: The levels a grant may give.
LEVELS = ("READ", "EDIT", "MANAGE", "DENY")


def grant(resource: str, subject: str, level: str) -> dict[str, Any]:
    """Gives ``subject`` the grant ``level`` on ``resource`` (replacing its previous one).

    ``resource``: ``experiments/<id>``, ``registered-models/<name>`` or ``prompts/<name>``.
    ``subject``: ``user:<subject>``, ``group:<group>`` or ``tenant:<tenant>``.
    ``level``: ``READ``, ``EDIT``, ``MANAGE`` or ``DENY``.
    Returns the gateway's answer: ``{"resource", "grant": {"subject", "level"}, "previous"}``
    (``previous``: the level held before, or ``None``)."""
    body = {"resource": _text("resource", resource), "subject": _text("subject", subject),
            "level": _text("level", level)}
    return _call("PUT", json=body)


def revoke(resource: str, subject: str) -> dict[str, Any]:
    """Removes ``subject``'s grant on ``resource``. Returns the gateway's answer:
    ``{"resource", "revoked": {"subject"}, "previous"}`` (``previous`` is ``None`` when the
    subject held no grant: revoking is idempotent)."""
    body = {"resource": _text("resource", resource), "subject": _text("subject", subject)}
    return _call("DELETE", json=body)


def grants(resource: str) -> dict[str, Any]:
    """The grants on ``resource``: ``{"resource", "grants": [{"subject", "level"}, ...]}``."""
    return _call("GET", params={"resource": _text("resource", resource)})


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise MlflowException(f"`{name}` must be a non-empty string, not {value!r}",
                              error_code=INVALID_PARAMETER_VALUE)
    return value


def _host_creds():
    """The tracking store's host credentials (``MLFLOW_TRACKING_URI`` or
    ``mlflow.set_tracking_uri()``, with its token, basic auth, TLS and auth plugin settings)."""
    from urllib.parse import urlsplit

    from mlflow.tracking import get_tracking_uri
    from mlflow.tracking._tracking_service.utils import _get_store

    scheme = urlsplit(get_tracking_uri()).scheme
    if scheme not in ("http", "https"):
        # The URI itself is not repeated: a database URI may hold a password.
        raise MlflowException(
            "grants are managed by the gateway: set MLFLOW_TRACKING_URI to the gateway's "
            f"http(s) URL (the tracking URI's scheme is {scheme or 'a local path'!r})",
            error_code=INVALID_PARAMETER_VALUE)
    return _get_store().get_host_creds()


def _call(method: str, **kwargs: Any) -> dict[str, Any]:
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    response = http_request(_host_creds(), GRANTS_PATH, method, **kwargs)
    verify_rest_response(response, GRANTS_PATH)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise MlflowException(
            f"{method} {GRANTS_PATH} answered {response.status_code} without a JSON object: "
            f"is MLFLOW_TRACKING_URI the gateway? ({response.text[:200]!r})")
    return answer
