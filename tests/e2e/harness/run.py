"""The run's settings: where things are, the policy table as data, the isolation mode and the
key-value backend every MLflow and gateway of the run uses unless a test names its own."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sys
import uuid

REPO = pathlib.Path(__file__).resolve().parents[3]
# The policy table as data (written by `cargo test` from src/policy/table.rs, checked there).
POLICY_TABLE = json.loads((REPO / "tests/data/policy_table.json").read_text())
ROW_IDS = [r["id"] for r in POLICY_TABLE["rows"]]
WASM = pathlib.Path(
    os.environ.get("GATEWAY_WASM", REPO / "target/wasm32-wasip2/release/mlflow_enterprise_gateway.wasm")
)
VENV_BIN = pathlib.Path(sys.executable).parent
# What tests keep for people to look at (screenshots): E2E_ARTIFACTS, so that runs side by side
# (scripts/test.sh) do not write the same files.
ARTIFACTS = pathlib.Path(os.environ.get("E2E_ARTIFACTS") or REPO / "tests" / "e2e" / ".artifacts")

# The isolation mode every MLflow and gateway of the run uses unless a test names one (issue 19):
# E2E_ISOLATION=workspace (default, as spin.toml: MLflow started with --enable-workspaces, the
# gateway pins each tenant's workspace) or E2E_ISOLATION=tag (tenant tags only, MLflow without
# workspaces). The test command runs the suite in each mode (the package docstring says which
# tests run in one mode only).
ISOLATION = os.environ.get("E2E_ISOLATION", "workspace")
if ISOLATION not in ("workspace", "tag"):
    raise RuntimeError(f"E2E_ISOLATION must be workspace or tag, not {ISOLATION!r}")
WORKSPACES = ISOLATION == "workspace"

# The key-value backend of every gateway a test starts without naming one (issue 23):
# E2E_KV=spin (default: a SQLite file per gateway) or E2E_KV=redis (one redis-server for the
# session, a database of its own per gateway, so gateways stay as isolated as with SQLite).
E2E_KV = os.environ.get("E2E_KV", "spin")
if E2E_KV not in ("spin", "redis"):
    raise RuntimeError(f"E2E_KV must be spin or redis, not {E2E_KV!r}")

# The runtime every gateway of the run starts under (issue 33): E2E_RUNTIME=spin (default: `spin
# up`, the Spin of SPIN_BIN) or E2E_RUNTIME=shim (containerd + containerd-shim-spin v0.24.0 from
# the OCI artifact, as on a SpinKube node: harness/shim.py; `scripts/spinkube_local.sh slice`).
E2E_RUNTIME = os.environ.get("E2E_RUNTIME", "spin")
if E2E_RUNTIME not in ("spin", "shim"):
    raise RuntimeError(f"E2E_RUNTIME must be spin or shim, not {E2E_RUNTIME!r}")

# MLflow client: fail fast instead of retrying with backoff on 5xx.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


def _spin_variables() -> frozenset[str]:
    import tomllib

    return frozenset(tomllib.loads((REPO / "spin.toml").read_text())["variables"])


# The settings that are Spin variables of their own (spin.toml [variables]); every other
# setting is a line of the `settings` variable (docs/configuration.md).
SPIN_VARIABLES = _spin_variables()


def spin_env(settings: dict[str, str]) -> dict[str, str]:
    """The SPIN_VARIABLE_* environment that gives a gateway `settings` (name -> value), as an
    operator writes it: a variable of spin.toml as itself, every other setting folded into
    `settings`, `; `-separated (one line: `ctr run --env-file` takes no line breaks)."""
    env, lines = {}, []
    for name, value in settings.items():
        if name in SPIN_VARIABLES:
            env[f"SPIN_VARIABLE_{name.upper()}"] = value
        else:
            if ";" in value:
                raise ValueError(f"setting {name}: a value inside `settings` cannot hold ';'")
            lines.append(f"{name} = {value}")
    if lines:
        given = settings.get("settings", "")
        env["SPIN_VARIABLE_SETTINGS"] = "; ".join(([given] if given else []) + lines)
    return env


def pinned(tenant: str) -> dict[str, str]:
    """Headers for a test's own direct call to MLflow about `tenant`'s data: the tenant's
    workspace in workspace mode (what the gateway pins), nothing in tag mode. Without it a
    direct check would look in MLflow's `default` workspace and find nothing."""
    return {"X-MLFLOW-WORKSPACE": tenant} if WORKSPACES else {}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


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
