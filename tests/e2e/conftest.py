"""End-to-end harness: real MLflow (pinned, from PyPI), the built component under real `spin up`,
the real MLflow Python client, plain HTTP, and a real JWKS endpoint for minted tokens.

Each test module ("group") starts its own MLflow and gateway on free 127.0.0.1 ports with its
own key-value store, and stops every process it started (by process group) even when tests
fail. Waiting is always polling against a deadline, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import jwt as pyjwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

REPO = pathlib.Path(__file__).resolve().parents[2]
# The policy table as data (written by `cargo test` from src/policy/table.rs, checked there).
POLICY_TABLE = json.loads((REPO / "tests/data/policy_table.json").read_text())
ROW_IDS = [r["id"] for r in POLICY_TABLE["rows"]]
WASM = pathlib.Path(
    os.environ.get("GATEWAY_WASM", REPO / "target/wasm32-wasip2/release/mlflow_enterprise_gateway.wasm")
)
VENV_BIN = pathlib.Path(sys.executable).parent
ARTIFACTS = REPO / "tests" / "e2e" / ".artifacts"

# The isolation mode every MLflow and gateway of the run uses unless a test names one (issue 19):
# E2E_ISOLATION=workspace (default, as spin.toml: MLflow started with --enable-workspaces, the
# gateway pins each tenant's workspace) or E2E_ISOLATION=tag (tenant tags only, MLflow without
# workspaces). The test command runs the whole suite once in each mode.
ISOLATION = os.environ.get("E2E_ISOLATION", "workspace")
if ISOLATION not in ("workspace", "tag"):
    raise RuntimeError(f"E2E_ISOLATION must be workspace or tag, not {ISOLATION!r}")
WORKSPACES = ISOLATION == "workspace"



def pinned(tenant: str) -> dict[str, str]:
    """Headers for a test's own direct call to MLflow about `tenant`'s data: the tenant's
    workspace in workspace mode (what the gateway pins), nothing in tag mode. Without it a
    direct check would look in MLflow's `default` workspace and find nothing."""
    return {"X-MLFLOW-WORKSPACE": tenant} if WORKSPACES else {}


# MLflow client: fail fast instead of retrying with backoff on 5xx.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


def spin_bin() -> str:
    found = os.environ.get("SPIN_BIN") or shutil.which("spin")
    if not found:
        raise RuntimeError("Spin not found: run through scripts/test.sh or set SPIN_BIN")
    return found


