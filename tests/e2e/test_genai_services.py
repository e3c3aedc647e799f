"""MLflow 3's GenAI services behind the gateway, beyond one owner/other case per row
(test_policy_rows.py): who of a tenant may do what (viewer, editor, admin), what the gateway
checks inside the bodies (a webhook's target, a budget's scope, an endpoint's usage experiment,
the traces an OTLP export or a judge names, a prompt-lab run's attribution) and what it adds
after MLflow's answer (the endpoint's usage experiment claimed for the tenant). docs/genai.md is
the reference."""

import json
import uuid

import pytest

import genai_rows
from conftest import WORKSPACES, Caller, Gateway, unique
from genai_rows import ModelServer
from test_policy_rows import Objs

R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"
G = R3 + "/gateway"
MLFLOW_ENV = genai_rows.MLFLOW_ENV
MLFLOW_JOBS = WORKSPACES  # the objects include a judge job and a prompt optimisation

workspace_only = pytest.mark.skipif(
    not WORKSPACES, reason="the AI gateway, webhooks and jobs need workspaces (tag mode refuses them: test_policy_rows)")


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server):
    g = Gateway(workdir / "gw", mlflow_server.url, genai_rows.GATEWAY_VARS).start()
    yield g
    g.stop()


def refused(r, reason: str, gw, status: int = 403):
    assert r.status_code == status, r.text
    assert r.json()["error_code"] in ("PERMISSION_DENIED", "INVALID_PARAMETER_VALUE"), r.text
    rid = r.headers["x-request-id"]
    line = gw.audit_for(rid)[0]
    assert (line["decision"], line["reason"], line["upstream_status"]) == ("deny", reason, None), line


@pytest.fixture(scope="module")
def objs(a):
    o = Objs(a).genai()
    genai_rows.create(o)
    return o


