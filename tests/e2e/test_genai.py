"""Evaluation datasets, scorers, label schemas, review queues and issues through the gateway:
the real MLflow Python client as the owner, the same names and ids refused to another tenant,
and the cross-tenant leaks these routes open on a bare MLflow (unscoped searches, links between
tenants' objects, spoofed reviewer attribution) shown closed."""

import json
import uuid

import pytest
import requests

from conftest import Caller, pinned, unique

R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"


def own_experiment(c: Caller) -> str:
    r = c.post(f"{R2}/experiments/create", {"name": unique("genai")})
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def refused(fn) -> str:
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the client raises MlflowException kinds
        return str(e)
    raise AssertionError(f"not refused: {result!r}")


@pytest.fixture(scope="module")
def session(gw):
    """team-a's evaluation session with the real client: a dataset with a record, a scorer."""
    a = Caller(gw, tenant="team-a", subject="alice")
    with a.mlflow() as mlflow:
        from mlflow.genai.datasets import create_dataset
        from mlflow.genai.scorers import Guidelines

        exp = mlflow.set_experiment(unique("eval")).experiment_id
        ds = create_dataset(name=unique("golden"), experiment_id=exp, tags={"team": "a"})
        ds.merge_records([{"inputs": {"question": "2+2"}, "expectations": {"answer": "4"}}])
        Guidelines(name="polite", guidelines=["Be polite"]).register(experiment_id=exp)
    return {"a": a, "exp": exp, "ds": ds.dataset_id}


def test_owner_datasets_and_scorers_with_the_client(session):
    with session["a"].mlflow() as mlflow:
        from mlflow.genai.datasets import get_dataset, search_datasets
        from mlflow.genai.scorers import get_scorer, list_scorers

        got = get_dataset(dataset_id=session["ds"])
        df = got.to_df()
        assert len(df) == 1 and df.iloc[0]["expectations"] == {"answer": "4"}
        assert [d.dataset_id for d in search_datasets(experiment_ids=[session["exp"]])] == [session["ds"]]
        assert [s.name for s in list_scorers(experiment_id=session["exp"])] == ["polite"]
        assert get_scorer(name="polite", experiment_id=session["exp"]).name == "polite"


def test_other_tenant_gets_clear_errors_for_the_same_ids(session, gw):
    b = Caller(gw, tenant="team-b", subject="bob")
    with b.mlflow() as mlflow:
        from mlflow.genai.datasets import get_dataset, search_datasets
        from mlflow.genai.scorers import delete_scorer, get_scorer, list_scorers

        for fn in [
            lambda: get_dataset(dataset_id=session["ds"]),
            lambda: search_datasets(experiment_ids=[session["exp"]]),
            lambda: list_scorers(experiment_id=session["exp"]),
            lambda: get_scorer(name="polite", experiment_id=session["exp"]),
            lambda: delete_scorer(name="polite", experiment_id=session["exp"], version="all"),
        ]:
            msg = refused(fn)
            assert "PERMISSION_DENIED" in msg or "does not exist or belongs to another tenant" in msg, msg
        # An unscoped search (the client sends no experiment ids) is refused, not answered.
        msg = refused(lambda: search_datasets())
        assert "experiment_ids" in msg, msg
    # The owner's objects are intact.
    with session["a"].mlflow() as mlflow:
        from mlflow.genai.datasets import get_dataset
        from mlflow.genai.scorers import list_scorers

        assert len(get_dataset(dataset_id=session["ds"]).to_df()) == 1
        assert [s.name for s in list_scorers(experiment_id=session["exp"])] == ["polite"]


