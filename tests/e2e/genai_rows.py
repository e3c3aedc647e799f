"""The GenAI services' policy rows (docs/genai.md) as cases for test_policy_rows.py: team-a's AI
gateway objects (secret, model definition, endpoint with a tag, binding and guardrail, budget),
a webhook, an MCP server, a judge job and a prompt-optimisation job, created through the gateway
as the owner in its workspace, and one request per row.

In workspace mode another tenant's request is pinned to its own workspace, where MLflow does not
have team-a's ids (it answers as for any absent id) and lists show only its own objects; the
owner's objects are read back unchanged afterwards. In tag mode every row but OTLP and
prompt-lab runs is refused (403 `route_denied`) for everyone: there is no workspace to keep
these objects apart."""

from __future__ import annotations

import http.server
import json
import threading
import uuid

from conftest import WORKSPACES, unique

R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"
AJ3 = "/ajax-api/3.0/mlflow"
G = R3 + "/gateway"
GA = AJ3 + "/gateway"

# A webhook target the rows' gateway admits (its `webhook_allowed_hosts` names this loopback
# host and port exactly) and MLflow accepts (MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS, below; no name
# resolves here). Nothing listens on the discard port: `webhooks/{id}/test` answers with MLflow's own
# report of the failed delivery.
WEBHOOK_HOST = "127.0.0.1:9"
# The dev-mode gateway of the modules that use these objects: it admits the webhook target.
GATEWAY_VARS = {"auth_mode": "off", "webhook_allowed_hosts": WEBHOOK_HOST}
MLFLOW_ENV = {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
              # test_genai_services.py's model server: plain http on loopback.
              "MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS": "true",
              "MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES": "http,https"}


