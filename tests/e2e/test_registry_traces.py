"""Model registry, prompts and traces with the real MLflow Python client through the gateway,
and the cross-tenant leaks of the reference (mlflow-api.md §2.4) as regression tests: each one
first shows what the attack does, then that the gateway refuses it and the victim's data is
unchanged (read back as the owner)."""

import json
import uuid

import pytest
import requests

from conftest import WORKSPACES, Caller, unique

R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"


def denied(fn) -> str:
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the client raises MlflowException or OSError kinds
        return str(e)
    raise AssertionError(f"not refused: {result!r}")


@pytest.fixture(scope="module")
def registry(gw):
    """team-a's session: a model logged, registered twice, aliased; a traced call; a prompt."""
    a = Caller(gw, tenant="team-a", subject="alice")
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    name, prompt = unique("rm"), unique("prompt")
    with a.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        exp_id = mlflow.set_experiment(unique("registry")).experiment_id
        with mlflow.start_run() as run:
            model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
        v2 = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
        client.set_registered_model_alias(name, "champion", "1")

        @mlflow.trace
        def predict(x):
            return x + 1

        assert predict(1) == 2
        mlflow.flush_trace_async_logging()
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.genai.register_prompt(name=prompt, template="Summarise {{text}}")
        mlflow.genai.register_prompt(name=prompt, template="Summarise briefly: {{text}}")
    return {"a": a, "name": name, "prompt": prompt, "exp": exp_id, "run": run.info.run_id,
            "model_id": info.model_id, "v2": v2.version, "trace": trace_id}


def test_owner_registry_prompt_and_trace_session(registry):
    a, name = registry["a"], registry["name"]
    with a.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        loaded = mlflow.sklearn.load_model(f"models:/{name}@champion")
        assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
        assert name in [m.name for m in client.search_registered_models()]
        versions = client.search_model_versions(f"name='{name}'")
        assert sorted(v.version for v in versions) == ["1", "2"]
        assert client.get_model_version_by_alias(name, "champion").version == "1"
        traces = mlflow.search_traces(locations=[registry["exp"]], return_type="list")
        assert [t.info.trace_id for t in traces] == [registry["trace"]]
        assert traces[0].data.spans[0].name == "predict"
        p = mlflow.genai.load_prompt(f"prompts:/{registry['prompt']}/1")
        assert p.template == "Summarise {{text}}"
        assert mlflow.genai.load_prompt(f"prompts:/{registry['prompt']}@latest").template == "Summarise briefly: {{text}}"
        assert registry["prompt"] in [x.name for x in mlflow.genai.search_prompts()]


def test_other_tenant_cannot_use_team_a_names_and_ids(registry, gw, tmp_path, isolation):
    name, prompt = registry["name"], registry["prompt"]
    b = Caller(gw, tenant="team-b", subject="bob")
    with b.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        for attempt in [
            lambda: mlflow.sklearn.load_model(f"models:/{name}@champion"),
            lambda: mlflow.sklearn.load_model(f"models:/{name}/1"),
            lambda: client.get_registered_model(name),
            lambda: client.get_model_version(name, "1"),
            lambda: client.set_registered_model_alias(name, "champion", "2"),
            lambda: client.rename_registered_model(name, unique("stolen")),
            lambda: client.delete_registered_model(name),
            lambda: client.create_model_version(name, f"runs:/{registry['run']}/model", run_id=registry["run"]),
            # (bypassing the client-side prompt cache, which this process filled as team-a)
            lambda: mlflow.genai.load_prompt(f"prompts:/{prompt}/1", cache_ttl_seconds=0),
        ]:
            text = denied(attempt)
            assert "RESOURCE_DOES_NOT_EXIST" in text or "PERMISSION_DENIED" in text, text
        if isolation == "tag":
            # Prompt names of another tenant read as absent; registering one reveals only that
            # the (global) name is taken.
            text = denied(lambda: mlflow.genai.register_prompt(name=prompt, template="mine now"))
            assert "RESOURCE_ALREADY_EXISTS" in text, text
        else:
            # Names are per workspace: team-b's own prompt of the same name, team-a's untouched.
            mine = mlflow.genai.register_prompt(name=prompt, template="mine now")
            assert (mine.name, mine.version) == (prompt, 1)
        for attempt in [
            lambda: client.get_trace(registry["trace"]),
            lambda: mlflow.search_traces(locations=[registry["exp"]]),
            lambda: client.set_trace_tag(registry["trace"], "k", "v"),
            lambda: client.delete_traces(experiment_id=registry["exp"], trace_ids=[registry["trace"]]),
        ]:
            text = denied(attempt)
            assert "PERMISSION_DENIED" in text or "RESOURCE_DOES_NOT_EXIST" in text, text
        assert name not in [m.name for m in client.search_registered_models()]
        own_prompts = [x.name for x in mlflow.genai.search_prompts()]
        assert own_prompts.count(prompt) == (0 if isolation == "tag" else 1)
        assert client.search_model_versions(f"name='{name}'") == []
    # The owner's objects are intact.
    with registry["a"].mlflow() as mlflow:
        client = mlflow.MlflowClient()
        assert client.get_model_version_by_alias(name, "champion").version == "1"
        assert mlflow.genai.load_prompt(f"prompts:/{prompt}/1").template == "Summarise {{text}}"
        assert client.get_trace(registry["trace"]).info.trace_id == registry["trace"]