def test_unscoped_genai_searches_are_refused_where_mlflow_answers_everything(session, b, mlflow_server):
    """On a bare MLflow these searches without an experiment return every tenant's objects
    (§2.4 #4 and its siblings); through the gateway they need an owned scope."""
    a, exp = session["a"], session["exp"]
    assert a.post(f"{R3}/issues", {"experiment_id": exp, "name": "drift", "description": "d"}).status_code == 200
    direct = [
        requests.post(f"{mlflow_server.url}{R3}/datasets/search", json={}, headers=pinned(a.tenant)),
        requests.get(f"{mlflow_server.url}{R3}/scorers/list", headers=pinned(a.tenant)),
        requests.post(f"{mlflow_server.url}{R3}/issues/search", json={}, headers=pinned(a.tenant)),
    ]
    assert session["ds"] in direct[0].text and f'"experiment_id": {exp}' in direct[1].text and exp in direct[2].text
    for r in [
        b.post(f"{R3}/datasets/search", {}),
        b.get(f"{R3}/datasets/search"),
        b.get(f"{R3}/scorers/list"),
        b.get(f"{R3}/scorers/list", params={"experiment_ids": []}),
        b.post(f"{R3}/issues/search", {}),
        b.post("/ajax-api/2.0/mlflow/experiments/search-datasets", {}),
    ]:
        assert r.status_code == 400, r.text
        assert session["ds"] not in r.text and "drift" not in r.text
    # A scope that mixes an own and a foreign experiment is refused as a whole.
    exp_b = own_experiment(b)
    for r in [
        b.get(f"{R3}/datasets/search", params={"experiment_ids": [exp_b, exp]}),
        b.get(f"{R3}/scorers/list", params={"experiment_ids": [exp_b, exp]}),
    ]:
        assert r.status_code == 403, r.text


def test_datasets_cannot_link_tenants(a, b, mlflow_server, isolation):
    exp_a, exp_b = own_experiment(a), own_experiment(b)
    # Creating a dataset across both tenants' experiments, or linking into a foreign one.
    r = a.post(f"{R3}/datasets/create", {"name": unique("x"), "experiment_ids": [exp_a, exp_b]})
    assert r.status_code == 403, r.text
    ds = a.post(f"{R3}/datasets/create", {"name": unique("x"), "experiment_ids": [exp_a]}).json()["dataset"]["dataset_id"]
    r = a.post(f"{R3}/datasets/{ds}/add-experiments", {"experiment_ids": [exp_b]})
    assert r.status_code == 403, r.text
    r = b.post(f"{R3}/datasets/{ds}/add-experiments", {"experiment_ids": [exp_b]})
    assert r.status_code == 403, r.text
    assert a.get(f"{R3}/datasets/{ds}/experiment-ids").json()["experiment_ids"] == [exp_a]
    # A dataset linked to both tenants outside the gateway belongs to neither.
    # (In workspace mode it lives in team-a's workspace, where team-b's experiment is not.)
    shared = requests.post(f"{mlflow_server.url}{R3}/datasets/create", headers=pinned(a.tenant),
                           json={"name": unique("shared"), "experiment_ids": [exp_a, exp_b]}).json()["dataset"]["dataset_id"]
    # In workspace mode the dataset lives in team-a's workspace, where MLflow lists only
    # team-a's experiment among its links: team-a's, and nobody else's.
    for c in ((b,) if isolation == "workspace" else (a, b)):
        assert c.get(f"{R3}/datasets/{shared}").status_code == 403
        assert c.get(f"{R3}/datasets/{shared}/records").status_code == 403
    if isolation == "workspace":
        assert a.get(f"{R3}/datasets/{shared}/experiment-ids").json()["experiment_ids"] == [exp_a]
    # An unknown dataset id (MLflow answers its experiment list with `{}`) is refused too.
    r = a.get(f"{R3}/datasets/d-{uuid.uuid4().hex}")
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"


def test_review_attribution_and_issue_authors_are_the_authenticated_subject(a, b):
    exp = own_experiment(a)
    trace = "tr-" + uuid.uuid4().hex
    r = a.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": trace, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}})
    assert r.status_code == 200, r.text
    q = a.post(f"{R3}/review-queues/create", {"experiment_id": exp, "name": unique("q"), "queue_type": "CUSTOM",
                                              "users": ["alice"]}).json()["review_queue"]["queue_id"]
    item = a.post(f"{R3}/review-queues/items/add", {"queue_id": q, "item_ids": [trace]}).json()["items"][0]["item_id"]
    # The client claims another reviewer; the record names the authenticated subject.
    r = a.post(f"{R3}/review-queues/items/set-status", {"queue_id": q, "item_id": item, "status": "COMPLETE",
                                                        "completed_by": "mallory"})
    assert r.status_code == 200, r.text
    assert r.json()["item"]["completed_by"] == "alice"
    r = a.post(f"{R3}/issues", {"experiment_id": exp, "name": "n", "description": "d", "created_by": "mallory"})
    assert r.status_code == 200 and r.json()["issue"]["created_by"] == "alice", r.text
    # A foreign trace cannot be queued for review in an own queue (MLflow checks the experiment).
    exp_b = own_experiment(b)
    tb = "tr-" + uuid.uuid4().hex
    assert b.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": tb, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp_b}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}}).status_code == 200
    r = a.post(f"{R3}/review-queues/items/add", {"queue_id": q, "item_ids": [tb]})
    assert r.status_code == 404 and tb not in json.dumps(
        a.get(f"{R3}/review-queues/items/list", params={"queue_id": q}).json())
    # An issue cannot point at another tenant's run.
    run_b = b.post(f"{R2}/runs/create", {"experiment_id": exp_b}).json()["run"]["info"]["run_id"]
    r = a.post(f"{R3}/issues", {"experiment_id": exp, "name": "n", "description": "d", "source_run_id": run_b})
    assert r.status_code == 403, r.text