def spin_version() -> str:
    out = subprocess.run([spin_bin(), "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or out.stderr.strip()


# The key-value backend of every gateway a test starts without naming one (issue 23):
# E2E_KV=spin (default: a SQLite file per gateway) or E2E_KV=redis (one redis-server for the
# session, a database of its own per gateway, so gateways stay as isolated as with SQLite).
E2E_KV = os.environ.get("E2E_KV", "spin")
if E2E_KV not in ("spin", "redis"):
    raise RuntimeError(f"E2E_KV must be spin or redis, not {E2E_KV!r}")


def redis_ping(port: int, password: str | None = None) -> bool:
    args = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    if password:
        args += ["--no-auth-warning", "-a", password]
    return subprocess.run(args + ["ping"], capture_output=True, text=True,
                          timeout=10).stdout.strip() == "PONG"


class RedisServer:
    """Debian's `redis-server` on a free 127.0.0.1 port, no persistence. `kill()` (SIGKILL, a
    crash) and `start()` again reuse the same port, so a gateway's runtime config stays valid."""

    def __init__(self, workdir: pathlib.Path, password: str | None = None, databases: int = 16):
        self.exe = shutil.which("redis-server")
        if not self.exe:
            pytest.fail("redis-server is required (scripts/test.sh installs it)")
        self.port = free_port()
        self.password, self.databases = password, databases
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: Proc | None = None
        self.next_db = 0

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def allocate_url(self) -> str:
        """A database no other gateway of this server uses."""
        if self.next_db >= self.databases:
            raise RuntimeError(f"redis-server started with {self.databases} databases, all in use")
        self.next_db += 1
        return self.url(self.next_db - 1)

    def start(self):
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--databases", str(self.databases)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = Proc("redis", args, self.dir / "redis.log")
        wait_until(lambda: redis_ping(self.port, self.password), "redis-server PONG", proc=self.proc)
        return self

    def kill(self):
        """SIGKILL: Redis crashes, its connections are reset, the port refuses."""
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.popen.pid, signal.SIGKILL)
            self.proc.popen.wait(timeout=15)
            self.proc.log_file.close()
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, what: str, timeout: float = 90.0, proc: "Proc | None" = None):
    """Polls `pred` until it returns a truthy value; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{what}: process exited early; log:\n{proc.log_text()[-4000:]}")
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polling
            last_exc = e
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what} (last error: {last_exc})")


class Proc:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, args: list[str], log_path: pathlib.Path, env=None, cwd=None):
        self.name = name
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.popen = subprocess.Popen(
            args,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def log_text(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=15)
        self.log_file.close()


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with proxied artifacts. The benchmark passes a PostgreSQL
    backend, `--app-name basic-auth` and its environment."""

    def __init__(self, workdir: pathlib.Path, port: int | None = None, backend_uri: str | None = None,
                 extra_args: list[str] | None = None, env: dict | None = None,
                 workspaces: bool | None = None):
        """`workspaces`: start with `--enable-workspaces`; `None` follows the run's mode."""
        self.workdir = workdir
        self.workspaces = WORKSPACES if workspaces is None else workspaces
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.backend_uri = backend_uri or f"sqlite:///{workdir}/mlflow.db"
        self.extra_args = extra_args or []
        self.env = env
        (workdir / "artifacts").mkdir(parents=True, exist_ok=True)

    def start(self):
        self.proc = Proc(
            "mlflow",
            [
                str(VENV_BIN / "mlflow"), "server",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", self.backend_uri,
                "--artifacts-destination", str(self.workdir / "artifacts"),
                "--workers", "1", *(["--enable-workspaces"] if self.workspaces else []),
                *self.extra_args,
            ],
            self.workdir / "mlflow.log",
            env={**os.environ, **(self.env or {})},
        )
        wait_until(lambda: requests.get(f"{self.url}/health", timeout=2).status_code == 200,
                   "MLflow /health", timeout=180, proc=self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


class Gateway:
    """The built component under `spin up`. `kv=None` means the run's backend (E2E_KV)."""

    default_redis: "RedisServer | None" = None

    def __init__(self, workdir: pathlib.Path, upstream: str, variables: dict[str, str],
                 kv: str | None = None, redis_url: str | None = None,
                 manifest: pathlib.Path = REPO / "spin.toml", health_path: str = "/healthz",
                 env: dict[str, str] | None = None):
        """`env`: extra environment for `spin up` itself (e.g. Spin's OTEL_* exporter settings)."""
        self.workdir = workdir
        self.extra_env = env or {}
        self.manifest = manifest
        self.health_path = health_path
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.variables = {
            "upstream_origin": upstream,
            "target_base_url": upstream,
            "auth_mode": "off",
            "tenant_isolation": ISOLATION,
            **variables,
        }
        self.runtime_config = workdir / "runtime-config.toml"
        if kv is None:
            kv = E2E_KV
            if kv == "redis" and redis_url is None:
                if Gateway.default_redis is None:
                    raise RuntimeError("E2E_KV=redis but the session redis-server is not running")
                redis_url = Gateway.default_redis.allocate_url()
        self.kv = kv
        if kv == "redis":
            if not redis_url:
                raise ValueError("kv='redis' needs redis_url")
            self.runtime_config.write_text(
                f'[key_value_store.default]\ntype = "redis"\nurl = "{redis_url}"\n')
        else:
            self.runtime_config.write_text(
                f'[key_value_store.default]\ntype = "spin"\npath = "{workdir}/kv.db"\n')
        self.proc: Proc | None = None
        self.log_path = workdir / "spin.log"

    def start(self, wait: bool = True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPIN_VARIABLE_")}
        env.update(self.extra_env)
        for k, v in self.variables.items():
            env[f"SPIN_VARIABLE_{k.upper()}"] = v
        self.proc = Proc(
            "spin",
            [spin_bin(), "up", "-f", str(self.manifest), "--listen", f"127.0.0.1:{self.port}",
             "--runtime-config-file", str(self.runtime_config),
             "--log-dir", str(self.workdir / "spin-logs")],
            self.log_path, env=env, cwd=str(self.workdir),
        )
        if wait:
            wait_until(lambda: requests.get(self.url + self.health_path, timeout=2).status_code == 200,
                       f"spin app {self.health_path}", timeout=120, proc=self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def audit_lines(self) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if line.startswith("{") and '"policy_version"' in line:
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out

    def audit_for(self, request_id: str) -> list[dict]:
        # stdout is flushed per line by Spin; poll briefly for the line to land.
        return wait_until(
            lambda: [a for a in self.audit_lines() if a["request_id"] == request_id],
            f"audit line for {request_id}", timeout=20)


class CapturingProxy:
    """A recording pass-through in front of the real MLflow: proves what MLflow received."""

    def __init__(self, upstream_port: int):
        self.records: list[dict] = []
        records = self.records

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _relay(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                records.append({"method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "header_list": [(k.lower(), v) for k, v in self.headers.items()],
                                "body": body})
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- identity: keys, JWKS, tokens

ISSUER_PATH = "/realms/test"
AUDIENCE = "mlflow"


class SigningKey:
    def __init__(self, kid: str, alg: str = "RS256"):
        self.kid, self.alg = kid, alg
        if alg.startswith(("RS", "PS")):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algo = pyjwt.algorithms.RSAAlgorithm
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            algo = pyjwt.algorithms.ECAlgorithm
        elif alg == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            algo = pyjwt.algorithms.ECAlgorithm
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            algo = pyjwt.algorithms.OKPAlgorithm
        else:
            raise ValueError(alg)
        jwk = json.loads(algo.to_jwk(self.private.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": alg})
        self.jwk = jwk


class IdP:
    """A real HTTP endpoint serving OpenID discovery and a JWKS, stoppable and restartable on
    the same port (to test IdP outages)."""

    def __init__(self):
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.issuer = self.origin + ISSUER_PATH
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.jwks_body: bytes | None = None  # override (malformed JWKS tests)
        self.server = None

    def handler(self):
        idp = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == ISSUER_PATH + "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": idp.issuer,
                                       "jwks_uri": idp.issuer + "/protocol/openid-connect/certs"}).encode()
                elif self.path == ISSUER_PATH + "/protocol/openid-connect/certs":
                    idp.fetches += 1
                    body = idp.jwks_body if idp.jwks_body is not None else json.dumps(
                        {"keys": [k.jwk for k in idp.keys]}).encode()
                else:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        return H

    def start(self):
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def gateway_vars(self, **extra) -> dict[str, str]:
        return {"auth_mode": "oidc", "oidc_issuer": self.issuer, "oidc_audience": AUDIENCE,
                "idp_origin": self.origin, **extra}

    def mint(self, key: SigningKey, tenant: str | None = "team-a", sub: str = "alice",
             roles=("admin",), lifetime: int = 3600, **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now,
                   "nbf": now - 5, "exp": now + lifetime, "roles": list(roles)}
        if tenant is not None:
            payload["tenant_id"] = tenant
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return pyjwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})


# ---------------------------------------------------------------- clients

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


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request):
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="session")
def isolation() -> str:
    """The run's isolation mode (E2E_ISOLATION): tests whose expected answer differs by mode
    branch on it; everything else runs unchanged in both."""
    return ISOLATION


