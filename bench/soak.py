"""Reliability soak (issue 17): real MLflow Python client workers log metrics through the real
gateway (`spin up`, Redis key-value store) to a real MLflow for a while, then faults are
injected one phase at a time: MLflow killed and restarted, a slow upstream (a relay holding
MLflow's answers past `request_timeout_seconds`), Redis frozen (SIGSTOP), and bursts of
garbage (oversized, chunked, malformed, unauthenticated requests). Loopback only; every phase
is bounded in time and every request in count.

Prints, and with --write-docs writes to docs/reliability.md: acknowledged vs stored points
(nothing acknowledged may be missing), statuses per phase (from the audit lines), client
latency per phase, `spin` RSS over time, and whether every stderr line is JSON. Exits non-zero
when an invariant fails, so the short variant (--short, ~2 min) is a test.

Run through bench/soak.sh, which installs and builds what this needs."""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import pathlib
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "8"

import requests  # noqa: E402

import conftest  # noqa: E402
from conftest import Gateway, MlflowServer, Proc, free_port, wait_until  # noqa: E402
from hostile import RssSampler, hostile_body, sigcont, sigstop  # noqa: E402

TIMEOUT_S = 3  # the gateway's request_timeout_seconds during the soak


class DelayRelay:
    """Byte-level TCP relay in front of MLflow. While `delay` > 0, MLflow's answer bytes are
    held that long before they are passed on (a slow upstream)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(128)
        self.port = self.srv.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            c.close()
            return
        try:
            socks = [c, u]
            while True:
                r, _, _ = select.select(socks, [], [], 30)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is u and self.delay:
                        time.sleep(self.delay)
                    (u if s is c else c).sendall(data)
        except OSError:
            return
        finally:
            c.close()
            u.close()

    def stop(self):
        self.srv.close()


def error_kind(e: Exception) -> str:
    """What the client saw: the HTTP status (the MLflow client reports a 5xx as "too many N
    error responses" even without retries), a client-side timeout, or the exception's code."""
    msg = str(e)
    m = re.search(r"too many (\d{3}) error responses", msg)
    if m:
        return m.group(1)
    if "timed out" in msg.lower():
        return "client timeout"
    m = re.search(r"HTTP status code: (\d{3})", msg)
    if m:
        return m.group(1)
    return str(getattr(e, "error_code", None) or type(e).__name__)


class Worker(threading.Thread):
    """One MLflow client logging metric points to its own run; records what was acknowledged."""

    def __init__(self, idx: int, url: str, exp_id: str, stop: threading.Event, phase):
        super().__init__(daemon=True)
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=url)
        self.exp_id, self.stop, self.phase = exp_id, stop, phase
        self.run_id = self.client.create_run(exp_id, run_name=f"soak-{idx}").info.run_id
        self.acked: set[int] = set()
        self.failed: set[int] = set()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.samples: dict[str, str] = {}

    def run(self):
        step = 0
        while not self.stop.is_set():
            phase = self.phase()
            t0 = time.monotonic()
            try:
                self.client.log_metric(self.run_id, "m", float(step), step=step, timestamp=step)
                self.acked.add(step)
                self.latency[phase].append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - any failure is "not acknowledged"
                self.failed.add(step)
                self.latency[phase].append(time.monotonic() - t0)
                code = error_kind(e)
                self.errors[phase][code] += 1
                self.samples.setdefault(str(code), str(e)[:300])
                # A failing dependency: back off a little instead of spinning.
                self.stop.wait(0.2)
            step += 1