def test_foreign_registered_model_reads_exactly_like_an_absent_one(registry, gw):
    """No existence oracle: MLflow's own 404 body, byte for byte, for taken and free names."""
    b = Caller(gw, tenant="team-b")
    missing = unique("missing")
    for path, extra in [("registered-models/get", {}), ("registered-models/alias", {"alias": "champion"}),
                        ("model-versions/get", {"version": "1"}), ("registered-models/get-latest-versions", {})]:
        taken = b.get(f"{R2}/{path}", params={"name": registry["name"], **extra})
        free = b.get(f"{R2}/{path}", params={"name": missing, **extra})
        assert taken.status_code == free.status_code == 404, (path, taken.text)
        assert taken.content.replace(registry["name"].encode(), b"N") == free.content.replace(missing.encode(), b"N")
        assert taken.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    direct = requests.get(f"{gw.variables['target_base_url']}{R2}/registered-models/get", params={"name": missing})
    assert free.status_code == 404
    assert b.get(f"{R2}/registered-models/get", params={"name": missing}).content == direct.content


# ---------------------------------------------------------------- §2.4 leak scenarios


def fresh_trace(c: Caller, exp: str) -> str:
    tid = "tr-" + uuid.uuid4().hex
    r = c.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK", "tags": {"secret": f"{c.tenant}-only"}}}})
    assert r.status_code == 200, r.text
    return tid


def own_experiment(c: Caller) -> str:
    r = c.post(f"{R2}/experiments/create", {"name": unique("leak")})
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def trace_info(c: Caller, tid: str) -> dict:
    r = c.get(f"{R2}/traces/{tid}/info")
    assert r.status_code == 200, r.text
    return r.json()["trace_info"]


def test_leak_1_trace_rehoming_is_refused(a, b, gw):
    exp_a, exp_b = own_experiment(a), own_experiment(b)
    tid = fresh_trace(a, exp_a)
    before = trace_info(a, tid)
    r = b.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp_b}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    assert trace_info(a, tid) == before
    # Re-starting one's own trace (the client's upsert) stays allowed, and other location types
    # are refused.
    assert a.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": tid, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp_a}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}}).status_code == 200
    r = b.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": "tr-" + uuid.uuid4().hex, "trace_location": {"type": "UC_SCHEMA", "uc_schema": {"catalog_name": "c", "schema_name": "s"}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}})
    assert r.status_code == 403