@pytest.fixture(scope="module")
def mlflow_server(workdir):
    srv = MlflowServer(workdir / "mlflow").start()
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


# ---------------------------------------------------------------- the Spin 3 / Redis slice
# (issue 23) The representative slice scripts/test.sh reruns under Spin 3.6.3 and on Redis
# (`pytest -m spin_slice`): module -> test functions (None: the whole module). A name that no
# longer exists in a collected module is an error, so the slice cannot shrink silently.
SPIN_SLICE: dict[str, tuple[str, ...] | None] = {
    # dev mode end to end with the real client, audit, upstream faults, the demo script
    "test_skeleton.py": None,
    # OIDC: the client with a token, each signature family, refusals, and the key-value
    # dependent paths (JWKS and verified tokens cached in the store, IdP outage, cold cache)
    "test_oidc.py": (
        "test_client_with_tracking_token_and_tenant_isolation",
        "test_each_algorithm_verifies_in_the_component",
        "test_missing_and_bad_tokens_are_401_with_reason",
        "test_key_rotation_and_refresh_rate_limit",
        "test_verified_token_cache_never_outlives_token_or_key",
        "test_keys_live_in_kv_idp_outage_and_cold_cache",
    ),
    # one owner/other case per strategy family: chosen below from the policy table
    "test_policy_rows.py": ("test_every_row_has_a_case",),
    # the realistic session with the real MLflow client (params, metrics, artifacts, a model)
    "test_client_session.py": None,
    # Redis killed mid-run and restarted: fail closed, then recover (always on Redis). The
    # frozen-Redis and stopped-Redis tests (test_hostile.py, test_oidc.py) stay in the first
    # stage only: this one covers the same client code (redis-rs 0.32.5 in Spin 3.6.3 and 4.0.2).
    "test_kv_redis.py": None,
    # the runtime configs the Compose and SpinKube manifests mount, loaded by `spin up`
    "test_spinkube_parity.py": None,
    # workspace mode (the stage runs in the default mode, workspace): provisioning with the
    # fact in the store, pinning, the workspace API
    # rate limits counted with atomic increments (on Redis in the Spin 3 stage)
    "test_ratelimit.py": ("test_over_the_limit_is_429_with_retry_after",),
    "test_workspaces.py": (
        "test_a_client_chosen_workspace_is_dropped_and_the_own_one_pinned",
        "test_the_workspace_api_shows_only_the_own_workspace",
    ),
    # browser sign-in: the code exchange, the sealed cookie, the CSRF rule and a refresh at the
    # real oidc-provider (Set-Cookie and redirects through Spin 3's HTTP trigger)
    "test_signin.py": (
        "test_callback_sets_the_session_and_returns_to_rd",
        "test_csrf_cross_origin_post_refused_same_origin_allowed",
        "test_refresh_renews_the_session",
    ),
}