def test_online_scoring_configs_are_filtered_per_tenant(session, gw, mlflow_server):
    """The client reads online-scoring configs by scorer id when it lists scorers. Configs can
    only be set by the operator (on MLflow directly); through the gateway each tenant sees the
    configs of its own experiments only, even when it names another tenant's scorer id."""
    direct = f"{mlflow_server.url}{R3}/gateway"
    tag = uuid.uuid4().hex[:8]
    ws = pinned(session["a"].tenant)
    secret = requests.post(f"{direct}/secrets/create", headers=ws, json={
        "secret_name": f"s-{tag}", "secret_value": {"api_key": "sk-test"}, "provider": "openai"}).json()["secret"]["secret_id"]
    model = requests.post(f"{direct}/model-definitions/create", headers=ws, json={
        "name": f"md-{tag}", "secret_id": secret, "provider": "openai", "model_name": "gpt-4o-mini"}).json()
    endpoint = f"judge-{tag}"
    r = requests.post(f"{direct}/endpoints/create", headers=ws, json={"name": endpoint, "model_configs": [{
        "model_definition_id": model["model_definition"]["model_definition_id"], "linkage_type": "PRIMARY", "weight": 1}]})
    assert r.status_code == 200, r.text
    a, exp = session["a"], session["exp"]
    with a.mlflow() as mlflow:
        from mlflow.genai.scorers import Guidelines

        Guidelines(name="concise", guidelines=["Be brief"], model=f"gateway:/{endpoint}").register(experiment_id=exp)
    scorer_id = a.get(f"{R3}/scorers/get", params={"experiment_id": exp, "name": "concise"}).json()["scorer"]["scorer_id"]
    r = requests.put(f"{mlflow_server.url}{R3}/scorers/online-config", headers=ws, json={"experiment_id": exp, "name": "concise", "sample_rate": 0.5})
    assert r.status_code == 200, r.text
    # Configuring online scoring through the gateway is refused.
    r = a.request("PUT", f"{R3}/scorers/online-config", json={"experiment_id": exp, "name": "concise", "sample_rate": 1.0})
    assert r.status_code == 403
    mine = a.get(f"{R3}/scorers/online-configs", params={"scorer_ids": [scorer_id]})
    assert mine.status_code == 200 and [c["sample_rate"] for c in mine.json()["configs"]] == [0.5], mine.text
    b = Caller(gw, tenant="team-b", subject="bob")
    theirs = b.get(f"{R3}/scorers/online-configs", params={"scorer_ids": [scorer_id]})
    assert theirs.status_code == 200 and theirs.json()["configs"] == [], theirs.text
    with a.mlflow() as mlflow:
        from mlflow.genai.scorers import list_scorers

        assert sorted(s.name for s in list_scorers(experiment_id=exp)) == ["concise", "polite"]


def test_scorers_run_by_the_server_stay_refused(a):
    """Online scoring makes the server run scorers on every new trace with its own credentials:
    refused for everyone. Judges started on named traces are governed rows (docs/genai.md,
    test_genai_services.py)."""
    exp = own_experiment(a)
    r = a.request("PUT", f"{R3}/scorers/online-config", json={"experiment_id": exp, "name": "polite", "sample_rate": 1.0})
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == "PERMISSION_DENIED" and "policy does not permit" in r.json()["message"]
