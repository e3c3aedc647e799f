"""Cross-tenant leaks found by a review of the gateway, each as an attacker would try it against
the real MLflow, and the classes behind them (docs/threat-model.md, "Classes of parser and
trust bugs"):

1. two names for one id: the id the gateway judges must be the id MLflow's handler acts on
   (the table-driven parity test sends every row's id in each place MLflow reads it);
2. MLflow acts on a partly parsed body: judged fields are forwarded first;
3. location tags: a trace's data location is written only by MLflow and checked before
   `get-trace-artifact`;
4. protected tags: one guard for the tenant, attribution and location tags;
5. role classes by effect: unlinking a dataset's last experiment is refused.

Every test here fails against the gateway before these fixes."""

import itertools
import json
import uuid

import pytest
import requests

from conftest import Caller, unique
from test_policy_rows import ASSESSMENT, R2, R3, Objs

AJAX2 = "/ajax-api/2.0/mlflow"
AJAX3 = "/ajax-api/3.0/mlflow"


@pytest.fixture(scope="module")
def oa(a):
    return Objs(a).genai()


@pytest.fixture(scope="module")
def ob(b):
    return Objs(b).genai()


def call(gw, tenant, method, path, query=None, body=None):
    """One request as `tenant`; returns (response, audit line)."""
    rid = "leak-" + uuid.uuid4().hex
    c = Caller(gw, tenant=tenant, subject=tenant + "-user", extra={"X-Request-ID": rid})
    r = c.request(method, path, params=query, json=body if method != "GET" else None)
    return r, gw.audit_for(rid)[0]


def spans_of(o):
    """The spans MLflow stores for `o.trace` (uploaded as the trace's data artifact)."""
    return f"secret-span-{o.a.tenant}"


def upload_spans(o):
    """Stores trace data for o.trace the way the MLflow client does (proxied artifact under the
    trace's own location), with a marker naming the tenant."""
    data = {"spans": [{"name": spans_of(o), "trace_id": "x", "span_id": "y", "attributes": {}}]}
    path = f"{o.exp}/traces/{o.trace}/artifacts/traces.json"
    r = o.a.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", data=json.dumps(data).encode())
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 1. two names for one id

@pytest.mark.parametrize("mount", [AJAX2, AJAX3])
def test_get_trace_artifact_judges_the_id_mlflow_reads(gw, oa, ob, mount):
    upload_spans(oa)
    upload_spans(ob)
    # The owner reads its own spans by the name MLflow reads (`request_id`).
    r, line = call(gw, "team-a", "GET", f"{mount}/get-trace-artifact", {"request_id": oa.trace})
    assert r.status_code == 200 and spans_of(oa) in r.text, r.text
    # team-b names its own trace as `trace_id` and team-a's as `request_id`: refused, nothing
    # of team-a's in the answer (before the fix: 200 with team-a's spans).
    for query in ({"trace_id": ob.trace, "request_id": oa.trace},
                  {"request_id": oa.trace, "trace_id": ob.trace},
                  {"trace_id": ob.trace, "request_id": ob.trace},
                  {"request_id": oa.trace}):
        r, line = call(gw, "team-b", "GET", f"{mount}/get-trace-artifact", query)
        assert r.status_code in (400, 403), (query, r.text)
        assert spans_of(oa) not in r.text
        assert line["decision"] == "deny" and line["upstream_status"] is None


# Where each row's MLflow handler reads its resource id (mlflow/server/handlers.py of the
# pinned MLflow): the accepted places, and the spellings MLflow does not read, which are
# refused. ("path",) is the URL segment; ("q", name) the query; ("b", name) the JSON body.
PATH = ("path",)
Q = lambda n: ("q", n)  # noqa: E731
B = lambda n: ("b", n)  # noqa: E731

