"""Helpers for the hostile-load and fault tests and the soak script (bench/soak.py): the RSS of
the `spin` process tree, hostile request bodies sent over raw sockets, and a relay in front of
the real MLflow that cuts answers short. Real processes and real sockets only."""

from __future__ import annotations

import os
import pathlib
import select
import signal
import socket
import struct
import threading
import time


def tree_rss_kib(root_pid: int) -> int:
    """Resident memory (KiB) of `root_pid` and all its descendants (`spin up` runs the HTTP
    trigger in a child process)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            status = (d / "status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(d.name)] = int(line.split()[1])
    total, todo = 0, [root_pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


class RssSampler:
    """Samples the tree's RSS every `period` s in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int, period: float = 0.05):
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), tree_rss_kib(self.pid)))
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def peak(self) -> int:
        return max((s for _, s in self.samples), default=0)


def _read_status(sock: socket.socket, deadline: float) -> int | None:
    """Reads a response status line if one arrived (None: connection closed without one)."""
    data = b""
    while b"\r\n" not in data and time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            chunk = sock.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 "):
        return int(data[9:12])
    return None


def hostile_body(port: int, path: str, headers: dict[str, str], total: int, chunked: bool,
                 timeout: float = 60.0) -> tuple[int | None, int]:
    """Sends a POST whose body is `total` bytes (declared, or chunked without a length), 1 MiB
    at a time, until the gateway answers or the body is all sent. Returns (status, bytes sent)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.monotonic() + timeout
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    sent = 0
    try:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        piece = b"[" + b" " * ((1 << 20) - 1)
        while sent < total and time.monotonic() < deadline:
            r, w, _ = select.select([s], [s], [], 1.0)
            if r:
                break  # the gateway answered (or closed): stop sending
            if not w:
                continue
            n = min(len(piece), total - sent)
            data = piece[:n]
            if chunked:
                data = f"{n:x}\r\n".encode() + data + b"\r\n"
            try:
                s.sendall(data)
            except OSError:
                break
            sent += n
            piece = b" " * (1 << 20)
        if chunked and sent >= total:
            try:
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass
        return _read_status(s, deadline), sent
    finally:
        s.close()


class CuttingRelay:
    """A TCP relay in front of the real MLflow: a request whose target contains `cut-<marker>`
    gets MLflow's real answer head (with its Content-Length) and half its body, then the
    connection closes; `reset-<marker>` gets nothing but a TCP reset once MLflow has answered.
    Everything else is relayed unchanged."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return head + b"\r\n\r\n" + rest

    def _serve(self, c: socket.socket):
        try:
            while True:
                req = self._read_message(c)
                if req is None:
                    return
                target = req.split(b"\r\n", 1)[0]
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60)
                # One request per upstream connection, so the answer ends at close.
                head, _, body = req.partition(b"\r\n\r\n")
                lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
                up.sendall(b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body)
                resp = b""
                while chunk := up.recv(65536):
                    resp += chunk
                up.close()
                if b"\r\n\r\n" not in resp:
                    return
                rhead, _, rbody = resp.partition(b"\r\n\r\n")
                if b"cut-" in target:
                    c.sendall(rhead + b"\r\n\r\n" + rbody[: len(rbody) // 2])
                    c.shutdown(socket.SHUT_RDWR)
                    return
                if b"reset-" in target:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                c.sendall(resp)
        except OSError:
            return
        finally:
            c.close()

    def stop(self):
        self._stop = True
        self.srv.close()


def spin_pid(gw) -> int:
    return gw.proc.popen.pid


def sigstop(proc):
    """Freezes a process: its sockets stay open but nothing answers (a hung dependency)."""
    os.kill(proc.popen.pid, signal.SIGSTOP)


def sigcont(proc):
    os.kill(proc.popen.pid, signal.SIGCONT)