@workspace_only
def test_roles_decide_who_reads_changes_and_calls(objs, gw):
    o = objs
    viewer = Caller(gw, tenant="team-a", subject="vera", roles="viewer")
    editor = Caller(gw, tenant="team-a", subject="ed", roles="editor")
    admin = Caller(gw, tenant="team-a", subject="ada", roles="admin")
    # Viewers read endpoints and model definitions; secrets and budgets are admin-only even to read.
    assert viewer.get(f"{G}/endpoints/get", params={"endpoint_id": o.endpoint}).status_code == 200
    assert viewer.get(f"{G}/model-definitions/list").status_code == 200
    for c in (viewer, editor):
        refused(c.get(f"{G}/secrets/get", params={"secret_id": o.secret}), "rbac", gw)
        refused(c.get(f"{G}/budgets/list"), "rbac", gw)
        refused(c.post(f"{G}/endpoints/set-tag", {"endpoint_id": o.endpoint, "key": "k", "value": "v"}), "rbac", gw)
        refused(c.post(f"{R2}/webhooks", {"name": "h", "url": f"https://{genai_rows.WEBHOOK_HOST}/x",
                                          "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}), "rbac", gw)
        refused(c.request("DELETE", f"{R3}/mcp-servers/{o.mcp}"), "rbac", gw)
    assert admin.get(f"{G}/secrets/get", params={"secret_id": o.secret}).status_code == 200
    # Calling a model and starting a judge are an editor's; a viewer only lists.
    chat = {"model": o.endpoint_name, "messages": [{"role": "user", "content": "hi"}]}
    refused(viewer.post("/gateway/mlflow/v1/chat/completions", chat), "rbac", gw)
    rid = "genai-" + uuid.uuid4().hex
    editor.post("/gateway/mlflow/v1/chat/completions", chat, headers={"X-Request-ID": rid})
    assert gw.audit_for(rid)[0]["decision"] == "allow"
    r = viewer.get("/gateway/mlflow/v1/models")
    assert r.status_code == 200, (r.text, gw.audit_for(r.headers["x-request-id"]))
    refused(viewer.post("/ajax-api/3.0/mlflow/scorer/invoke", {
        "experiment_id": o.exp, "serialized_scorer": genai_rows.serialized_judge(o.endpoint_name),
        "trace_ids": [o.trace]}), "rbac", gw)


@workspace_only
def test_webhook_targets_pass_the_allow_list(objs, a, gw):
    o = objs
    body = lambda url: {"name": unique("h"), "url": url, "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}  # noqa: E731
    for url in ["https://169.254.169.254/latest", "https://127.0.0.1:5000/x", "https://evil.example.org/x",
                "http://hooks.example.org/x", f"https://user@{genai_rows.WEBHOOK_HOST}/x"]:
        refused(a.post(f"{R2}/webhooks", body(url)), "webhook_url_refused", gw)
        refused(a.request("PATCH", f"{R2}/webhooks/{o.webhook}", json={"url": url}), "webhook_url_refused", gw)
    hook = a.get(f"{R2}/webhooks/{o.webhook}").json()["webhook"]
    assert hook["url"] == f"https://{genai_rows.WEBHOOK_HOST}/mlflow"


@workspace_only
def test_global_budgets_are_refused(a, gw):
    for scope in ("GLOBAL", "global"):
        r = a.post(f"{G}/budgets/create", {
            "budget_unit": "USD", "budget_amount": 1.0, "duration": {"unit": "DAYS", "value": 1},
            "target_scope": scope, "budget_action": "REJECT"})
        assert r.status_code == 403, r.text
        assert gw.audit_for(r.headers["x-request-id"])[0]["upstream_status"] is None
    listed = a.get(f"{G}/budgets/list").json().get("budget_policies", [])
    assert not [p for p in listed if p.get("target_scope") == "GLOBAL"]


@workspace_only
def test_endpoint_usage_experiment_is_checked_or_claimed(objs, a, b, gw):
    o = objs
    md = {"model_definition_id": o.model_def, "linkage_type": "PRIMARY", "weight": 1.0}
    # Another tenant's experiment as the usage experiment: refused before MLflow.
    theirs = Objs(b)
    r = a.post(f"{G}/endpoints/create", {"name": unique("ep"), "experiment_id": theirs.exp, "model_configs": [md]})
    assert r.status_code == 403, r.text
    # None named: MLflow creates `gateway/<name>`, and the gateway claims it for the tenant.
    name = unique("ep")
    r = a.post(f"{G}/endpoints/create", {"name": name, "model_configs": [md]})
    assert r.status_code == 200, r.text
    exp_id = r.json()["endpoint"].get("experiment_id")
    assert exp_id, r.text
    got = a.get(f"{R2}/experiments/get", params={"experiment_id": exp_id})
    assert got.status_code == 200, got.text
    assert b.get(f"{R2}/experiments/get", params={"experiment_id": exp_id}).status_code == 403


def test_otlp_spans_of_another_tenants_trace_are_refused(a, b, gw):
    oa, ob = Objs(a), Objs(b)
    # team-b exports into its own experiment, but a span names team-a's trace.
    r = b.request("POST", "/v1/traces", data=genai_rows._otlp_export(oa.trace[len("tr-"):]), headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": ob.exp})
    assert r.status_code == 403, r.text
    # Into team-a's experiment: refused whatever the spans.
    r = b.request("POST", "/v1/traces", data=genai_rows._otlp_export(uuid.uuid4().hex), headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": oa.exp})
    assert r.status_code == 403, r.text
    # Its own new trace in its own experiment: MLflow stores it there.
    trace = uuid.uuid4().hex
    r = b.request("POST", "/v1/traces", data=genai_rows._otlp_export(trace), headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": ob.exp})
    assert r.status_code == 200, r.text
    info = b.get(f"{R3}/traces/tr-{trace}")
    assert info.status_code == 200, info.text
    assert a.get(f"{R3}/traces/tr-{trace}").status_code == 403


def test_promptlab_runs_are_attributed_to_the_caller_and_claimed(a, b, gw):
    o = Objs(a)
    r = genai_rows.promptlab(a, o)
    assert r.status_code == 200, r.text
    run = r.json()["run"]["info"]
    assert run["user_id"] == "alice"  # not the body's "mallory"
    assert a.get(f"{R2}/runs/get", params={"run_id": run["run_id"]}).status_code == 200
    assert b.get(f"{R2}/runs/get", params={"run_id": run["run_id"]}).status_code == 403
    # Tags are refused: MLflow 3.17.2's handler fails on any, and the tenant tag is the gateway's.
    body = {"experiment_id": o.exp, "prompt_template": "t", "tags": [{"key": "k", "value": "v"}]}
    r = a.post("/ajax-api/2.0/mlflow/runs/create-promptlab-run", body)
    assert r.status_code in (400, 403), r.text


@workspace_only
def test_judges_name_only_the_callers_traces(objs, b, gw):
    o = objs
    ob = Objs(b)
    for path, extra in [("/ajax-api/3.0/mlflow/scorer/invoke", {"serialized_scorer": genai_rows.serialized_judge("x")}),
                        ("/ajax-api/3.0/mlflow/issues/invoke", {"categories": ["correctness"], "provider": "openai"})]:
        r = b.post(path, {"experiment_id": ob.exp, "trace_ids": [ob.trace, o.trace], **extra})
        assert r.status_code == 403, (path, r.text)
        assert gw.audit_for(r.headers["x-request-id"])[0]["upstream_status"] is None


@workspace_only
def test_a_read_after_mlflow_closed_its_connection_is_answered(objs, a):
    """An AI gateway call whose provider is unreachable ends in an unhandled exception in MLflow,
    and uvicorn closes the connection Spin keeps for the next request: the next read is sent again
    on a new connection instead of failing with 502."""
    o = objs
    for _ in range(3):
        r = a.post("/gateway/mlflow/v1/chat/completions", {"model": o.endpoint_name, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code >= 400 and "sk-rows" not in r.text
        r = a.get(f"{G}/endpoints/get", params={"endpoint_id": o.endpoint})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def model_server():
    m = ModelServer()
    yield m
    m.stop()


def endpoint_for(c: Caller, model_server, key: str) -> str:
    """An AI gateway endpoint of the caller's tenant backed by the model server with `key`."""
    secret = c.post(f"{G}/secrets/create", {"secret_name": unique("key"), "secret_value": {"api_key": key},
                                             "provider": "openai", "auth_config": {"api_base": model_server.url}})
    assert secret.status_code == 200, secret.text
    assert key not in secret.text
    md = c.post(f"{G}/model-definitions/create", {"name": unique("md"), "secret_id": secret.json()["secret"]["secret_id"],
                                                   "provider": "openai", "model_name": "fake-model"})
    assert md.status_code == 200, md.text
    name = unique("ep")
    ep = c.post(f"{G}/endpoints/create", {"name": name, "model_configs": [{
        "model_definition_id": md.json()["model_definition"]["model_definition_id"], "linkage_type": "PRIMARY", "weight": 1.0}]})
    assert ep.status_code == 200, ep.text
    return name


@workspace_only
def test_an_endpoint_answers_its_tenant_with_its_tenants_key(a, b, gw, model_server):
    name = endpoint_for(a, model_server, ModelServer.GOOD_KEY)
    chat = {"model": name, "messages": [{"role": "user", "content": "hello"}]}
    for path in ("/gateway/mlflow/v1/chat/completions", "/gateway/openai/v1/chat/completions"):
        rid = "genai-" + uuid.uuid4().hex
        r = a.post(path, chat, headers={"X-Request-ID": rid})
        assert r.status_code == 200, (path, r.text)
        assert r.json()["choices"][0]["message"]["content"] == "olleh"
        line = gw.audit_for(rid)[0]
        assert (line["decision"], line["route"], line["upstream_status"]) == ("allow", gw_route(path), 200), line
        assert ModelServer.GOOD_KEY not in json.dumps(line)
    assert model_server.seen[-1]["key"] == ModelServer.GOOD_KEY
    # Another tenant names the same endpoint: its workspace has none, the model is not called.
    calls = len(model_server.seen)
    r = b.post("/gateway/mlflow/v1/chat/completions", chat)
    assert r.status_code == 404, r.text
    assert b.get("/gateway/mlflow/v1/models").text.count(name) == 0
    assert len(model_server.seen) == calls


def gw_route(path: str) -> str:
    return {"/gateway/mlflow/v1/chat/completions": "ai_gateway.chat_completions",
            "/gateway/openai/v1/chat/completions": "ai_gateway.openai.chat_completions"}[path]


@workspace_only
def test_a_provider_error_echoing_the_key_is_scrubbed(a, gw, model_server):
    leaked = "sk-proj-" + uuid.uuid4().hex
    name = endpoint_for(a, model_server, leaked)
    rid = "genai-" + uuid.uuid4().hex
    r = a.post("/gateway/mlflow/v1/chat/completions", {"model": name, "messages": [{"role": "user", "content": "x"}]},
               headers={"X-Request-ID": rid})
    assert model_server.seen[-1]["key"] == leaked  # MLflow sent the tenant's key to the provider
    assert r.status_code >= 400, r.text
    assert leaked not in r.text and leaked[8:] not in r.text, r.text
    assert "redacted by the gateway" in r.text, r.text
    assert leaked not in json.dumps(gw.audit_for(rid)) and leaked not in gw.log_text()