def garbage_burst(gw_port: int, stop: threading.Event, counts: collections.Counter):
    """Hostile requests, bounded in count, until `stop`."""
    tenant = {"X-Tenant": "team-a", "X-Subject": "soak"}
    path = "/api/2.0/mlflow/runs/log-metric"
    n = 0
    while not stop.is_set() and n < 400:
        kind = n % 5
        n += 1
        try:
            if kind == 0:
                st, _ = hostile_body(gw_port, path, tenant, 256 << 20, chunked=False, timeout=20)
            elif kind == 1:
                st, _ = hostile_body(gw_port, path, tenant, 64 << 20, chunked=True, timeout=20)
            elif kind == 2:
                st = requests.post(f"http://127.0.0.1:{gw_port}{path}", data=b'{"run_id": [',
                                   headers=tenant, timeout=10).status_code
            elif kind == 3:
                st = requests.get(f"http://127.0.0.1:{gw_port}/api/2.0/mlflow/../../etc/passwd%00",
                                  headers=tenant, timeout=10).status_code
            else:
                st = requests.post(f"http://127.0.0.1:{gw_port}{path}", json={"run_id": "x"},
                                   headers={"Authorization": "Bearer garbage"}, timeout=10).status_code
        except requests.RequestException as e:
            st = type(e).__name__
        counts[f"{['declared-256MiB', 'chunked-64MiB', 'bad-json', 'bad-path', 'no-tenant'][kind]} -> {st}"] += 1


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def parse_ts(s: str) -> float:
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def warm(mlf):
    """MLflow's first API call after start takes seconds (lazy initialisation): make it
    directly, so the gateway's timeout measures faults, not warm-up."""
    requests.get(mlf.url + "/api/2.0/mlflow/experiments/search", params={"max_results": "1"}, timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--steady", type=float, default=480, help="seconds of steady load first")
    ap.add_argument("--fault", type=float, default=30, help="seconds per fault phase")
    ap.add_argument("--short", action="store_true", help="the test-command variant (~2 min, most of it MLflow starting twice)")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    if args.short:
        args.workers, args.steady, args.fault = 4, 8, 6

    work = pathlib.Path(tempfile.mkdtemp(prefix="soak-"))
    mlf = MlflowServer(work / "mlflow", jobs=True).start()
    warm(mlf)
    relay = DelayRelay(mlf.port)
    redis_port = free_port()
    (work / "redis").mkdir()
    redis = Proc("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(work / "redis")], work / "redis" / "redis.log")
    wait_until(lambda: subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True,
                                      text=True).stdout.strip() == "PONG", "redis", proc=redis)
    gw = Gateway(work / "gw", relay.url, {"auth_mode": "off", "request_timeout_seconds": str(TIMEOUT_S)},
                 kv="redis", redis_url=f"redis://127.0.0.1:{redis_port}").start()
    conftest._Headers.current = {"X-Tenant": "team-a", "X-Subject": "soak"}
    phases: list[tuple[str, float, float]] = []
    current = ["setup"]
    stop = threading.Event()
    workers: list[Worker] = []
    garbage: collections.Counter = collections.Counter()
    ok = False  # set once the invariants have been checked
    try:
        from mlflow import MlflowClient

        exp_id = MlflowClient(tracking_uri=gw.url).create_experiment(f"soak-{os.urandom(4).hex()}")
        workers = [Worker(i, gw.url, exp_id, stop, lambda: current[0]) for i in range(args.workers)]
        with RssSampler(gw.proc.popen.pid, period=1.0) as rss:
            for w in workers:
                w.start()

            def phase(name, seconds, enter=None, leave=None):
                current[0] = name
                t0 = time.time()
                print(f"phase {name} ({seconds:.0f} s)", flush=True)
                if enter:
                    enter()
                stop.wait(max(0.0, seconds - (time.time() - t0)))
                if leave:
                    leave()
                phases.append((name, t0, time.time()))

            phase("steady", args.steady)
            phase("mlflow-killed", args.fault, enter=mlf.stop)
            t = time.time()
            current[0] = "mlflow-restart"
            mlf.start()  # same port and SQLite file: data survives
            warm(mlf)
            phases.append(("mlflow-restart", t, time.time()))
            phase("slow-upstream", args.fault, enter=lambda: setattr(relay, "delay", TIMEOUT_S + 1.0),
                  leave=lambda: setattr(relay, "delay", 0.0))
            phase("kv-hung", args.fault, enter=lambda: sigstop(redis), leave=lambda: sigcont(redis))
            gstop = threading.Event()
            gthreads = [threading.Thread(target=garbage_burst, args=(gw.port, gstop, garbage), daemon=True)
                        for _ in range(2)]
            phase("garbage", args.fault, enter=lambda: [t.start() for t in gthreads], leave=gstop.set)
            for t in gthreads:
                t.join(timeout=60)
            phase("recovery", max(args.fault, 6))
            stop.set()
            for w in workers:
                w.join(timeout=30)
        # Let the audit lines of hung requests land (they answer once Redis is back).
        time.sleep(3)

        acked = sum(len(w.acked) for w in workers)
        stored = lost = extra = 0
        extra_by_phase: collections.Counter = collections.Counter()
        direct = MlflowClient(tracking_uri=mlf.url)
        # Read straight from MLflow, in team-a's workspace when the gateway pins one.
        if conftest.WORKSPACES:
            os.environ["MLFLOW_WORKSPACE"] = "team-a"
        try:
            for w in workers:
                steps = {m.step for m in direct.get_metric_history(w.run_id, "m")}
                stored += len(steps)
                lost += len(w.acked - steps)
                extra += len(steps - w.acked)
        finally:
            os.environ.pop("MLFLOW_WORKSPACE", None)
        audit = []
        for f in (gw.workdir / "spin-logs").glob("*stdout*"):
            for line in f.read_text().splitlines():
                try:
                    audit.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        stderr_lines = broken = 0
        for f in (gw.workdir / "spin-logs").glob("*stderr*"):
            for line in f.read_text().splitlines():
                if not line.strip():
                    continue
                stderr_lines += 1
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    broken += 1
        by_phase: dict[str, collections.Counter] = {n: collections.Counter() for n, _, _ in phases}
        for a in audit:
            t = parse_ts(a["ts"])
            for n, t0, t1 in phases:
                if t0 <= t < t1:
                    by_phase[n][f"{a['status']} {a['reason']}"] += 1
                    break
        # A request that hung on the frozen Redis and was then forwarded would be "allowed" with
        # a duration past its deadline (MLflow itself is fast in that phase).
        kv = [(t0, t1) for n, t0, t1 in phases if n == "kv-hung"]
        forwarded_late = [a for a in audit if a["reason"] == "allowed"
                          and a["duration_ms"] > (TIMEOUT_S + 1) * 1000
                          and any(t0 <= parse_ts(a["ts"]) < t1 for t0, t1 in kv)]

        out = []
        p = out.append
        p(f"Workers: {args.workers} MLflow client threads (`MlflowClient.log_metric`, no retries, 8 s "
          f"client timeout); steady {args.steady:.0f} s, each fault phase {args.fault:.0f} s; "
          f"`request_timeout_seconds` = {TIMEOUT_S}; key-value store: Redis.")
        p("")
        p("| Points | Count |")
        p("|---|---|")
        p(f"| acknowledged to the client | {acked} |")
        p(f"| stored in MLflow | {stored} |")
        p(f"| acknowledged but not stored (lost) | **{lost}** |")
        p(f"| stored without acknowledgement (client saw an error after MLflow applied it) | {extra} |")
        p("")
        p("| Phase | Seconds | Client calls | Client errors | p50 ms | p99 ms | max ms | Gateway answers (status reason: count) |")
        p("|---|---|---|---|---|---|---|---|")
        for n, t0, t1 in phases:
            lat = [x for w in workers for x in w.latency.get(n, [])]
            errs = collections.Counter()
            for w in workers:
                errs.update(w.errors.get(n, {}))
            answers = ", ".join(f"{k}: {v}" for k, v in by_phase[n].most_common())
            err_s = ", ".join(f"{k}: {v}" for k, v in errs.most_common()) or "0"
            p(f"| {n} | {t1 - t0:.0f} | {len(lat)} | {err_s} | {pct(lat, 50):.0f} | {pct(lat, 99):.0f} | "
              f"{max(lat, default=0) * 1000:.0f} | {answers} |")
        p("")
        if garbage:
            p("Garbage requests (kind -> status: count): "
              + ", ".join(f"{k}: {v}" for k, v in sorted(garbage.items())) + ".")
            p("")
        samples = rss.samples
        if samples:
            t_start = samples[0][0]
            p("`spin` process tree RSS (MiB) over time, sampled each second:")
            p("")
            p("| Phase | min | max | end |")
            p("|---|---|---|---|")
            mono0 = time.monotonic() - time.time()
            for n, t0, t1 in phases:
                xs = [s for (t, s) in samples if t0 + mono0 <= t < t1 + mono0]
                if xs:
                    p(f"| {n} | {min(xs) // 1024} | {max(xs) // 1024} | {xs[-1] // 1024} |")
            p("")
            p(f"Over the whole run: first sample {samples[0][1] // 1024} MiB, peak "
              f"{max(s for _, s in samples) // 1024} MiB, last {samples[-1][1] // 1024} MiB "
              f"({samples[-1][0] - t_start:.0f} s).")
            p("")
        p(f"Operator lines on stderr: {stderr_lines}, not valid JSON: **{broken}**. "
          f"Requests forwarded after their deadline: **{len(forwarded_late)}**.")
        samples_by_code = {}
        for w in workers:
            for k, v in w.samples.items():
                samples_by_code.setdefault(k, v)
        for k, v in samples_by_code.items():
            print(f"client error {k}: {v}")
        report = "\n".join(out)
        print(report)
        ok = not (lost or broken or forwarded_late)
        if not ok:
            print(f"FAIL: lost={lost} broken_log_lines={broken} forwarded_late={len(forwarded_late)}",
                  file=sys.stderr)
        if args.write_docs:
            write_docs(report, args)
    finally:
        stop.set()
        sigcont(redis)
        gw.stop()
        redis.stop()
        relay.stop()
        mlf.stop()
        # Logs, MLflow's database and artifacts are kept only when something failed.
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
    sys.exit(0 if ok else 1)


def write_docs(report: str, args):
    doc = REPO / "docs" / "reliability.md"
    text = doc.read_text() if doc.exists() else ""
    start, end = "<!-- soak:begin -->", "<!-- soak:end -->"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{start}\nMeasured {stamp} by `bench/soak.sh --steady {args.steady:.0f} --fault {args.fault:.0f} " \
            f"--workers {args.workers}`.\n\n{report}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text + "\n" + block + "\n"
    doc.write_text(text)
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
