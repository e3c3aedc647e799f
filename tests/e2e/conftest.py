"""End-to-end fixtures and hooks. The harness itself (processes, MLflow, the gateway, the IdPs,
browser sign-in, which tests run where) is the package `harness/` beside this file; its
docstring says how a run is laid out and which tests run in one isolation mode only.

Test modules import harness names from here (`from conftest import Caller, unique`): every name
below stays importable from conftest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import pytest

from harness import selection
from harness.clients import Caller, _Headers  # noqa: F401 - re-exported
from harness.gateway import Gateway
from harness.idp import (AUDIENCE, ISSUER_PATH, OIDC_RESOURCE, IdentityProvider, IdP,  # noqa: F401
                         OidcProvider, SigningKey)
from harness.processes import (Proc, RedisServer, free_port, redis_ping, spin_bin,  # noqa: F401
                               spin_version, wait_until)
from harness.run import (ARTIFACTS, E2E_KV, E2E_RUNTIME, ISOLATION, POLICY_TABLE, REPO, ROW_IDS,  # noqa: F401
                         VENV_BIN, WASM, WORKSPACES, environment, pinned, unique)
from harness.selection import FIXED_KV, MODE_INDEPENDENT, SPIN_SLICE, slice_policy_rows  # noqa: F401
from harness.signin import (SESSION_COOKIE, SIGNIN_COOKIE, SIGNIN_SCOPES, SignIn,  # noqa: F401
                            browser_sign_in, cookie_header, session_cookie_key, set_cookies,
                            signin_client, signin_gateway)
from harness.upstream import CapturingProxy, MlflowServer


# ---------------------------------------------------------------- the run's processes

@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request):
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="session")
def isolation() -> str:
    """The run's isolation mode (E2E_ISOLATION): tests whose expected answer differs by mode
    branch on it; everything else runs unchanged in both."""
    return ISOLATION


@pytest.fixture(scope="module")
def mlflow_server(workdir, request):
    """This group's MLflow. Without MLflow's job runner (harness/upstream.py says why) unless the
    module sets `MLFLOW_JOBS = True` (a test that starts judges, evaluations or other jobs); with
    the module's `MLFLOW_ENV` (a dict) added to MLflow's environment."""
    srv = MlflowServer(workdir / "mlflow", jobs=getattr(request.module, "MLFLOW_JOBS", False),
                       env=getattr(request.module, "MLFLOW_ENV", None)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server):
    """The gateway in dev mode in front of this group's MLflow (modules may override)."""
    g = Gateway(workdir / "gw", mlflow_server.url, {"auth_mode": "off"}).start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def proxy(mlflow_server):
    """A recording pass-through in front of this group's MLflow."""
    p = CapturingProxy(mlflow_server.port)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def a(gw):
    """team-a in dev mode (X-Tenant / X-Subject headers)."""
    return Caller(gw, tenant="team-a", subject="alice")


@pytest.fixture(scope="module")
def b(gw):
    """team-b in dev mode."""
    return Caller(gw, tenant="team-b", subject="bob")


@pytest.fixture(scope="module")
def artifacts_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def redis_server(workdir):
    """A private redis-server for one test that freezes, stops or kills it: yields its port and
    process. Resumed (if frozen) and stopped afterwards."""
    r = RedisServer(workdir).start()
    yield r.port, r.proc
    if r.proc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.proc.popen.pid, signal.SIGCONT)
    r.stop()


_SESSION_REDIS: RedisServer | None = None


def session_redis(tmp_path_factory) -> RedisServer:
    global _SESSION_REDIS
    if _SESSION_REDIS is None:
        _SESSION_REDIS = RedisServer(tmp_path_factory.mktemp("session-redis"), databases=4096).start()
    return _SESSION_REDIS


@pytest.fixture(scope="session", autouse=True)
def _e2e_kv_backend(tmp_path_factory):
    """With E2E_KV=redis, the session's redis-server: started before the first test, stopped
    after the last."""
    if E2E_KV == "redis":
        Gateway.default_redis = session_redis(tmp_path_factory)
    yield
    global _SESSION_REDIS
    if _SESSION_REDIS is not None:
        _SESSION_REDIS.stop()
        _SESSION_REDIS = None
    Gateway.default_redis = None


# ---------------------------------------------------------------- hooks

def _stopped(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    selection.configure(config)
    # SIGTERM (scripts/test.sh stopping its second lane, a CI cancelling) ends the run as Ctrl-C
    # does: fixtures tear down, so no MLflow, `spin up` or IdP outlives it.
    signal.signal(signal.SIGTERM, _stopped)


def pytest_report_header(config):
    try:
        if E2E_RUNTIME == "shim":
            spin = f"E2E_RUNTIME=shim: {spin_version()}"
        else:
            spin = f"{spin_version()} ({spin_bin()})"
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        spin = f"not usable: {e}"
    return [f"spin: {spin}; key-value store: E2E_KV={E2E_KV}; isolation: E2E_ISOLATION={ISOLATION}"]


@pytest.hookimpl(tryfirst=True)  # before `-m` selects
def pytest_collection_modifyitems(config, items):
    if not WASM.exists():
        raise pytest.UsageError(f"{WASM} not built: run scripts/test.sh")
    selection.mark(config, items)
