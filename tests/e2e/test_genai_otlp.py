"""OTLP span ingestion (`POST /v1/traces`) from the real OpenTelemetry SDK and its OTLP/HTTP
exporter, authenticated with a machine's bearer token from the real `oidc-provider`: the
tenant's spans become a trace in its experiment; another tenant's export into that experiment
is refused and stores nothing. Both isolation modes (docs/genai.md)."""

from __future__ import annotations

import pytest
import requests

from conftest import Gateway, OidcProvider, unique

SECRETS = {"otel-team-a": "team-a-otel-secret-0123456789abcdef", "otel-team-b": "team-b-otel-secret-0123456789abcdef"}
CLIENTS = [{"client_id": cid, "client_secret": secret, "grant_types": ["client_credentials"], "response_types": [],
            "redirect_uris": [], "tenant_id": tenant, "roles": ["editor"]}
           for (cid, secret), tenant in zip(SECRETS.items(), ("team-a", "team-b"))]
R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"

@pytest.fixture(scope="module")
def idp(workdir):
    p = OidcProvider(workdir / "idp", CLIENTS, {}, ttl=600).start()
    yield p
    p.stop()

@pytest.fixture(scope="module")
def gw(workdir, mlflow_server, idp):
    g = Gateway(workdir / "gw", mlflow_server.url, idp.gateway_vars()).start()
    yield g
    g.stop()

def export(gw, token: str, experiment_id: str, name: str):
    """One span through the SDK's batch processor and OTLP/HTTP (protobuf) exporter; returns the
    exporter's result and the span's trace id (hex)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    results = []

    class Recording(OTLPSpanExporter):
        def export(self, spans):
            results.append(super().export(spans))
            return results[-1]

    exporter = Recording(endpoint=f"{gw.url}/v1/traces", timeout=30, headers={
        "authorization": f"Bearer {token}", "x-mlflow-experiment-id": experiment_id})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("e2e").start_as_current_span(name) as span:
        span.set_attribute("question", "2+2")
        trace_hex = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return results, trace_hex

def test_an_otel_exporter_with_a_bearer_token_writes_its_tenants_trace(gw, idp):
    from opentelemetry.sdk.trace.export import SpanExportResult

    ta = idp.client_credentials("otel-team-a", SECRETS["otel-team-a"])
    tb = idp.client_credentials("otel-team-b", SECRETS["otel-team-b"])
    auth = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    r = requests.post(f"{gw.url}{R2}/experiments/create", json={"name": unique("otel")}, headers=auth(ta), timeout=30)
    assert r.status_code == 200, r.text
    exp = r.json()["experiment_id"]

    results, trace_hex = export(gw, ta, exp, "app-call")
    assert results == [SpanExportResult.SUCCESS]
    got = requests.get(f"{gw.url}{R3}/traces/tr-{trace_hex}", headers=auth(ta), timeout=30)
    assert got.status_code == 200, got.text
    assert got.json()["trace"]["trace_info"]["trace_location"]["mlflow_experiment"]["experiment_id"] == exp
    found = requests.post(f"{gw.url}{R3}/traces/search", json={"locations": [
        {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]}, headers=auth(ta), timeout=30)
    assert f"tr-{trace_hex}" in found.text

    # team-b's exporter aimed at team-a's experiment: refused, nothing stored.
    results, foreign = export(gw, tb, exp, "intrusion")
    assert results == [SpanExportResult.FAILURE]
    # (a trace id no tenant owns is refused like a foreign one: 403)
    assert requests.get(f"{gw.url}{R3}/traces/tr-{foreign}", headers=auth(ta), timeout=30).status_code == 403
    found = requests.post(f"{gw.url}{R3}/traces/search", json={"locations": [
        {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]}, headers=auth(ta), timeout=30)
    assert f"tr-{foreign}" not in found.text
    # Without a token: 401, whatever the experiment.
    r = requests.post(f"{gw.url}/v1/traces", data=b"", headers={"content-type": "application/x-protobuf",
                                                                  "x-mlflow-experiment-id": exp}, timeout=30)
    assert r.status_code == 401
