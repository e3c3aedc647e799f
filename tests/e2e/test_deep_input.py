"""The deepest inputs the gateway's parsers take, through the built component: answered, never a
trap. The component links with a 256 KiB WebAssembly stack (build.rs says why); these requests
are the deepest recursion the gateway does (strict JSON at serde_json's nesting limit, parsed
and re-serialised; GraphQL at the parser's recursion limit; OTLP span attributes, JSON and
protobuf), each just inside and just past its limit. A stack too small for them traps and Spin
answers 500, which these tests refuse."""

import json

import pytest

from conftest import unique

JSON_LIMIT = 127  # serde_json's nesting limit (the gateway's strict parser): levels accepted


@pytest.fixture(scope="module")
def run_ids(a):
    exp = a.post("/api/2.0/mlflow/experiments/create", {"name": unique("deep")})
    assert exp.status_code == 200, exp.text
    exp_id = exp.json()["experiment_id"]
    run = a.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp_id})
    assert run.status_code == 200, run.text
    return exp_id, run.json()["run"]["info"]["run_id"]


def nested_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def post_json(caller, path: str, body: str, headers: dict | None = None):
    """`body` sent as it is written (requests would re-encode a dict, and Python's json module
    cannot nest this deep)."""
    return caller.request("POST", path, data=body, headers={"Content-Type": "application/json", **(headers or {})})


def log_batch_with_tag_nested(run_id: str, levels: int) -> str:
    """A log-batch whose one tag carries a value nested `levels` deep: with the top-level
    object, `tags` and the tag itself, the body is `levels + 3` levels deep."""
    return '{"run_id": "%s", "metrics": [], "tags": [{"key": "deep", "value": "v", "z": %s}]}' % (
        run_id, nested_object(levels))


def assert_no_trap(gw):
    log = gw.log_path.read_text(errors="replace")
    for sign in ("wasm trap", "call stack exhausted", "stack overflow"):
        assert sign not in log, f"the component trapped: {sign!r} in {gw.log_path}"


def test_json_at_the_nesting_limit_is_parsed_reserialised_and_forwarded(a, gw, run_ids):
    _, run_id = run_ids
    # log-batch: the body is parsed strictly and re-serialised (judged fields first) at every
    # depth; at the limit it reaches MLflow
    r = post_json(a, "/api/2.0/mlflow/runs/log-batch", log_batch_with_tag_nested(run_id, JSON_LIMIT - 3))
    assert r.status_code == 200, r.text
    run = a.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()["run"]
    assert {"key": "deep", "value": "v"} in run["data"]["tags"]
    # one level more: the gateway's own 400, before MLflow
    r = post_json(a, "/api/2.0/mlflow/runs/log-batch", log_batch_with_tag_nested(run_id, JSON_LIMIT - 2))
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "not valid JSON" in r.json()["message"]
    # arrays, in a search whose answer the gateway also checks
    for levels, status in ((JSON_LIMIT - 1, 200), (JSON_LIMIT, 400), (5000, 400)):
        r = post_json(a, "/api/2.0/mlflow/experiments/search",
                      '{"max_results": 10, "x": %s}' % ("[" * levels + "]" * levels))
        assert r.status_code == status, (levels, r.text)
    assert_no_trap(gw)


def test_graphql_at_the_parsers_recursion_limit_is_refused_cleanly(a, gw, run_ids):
    _, run_id = run_ids
    head = "query GetRun($data: MlflowGetRunInput) { mlflowGetRun(input: $data) { run { "
    for depth in (60, 64, 70, 3000):
        for query in (head + "info { " * depth + "runId" + " }" * depth + " } } }",
                      head.replace("input: $data", "input: " + "[" * depth + "1" + "]" * depth) + "info { runId } } } }",
                      head.replace("input: $data", "input: " + "{a: " * depth + "1" + "}" * depth) + "info { runId } } } }"):
            r = a.post("/graphql", {"operationName": "GetRun", "query": query, "variables": {"data": {"runId": run_id}}})
            assert r.status_code == 403, (depth, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
    assert_no_trap(gw)


def _any_value(levels: int) -> dict:
    v = {"stringValue": "x"}
    for _ in range(levels):
        v = {"kvlistValue": {"values": [{"key": "k", "value": v}]}}
    return v


def _pb(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, size = len(payload), b""
    while True:
        b, n = n & 0x7F, n >> 7
        size += bytes([b | (0x80 if n else 0)])
        if not n:
            return bytes([(field << 3) | 2]) + size + payload


def test_otlp_span_attributes_nested_deep(a, gw, run_ids):
    exp_id, _ = run_ids
    headers = {"x-mlflow-experiment-id": exp_id}
    # JSON: each AnyValue level is four JSON levels; 20 fit the nesting limit, 40 do not
    for levels, status in ((20, 200), (40, 400)):
        span = {"traceId": "%032x" % (levels + 1), "spanId": "%016x" % 1, "name": "s",
                "startTimeUnixNano": "1", "endTimeUnixNano": "2",
                "attributes": [{"key": "a", "value": _any_value(levels)}]}
        r = post_json(a, "/v1/traces", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}), headers)
        assert r.status_code == status, (levels, r.text)
    # protobuf: the gateway reads the trace ids and skips attributes without descending into
    # them, so 20,000 levels cost it no stack; MLflow's own parser refuses the body
    value = _pb(1, b"x")
    for _ in range(20_000):
        value = _pb(6, _pb(1, _pb(1, b"k") + _pb(2, value)))
    span = _pb(1, b"\x00" * 15 + b"\x07") + _pb(2, b"\x00" * 7 + b"\x01") + _pb(5, b"s") + _pb(9, _pb(1, b"a") + _pb(2, value))
    r = a.request("POST", "/v1/traces", data=_pb(1, _pb(2, _pb(2, span))),
                  headers={**headers, "Content-Type": "application/x-protobuf"})
    assert r.status_code == 400, r.text
    assert "request id" not in r.text  # MLflow's answer, not the gateway's
    assert_no_trap(gw)