# row id: (method, path with {id}, object attribute, accepted places, refused spellings, extra
# body/query fields, or a function of the caller's own objects giving them)
PARITY = {
    # `run_id or run_uuid`
    "runs.get": ("GET", R2 + "/runs/get", "run", [Q("run_id"), Q("run_uuid")], [], {}),
    "runs.update": ("POST", R2 + "/runs/update", "run", [B("run_id"), B("run_uuid")], [], {}),
    "runs.set_tag": ("POST", R2 + "/runs/set-tag", "run", [B("run_id"), B("run_uuid")], [], {"key": "k", "value": "v"}),
    "runs.log_metric": ("POST", R2 + "/runs/log-metric", "run", [B("run_id"), B("run_uuid")], [], {"key": "m", "value": 1.0, "timestamp": 1}),
    "runs.log_parameter": ("POST", R2 + "/runs/log-parameter", "run", [B("run_id"), B("run_uuid")], [], {"key": "p2", "value": "1"}),
    "metrics.get_history": ("GET", R2 + "/metrics/get-history", "run", [Q("run_id"), Q("run_uuid")], [], {"metric_key": "m"}),
    "artifacts.list": ("GET", R2 + "/artifacts/list", "run", [Q("run_id"), Q("run_uuid")], [], {}),
    "artifacts.get": ("GET", "/get-artifact", "run", [Q("run_id"), Q("run_uuid")], [], {"path": "file.txt"}),
    # `run_id` only: the message has no `run_uuid`
    "runs.delete_tag": ("POST", R2 + "/runs/delete-tag", "run", [B("run_id")], [B("run_uuid")], {"key": "k"}),
    "runs.log_batch": ("POST", R2 + "/runs/log-batch", "run", [B("run_id")], [B("run_uuid")], {}),
    "runs.log_model": ("POST", R2 + "/runs/log-model", "run", [B("run_id")], [B("run_uuid")], {"model_json": "{}"}),
    "runs.log_inputs": ("POST", R2 + "/runs/log-inputs", "run", [B("run_id")], [B("run_uuid")], {}),
    "runs.log_outputs": ("POST", R2 + "/runs/outputs", "run", [B("run_id")], [B("run_uuid")], {}),
    "runs.delete": ("POST", R2 + "/runs/delete", "run", [B("run_id")], [B("run_uuid")], {}),
    "runs.restore": ("POST", R2 + "/runs/restore", "run", [B("run_id")], [B("run_uuid")], {}),
    # traces: the path segment, with any body spelling required to agree
    "traces.get_v3": ("GET", R3 + "/traces/{id}", "trace", [PATH, Q("trace_id"), Q("request_id")], [], {}),
    "traces.set_tag_v3": ("PATCH", R3 + "/traces/{id}/tags", "trace", [PATH, B("trace_id"), B("request_id")], [], {"key": "k2", "value": "v"}),
    "traces.delete_tag_v3": ("DELETE", R3 + "/traces/{id}/tags", "trace", [PATH, B("trace_id"), B("request_id")], [], {"key": "k3"}),
    "assessments.create": ("POST", R3 + "/traces/{id}/assessments", "trace", [PATH, B("trace_id")], [], {"assessment": ASSESSMENT}),
    "traces.get_info_v2": ("GET", R2 + "/traces/{id}/info", "trace", [PATH, Q("request_id"), Q("trace_id")], [], {}),
    "traces.set_tag_v2": ("PATCH", R2 + "/traces/{id}/tags", "trace", [PATH, B("request_id"), B("trace_id")], [], {"key": "k4", "value": "v"}),
    "traces.delete_tag_v2": ("DELETE", R2 + "/traces/{id}/tags", "trace", [PATH, B("request_id"), B("trace_id")], [], {"key": "k4"}),
    # traces: one query field, the other spelling refused
    "traces.get_info_v3": ("GET", R3 + "/traces/get", "trace", [Q("trace_id")], [Q("request_id")], {}),
    "traces.get_artifact": ("GET", AJAX2 + "/get-trace-artifact", "trace", [Q("request_id")], [Q("trace_id")], {}),
    "traces.get_artifact_v3": ("GET", AJAX3 + "/get-trace-artifact", "trace", [Q("request_id")], [Q("trace_id")], {}),
    "traces.link_to_run": ("POST", R2 + "/traces/link-to-run", "run", [B("run_id")], [B("run_uuid")], lambda o: {"trace_ids": [o.trace]}),
    # logged models: the path, and a body `model_id` (finalize acts on the body's!)
    "logged_models.get": ("GET", R2 + "/logged-models/{id}", "model", [PATH, Q("model_id")], [], {}),
    "logged_models.finalize": ("PATCH", R2 + "/logged-models/{id}", "model", [PATH, B("model_id")], [], {"status": "LOGGED_MODEL_READY"}),
    "logged_models.set_tags": ("PATCH", R2 + "/logged-models/{id}/tags", "model", [PATH, B("model_id")], [], {"tags": [{"key": "k", "value": "v"}]}),
    "logged_models.log_params": ("POST", R2 + "/logged-models/{id}/params", "model", [PATH, B("model_id")], [], {"params": [{"key": "p", "value": "1"}]}),
    # GenAI objects: the path with an agreeing body, or the query (GET) / body field
    "datasets.get": ("GET", R3 + "/datasets/{id}", "ds", [PATH, Q("dataset_id")], [], {}),
    "datasets.set_tags": ("PATCH", R3 + "/datasets/{id}/tags", "ds", [PATH, B("dataset_id")], [], {"tags": json.dumps({"k": "v"})}),
    "issues.get": ("GET", R3 + "/issues/{id}", "issue", [PATH, Q("issue_id")], [], {}),
    "issues.update": ("PATCH", R3 + "/issues/{id}", "issue", [PATH, B("issue_id")], [], {"description": "d2"}),
    "label_schemas.get": ("GET", R3 + "/label-schemas/get", "schema", [Q("schema_id")], [], {}),
    "label_schemas.update": ("PATCH", R3 + "/label-schemas/update", "schema", [B("schema_id")], [], {}),
    "review_queues.get": ("GET", R3 + "/review-queues/get", "queue", [Q("queue_id")], [], {}),
    "review_queues.update": ("POST", R3 + "/review-queues/update", "queue", [B("queue_id")], [], {}),
    "experiments.get": ("GET", R2 + "/experiments/get", "exp", [Q("experiment_id")], [], {}),
    "experiments.update": ("POST", R2 + "/experiments/update", "exp", [B("experiment_id")], [], {"new_name": None}),
    "registered_models.get": ("GET", R2 + "/registered-models/get", "rm", [Q("name")], [], {}),
    "scorers.get": ("GET", R3 + "/scorers/get", "exp", [Q("experiment_id")], [], {"name": "sc"}),
}


