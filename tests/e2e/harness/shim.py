"""The gateway under SpinKube's own runtime (E2E_RUNTIME=shim, issue 33): containerd +
containerd-shim-spin v0.24.0 (Spin 3.6.3 inside) run the OCI artifact `spin registry push` makes
of spin.toml and GATEWAY_WASM, the way spin-operator runs a SpinApp's pod: the variables as
`SPIN_VARIABLE_*` environment, the runtime config at /runtime-config.toml, the listen address in
SPIN_HTTP_LISTEN_ADDR (host network, 127.0.0.1:<port>). scripts/spinkube_local.sh does the
containerd work (docs/spinkube-local.md); `spinkube_local.sh slice` runs the slice this way.

What a test sees is what `spin up` gives it: the same port, the gateway's output (Spin's lines,
the component's stdout and stderr, so the audit lines) in the same log file, SIGTERM to stop,
restart = stop + start under the same container name, a SQLite store at the same path (its
directory is bind-mounted at the same path), Redis on 127.0.0.1 as is. Not available: Spin's
--log-dir (the shim sets no log dir), a manifest other than the repository's spin.toml (one
image serves the session), and extra environment for Spin itself (the `env` of a Gateway goes
into the container's environment, where the shim's Spin reads it)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import tomllib

from .processes import Proc
from .run import REPO, WASM, spin_env

SCRIPT = REPO / "scripts" / "spinkube_local.sh"
MANIFEST = REPO / "spin.toml"

_image: str | None = None
_versions: str | None = None


def _script(*args: str, timeout: float) -> str:
    out = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                         check=False)
    if out.returncode != 0:
        what = "SKIP (the machine lacks something)" if out.returncode == 77 else f"exit {out.returncode}"
        raise RuntimeError(f"E2E_RUNTIME=shim: scripts/spinkube_local.sh {' '.join(args)}: {what}:\n"
                           f"{out.stderr[-3000:]}")
    return out.stdout.strip()


def image() -> str:
    """The session's image: E2E_SHIM_IMAGE (set by `spinkube_local.sh slice`), else
    `spinkube_local.sh image GATEWAY_WASM` once (push to the local registry, pull into
    containerd; its tag is a hash of spin.toml and the component, so it is the one under test)."""
    global _image
    if _image is None:
        _image = os.environ.get("E2E_SHIM_IMAGE") or _script("image", str(WASM), timeout=900).splitlines()[-1]
    return _image


def versions() -> str:
    """containerd's and the shim's versions (what the report header and printed figures name)."""
    global _versions
    if _versions is None:
        _versions = _script("versions", timeout=60)
    return _versions


def _store_dirs(runtime_config: pathlib.Path) -> list[str]:
    """The directories of the SQLite stores (`type = "spin"`) the runtime config names: bound at
    the same path in the container, so that `path` means what it means to `spin up`."""
    doc = tomllib.loads(runtime_config.read_text())
    dirs = []
    for name, store in doc.get("key_value_store", {}).items():
        if store.get("type") != "spin" or "path" not in store:
            continue
        path = pathlib.Path(store["path"])
        if not path.is_absolute():
            # Relative to the runtime config's folder for `spin up`, to / in the container.
            raise RuntimeError(f"E2E_RUNTIME=shim: key_value_store.{name}.path must be absolute, not {path}")
        path.parent.mkdir(parents=True, exist_ok=True)  # as Spin does for `spin up`
        if str(path.parent) not in dirs:
            dirs.append(str(path.parent))
    return dirs


class ShimProc(Proc):
    """`spinkube_local.sh gateway-run` (it execs `ctr run --rm` in the foreground): SIGTERM
    reaches the gateway, the container goes with it. If `ctr` had to be killed, the container
    would outlive it: `stop()` then removes it by name."""

    def __init__(self, container: str, args: list[str], log_path: pathlib.Path, env, cwd):
        self.container = container
        super().__init__("spin-shim", args, log_path, env=env, cwd=cwd)

    def stop(self):
        super().stop()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run([str(SCRIPT), "gateway-stop", self.container], capture_output=True,
                           timeout=120, check=False)


def start(gateway) -> ShimProc:
    """Starts `gateway` (a harness.gateway.Gateway) in a container; returns its process."""
    if gateway.manifest.resolve() != MANIFEST.resolve():
        raise RuntimeError(f"E2E_RUNTIME=shim runs the image of {MANIFEST}, not {gateway.manifest}")
    # The variables (secrets among them) in a file, not on a command line; `ctr run --env-file`
    # reads one NAME=value a line, so a value cannot hold a line break.
    lines = []
    for k, v in {**gateway.extra_env,
                 **spin_env(gateway.variables)}.items():
        if "\n" in v or "\r" in v:
            raise RuntimeError(f"E2E_RUNTIME=shim: {k} holds a line break "
                               "(ctr run --env-file cannot pass it)")
        lines.append(f"{k}={v}\n")
    env_file = gateway.workdir / "shim.env"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(lines))
    # Unique among running gateways of every run on the machine (this pytest's pid), the same
    # across a restart of this gateway (its port stays).
    container = f"e2e-{os.getpid()}-{gateway.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIN_VARIABLE_")}
    env["SPINKUBE_IMAGE"] = image()
    return ShimProc(container,
                    [str(SCRIPT), "gateway-run", container, str(gateway.port), str(env_file),
                     str(gateway.runtime_config), *_store_dirs(gateway.runtime_config)],
                    gateway.log_path, env=env, cwd=str(gateway.workdir))
