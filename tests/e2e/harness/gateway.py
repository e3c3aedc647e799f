"""The gateway: the built component (GATEWAY_WASM) under real `spin up` (or, with
E2E_RUNTIME=shim, under containerd-shim-spin: harness/shim.py), with its variables in Spin's
environment provider and its key-value store in a runtime config, and its audit lines."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib

import requests

from . import shim
from .processes import Proc, RedisServer, free_port, spin_bin, wait_until
from .run import E2E_KV, E2E_RUNTIME, ISOLATION, REPO, spin_env


class Gateway:
    """The built component under `spin up`. `kv=None` means the run's backend (E2E_KV)."""

    default_redis: RedisServer | None = None

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
        if E2E_RUNTIME == "shim":
            # The same variables, runtime config, port and log file, in a container under
            # containerd-shim-spin (harness/shim.py).
            self.proc = shim.start(self)
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SPIN_VARIABLE_")}
            env.update(self.extra_env)
            env.update(spin_env(self.variables))
            self.proc = Proc(
                "spin",
                [spin_bin(), "up", "-f", str(self.manifest), "--listen", f"127.0.0.1:{self.port}",
                 "--runtime-config-file", str(self.runtime_config),
                 "--log-dir", str(self.workdir / "spin-logs")],
                self.log_path, env=env, cwd=str(self.workdir),
            )
        if wait:
            self.proc.wait_ready(lambda: requests.get(self.url + self.health_path, timeout=2).status_code == 200,
                                 f"spin app {self.health_path}", timeout=120)
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

    def audit_lines_settled(self) -> list[dict]:
        """The audit lines of every request answered so far. The shell writes a request's line
        after its answer is sent, so a test that reads the log as soon as it is answered may
        miss the last line. A `GET /healthz` with an id of its own goes through the gateway
        after them and its line is waited for: an earlier request's line is one host call made
        right after its answer, the marker needs a connection, an instance and an answer of its
        own first. The markers' own lines are left out (`/healthz` reads no configuration, so
        this works on a misconfigured gateway too)."""
        marker = "settle-" + os.urandom(8).hex()
        r = requests.get(self.url + "/healthz", headers={"X-Request-ID": marker}, timeout=30)
        assert r.headers.get("x-request-id") == marker, r.headers
        self.audit_for(marker)
        return [a for a in self.audit_lines() if not a["request_id"].startswith("settle-")]

    def audit_for(self, request_id: str, timeout: float = 20) -> list[dict]:
        # stdout is flushed per line by Spin; poll for the line to land.
        return wait_until(
            lambda: [a for a in self.audit_lines() if a["request_id"] == request_id],
            f"audit line for {request_id}", timeout=timeout)
