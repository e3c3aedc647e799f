"""Fixtures for the plugin's own tests: the real `oidc-provider` (npm) started from the
repository's tests/idp/oidc_provider.mjs (IDP_NODE_PATH from scripts/lib.sh ensure_idp_tools)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[3]
RESOURCE = "urn:mlflow:gateway"
SECRET = "unit-machine-secret-0123456789abcdef"


class Provider:
    def __init__(self, issuer: str, proc: subprocess.Popen[bytes]):
        self.issuer, self.proc = issuer, proc


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    node_path = os.environ.get("IDP_NODE_PATH")
    if not node_path:
        pytest.skip("IDP_NODE_PATH not set: run through scripts/test.sh (ensure_idp_tools)")
    work = tmp_path_factory.mktemp("idp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = work / "idp.json"
    cfg.write_text(json.dumps({
        "port": port, "audience": "mlflow", "resource": RESOURCE, "ttl": 60,
        "keys_path": str(work / "keys.json"), "accounts": {},
        "clients": [{"client_id": "svc-unit", "client_secret": SECRET,
                     "grant_types": ["client_credentials"], "response_types": [],
                     "redirect_uris": [], "tenant_id": "team-a", "roles": ["editor"]}]}))
    log = open(work / "idp.log", "wb")
    proc = subprocess.Popen(["node", str(REPO / "tests/idp/oidc_provider.mjs"), str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "IDP_NODE_PATH": node_path})
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(issuer + "/.well-known/openid-configuration", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"oidc-provider did not start: {(work / 'idp.log').read_text()}")
        time.sleep(0.1)
    yield Provider(issuer, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=15)
    log.close()
