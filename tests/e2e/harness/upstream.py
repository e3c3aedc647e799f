"""MLflow, the upstream: `mlflow server` (the pinned MLflow of the venv) and a recording
pass-through in front of it that proves what MLflow received."""

from __future__ import annotations

import http.client
import http.server
import os
import pathlib
import threading

import requests

from .processes import Proc, free_port
from .run import VENV_BIN, WORKSPACES


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with proxied artifacts. The benchmark passes a PostgreSQL
    backend, `--app-name basic-auth` and its environment.

    Without MLflow's job runner unless `jobs=True` (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false, or
    whatever `env` says): it runs server-side GenAI jobs (scorer invocation, evaluation, issue
    detection, prompt optimization) and is eight more Python processes per server, ~50 s of CPU
    over a module's life and ~15 s to stop. A test that starts a job needs it (MLflow answers
    "job execution feature is not enabled" otherwise): `jobs=True`, or `MLFLOW_JOBS = True` in
    a module that uses the `mlflow_server` fixture."""

    def __init__(self, workdir: pathlib.Path, port: int | None = None, backend_uri: str | None = None,
                 extra_args: list[str] | None = None, env: dict | None = None,
                 workspaces: bool | None = None, jobs: bool = False):
        """`workspaces`: start with `--enable-workspaces`; `None` follows the run's mode."""
        self.workdir = workdir
        self.workspaces = WORKSPACES if workspaces is None else workspaces
        self.jobs = jobs
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
            # MLFLOW_WEBHOOK_CACHE_TTL=0 as docs/genai.md asks of every deployment: MLflow's
            # webhook cache is not per workspace.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true" if self.jobs else "false",
                 "MLFLOW_WEBHOOK_CACHE_TTL": "0", **(self.env or {})},
        )
        self.proc.wait_ready(lambda: requests.get(f"{self.url}/health", timeout=2).status_code == 200,
                             "MLflow /health", timeout=180)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


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