def send(gw, tenant, row, values, own):
    """Sends `row` as `tenant` (whose objects are `own`) with `values` ({place: id}); the path
    segment defaults to the first id."""
    method, path, _attr, _ok, _refused, extra = PARITY[row]
    if callable(extra):
        extra = extra(own)
    extra = {k: (unique("exp") if v is None else v) for k, v in extra.items()}
    seg = values.get(PATH, next(iter(values.values())))
    query = dict(extra) if method == "GET" else {}
    body = {} if method == "GET" else dict(extra)
    for place, v in values.items():
        if place != PATH:
            (query if place[0] == "q" else body)[place[1]] = v
    return call(gw, tenant, method, path.replace("{id}", seg), query, body)


@pytest.mark.parametrize("row", list(PARITY))
def test_every_row_judges_the_id_mlflow_acts_on(gw, oa, ob, row):
    _m, path, attr, accepted, refused, _x = PARITY[row]
    mine, theirs = getattr(oa, attr), getattr(ob, attr)
    in_path = "{id}" in path
    fields = [p for p in accepted if p != PATH]

    def places(p, v):
        # A path row always carries its id in the path; a field repeats it there.
        return {PATH: v} if p == PATH else ({PATH: v, p: v} if in_path else {p: v})

    for p in accepted:
        _r, line = send(gw, "team-a", row, places(p, mine), oa)
        assert line["decision"] == "allow", (row, p, line)
        r, line = send(gw, "team-b", row, places(p, mine), ob)
        assert line["decision"] == "deny", (row, p, r.text)
    # Two places naming different objects, in both orders: never forwarded.
    pairs = [(PATH, f) for f in fields] if in_path else list(itertools.combinations(fields, 2))
    pairs += [(f, g) for f, g in itertools.combinations(fields, 2) if in_path]
    for p1, p2 in pairs:
        for v1, v2 in ((theirs, mine), (mine, theirs)):
            values = {p1: v1, p2: v2}
            if in_path and PATH not in values:
                values[PATH] = v1
            r, line = send(gw, "team-b", row, values, ob)
            assert line["decision"] == "deny" and line["upstream_status"] is None, (row, values, r.text)
    # A spelling MLflow does not read never smuggles a foreign id past the check.
    for alias in refused:
        for v1, v2 in ((theirs, mine), (mine, theirs)):
            r, line = send(gw, "team-b", row, {accepted[0]: v1, alias: v2}, ob)
            assert line["decision"] == "deny" and line["upstream_status"] is None, (row, alias, r.text)
            assert r.status_code in (400, 403, 404)