# Slice tests that bring their own key-value store (an explicit Redis or runtime config), so
# E2E_KV does not change them: marked fixed_kv (`-m "spin_slice and not fixed_kv"` is the slice
# for a run that only changes the store).
FIXED_KV: dict[str, tuple[str, ...] | None] = {
    "test_kv_redis.py": None,
    "test_spinkube_parity.py": None,
}


def slice_policy_rows() -> set[str]:
    """The first row (by id) of each strategy family in the policy table."""
    first: dict[str, str] = {}
    for row in sorted(POLICY_TABLE["rows"], key=lambda r: r["id"]):
        first.setdefault(row["strategy"], row["id"])
    return set(first.values())


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "spin_slice: the representative slice rerun under Spin 3.6.3 and on Redis "
                   "(tests/e2e/conftest.py SPIN_SLICE)")
    config.addinivalue_line(
        "markers", "fixed_kv: a slice test with its own key-value store, unchanged by E2E_KV")


def pytest_report_header(config):
    try:
        spin = f"{spin_version()} ({spin_bin()})"
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        spin = f"not usable: {e}"
    return [f"spin: {spin}; key-value store: E2E_KV={E2E_KV}; isolation: E2E_ISOLATION={ISOLATION}"]


@pytest.hookimpl(tryfirst=True)  # before `-m` selects
def pytest_collection_modifyitems(config, items):
    if not WASM.exists():
        raise pytest.UsageError(f"{WASM} not built: run scripts/test.sh")
    rows = slice_policy_rows()
    seen: dict[str, set[str]] = {}
    for item in items:
        module = item.path.name
        name = getattr(item, "originalname", item.name)
        seen.setdefault(module, set()).add(name)
        if module not in SPIN_SLICE:
            continue
        wanted = SPIN_SLICE[module]
        row = getattr(item, "callspec", None) and item.callspec.params.get("row_id")
        if wanted is None or name in wanted or (
                name == "test_row_owner_allowed_other_refused" and row in rows):
            item.add_marker(pytest.mark.spin_slice)
            if module in FIXED_KV and (FIXED_KV[module] is None or name in FIXED_KV[module]):
                item.add_marker(pytest.mark.fixed_kv)
    for module, names in seen.items():
        missing = set(SPIN_SLICE.get(module) or ()) - names
        if missing and not config.getoption("keyword"):
            raise pytest.UsageError(f"SPIN_SLICE names tests that {module} no longer has: {sorted(missing)}")


# ---------------------------------------------------------------- a real IdP: oidc-provider (npm)
# (issue 21: machines and long runs) The OpenID-certified `oidc-provider`, installed by
# scripts/lib.sh ensure_idp_tools (IDP_NODE_PATH), run by tests/idp/oidc_provider.mjs.