def test_leak_2_otlp_span_injection_is_refused(a, b):
    """OTLP is governed (docs/genai.md): spans naming another tenant's trace never reach it,
    even exported into the caller's own experiment. Tag mode: the gateway finds the trace is
    another tenant's and refuses. Workspace mode: in the caller's pinned workspace the trace id
    is unknown (new, unless the gateway already knows its owner and refuses); MLflow 3.17.2 then
    cannot create the trace there (the id is taken in another workspace) and drops the spans.
    Either way team-a's trace keeps exactly its own spans."""
    import genai_rows

    def span_names(tid):
        r = a.get(f"{R3}/traces/batchGet", params={"trace_ids": [tid]})
        assert r.status_code == 200, r.text
        return sorted(s.get("name") for t in r.json().get("traces", []) for s in t.get("spans", []))

    exp_a, exp_b = own_experiment(a), own_experiment(b)
    hexid = uuid.uuid4().hex
    tid = "tr-" + hexid
    r = a.request("POST", "/v1/traces", data=genai_rows._otlp_export(hexid), headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": exp_a})
    assert r.status_code == 200, r.text
    before = span_names(tid)
    assert before == ["root"]
    r = b.request("POST", "/v1/traces", data=genai_rows._otlp_export(hexid), headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": exp_b})
    if WORKSPACES:
        assert r.status_code in (200, 403), r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["error_code"] == "PERMISSION_DENIED"
    assert trace_info(a, tid)["experiment_id"] == exp_a
    assert span_names(tid) == before
    assert b.get(f"{R3}/traces/{tid}").status_code in (403, 404)
    # A new trace into team-a's experiment: the experiment decides.
    fresh = genai_rows._otlp_export(uuid.uuid4().hex)
    r = b.request("POST", "/v1/traces", data=fresh, headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": exp_a})
    assert r.status_code == 403, r.text
    # Without the experiment header MLflow would not know where to put the spans; an export
    # without spans says nothing: both refused as bad requests.
    r = b.request("POST", "/v1/traces", data=fresh, headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 400 and "x-mlflow-experiment-id" in r.text, r.text
    r = b.request("POST", "/v1/traces", data=b"\x0a\x00", headers={
        "content-type": "application/x-protobuf", "x-mlflow-experiment-id": exp_b})
    assert r.status_code == 400 and "no spans" in r.text, r.text


def test_leak_3_model_version_source_exfiltration_is_refused(a, b, gw):
    exp_a = own_experiment(a)
    run_a = a.post(f"{R2}/runs/create", {"experiment_id": exp_a}).json()["run"]["info"]["run_id"]
    assert a.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp_a}/{run_a}/artifacts/model/secret.txt",
                     data=b"team-a secret").status_code == 200
    exp_b = own_experiment(b)
    run_b = b.post(f"{R2}/runs/create", {"experiment_id": exp_b}).json()["run"]["info"]["run_id"]
    mine = unique("bmodel")
    assert b.post(f"{R2}/registered-models/create", {"name": mine}).status_code == 200
    for body in [
        {"run_id": run_a, "source": f"mlflow-artifacts:/{exp_a}/{run_a}/artifacts/model"},
        {"source": f"mlflow-artifacts:/{exp_a}/{run_a}/artifacts/model"},
        {"run_id": run_b, "source": f"mlflow-artifacts:/{exp_a}/{run_a}/artifacts/model"},
        {"source": f"runs:/{run_a}/model"},
        {"run_id": run_b, "source": f"mlflow-artifacts:/{exp_b}/../{exp_a}/{run_a}/artifacts/model"},
        {"run_id": run_b, "source": f"mlflow-artifacts:/workspaces/team-a/{exp_a}/{run_a}/artifacts/model"},
        {"run_id": run_b, "source": f"mlflow-artifacts:/workspaces/team-b/{exp_a}/{run_a}/artifacts/model"},
        {"source": "s3://bucket/team-a/model"},
        {"source": f"file:///tmp/{exp_a}"},
        {"source": "/etc"},
    ]:
        r = b.post(f"{R2}/model-versions/create", {"name": mine, **body})
        assert r.status_code in (400, 403), (body, r.text)
    # Nothing was registered, so nothing can be downloaded.
    assert b.get(f"{R2}/model-versions/search", params={"filter": f"name='{mine}'"}).json().get("model_versions", []) == []
    # A version from one's own run works.
    assert b.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp_b}/{run_b}/artifacts/model/own.txt", data=b"mine").status_code == 200
    # The run's own artifact URI (`mlflow-artifacts:/workspaces/team-b/<exp>/…` in workspace mode).
    run_b_uri = b.get(f"{R2}/runs/get", params={"run_id": run_b}).json()["run"]["info"]["artifact_uri"]
    r = b.post(f"{R2}/model-versions/create", {"name": mine, "run_id": run_b, "source": f"{run_b_uri}/model"})
    assert r.status_code == 200, r.text
    r = b.get("/model-versions/get-artifact", params={"name": mine, "version": "1", "path": "own.txt"})
    assert r.status_code == 200 and r.content == b"mine"
    version = b.get(f"{R2}/model-versions/get", params={"name": mine, "version": "1"}).json()["model_version"]
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert tags["tenant"] == "team-b"


def test_model_source_prefixes_are_per_tenant(workdir, mlflow_server):
    from conftest import Gateway

    gw = Gateway(workdir / "gw-prefix", mlflow_server.url, {
        "auth_mode": "off", "model_source_prefixes": "s3://models/{tenant}/"}).start()
    try:
        a = Caller(gw, tenant="team-a")
        mine = unique("prefixed")
        assert a.post(f"{R2}/registered-models/create", {"name": mine}).status_code == 200
        ok = a.post(f"{R2}/model-versions/create", {"name": mine, "source": "s3://models/team-a/m1"})
        assert ok.status_code == 200, ok.text
        for src in ["s3://models/team-b/m1", "s3://models/team-a/../team-b/m1", "s3://models/team-ab/m1", "s3://models/team-a/"]:
            r = a.post(f"{R2}/model-versions/create", {"name": mine, "source": src})
            assert r.status_code == 403 and "source" in r.json()["message"], (src, r.text)
    finally:
        gw.stop()


def test_leak_4_dataset_search_without_scope_is_refused(b):
    for r in [b.post(f"{R3}/datasets/search", {}), b.get(f"{R3}/datasets/search")]:
        assert r.status_code in (400, 403), r.text
        assert "datasets" not in r.json() or r.json()["datasets"] == []


def test_leak_7_trace_id_lists_are_checked_one_by_one(a, b):
    exp_a, exp_b = own_experiment(a), own_experiment(b)
    ta, tb = fresh_trace(a, exp_a), fresh_trace(b, exp_b)
    for r in [
        b.get(f"{R3}/traces/batchGet", params={"trace_ids": [tb, ta]}),
        b.post(f"{R3}/traces/batchGetInfos", {"trace_ids": [tb, ta]}),
        b.post(f"{R3}/traces/search", {"locations": [
            {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp_b}},
            {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp_a}}]}),
        b.post(f"{R3}/traces/delete-traces", {"experiment_id": exp_b, "request_ids": [tb, ta]}),
        b.post(f"{R2}/traces/link-to-run", {"run_id": b.post(f"{R2}/runs/create", {"experiment_id": exp_b}).json()["run"]["info"]["run_id"],
                                            "trace_ids": [tb, ta]}),
    ]:
        assert r.status_code == 403, r.text
        assert "team-a-only" not in r.text
    assert b.post(f"{R3}/traces/search", {}).status_code == 400
    assert trace_info(a, ta)["experiment_id"] == exp_a