# ---------------------------------------------------------------- 2. partial parse

@pytest.mark.parametrize("path,body", [
    (R3 + "/issues/search", lambda o: {"max_results": "x", "experiment_id": o.exp}),
    (R3 + "/datasets/search", lambda o: {"order_by": [1], "experiment_ids": [o.exp]}),
    (R3 + "/datasets/search", lambda o: {"max_results": 99999999999, "experiment_ids": [o.exp]}),
])
def test_a_mistyped_field_cannot_empty_a_scope(gw, oa, ob, path, body):
    """MLflow swallows a protobuf parse error and runs the handler on the fields parsed so far;
    an empty scope means every experiment. Before the fix, team-b's own-scoped search with a bad
    field first returned team-a's issues and datasets."""
    r, line = call(gw, "team-b", "POST", path, body=body(ob))
    assert line["decision"] == "allow"
    assert oa.issue not in r.text and oa.ds not in r.text, r.text


# ---------------------------------------------------------------- 3. trace location tags

LOCATION_TAGS = ["mlflow.artifactLocation", "mlflow.trace.spansLocation", "mlflow.trace.archiveLocation"]


@pytest.mark.parametrize("key", LOCATION_TAGS)
def test_trace_location_tags_cannot_be_written_on_any_route(gw, a, oa, ob, key):
    foreign = f"mlflow-artifacts:/{ob.exp}/traces/{ob.trace}/artifacts"
    value = "ARCHIVE_REPO" if key.endswith("spansLocation") else foreign
    new_trace = "tr-" + uuid.uuid4().hex
    loc = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": oa.exp}}
    attempts = [
        ("PATCH", f"{R3}/traces/{oa.trace}/tags", {"key": key, "value": value}),
        ("DELETE", f"{R3}/traces/{oa.trace}/tags", {"key": key}),
        ("PATCH", f"{R2}/traces/{oa.trace}/tags", {"key": key, "value": value}),
        ("DELETE", f"{R2}/traces/{oa.trace}/tags", {"key": key}),
        ("PATCH", f"{R2}/traces/{oa.trace}", {"request_id": oa.trace, "timestamp_ms": 2, "status": "OK",
                                               "tags": [{"key": key, "value": value}]}),
        ("POST", f"{R2}/traces", {"experiment_id": oa.exp, "timestamp_ms": 1, "tags": [{"key": key, "value": value}]}),
        ("POST", f"{R3}/traces", {"trace": {"trace_info": {"trace_id": new_trace, "trace_location": loc,
                                                           "request_time": "2026-11-23T00:00:00Z", "state": "OK",
                                                           "tags": {key: value}}}}),
    ]
    for method, path, body in attempts:
        r, line = call(gw, "team-a", method, path, body=body)
        assert r.status_code == 403, (method, path, r.text)
        assert line["reason"] == "reserved_tag" and line["upstream_status"] is None
        assert r.json()["error_code"] == "PERMISSION_DENIED"
    info = a.get(f"{R2}/traces/{oa.trace}/info").json()["trace_info"]
    tags = {t["key"]: t["value"] for t in info.get("tags", [])}
    assert tags.get("mlflow.artifactLocation") == f"mlflow-artifacts:/{oa.exp}/traces/{oa.trace}/artifacts"


