"""Telemetry (issue 22): with Spin's OpenTelemetry exporter variables set (as the Compose stack
and the SpinKube executor set them), `spin up` sends the gateway's traces, metrics and logs to
an OTLP/HTTP collector, and the calls to MLflow carry `traceparent`. The collector here is a
plain HTTP server that records what arrives; the payloads are Spin's real protobuf exports."""

import http.server
import re
import threading
import uuid

from conftest import CapturingProxy, Caller, Gateway, free_port, wait_until


class OtlpReceiver:
    """Records every OTLP/HTTP export: (path, body)."""

    def __init__(self):
        self.received: list[tuple[str, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.received.append((self.path, body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"

    def bodies(self, signal: str) -> bytes:
        return b"".join(b for p, b in list(self.received) if p == f"/v1/{signal}")

    def stop(self):
        self.server.shutdown()


def test_spin_exports_traces_metrics_and_audit_logs_and_propagates_traceparent(workdir, mlflow_server):
    otlp = OtlpReceiver()
    proxy = CapturingProxy(mlflow_server.port)
    gw = Gateway(workdir / "gw-otel", proxy.url, {"auth_mode": "off"}, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
        "OTEL_SERVICE_NAME": "mlflow-gateway",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }).start()
    try:
        rid = "otel-" + uuid.uuid4().hex
        r = Caller(gw, tenant="team-a").get("/api/2.0/mlflow/experiments/search",
                                             params={"max_results": 1}, headers={"X-Request-ID": rid})
        assert r.status_code == 200, r.text
        # The call to MLflow carried a W3C trace context.
        sent = [x for x in proxy.records if x["headers"].get("x-request-id") == rid]
        assert sent and re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", sent[0]["headers"]["traceparent"])
        # Traces: the request and its outbound call to MLflow (with its URL).
        wait_until(lambda: b"spin_factor_outbound_http" in otlp.bodies("traces")
                   and b"/api/2.0/mlflow/experiments/search" in otlp.bodies("traces"), "spans")
        # Metrics: request count and the component's CPU time, per component.
        wait_until(lambda: b"spin.request_count" in otlp.bodies("metrics")
                   and b"spin.component_cpu_time" in otlp.bodies("metrics"), "metrics")
        assert b"mlflow-gateway" in otlp.bodies("metrics")
        # Logs: the audit line of the request (stdout) reaches the collector too.
        wait_until(lambda: rid.encode() in otlp.bodies("logs"), "audit line as a log record")
    finally:
        gw.stop()
        proxy.stop()
        otlp.stop()
