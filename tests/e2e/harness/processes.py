"""Processes: children in their own process group (stopped with the whole group), free ports,
polling against a deadline, Spin itself and a redis-server."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from .run import E2E_RUNTIME

# E2E_PORTS=<first>-<last>: free ports come from this block only, each handed out once per run,
# so test runs side by side (scripts/test.sh runs two) never pick the same port. A block below
# the kernel's ephemeral range (32768-60999) is also never taken meanwhile by an outgoing
# connection's local port. Unset: a port the kernel chooses.
_PORTS = os.environ.get("E2E_PORTS", "")
_handed_out: set[int] = set()


def _port_block() -> range | None:
    if not _PORTS:
        return None
    first, sep, last = _PORTS.partition("-")
    if not (sep and first.isdigit() and last.isdigit() and 1024 <= int(first) < int(last) <= 65535):
        raise RuntimeError(f"E2E_PORTS must be <first>-<last>, not {_PORTS!r}")
    return range(int(first), int(last) + 1)


def free_port() -> int:
    block = _port_block()
    if block is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in block:
        if port in _handed_out:
            continue
        _handed_out.add(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone else's
            return port
    raise RuntimeError(f"E2E_PORTS={_PORTS}: every port of the block is used")


def wait_until(pred, what: str, timeout: float = 90.0, proc: Proc | None = None):
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
        self.log_file = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
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

    def wait_ready(self, pred, what: str, timeout: float = 90.0):
        """`wait_until(pred)` for a process just started; stops it when it never gets ready or
        the wait is interrupted (Ctrl-C, SIGTERM), since its owner never got to hold it."""
        try:
            return wait_until(pred, what, timeout=timeout, proc=self)
        except BaseException:
            self.stop()
            raise

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
        # Whatever of its group outlived it (children it did not wait for).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.log_file.close()


def spin_bin() -> str:
    found = os.environ.get("SPIN_BIN") or shutil.which("spin")
    if not found:
        raise RuntimeError("Spin not found: run through scripts/test.sh or set SPIN_BIN")
    return found


def spin_version() -> str:
    """The Spin that runs the gateways: `spin --version`, or with E2E_RUNTIME=shim containerd's and
    containerd-shim-spin's versions (with the Spin inside)."""
    if E2E_RUNTIME == "shim":
        from . import shim  # noqa: PLC0415 - shim imports this module
        return shim.versions()
    out = subprocess.run([spin_bin(), "--version"], capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.strip() or out.stderr.strip()


def redis_ping(port: int, password: str | None = None) -> bool:
    args = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    if password:
        args += ["--no-auth-warning", "-a", password]
    return subprocess.run(args + ["ping"], capture_output=True, text=True,
                          timeout=10, check=False).stdout.strip() == "PONG"


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
        self.proc.wait_ready(lambda: redis_ping(self.port, self.password), "redis-server PONG")
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