@pytest.mark.parametrize("planted", [
    "foreign",  # another tenant's spans
    "file:///etc",  # a directory on the MLflow host
    "traversal",  # own prefix, then `..` into another experiment
])
def test_get_trace_artifact_serves_only_the_traces_own_location(gw, mlflow_server, a, oa, ob, planted):
    """A location tag that is not the trace's own (planted directly in MLflow, as data written
    before the gateway or by a route MLflow did not block) is never followed through the gateway."""
    upload_spans(ob)
    t = Objs(a)  # a fresh trace of team-a's
    own = f"mlflow-artifacts:/{t.exp}/traces/{t.trace}/artifacts"
    value = {
        "foreign": f"mlflow-artifacts:/{ob.exp}/traces/{ob.trace}/artifacts",
        "file:///etc": "file:///etc",
        "traversal": f"{own}/../../../{ob.exp}/traces/{ob.trace}/artifacts",
    }[planted]
    r = requests.patch(f"{mlflow_server.url}{R3}/traces/{t.trace}/tags",
                       json={"key": "mlflow.artifactLocation", "value": value}, timeout=30)
    assert r.status_code == 200, r.text
    r, line = call(gw, "team-a", "GET", f"{AJAX2}/get-trace-artifact", {"request_id": t.trace})
    assert r.status_code == 403, r.text
    assert line["reason"] == "location_refused"
    assert spans_of(ob) not in r.text
    # Put back, the trace's own location is served again.
    requests.patch(f"{mlflow_server.url}{R3}/traces/{t.trace}/tags",
                   json={"key": "mlflow.artifactLocation", "value": own}, timeout=30)
    upload_spans(t)
    r, line = call(gw, "team-a", "GET", f"{AJAX2}/get-trace-artifact", {"request_id": t.trace})
    assert r.status_code == 200 and line["decision"] == "allow", r.text


# ---------------------------------------------------------------- 4. protected tags

def test_end_trace_v2_cannot_set_the_tenant_tag(gw, oa):
    r, line = call(gw, "team-a", "PATCH", f"{R2}/traces/{oa.trace}",
                   body={"request_id": oa.trace, "timestamp_ms": 2, "status": "OK",
                         "tags": [{"key": "tenant", "value": "team-b"}]})
    assert r.status_code == 403 and line["reason"] == "reserved_tag", r.text


def test_run_attribution_cannot_be_forged_after_creation(gw, a, oa):
    attempts = [
        ("POST", f"{R2}/runs/set-tag", {"run_id": oa.run, "key": "mlflow.user", "value": "mallory"}),
        ("POST", f"{R2}/runs/set-tag", {"run_id": oa.run, "key": "MLflow.User", "value": "mallory"}),
        ("POST", f"{R2}/runs/delete-tag", {"run_id": oa.run, "key": "mlflow.user"}),
        ("POST", f"{R2}/runs/log-batch", {"run_id": oa.run, "tags": [{"key": "mlflow.user", "value": "mallory"}]}),
    ]
    for method, path, body in attempts:
        r, line = call(gw, "team-a", method, path, body=body)
        assert r.status_code == 403 and line["reason"] == "reserved_tag", (path, r.text)
    run = a.get(f"{R2}/runs/get", params={"run_id": oa.run}).json()["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.user"] == "alice"
    # Ordinary tags still work.
    r, _ = call(gw, "team-a", "POST", f"{R2}/runs/set-tag", body={"run_id": oa.run, "key": "note", "value": "x"})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 5. role classes by effect

def test_unlinking_a_datasets_last_experiment_is_refused(gw, a, oa):
    r = a.post(f"{R3}/datasets/create", {"name": unique("ds"), "experiment_ids": [oa.exp]})
    assert r.status_code == 200, r.text
    ds = r.json()["dataset"]["dataset_id"]
    r, line = call(gw, "team-a", "POST", f"{R3}/datasets/{ds}/remove-experiments", body={"experiment_ids": [oa.exp]})
    assert r.status_code == 403 and line["reason"] == "orphan_refused", r.text
    assert "delete the dataset instead" in r.json()["message"]
    assert a.get(f"{R3}/datasets/{ds}/experiment-ids").json()["experiment_ids"] == [oa.exp]
    # The dataset is still the tenant's, and deleting it stays an admin's job.
    r, line = call(gw, "team-a", "DELETE", f"{R3}/datasets/{ds}")
    assert line["decision"] == "allow", r.text