OIDC_RESOURCE = "urn:mlflow:gateway"


class OidcProvider:
    """`node tests/idp/oidc_provider.mjs` on a free 127.0.0.1 port. `clients` and `accounts` are
    rewritten by `restart()` (the same port and signing keys), e.g. to revoke a client."""

    def __init__(self, workdir: pathlib.Path, clients: list[dict], accounts: dict | None = None,
                 ttl: int = 4):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.origin = self.issuer = f"http://127.0.0.1:{self.port}"
        self.clients, self.accounts, self.ttl = clients, accounts or {}, ttl
        self.proc: Proc | None = None
        # One JSON line per token response (tests/idp/oidc_provider.mjs token_log): every
        # access, refresh and ID token this IdP issued, for leak checks (issued_tokens()).
        self.token_log = workdir / "tokens.jsonl"

    def start(self):
        node_path = os.environ.get("IDP_NODE_PATH")
        if not node_path:
            raise RuntimeError("IDP_NODE_PATH not set: run through scripts/test.sh (ensure_idp_tools)")
        cfg = self.workdir / "idp.json"
        cfg.write_text(json.dumps({
            "port": self.port, "audience": AUDIENCE, "resource": OIDC_RESOURCE, "ttl": self.ttl,
            "keys_path": str(self.workdir / "keys.json"), "clients": self.clients,
            "accounts": self.accounts, "token_log": str(self.token_log)}))
        self.proc = Proc("oidc-provider", ["node", str(REPO / "tests/idp/oidc_provider.mjs"), str(cfg)],
                         self.workdir / "idp.log", env={**os.environ, "IDP_NODE_PATH": node_path})
        wait_until(lambda: requests.get(self.issuer + "/.well-known/openid-configuration",
                                        timeout=2).status_code == 200,
                   "oidc-provider discovery", timeout=60, proc=self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def restart(self, clients: list[dict] | None = None):
        self.stop()
        if clients is not None:
            self.clients = clients
        return self.start()

    def gateway_vars(self, **extra) -> dict[str, str]:
        return {"auth_mode": "oidc", "oidc_issuer": self.issuer, "oidc_audience": AUDIENCE,
                "idp_origin": self.origin, **extra}

    def plugin_env(self, client_id: str, secret: str | None = None, grant: str = "client_credentials",
                   **extra: str) -> dict[str, str]:
        """The environment that selects the project's MLflow auth plugin (clients/python)."""
        env = {"MLFLOW_TRACKING_AUTH": "gateway-oidc", "MLFLOW_GATEWAY_OIDC_ISSUER": self.issuer,
               "MLFLOW_GATEWAY_OIDC_CLIENT_ID": client_id, "MLFLOW_GATEWAY_OIDC_GRANT": grant,
               "MLFLOW_GATEWAY_OIDC_RESOURCE": OIDC_RESOURCE}
        if secret:
            env["MLFLOW_GATEWAY_OIDC_CLIENT_SECRET"] = secret
        env.update({f"MLFLOW_GATEWAY_OIDC_{k.upper()}": v for k, v in extra.items()})
        return env

    def issued_tokens(self) -> list[str]:
        """Every access, refresh and ID token this IdP has issued so far (all restarts)."""
        if not self.token_log.exists():
            return []
        out = []
        for line in self.token_log.read_text().splitlines():
            rec = json.loads(line)
            out += [rec[k] for k in ("access_token", "refresh_token", "id_token") if rec.get(k)]
        return out

    def client_credentials(self, client_id: str, secret: str) -> str:
        """An access token (JWT for the gateway's resource) for a machine client."""
        r = requests.post(self.issuer + "/token", auth=(client_id, secret), timeout=10,
                          data={"grant_type": "client_credentials", "resource": OIDC_RESOURCE})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def discovery(self) -> dict:
        return requests.get(self.issuer + "/.well-known/openid-configuration", timeout=10).json()

    def authorize(self, authorize_url: str, login: str, session: requests.Session | None = None,
                  password: str = "any") -> str:
        """A person at the IdP's own pages (devInteractions): from an authorization request to
        the redirect back to the client. Signs in as `login` (any password), consents, and
        returns the final Location that leaves the IdP (the client's redirect_uri with
        code/state, or with error=...), without following it. IdP cookies live in `session`
        (a fresh one unless given: pass one to reuse the IdP sign-in, as a browser would)."""
        s = session or requests.Session()
        url, method, data = authorize_url, "GET", None
        for _ in range(12):
            r = s.request(method, url, data=data, allow_redirects=False, timeout=10)
            if r.status_code in (301, 302, 303, 307, 308):
                nxt = requests.compat.urljoin(url, r.headers["location"])
                if not nxt.startswith(self.origin + "/"):
                    return nxt
                url, method, data = nxt, "GET", None
                continue
            assert r.status_code == 200, (r.status_code, r.text[:2000])
            url, fields = _idp_form(self.issuer, r.text)
            if fields.get("prompt") == "login":
                fields.update({"login": login, "password": password})
            method, data = "POST", fields
        raise AssertionError(f"the IdP did not redirect back: {r.status_code} {r.text[:2000]}")

    def end_session(self, end_session_url: str, session: requests.Session) -> str:
        """Confirms RP-initiated logout on the IdP's own page ("Yes, sign me out") and returns
        the Location the IdP sends the browser to (the post_logout_redirect_uri)."""
        r = session.get(end_session_url, allow_redirects=False, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text[:2000])
        url, fields = _idp_form(self.issuer, r.text)
        fields["logout"] = "yes"
        r = session.post(url, data=fields, allow_redirects=False, timeout=10)
        assert r.status_code in (302, 303), (r.status_code, r.text[:2000])
        return requests.compat.urljoin(url, r.headers["location"])

    def approve_device_code(self, verification_uri_complete: str, login: str) -> None:
        """The person's part of the device flow, through the provider's own pages: confirm the
        user code, sign in (devInteractions accepts any password), consent."""
        import re

        s = requests.Session()

        def form(html: str) -> tuple[str, dict[str, str]]:
            action = re.search(r'<form[^>]*action="([^"]+)"', html)
            fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
            assert action, html[:2000]
            return requests.compat.urljoin(self.issuer + "/", action.group(1)), fields

        r = s.get(verification_uri_complete, timeout=10)
        for _ in range(6):
            assert r.status_code == 200, (r.status_code, r.text[:2000])
            if "Sign-in Success" in r.text or "successfully" in r.text.lower():
                return
            url, fields = form(r.text)
            if fields.get("prompt") == "login":
                fields.update({"login": login, "password": "any"})
            elif "user_code" in r.text and "prompt" not in fields:
                fields.setdefault("confirm", "yes")
            r = s.post(url, data=fields, timeout=10)
        raise AssertionError(f"device approval did not finish: {r.text[:2000]}")


def _idp_form(issuer: str, html: str) -> tuple[str, dict[str, str]]:
    """The first form of an oidc-provider page: its absolute action URL and hidden fields."""
    import re

    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, html[:2000]
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    return requests.compat.urljoin(issuer + "/", action.group(1).replace("&amp;", "&")), fields


# ---------------------------------------------------------------- browser sign-in (auth code + PKCE)
# The gateway as an OIDC client (/oauth2/sign_in, /oauth2/callback, /oauth2/sign_out) with its
# session in a sealed cookie. Its cookies are `__Host-` (Secure), so python-requests would never
# send them over http://127.0.0.1: tests carry them by hand in a Cookie header (as a browser on a
# loopback origin does: Chromium accepts and sends them there).

SESSION_COOKIE = "__Host-mlflow-session"
SIGNIN_COOKIE = "__Host-mlflow-signin"
SIGNIN_SCOPES = "openid mlflow"


def session_cookie_key() -> str:
    """A value for session_cookie_keys: 32 random bytes, base64 (openssl rand -base64 32)."""
    import base64

    return base64.b64encode(os.urandom(32)).decode()


def signin_gateway(workdir: pathlib.Path, upstream: str, idp: "OidcProvider", client_id: str,
                   secret: str, **extra: str) -> Gateway:
    """A gateway (not started) with browser sign-in at `idp`: its redirect URL uses the port
    the gateway chose, so register `signin_client(gw, ...)` at the IdP before signing in."""
    g = Gateway(workdir, upstream, {})
    g.variables.update(idp.gateway_vars(
        oidc_client_id=client_id, oidc_client_secret=secret,
        oidc_redirect_url=g.url + "/oauth2/callback", oidc_scopes=SIGNIN_SCOPES,
        session_cookie_keys=session_cookie_key(), **extra))
    return g


def signin_client(gw: Gateway, client_id: str, secret: str) -> dict:
    """The gateway's registration at oidc-provider: confidential (client_secret_basic),
    authorization code (+PKCE) and refresh tokens, RP-initiated logout back to the gateway."""
    return {"client_id": client_id, "client_secret": secret,
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "redirect_uris": [gw.url + "/oauth2/callback"],
            "post_logout_redirect_uris": [gw.url + "/"],
            "token_endpoint_auth_method": "client_secret_basic"}


def set_cookies(r: requests.Response) -> dict[str, dict]:
    """The response's Set-Cookie headers, each as {"value", "attrs" (lower-case names)}."""
    out = {}
    for header in r.raw.headers.getlist("Set-Cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        attrs = {}
        for a in rest:
            k, _, v = a.partition("=")
            attrs[k.strip().lower()] = v.strip()
        out[name.strip()] = {"value": value, "attrs": attrs, "header": header}
    return out


def cookie_header(**cookies: str) -> dict[str, str]:
    """A Cookie header for `__Host-` cookies given as session=..., signin=..."""
    names = {"session": SESSION_COOKIE, "signin": SIGNIN_COOKIE}
    return {"Cookie": "; ".join(f"{names.get(k, k)}={v}" for k, v in cookies.items() if v is not None)}


class SignIn:
    """One browser sign-in at a gateway, step by step (no browser: requests, cookies by hand).

    `start()` calls /oauth2/sign_in and keeps the authorization URL and the signin cookie;
    `at_idp(idp, login)` is the person at the IdP and yields the callback URL (not followed);
    `callback()` delivers it to the gateway with the signin cookie, as the browser would."""

    def __init__(self, gw: Gateway, rd: str | None = None):
        self.gw, self.rd = gw, rd
        self.authorize_url = self.signin_cookie = self.callback_url = None
        self.idp_session = requests.Session()

    def start(self) -> "SignIn":
        params = {"rd": self.rd} if self.rd is not None else None
        r = requests.get(self.gw.url + "/oauth2/sign_in", params=params, allow_redirects=False,
                         timeout=30, headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
        assert r.status_code == 302, (r.status_code, r.text[:2000])
        self.authorize_url = r.headers["location"]
        cookies = set_cookies(r)
        assert SIGNIN_COOKIE in cookies, r.headers
        self.signin_cookie = cookies[SIGNIN_COOKIE]["value"]
        self.start_response = r
        return self

    def authorize_params(self) -> dict[str, str]:
        from urllib.parse import parse_qsl, urlsplit

        return dict(parse_qsl(urlsplit(self.authorize_url).query))

    def at_idp(self, idp: "OidcProvider", login: str, authorize_url: str | None = None) -> str:
        self.callback_url = idp.authorize(authorize_url or self.authorize_url, login, self.idp_session)
        return self.callback_url

    def callback_params(self) -> dict[str, str]:
        from urllib.parse import parse_qsl, urlsplit

        return dict(parse_qsl(urlsplit(self.callback_url).query))

    def callback(self, url: str | None = None, signin_cookie: str | None = "default") -> requests.Response:
        """GET the callback URL at the gateway with the signin cookie (None: without it)."""
        cookie = self.signin_cookie if signin_cookie == "default" else signin_cookie
        url = url or self.callback_url
        assert url.startswith(self.gw.url + "/oauth2/callback?"), url
        return requests.get(url, allow_redirects=False, timeout=30,
                            headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate",
                                     **(cookie_header(signin=cookie) if cookie else {})})


def browser_sign_in(gw: Gateway, idp: "OidcProvider", login: str, rd: str | None = None) -> str:
    """The whole browser sign-in without a browser; returns the session cookie's value."""
    flow = SignIn(gw, rd).start()
    flow.at_idp(idp, login)
    r = flow.callback()
    assert r.status_code == 302, (r.status_code, r.text[:2000])
    cookies = set_cookies(r)
    assert cookies.get(SESSION_COOKIE, {}).get("value"), r.headers
    return cookies[SESSION_COOKIE]["value"]


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """Sets `env` in os.environ for the block (the MLflow client reads its config there)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
# ---------------------------------------------------------------- end of oidc-provider section