def test_leak_9_registry_delete_reads_the_body_only(a, b):
    """basic-auth checked the query while MLflow deleted the body's model; here a query on a
    body method is refused and the body's name is the one checked."""
    victim, mine = unique("victim"), unique("mine")
    assert a.post(f"{R2}/registered-models/create", {"name": victim}).status_code == 200
    assert b.post(f"{R2}/registered-models/create", {"name": mine}).status_code == 200
    r = b.request("DELETE", f"{R2}/registered-models/delete?name={mine}", data=json.dumps({"name": victim}),
                  headers={"Content-Type": "text/plain"})
    assert r.status_code == 400
    r = b.request("DELETE", f"{R2}/registered-models/delete", data=json.dumps({"name": victim}),
                  headers={"Content-Type": "text/plain"})
    assert r.status_code == 404
    for key in ["k"]:
        r = b.request("DELETE", f"{R2}/registered-models/delete-tag", data=json.dumps({"name": victim, "key": key}),
                      headers={"Content-Type": "text/plain"})
        assert r.status_code == 404
    assert a.get(f"{R2}/registered-models/get", params={"name": victim}).status_code == 200


def test_leak_13_reserved_tag_on_registry_and_traces(a):
    exp = own_experiment(a)
    name = unique("tags")
    assert a.post(f"{R2}/registered-models/create", {"name": name}).status_code == 200
    tid = fresh_trace(a, exp)
    for r in [
        a.post(f"{R2}/registered-models/create", {"name": unique("x"), "tags": [{"key": "tenant", "value": "team-b"}]}),
        a.post(f"{R2}/registered-models/set-tag", {"name": name, "key": "Tenant", "value": "team-b"}),
        a.request("DELETE", f"{R2}/registered-models/delete-tag", json={"name": name, "key": "tenant"}),
        a.post(f"{R2}/model-versions/create", {"name": name, "source": "dummy-source", "tags": [{"key": "tenant", "value": "b"}]}),
        a.post(f"{R2}/model-versions/set-tag", {"name": name, "version": "1", "key": "tenant", "value": "b"}),
        a.request("DELETE", f"{R2}/model-versions/delete-tag", json={"name": name, "version": "1", "key": "TENANT"}),
        a.request("PATCH", f"{R3}/traces/{tid}/tags", json={"key": "tenant", "value": "b"}),
        a.request("DELETE", f"{R2}/traces/{tid}/tags", json={"key": "tenant"}),
        a.post(f"{R3}/traces", {"trace": {"trace_info": {
            "trace_id": "tr-" + uuid.uuid4().hex, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
            "request_time": "2026-11-23T00:00:00Z", "state": "OK", "tags": {"tenant": "team-b"}}}}),
    ]:
        assert r.status_code == 403, r.text
    tags = {t["key"]: t["value"] for t in a.get(f"{R2}/registered-models/get", params={"name": name}).json()["registered_model"]["tags"]}
    assert tags["tenant"] == "team-a"