class ModelServer:
    """An OpenAI-compatible model provider on loopback (no provider is reachable from the tests):
    `/v1/chat/completions` answers with the last user message reversed, `/v1/embeddings` with a
    fixed vector, anything else 404 in OpenAI's error shape; a request whose key is not
    `GOOD_KEY` gets a 401 that echoes the key, as OpenAI's own answer does. `reply`: the chat
    answer's text for a request body (default: the last user message reversed)."""

    GOOD_KEY = "sk-good0123456789abcdef"

    def __init__(self, reply=lambda body: body["messages"][-1]["content"][::-1]):
        self.seen: list[dict] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                seen.append({"path": self.path, "key": key, "body": body})
                if key != ModelServer.GOOD_KEY:
                    status, answer = 401, {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error"}}
                elif self.path.endswith("/embeddings"):
                    status, answer = 200, {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                                           "model": body.get("model", "m"), "usage": {"prompt_tokens": 1, "total_tokens": 1}}
                elif not self.path.endswith("/chat/completions"):
                    status, answer = 404, {"error": {"message": f"no such route: {self.path}", "type": "invalid_request_error"}}
                else:
                    text = reply(body)
                    status, answer = 200, {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body.get("model", "m"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def _ok(r):
    assert r.status_code == 200, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json()


def serialized_judge(endpoint: str) -> str:
    """A built-in LLM judge that calls the tenant's own AI gateway endpoint."""
    from mlflow.genai.scorers import Guidelines

    judge = Guidelines(name="polite", guidelines=["Be polite"], model=f"gateway:/{endpoint}")
    return json.dumps(judge.model_dump())


def create(o, jobs: bool = True, api_base: str | None = None) -> None:
    """team-a's GenAI service objects on `o` (an Objs with genai() already run); with `jobs`, a
    judge job and a prompt optimisation too (each runs in MLflow's job runner, a Python process
    of its own: only the rows about jobs ask for them). In tag mode the routes that would create
    them are refused: the cases get ids that name nothing. `api_base`: the endpoint's model
    provider (a ModelServer's url, whose key the secret then holds); without it the provider is
    OpenAI's own, which the sandbox cannot reach."""
    if not WORKSPACES:
        for k in ("secret", "secret2", "model_def", "model_def2", "endpoint", "guardrail", "guardrail2",
                  "budget", "webhook", "job", "opt_job"):
            setattr(o, k, "id-" + uuid.uuid4().hex)
        o.endpoint_name, o.mcp = unique("ep"), "com.example/" + unique("mcp")
        return
    a = o.a
    provider = {"secret_value": {"api_key": ModelServer.GOOD_KEY}, "auth_config": {"api_base": api_base}} if api_base else \
        {"secret_value": {"api_key": "sk-rows0123456789abcdef"}}
    o.secret = _ok(a.post(f"{G}/secrets/create", {
        "secret_name": unique("key"), "provider": "openai", **provider}))["secret"]["secret_id"]
    o.secret2 = _ok(a.post(f"{G}/secrets/create", {
        "secret_name": unique("key"), "secret_value": {"api_key": "sk-rows0123456789abcdef"}, "provider": "openai"}))["secret"]["secret_id"]
    o.model_def = _ok(a.post(f"{G}/model-definitions/create", {
        "name": unique("md"), "secret_id": o.secret, "provider": "openai", "model_name": "gpt-4o-mini"}))["model_definition"]["model_definition_id"]
    o.model_def2 = _ok(a.post(f"{G}/model-definitions/create", {
        "name": unique("md"), "secret_id": o.secret, "provider": "openai", "model_name": "gpt-4o"}))["model_definition"]["model_definition_id"]
    o.endpoint_name = unique("ep")
    ep = _ok(a.post(f"{G}/endpoints/create", {
        "name": o.endpoint_name, "experiment_id": o.exp,
        "model_configs": [{"model_definition_id": o.model_def, "linkage_type": "PRIMARY", "weight": 1.0}]}))["endpoint"]
    o.endpoint = ep["endpoint_id"]
    _ok(a.post(f"{G}/endpoints/set-tag", {"endpoint_id": o.endpoint, "key": "team", "value": "a"}))
    _ok(a.post(f"{G}/endpoints/bindings/create", {"endpoint_id": o.endpoint, "resource_type": "scorer", "resource_id": o.scorer_id}))
    o.guardrail = _ok(a.post(f"{G}/guardrails/create", {
        "name": unique("gr"), "scorer_id": o.scorer_id, "scorer_version": 1, "stage": "BEFORE", "action": "VALIDATION"}))["guardrail"]["guardrail_id"]
    _ok(a.post(f"{G}/guardrails/add-to-endpoint", {"endpoint_id": o.endpoint, "guardrail_id": o.guardrail}))
    o.guardrail2 = _ok(a.post(f"{G}/guardrails/create", {
        "name": unique("gr"), "scorer_id": o.scorer_id, "scorer_version": 1, "stage": "AFTER", "action": "VALIDATION"}))["guardrail"]["guardrail_id"]
    o.budget = _ok(a.post(f"{G}/budgets/create", {
        "budget_unit": "USD", "budget_amount": 10.0, "duration": {"unit": "DAYS", "value": 1},
        "target_scope": "WORKSPACE", "budget_action": "ALERT"}))["budget_policy"]["budget_policy_id"]
    o.webhook = _ok(a.post(f"{R2}/webhooks", {
        "name": unique("hook"), "url": f"https://{WEBHOOK_HOST}/mlflow", "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]}))["webhook"]["webhook_id"]
    o.mcp = "com.example/" + unique("mcp")
    _ok(a.post(f"{R3}/mcp-servers", {"name": o.mcp, "description": "d"}))
    if not jobs:
        o.job = o.opt_job = None
        return
    o.job = _ok(a.post(f"{AJ3}/scorer/invoke", {
        "experiment_id": o.exp, "serialized_scorer": serialized_judge(o.endpoint_name), "trace_ids": [o.trace]}))["jobs"][0]["job_id"]
    o.opt_job = _ok(a.post(f"{R3}/prompt-optimization/jobs", {
        "experiment_id": o.exp, "source_prompt_uri": f"prompts:/{o.rm}/1",
        "config": {"optimizer_type": "OPTIMIZER_TYPE_GEPA", "dataset_id": o.ds}}))["job"]["job_id"]


def owner_ids(o) -> list[str]:
    """The ids and names of the owner's objects a list may show."""
    return [getattr(o, k) for k in ("secret", "model_def", "endpoint", "endpoint_name", "guardrail", "budget", "webhook", "mcp")]


def state(o) -> dict:
    """What the owner reads of its GenAI objects (compared before and after another tenant's try)."""
    a = o.a
    out = {
        "secret": a.get(f"{G}/secrets/get", params={"secret_id": o.secret}).json(),
        "model_def": a.get(f"{G}/model-definitions/get", params={"model_definition_id": o.model_def}).json(),
        "endpoint": a.get(f"{G}/endpoints/get", params={"endpoint_id": o.endpoint}).json(),
        "bindings": a.get(f"{G}/endpoints/bindings/list", params={"endpoint_id": o.endpoint}).json(),
        "guardrail": a.get(f"{G}/guardrails/get", params={"guardrail_id": o.guardrail}).json(),
        "endpoint_guardrails": a.get(f"{G}/guardrails/list-for-endpoint", params={"endpoint_id": o.endpoint}).json(),
        "budget": a.get(f"{G}/budgets/get", params={"budget_policy_id": o.budget}).json(),
        "webhook": a.get(f"{R2}/webhooks/{o.webhook}").json(),
        "mcp": a.get(f"{R3}/mcp-servers/{o.mcp}").json(),
    }
    if o.opt_job:
        out["opt_job"] = a.get(f"{R3}/prompt-optimization/jobs/{o.opt_job}").json().get("job", {}).get("job_id")
    for k in ("secret", "model_def", "endpoint", "guardrail", "budget", "webhook", "mcp"):
        assert "error_code" not in out[k], (k, out[k])
    return out


def J(method, path, body=None, params=None):
    return lambda c, o: c.request(method, path.format(o=o), json=body(o) if body else None,
                                  params=params(o) if params else None)


def _otlp_export(trace_hex: str) -> bytes:
    """An OTLP/protobuf ExportTraceServiceRequest with one span of trace `trace_hex`."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(trace_hex), bytes.fromhex("0102030405060708"), "root"
    span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_001_000_000_000
    return req.SerializeToString()


def otlp(c, o):
    """A new trace exported into the owner's experiment (MLflow names it tr-<hex>)."""
    return c.request("POST", "/v1/traces", data=_otlp_export(uuid.uuid4().hex), headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": o.exp})


def promptlab(c, o):
    return c.post("/ajax-api/2.0/mlflow/runs/create-promptlab-run", {
        "experiment_id": o.exp, "run_name": "lab", "prompt_template": "Say {{ x }}",
        "prompt_parameters": [{"key": "x", "value": "hi"}], "model_route": "chat", "model_parameters": [],
        "model_input": "Say hi", "model_output": "hi", "model_output_parameters": [], "mlflow_version": "3.17.2",
        "user_id": "mallory", "start_time": 1, "tags": []})


_INVOKE_BODY = lambda o: {"messages": [{"role": "user", "content": "hi"}]}  # noqa: E731
_CHAT = lambda o: {"model": o.endpoint_name, "messages": [{"role": "user", "content": "hi"}]}  # noqa: E731

# id: (call, owner_ok, other) as in test_policy_rows.CASES. "absent": MLflow's answer for an id
# or name its workspace does not have (404), the request allowed and pinned; "not_listed": 200
# without any of the owner's objects. Invocations reach the endpoint's loopback ModelServer
# (chat and embeddings answer 200); the routes of other providers' shapes are forwarded and
# answered by MLflow (the endpoint is an OpenAI one); another tenant finds no such endpoint in
# its workspace.
WORKSPACE_CASES = {
    "ai_gateway.secrets.create": (J("POST", G + "/secrets/create", body=lambda o: {
        "secret_name": unique("key"), "secret_value": {"api_key": "sk-rows0123456789abcdef"}, "provider": "openai"}), 200, "own"),
    "ai_gateway.secrets.get": (J("GET", G + "/secrets/get", params=lambda o: {"secret_id": o.secret}), 200, "absent"),
    "ai_gateway.secrets.list": (J("GET", G + "/secrets/list"), 200, "not_listed"),
    "ai_gateway.secrets.update": (J("POST", G + "/secrets/update", body=lambda o: {
        "secret_id": o.secret2, "secret_value": {"api_key": "sk-changed0123456789abc"}}), 200, "absent"),
    "ai_gateway.secrets.delete": (J("DELETE", G + "/secrets/delete", body=lambda o: {"secret_id": o.secret2}), 200, "absent"),
    "ai_gateway.secrets.config": (J("GET", GA + "/secrets/config"), 200, None),
    "ai_gateway.supported_providers": (J("GET", GA + "/supported-providers"), 200, None),
    "ai_gateway.supported_models": (J("GET", GA + "/supported-models", params=lambda o: {"provider": "openai"}), 200, None),
    "ai_gateway.provider_config": (J("GET", GA + "/provider-config", params=lambda o: {"provider": "openai"}), 200, None),
    "ai_gateway.model_definitions.create": (J("POST", G + "/model-definitions/create", body=lambda o: {
        "name": unique("md"), "secret_id": o.secret, "provider": "openai", "model_name": "gpt-4o-mini"}), 200, "absent"),
    "ai_gateway.model_definitions.get": (J("GET", G + "/model-definitions/get", params=lambda o: {"model_definition_id": o.model_def}), 200, "absent"),
    "ai_gateway.model_definitions.list": (J("GET", G + "/model-definitions/list"), 200, "not_listed"),
    "ai_gateway.model_definitions.update": (J("POST", G + "/model-definitions/update", body=lambda o: {
        "model_definition_id": o.model_def2, "model_name": "gpt-4.1"}), 200, "absent"),
    "ai_gateway.model_definitions.delete": (J("DELETE", G + "/model-definitions/delete", body=lambda o: {"model_definition_id": o.model_def2}), 200, "absent"),
    "ai_gateway.endpoints.create": (J("POST", G + "/endpoints/create", body=lambda o: {
        "name": unique("ep"), "experiment_id": o.exp,
        "model_configs": [{"model_definition_id": o.model_def, "linkage_type": "PRIMARY", "weight": 1.0}]}), 200, 403),
    "ai_gateway.endpoints.get": (J("GET", G + "/endpoints/get", params=lambda o: {"endpoint_id": o.endpoint}), 200, "absent"),
    "ai_gateway.endpoints.list": (J("GET", G + "/endpoints/list"), 200, "not_listed"),
    "ai_gateway.endpoints.update": (J("POST", G + "/endpoints/update", body=lambda o: {"endpoint_id": o.endpoint, "name": unique("ep")}), 200, "absent"),
    "ai_gateway.endpoints.delete": (J("DELETE", G + "/endpoints/delete", body=lambda o: {"endpoint_id": o.endpoint}), 200, "absent"),
    "ai_gateway.endpoints.attach_model": (J("POST", G + "/endpoints/models/attach", body=lambda o: {
        "endpoint_id": o.endpoint, "model_config": {"model_definition_id": o.model_def2, "linkage_type": "FALLBACK", "weight": 1.0}}), 200, "absent"),
    "ai_gateway.endpoints.detach_model": (J("POST", G + "/endpoints/models/detach", body=lambda o: {
        "endpoint_id": o.endpoint, "model_definition_id": o.model_def}), 200, "absent"),
    "ai_gateway.endpoints.bindings.create": (J("POST", G + "/endpoints/bindings/create", body=lambda o: {
        "endpoint_id": o.endpoint, "resource_type": "scorer", "resource_id": unique("s")}), 200, "absent"),
    "ai_gateway.endpoints.bindings.delete": (J("DELETE", G + "/endpoints/bindings/delete", body=lambda o: {
        "endpoint_id": o.endpoint, "resource_type": "scorer", "resource_id": o.scorer_id}), 200, "absent"),
    "ai_gateway.endpoints.bindings.list": (J("GET", G + "/endpoints/bindings/list", params=lambda o: {"endpoint_id": o.endpoint}), 200, "not_listed"),
    "ai_gateway.endpoints.set_tag": (J("POST", G + "/endpoints/set-tag", body=lambda o: {"endpoint_id": o.endpoint, "key": "k", "value": "v"}), 200, "absent"),
    "ai_gateway.endpoints.delete_tag": (J("DELETE", G + "/endpoints/delete-tag", body=lambda o: {"endpoint_id": o.endpoint, "key": "team"}), 200, "absent"),
    "ai_gateway.guardrails.create": (J("POST", G + "/guardrails/create", body=lambda o: {
        "name": unique("gr"), "scorer_id": o.scorer_id, "scorer_version": 1, "stage": "AFTER", "action": "VALIDATION"}), 200, "absent"),
    "ai_gateway.guardrails.get": (J("GET", G + "/guardrails/get", params=lambda o: {"guardrail_id": o.guardrail}), 200, "absent"),
    "ai_gateway.guardrails.list": (J("GET", G + "/guardrails/list"), 200, "not_listed"),
    "ai_gateway.guardrails.delete": (J("DELETE", G + "/guardrails/delete", body=lambda o: {"guardrail_id": o.guardrail}), 200, "absent"),
    "ai_gateway.guardrails.add_to_endpoint": (J("POST", G + "/guardrails/add-to-endpoint", body=lambda o: {
        "endpoint_id": o.endpoint, "guardrail_id": o.guardrail2}), 200, "absent"),
    "ai_gateway.guardrails.remove_from_endpoint": (J("DELETE", G + "/guardrails/remove-from-endpoint", body=lambda o: {
        "endpoint_id": o.endpoint, "guardrail_id": o.guardrail}), 200, "absent"),
    "ai_gateway.guardrails.list_for_endpoint": (J("GET", G + "/guardrails/list-for-endpoint", params=lambda o: {"endpoint_id": o.endpoint}), 200, "absent"),
    "ai_gateway.guardrails.update_config": (J("PATCH", G + "/guardrails/update-config", body=lambda o: {
        "endpoint_id": o.endpoint, "guardrail_id": o.guardrail, "execution_order": 2}), 200, "absent"),
    "ai_gateway.budgets.create": (J("POST", G + "/budgets/create", body=lambda o: {
        "budget_unit": "USD", "budget_amount": 5.0, "duration": {"unit": "HOURS", "value": 1},
        "target_scope": "WORKSPACE", "budget_action": "ALERT"}), 200, "own"),
    "ai_gateway.budgets.update": (J("POST", G + "/budgets/update", body=lambda o: {"budget_policy_id": o.budget, "budget_amount": 99.0}), 200, "absent"),
    "ai_gateway.budgets.get": (J("GET", G + "/budgets/get", params=lambda o: {"budget_policy_id": o.budget}), 200, "absent"),
    "ai_gateway.budgets.list": (J("GET", G + "/budgets/list"), 200, "not_listed"),
    "ai_gateway.budgets.windows": (J("GET", G + "/budgets/windows"), 200, "not_listed"),
    "ai_gateway.budgets.delete": (J("DELETE", G + "/budgets/delete", body=lambda o: {"budget_policy_id": o.budget}), 200, "absent"),
    "ai_gateway.invoke": (J("POST", "/gateway/{o.endpoint_name}/mlflow/invocations", body=_INVOKE_BODY), 200, "absent"),
    "ai_gateway.chat_completions": (J("POST", "/gateway/mlflow/v1/chat/completions", body=_CHAT), 200, "absent"),
    "ai_gateway.openai.chat_completions": (J("POST", "/gateway/openai/v1/chat/completions", body=_CHAT), 200, "absent"),
    "ai_gateway.openai.embeddings": (J("POST", "/gateway/openai/v1/embeddings", body=lambda o: {"model": o.endpoint_name, "input": "hi"}), 200, "absent"),
    "ai_gateway.openai.responses": (J("POST", "/gateway/openai/v1/responses", body=lambda o: {"model": o.endpoint_name, "input": "hi"}), "forwarded", "absent"),
    "ai_gateway.openai.responses_compact": (J("POST", "/gateway/openai/v1/responses/compact", body=lambda o: {"model": o.endpoint_name, "input": "hi"}), "forwarded", "absent"),
    "ai_gateway.anthropic.messages": (J("POST", "/gateway/anthropic/v1/messages", body=lambda o: {
        "model": o.endpoint_name, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}), "forwarded", "absent"),
    "ai_gateway.gemini.generate": (J("POST", "/gateway/gemini/v1beta/models/{o.endpoint_name}:generateContent", body=lambda o: {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}), "forwarded", "absent"),
    "ai_gateway.typesafe": (J("POST", "/gateway/typesafe/v1/systemone", body=_CHAT), "forwarded", "absent"),
    "ai_gateway.proxy": (J("POST", "/gateway/proxy/{o.endpoint_name}/v1/chat/completions", body=_CHAT), 200, "absent"),
    "ai_gateway.models": (J("GET", "/gateway/mlflow/v1/models"), 200, "not_listed"),
    "jobs.invoke_scorer": (J("POST", AJ3 + "/scorer/invoke", body=lambda o: {
        "experiment_id": o.exp, "serialized_scorer": serialized_judge(o.endpoint_name), "trace_ids": [o.trace]}), 200, 403),
    "jobs.invoke_evaluate": (J("POST", AJ3 + "/genai/evaluate/invoke", body=lambda o: {
        "experiment_id": o.exp, "trace_ids": [o.trace], "serialized_scorers": [serialized_judge(o.endpoint_name)]}), 200, 403),
    "jobs.invoke_issue_detection": (J("POST", AJ3 + "/issues/invoke", body=lambda o: {
        "experiment_id": o.exp, "trace_ids": [o.trace], "categories": ["correctness"], "provider": "openai",
        "endpoint_name": o.endpoint_name}), 200, 403),
    "jobs.get": (J("GET", "/ajax-api/3.0/jobs/{o.job}"), 200, "absent"),
    "jobs.cancel": (J("PATCH", "/ajax-api/3.0/jobs/cancel/{o.job}"), "forwarded", "absent"),
    "jobs.get_status": (J("GET", AJ3 + "/jobs/{o.job}"), 200, "absent"),
    "jobs.cancel_status": (J("PATCH", AJ3 + "/jobs/cancel/{o.job}"), "forwarded", "absent"),
    "prompt_optimization.create": (J("POST", R3 + "/prompt-optimization/jobs", body=lambda o: {
        "experiment_id": o.exp, "source_prompt_uri": f"prompts:/{o.rm}/1",
        "config": {"optimizer_type": "OPTIMIZER_TYPE_GEPA", "dataset_id": o.ds}}), 200, 403),
    "prompt_optimization.get": (J("GET", R3 + "/prompt-optimization/jobs/{o.opt_job}"), 200, "absent"),
    "prompt_optimization.cancel": (J("POST", R3 + "/prompt-optimization/jobs/{o.opt_job}/cancel"), "forwarded", "absent"),
    "prompt_optimization.delete": (J("DELETE", R3 + "/prompt-optimization/jobs/{o.opt_job}"), "forwarded", "absent"),
    "prompt_optimization.search.get": (J("GET", R3 + "/prompt-optimization/jobs/search", params=lambda o: {"experiment_id": o.exp}), 200, 403),
    "prompt_optimization.search": (J("POST", R3 + "/prompt-optimization/jobs/search", body=lambda o: {"experiment_id": o.exp}), 200, 403),
    "webhooks.create": (J("POST", R2 + "/webhooks", body=lambda o: {
        "name": unique("hook"), "url": f"https://{WEBHOOK_HOST}/new", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}), 200, "own"),
    "webhooks.update": (J("PATCH", R2 + "/webhooks/{o.webhook}", body=lambda o: {"description": "changed"}), 200, "absent"),
    "webhooks.list": (J("GET", R2 + "/webhooks"), 200, "not_listed"),
    "webhooks.get": (J("GET", R2 + "/webhooks/{o.webhook}"), 200, "absent"),
    "webhooks.delete": (J("DELETE", R2 + "/webhooks/{o.webhook}"), 200, "absent"),
    "webhooks.test": (J("POST", R2 + "/webhooks/{o.webhook}/test", body=lambda o: {}), 200, "absent"),
    "mcp_servers.search": (J("GET", R3 + "/mcp-servers"), 200, "not_listed"),
    "mcp_servers.create": (J("POST", R3 + "/mcp-servers", body=lambda o: {"name": "com.example/" + unique("mcp")}), 200, "own"),
    "mcp_servers.get": (J("GET", R3 + "/mcp-servers/{o.mcp}"), 200, "absent"),
    "mcp_servers.add": (J("POST", R3 + "/mcp-servers/{o.mcp}/versions", body=lambda o: {
        "server_json": {"name": o.mcp, "version": "1.0.0", "description": "d"}}), 200, "own"),
    "mcp_servers.update": (J("PATCH", R3 + "/mcp-servers/{o.mcp}", body=lambda o: {"description": "changed"}), 200, "absent"),
    "mcp_servers.delete": (J("DELETE", R3 + "/mcp-servers/{o.mcp}"), 200, "absent"),
}

# OTLP and prompt-lab runs are experiment-scoped: the same in both modes.
BOTH_MODES = {
    "otlp.traces": (otlp, 200, 403),
    "runs.create_promptlab": (promptlab, 200, 403),
}


def cases() -> dict:
    if WORKSPACES:
        return {**WORKSPACE_CASES, **BOTH_MODES}
    return {**{k: (call, 403, 403) for k, (call, *_rest) in WORKSPACE_CASES.items()}, **BOTH_MODES}


def prefixes() -> tuple[str, ...]:
    """Row ids whose cases need create()."""
    return tuple(WORKSPACE_CASES)


def needs_jobs(row_id: str) -> bool:
    """Whether a row's case needs create()'s jobs."""
    return row_id.startswith(("jobs.", "prompt_optimization."))
