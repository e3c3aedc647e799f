"""Grants per object (issue 34), in dev mode against the real MLflow and the real client: the
grants endpoint (`/_gateway/v1/grants`: who may call it, its strict input, its answers and
audit lines), what a grant does on every experiment and registry row (allowed with the grant,
refused again on the very next request after it is revoked, refused under a DENY), DENY hiding
an experiment and its children from searches and GraphQL, protected aliases, the reserved grant
tags, and a revocation seen at once by a second replica sharing the Redis key-value store.

Everything inside one tenant runs in both isolation modes; what needs another tenant's
workspace (a visitor reading what is shared with it) runs in workspace mode and is skipped in
tag mode, where sharing across tenants does not exist (the endpoint refuses it). The story with
the real IdP, the client helpers and Chromium is test_tenants.py."""

from __future__ import annotations

import subprocess
import uuid

import pytest
import requests
from mlflow.exceptions import MlflowException

from conftest import POLICY_TABLE, WORKSPACES, Caller, Gateway, RedisServer, pinned, unique
from test_policy_rows import CASES, GQL_GET_RUN, GQL_SEARCH_RUNS, R2, R3

GRANTS = "/_gateway/v1/grants"
MA = "/api/2.0/mlflow-artifacts"
workspace_only = pytest.mark.skipif(
    not WORKSPACES, reason="sharing across tenants needs workspaces (tenant_isolation=tag refuses it)")
ACTION_LEVEL = {"read": "READ", "write": "EDIT", "delete": "MANAGE", "manage": "MANAGE"}
ROW_ACTION = {r["id"]: r["action"] for r in POLICY_TABLE["rows"]}


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server):
    g = Gateway(workdir / "gw", mlflow_server.url,
                {"auth_mode": "off", "protected_aliases": "champion,Production"}).start()
    yield g
    g.stop()


def person(gw, name: str, tenant: str = "team-a", roles: str | None = None, **headers: str) -> Caller:
    """A dev-mode caller; `workspace=` selects a workspace (X-MLFLOW-WORKSPACE), `groups=` its
    groups (X-Groups)."""
    extra = {}
    if "workspace" in headers:
        extra["X-MLFLOW-WORKSPACE"] = headers.pop("workspace")
    if "groups" in headers:
        extra["X-Groups"] = headers.pop("groups")
    assert not headers, headers
    return Caller(gw, tenant=tenant, subject=name, roles=roles, extra=extra)


def with_rid(c: Caller) -> tuple[Caller, str]:
    rid = "grants-" + uuid.uuid4().hex
    return Caller(c.gw, tenant=c.tenant, token=c.token, extra={**c.headers, "X-Request-ID": rid}), rid


def audited(c: Caller, method: str, path: str, **kw) -> tuple[requests.Response, dict]:
    """One request as `c`; returns the answer and its audit line."""
    c2, rid = with_rid(c)
    r = c2.request(method, path, **kw)
    return r, c.gw.audit_for(rid)[0]


def put(c: Caller, resource: str, subject: str, level: str) -> dict:
    r = c.request("PUT", GRANTS, json={"resource": resource, "subject": subject, "level": level})
    assert r.status_code == 200, r.text
    return r.json()


def delete(c: Caller, resource: str, subject: str) -> dict:
    r = c.request("DELETE", GRANTS, json={"resource": resource, "subject": subject})
    assert r.status_code == 200, r.text
    return r.json()


def listed(c: Caller, resource: str) -> list[dict]:
    r = c.get(GRANTS, params={"resource": resource})
    assert r.status_code == 200, r.text
    return r.json()["grants"]


def experiment(c: Caller, prefix: str = "grants") -> str:
    r = c.post(f"{R2}/experiments/create", {"name": unique(prefix)})
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def run_in(c: Caller, exp: str) -> str:
    r = c.post(f"{R2}/runs/create", {"experiment_id": exp, "start_time": 1})
    assert r.status_code == 200, r.text
    return r.json()["run"]["info"]["run_id"]


def mlflow_tags(mlflow_server, tenant: str, kind: str, ident: str) -> dict[str, str]:
    """An object's tags as MLflow holds them (read directly, not through the gateway)."""
    if kind == "experiment":
        r = requests.get(f"{mlflow_server.url}{R2}/experiments/get", params={"experiment_id": ident},
                         headers=pinned(tenant), timeout=30)
        tags = r.json()["experiment"].get("tags", [])
    else:
        r = requests.get(f"{mlflow_server.url}{R2}/registered-models/get", params={"name": ident},
                         headers=pinned(tenant), timeout=30)
        tags = r.json()["registered_model"].get("tags", [])
    assert r.status_code == 200, r.text
    return {t["key"]: t["value"] for t in tags}


def grant_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith("tenant.grant.")}


# ---------------------------------------------------------------- the endpoint

def test_grants_are_listed_set_changed_and_revoked_and_each_change_is_audited(gw, mlflow_server):
    """GET/PUT/DELETE on an experiment, a registered model and a prompt: the answers the
    contract names, the grant stored as a tag on the object in MLflow, and one audit line per
    request (route grants.list / grants.put / grants.delete; a change names from and to)."""
    alice = person(gw, "alice", roles="admin")
    exp = experiment(alice)
    model = unique("grants-rm")
    assert alice.post(f"{R2}/registered-models/create", {"name": model}).status_code == 200
    prompt = unique("grants-prompt")
    r = alice.post(f"{R2}/registered-models/create", {
        "name": prompt, "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})
    assert r.status_code == 200, r.text
    for resource, kind, ident in [(f"experiments/{exp}", "experiment", exp),
                                  (f"registered-models/{model}", "model", model),
                                  (f"prompts/{prompt}", "model", prompt)]:
        r, line = audited(alice, "GET", GRANTS, params={"resource": resource})
        assert r.status_code == 200 and r.json() == {"resource": resource, "grants": []}, r.text
        assert (line["route"], line["decision"], line["status"]) == ("grants.list", "allow", 200)
        assert "grant" not in line
        steps = [
            ("PUT", {"subject": "user:bob", "level": "READ"}, {"grant": {"subject": "user:bob", "level": "READ"}, "previous": None}, (None, "READ")),
            ("PUT", {"subject": "user:bob", "level": "EDIT"}, {"grant": {"subject": "user:bob", "level": "EDIT"}, "previous": "READ"}, ("READ", "EDIT")),
            ("PUT", {"subject": "group:ml-ops", "level": "MANAGE"}, {"grant": {"subject": "group:ml-ops", "level": "MANAGE"}, "previous": None}, (None, "MANAGE")),
            ("PUT", {"subject": "user:mallory", "level": "DENY"}, {"grant": {"subject": "user:mallory", "level": "DENY"}, "previous": None}, (None, "DENY")),
            ("DELETE", {"subject": "user:mallory"}, {"revoked": {"subject": "user:mallory"}, "previous": "DENY"}, ("DENY", None)),
            ("DELETE", {"subject": "user:bob"}, {"revoked": {"subject": "user:bob"}, "previous": "EDIT"}, ("EDIT", None)),
            # Revoking what is not there is not an error: previous is null.
            ("DELETE", {"subject": "user:bob"}, {"revoked": {"subject": "user:bob"}, "previous": None}, (None, None)),
        ]
        for method, body, answer, (was, now) in steps:
            r, line = audited(alice, method, GRANTS, json={"resource": resource, **body})
            assert r.status_code == 200, r.text
            assert r.json() == {"resource": resource, **answer}, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert line["route"] == ("grants.put" if method == "PUT" else "grants.delete")
            assert (line["decision"], line["subject"], line["tenant"]) == ("allow", "alice", "team-a")
            assert line["grant"] == {"resource": resource, "subject": body["subject"], "from": was, "to": now}, line
        assert listed(alice, resource) == [{"subject": "group:ml-ops", "level": "MANAGE"}]
        # Stored with the object in MLflow: one tag per subject, `<LEVEL> <subject>`.
        tags = grant_tags(mlflow_tags(mlflow_server, "team-a", kind, ident))
        assert list(tags.values()) == ["MANAGE group:ml-ops"], tags
        (key,) = tags
        assert len(key) == len("tenant.grant.") + 24 and all(c in "0123456789abcdef" for c in key[13:])
    # The list is sorted by subject.
    for subject in ["user:zed", "group:a", "tenant:team-a", "user:amy"]:
        put(alice, f"experiments/{exp}", subject, "READ")
    assert [g["subject"] for g in listed(alice, f"experiments/{exp}")] == [
        "group:a", "group:ml-ops", "tenant:team-a", "user:amy", "user:zed"]


def test_only_manage_holders_see_or_change_grants(gw):
    """An editor, a viewer and another tenant's admin are refused (403, or MLflow's own 404 for
    a model name they cannot see); a MANAGE grant makes an editor a manager of that object only;
    a model name that does not exist answers exactly like one of another tenant."""
    alice = person(gw, "alice", roles="admin")
    eddie = person(gw, "eddie", roles="editor")
    vera = person(gw, "vera", roles="viewer")
    bob_admin = person(gw, "bob", tenant="team-b", roles="admin")
    exp, other_exp = experiment(alice), experiment(alice)
    model = unique("grants-rm")
    assert alice.post(f"{R2}/registered-models/create", {"name": model}).status_code == 200
    attempts = lambda res: [  # noqa: E731
        ("GET", {"params": {"resource": res}}),
        ("PUT", {"json": {"resource": res, "subject": "user:eddie", "level": "MANAGE"}}),
        ("DELETE", {"json": {"resource": res, "subject": "user:alice"}}),
    ]
    # Another tenant's object: tenant_mismatch (tag mode), or not found at all in the caller's
    # own workspace (workspace mode).
    foreign = ("tenant_mismatch", "resource_not_found")
    for caller, reasons in [(eddie, ("rbac",)), (vera, ("rbac",)), (bob_admin, foreign)]:
        for method, kw in attempts(f"experiments/{exp}"):
            r, line = audited(caller, method, GRANTS, **kw)
            assert r.status_code == 403, (caller.headers, method, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
            assert line["decision"] == "deny" and line["reason"] in reasons, line
            assert "grant" not in line
        for method, kw in attempts(f"registered-models/{model}"):
            r, line = audited(caller, method, GRANTS, **kw)
            assert line["decision"] == "deny" and line["reason"] in reasons, line
            if reasons == ("rbac",):  # a model the caller sees: refused, not hidden
                assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
            else:  # another tenant's model answers like an absent one
                absent = unique("absent")
                m = bob_admin.get(GRANTS, params={"resource": f"registered-models/{absent}"})
                assert (r.status_code, m.status_code) == (404, 404), (r.text, m.text)
                assert r.content.replace(model.encode(), b"N") == m.content.replace(absent.encode(), b"N")
    assert listed(alice, f"experiments/{exp}") == []
    # A MANAGE grant: eddie manages this experiment (and may grant further), not the other one.
    put(alice, f"experiments/{exp}", "user:eddie", "MANAGE")
    assert put(eddie, f"experiments/{exp}", "user:vera", "EDIT")["previous"] is None
    assert {g["subject"] for g in listed(eddie, f"experiments/{exp}")} == {"user:eddie", "user:vera"}
    r = eddie.get(GRANTS, params={"resource": f"experiments/{other_exp}"})
    assert r.status_code == 403, r.text
    # An experiment id that does not exist: refused like a foreign one.
    r, line = audited(alice, "GET", GRANTS, params={"resource": "experiments/987654321"})
    assert r.status_code == 403 and line["reason"] == "resource_not_found", r.text


@pytest.mark.parametrize(("method", "kw", "status", "reason"), [
    ("GET", {}, 400, "missing_field"),
    ("GET", {"params": {"resource": "runs/abc"}}, 400, "invalid_field"),
    ("GET", {"params": {"resource": "experiments/not-a-number"}}, 400, "invalid_field"),
    ("GET", {"params": {"resource": "experiments"}}, 400, "invalid_field"),
    ("GET", {"params": {"resource": "models/m"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "user:bob"}}, 400, "missing_field"),
    ("PUT", {"json": {"resource": "experiments/1", "level": "READ"}}, 400, "missing_field"),
    ("PUT", {"json": {"subject": "user:bob", "level": "READ"}}, 400, "missing_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": "READ", "expires": 1}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "bob", "level": "READ"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "role:admin", "level": "READ"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "user:", "level": "READ"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "tenant:Team B", "level": "READ"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": "read"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": "OWNER"}}, 400, "invalid_field"),
    ("PUT", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": 1}}, 400, "invalid_field"),
    ("PUT", {"json": ["experiments/1", "user:bob", "READ"]}, 400, "non_object_body"),
    ("PUT", {"data": b'{"resource": "experiments/1", "resource": "experiments/2", "subject": "user:bob", "level": "READ"}'}, 400, "duplicate_key"),
    ("PUT", {"params": {"resource": "experiments/1"}, "json": {"resource": "experiments/1", "subject": "user:bob", "level": "READ"}}, 400, "query_on_body_method"),
    ("DELETE", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": "READ"}}, 400, "invalid_field"),
    ("DELETE", {"json": {"resource": "experiments/1"}}, 400, "missing_field"),
    ("POST", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": "READ"}}, 405, "method_not_allowed"),
    ("PATCH", {"json": {"resource": "experiments/1", "subject": "user:bob", "level": "READ"}}, 405, "method_not_allowed"),
])
def test_the_grants_endpoint_takes_strict_input(gw, method, kw, status, reason):
    """Refused before anything is looked up, in MLflow's JSON error shape (mode-independent:
    answered before the workspace step)."""
    alice = person(gw, "alice", roles="admin")
    r, line = audited(alice, method, GRANTS, **kw)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == ("BAD_REQUEST" if status == 405 else "INVALID_PARAMETER_VALUE"), body
    assert body["message"]
    assert line["decision"] == "deny" and line["upstream_status"] is None, line
    if reason:
        assert line["reason"] == reason, line


def test_a_grant_across_the_tenant_wall_is_read_only_and_needs_workspaces(gw, isolation):
    """tenant:<another tenant> takes READ (or DENY), in workspace mode only; the own tenant and
    users or groups take any level (a user who turns out to be another tenant's visitor is
    capped at READ when it reads)."""
    alice = person(gw, "alice", roles="admin")
    res = f"experiments/{experiment(alice)}"
    for level in ["EDIT", "MANAGE"]:
        r, line = audited(alice, "PUT", GRANTS, json={"resource": res, "subject": "tenant:team-b", "level": level})
        assert r.status_code == 400 and line["reason"] == "invalid_field", r.text
        assert ("READ only" if isolation == "workspace" else "tenant_isolation=workspace") in r.json()["message"]
    for level in ["READ", "DENY"]:
        r = alice.request("PUT", GRANTS, json={"resource": res, "subject": "tenant:team-b", "level": level})
        assert r.status_code == (200 if isolation == "workspace" else 400), r.text
    for subject in ["tenant:team-a", "user:bob", "group:partners"]:
        assert put(alice, res, subject, "MANAGE")["grant"]["level"] == "MANAGE"
    expected = {"tenant:team-a", "user:bob", "group:partners"} | ({"tenant:team-b"} if isolation == "workspace" else set())
    assert {g["subject"] for g in listed(alice, res)} == expected


def test_grants_on_a_deleted_experiment_can_still_be_revoked(gw, isolation):
    """A deleted experiment (MLflow's soft delete) keeps its data readable by id, and its
    grants keep applying: revoking a share or lifting a DENY must still work (or be refused
    with a 4xx that says why), never a retryable 502. Workspace mode: bob, who was shared the
    experiment, reads its run until the revocation, and not after."""
    alice = person(gw, "alice", roles="admin")
    exp = experiment(alice, "deleted")
    run_id = run_in(alice, exp)
    res = f"experiments/{exp}"
    put(alice, res, "user:victor", "EDIT")
    if isolation == "workspace":
        put(alice, res, "user:bob", "READ")
    assert alice.post(f"{R2}/experiments/delete", {"experiment_id": exp}).status_code == 200
    bob = person(gw, "bob", tenant="team-b", workspace="team-a")
    if isolation == "workspace":
        assert bob.get(f"{R2}/runs/get", params={"run_id": run_id}).status_code == 200
    # Revoking must work: the grantee loses access on the next request.
    for subject in ["user:victor"] + (["user:bob"] if isolation == "workspace" else []):
        r, line = audited(alice, "DELETE", GRANTS, json={"resource": res, "subject": subject})
        assert r.status_code == 200, (subject, r.status_code, r.text)
        assert r.json()["previous"] is not None and line["grant"]["to"] is None
    assert listed(alice, res) == []
    if isolation == "workspace":
        r = bob.get(f"{R2}/runs/get", params={"run_id": run_id})
        assert r.status_code == 403, r.text
    # A new grant on a deleted experiment works the same way, and the experiment stays deleted.
    r = alice.request("PUT", GRANTS, json={"resource": res, "subject": "user:mallory", "level": "DENY"})
    assert r.status_code == 200, r.text
    assert [g["subject"] for g in listed(alice, res)] == ["user:mallory"]
    r = alice.get(f"{R2}/experiments/get", params={"experiment_id": exp})
    assert r.json()["experiment"]["lifecycle_stage"] == "deleted", r.text
    r = alice.get(f"{R2}/runs/get", params={"run_id": run_id})
    assert r.json()["run"]["info"]["lifecycle_stage"] == "deleted", r.text


def test_a_deny_cannot_lock_out_the_manager_who_sets_it(gw):
    """A DENY to the caller itself, a group it is in or its own tenant would veto its MANAGE:
    refused with a message saying so; a DENY to someone else is fine."""
    alice = person(gw, "alice", roles="admin", groups="ops")
    res = f"experiments/{experiment(alice, 'selfdeny')}"
    for own in ["user:alice", "group:ops", "tenant:team-a"]:
        r, line = audited(alice, "PUT", GRANTS, json={"resource": res, "subject": own, "level": "DENY"})
        assert (r.status_code, line["reason"]) == (400, "invalid_field"), r.text
        assert "covers you" in r.json()["message"]
    assert put(alice, res, "user:mallory", "DENY")["grant"]["level"] == "DENY"
    assert [g["subject"] for g in listed(alice, res)] == ["user:mallory"]


GQL_GET_EXPERIMENT = """query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) {
  mlflowGetExperiment(input: $input) { apiError { code message } experiment { experimentId name tags { key value } } }
}"""


def test_grant_tags_decide_but_never_show(gw, isolation):
    """Grants are tags MLflow stores with their object, yet no answer shows them (REST gets and
    searches, GraphQL): a member, and in workspace mode a visitor something is shared with, see
    the object's other tags only. The grants endpoint is where grants are listed."""
    alice = person(gw, "alice", roles="admin")
    name = unique("shown")
    exp = alice.post(f"{R2}/experiments/create", {"name": name, "tags": [{"key": "k", "value": "v"}]}).json()["experiment_id"]
    assert alice.post(f"{R2}/registered-models/create", {"name": name, "tags": [{"key": "k", "value": "v"}]}).status_code == 200
    for res in [f"experiments/{exp}", f"registered-models/{name}"]:
        put(alice, res, "user:bob", "READ")
        put(alice, res, "tenant:team-b" if isolation == "workspace" else "group:ops", "READ")
        put(alice, res, "user:mallory", "DENY")
    readers = [alice, person(gw, "vera", roles="viewer")]
    if isolation == "workspace":
        readers.append(person(gw, "bob", tenant="team-b", workspace="team-a"))
    for c in readers:
        answers = [
            c.get(f"{R2}/experiments/get", params={"experiment_id": exp}),
            c.get(f"{R2}/experiments/get-by-name", params={"experiment_name": name}),
            c.post(f"{R2}/experiments/search", {"filter": f"name = '{name}'", "max_results": 10}),
            c.get(f"{R2}/registered-models/get", params={"name": name}),
            c.get(f"{R2}/registered-models/search", params={"filter": f"name = '{name}'"}),
            c.post("/graphql", {"query": GQL_GET_EXPERIMENT, "operationName": "MlflowGetExperimentQuery",
                                "variables": {"input": {"experimentId": exp}}}),
        ]
        for r in answers:
            assert r.status_code == 200, (c.headers.get("X-Subject"), r.request.url, r.text)
            assert "grant" not in r.text and "mallory" not in r.text, (c.headers.get("X-Subject"), r.request.url, r.text)
            assert '"k"' in r.text, (c.headers.get("X-Subject"), r.request.url, r.text)


# ---------------------------------------------------------------- every experiment and registry row

class Objs:
    """team-a objects for one row: an experiment with a run and a logged model, a registered
    model with version 1 (from the logged model) and the alias `champ` on it."""

    def __init__(self, a: Caller):
        self.a = a
        self.exp = experiment(a, "rows")
        self.exp_name = a.get(f"{R2}/experiments/get", params={"experiment_id": self.exp}).json()["experiment"]["name"]
        self.run = run_in(a, self.exp)
        r = a.post(f"{R2}/logged-models", {"experiment_id": self.exp, "name": "lm", "source_run_id": self.run})
        assert r.status_code == 200, r.text
        self.model = r.json()["model"]["info"]["model_id"]
        self.rm = unique("rm")
        assert a.post(f"{R2}/registered-models/create", {"name": self.rm}).status_code == 200
        r = a.post(f"{R2}/model-versions/create", {"name": self.rm, "source": f"models:/{self.model}", "model_id": self.model})
        assert r.status_code == 200, r.text
        r = a.post(f"{R2}/registered-models/alias", {"name": self.rm, "alias": "champ", "version": "1"})
        assert r.status_code == 200, r.text


# Rows acting on an experiment or a registered model (and its versions). The creates name no
# object (the role decides); the dataset search is a GenAI row (test_policy_rows.py).
GRANT_ROWS = sorted(r for r in CASES if r.split(".")[0] in ("experiments", "registered_models", "model_versions")
                    and r not in ("experiments.create", "registered_models.create", "experiments.search_datasets"))
SEARCH_ROWS = {"experiments.search", "experiments.search.get", "registered_models.search", "model_versions.search"}


def test_every_experiment_and_registry_row_has_a_grant_case():
    rows = {r["id"] for r in POLICY_TABLE["rows"]
            if r["id"].split(".")[0] in ("experiments", "registered_models", "model_versions")}
    assert rows - set(GRANT_ROWS) == {"experiments.create", "registered_models.create", "experiments.search_datasets"}


def row_call(gw, row_id: str, c: Caller, o: Objs) -> tuple[requests.Response, dict]:
    c2, rid = with_rid(c)
    r = CASES[row_id][0](c2, o)
    return r, gw.audit_for(rid)[0]


def shows(row_id: str, r: requests.Response, o: Objs) -> bool:
    """Whether a search row's answer lists the case's object."""
    assert r.status_code == 200, r.text
    if row_id.startswith("experiments."):
        return o.exp in [e["experiment_id"] for e in r.json().get("experiments", [])]
    key = "registered_models" if row_id.startswith("registered_models.") else "model_versions"
    return o.rm in [m["name"] for m in r.json().get(key, [])]


def assert_refused(row_id: str, r: requests.Response, line: dict, reason: str | None, o: Objs):
    """Refused as the policy answers an object the caller may not use: 403, or MLflow's own
    404 for a registry name (no existence oracle); hidden from a search."""
    if row_id in SEARCH_ROWS:
        assert not shows(row_id, r, o), (row_id, r.text)
        return
    if row_id == "experiments.get_by_name":
        # Looked up by name in MLflow and the answer checked: an absent experiment (404).
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
        return
    if reason == "rbac" or row_id.startswith("experiments."):
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (row_id, r.status_code, r.text)
    else:
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", (row_id, r.status_code, r.text)
    assert line["decision"] == "deny", line
    if reason:
        assert line["reason"] == reason, (row_id, line)


def assert_allowed(row_id: str, r: requests.Response, line: dict, o: Objs):
    owner_ok = CASES[row_id][1]
    if row_id in SEARCH_ROWS:
        assert shows(row_id, r, o), (row_id, r.text)
    elif owner_ok == "forwarded":
        assert line["decision"] == "allow", (row_id, r.text)
    else:
        assert r.status_code == owner_ok, (row_id, r.status_code, r.text)
    assert line["decision"] == "allow" and line["route"] == row_id, line


@pytest.mark.parametrize("row_id", GRANT_ROWS)
def test_row_grant_allowed_revoked_denied(gw, row_id, isolation):
    """For each experiment and registry row, against the real MLflow:
    - the caller without a grant is refused: a team-a viewer for rows that need EDIT or
      MANAGE (rbac), a team-b user visiting team-a's workspace for read rows;
    - a grant of the row's level to `user:<caller>` lets the same request through;
    - revoked after a request that cached the object's fact, the very next request is refused;
    - a DENY to the caller refuses it even where its role alone would allow it (grant_denied;
      hidden from searches), and refuses it over a MANAGE grant to one of its groups."""
    alice = person(gw, "alice", roles="admin")
    need = ACTION_LEVEL[ROW_ACTION[row_id]]
    o = Objs(alice)
    resource = f"experiments/{o.exp}" if row_id.startswith("experiments.") else f"registered-models/{o.rm}"
    warm = ((f"{R2}/experiments/get", {"experiment_id": o.exp}) if row_id.startswith("experiments.")
            else (f"{R2}/registered-models/get", {"name": o.rm}))
    victor = person(gw, "victor", roles="viewer", groups="ops")
    if need == "READ":
        grantee = person(gw, "bob", tenant="team-b", roles="editor", workspace="team-a") if isolation == "workspace" else None
        baseline_reason = "tenant_mismatch"
    else:
        grantee, baseline_reason = victor, "rbac"

    if grantee is not None:
        # Without a grant: refused.
        r, line = row_call(gw, row_id, grantee, o)
        assert_refused(row_id, r, line, None if row_id in SEARCH_ROWS else baseline_reason, o)
        # Granted, used (the fact with the grant is cached), revoked: refused on the next request.
        put(alice, resource, f"user:{grantee.headers['X-Subject']}", need)
        assert grantee.get(*warm[:1], params=warm[1]).status_code == 200
        delete(alice, resource, f"user:{grantee.headers['X-Subject']}")
        r, line = row_call(gw, row_id, grantee, o)
        assert_refused(row_id, r, line, None if row_id in SEARCH_ROWS else baseline_reason, o)

    # DENY: over the viewer's role and over a MANAGE grant to its group.
    put(alice, resource, "group:ops", "MANAGE")
    put(alice, resource, "user:victor", "DENY")
    r, line = row_call(gw, row_id, victor, o)
    assert_refused(row_id, r, line, None if row_id in SEARCH_ROWS | {"experiments.get_by_name"} else "grant_denied", o)
    delete(alice, resource, "group:ops")
    delete(alice, resource, "user:victor")
    if grantee is None:
        # Tag mode, a read row: the viewer reads again once the DENY is gone.
        grantee = victor
    else:
        put(alice, resource, f"user:{grantee.headers['X-Subject']}", need)
    for prep in CASES[row_id][3:]:  # e.g. delete before restore
        assert prep(o).status_code == 200
    r, line = row_call(gw, row_id, grantee, o)
    assert_allowed(row_id, r, line, o)


# ---------------------------------------------------------------- DENY hides, grants raise

def test_deny_hides_an_experiment_and_its_children_from_a_member(gw, tmp_path):
    """A DENY to a team-a viewer: the experiment leaves its searches (REST and the real
    client), its runs, artifacts, logged models and traces are refused as a foreign
    experiment's are, and the UI's GraphQL queries (GetRun, SearchRuns) are refused; the admin
    and other members keep everything; revoked, the next search shows it again."""
    alice = person(gw, "alice", roles="admin")
    victor = person(gw, "victor", roles="viewer")
    other = person(gw, "olga", roles="viewer")
    hidden, kept = experiment(alice, "deny-hidden"), experiment(alice, "deny-kept")
    foreign = experiment(person(gw, "bob", tenant="team-b"), "foreign")
    with alice.mlflow() as mlflow:
        with mlflow.start_run(experiment_id=hidden) as run:
            mlflow.log_metric("loss", 0.5)
            mlflow.log_text("secret", "notes/secret.txt")
        lm = mlflow.MlflowClient().create_logged_model(experiment_id=hidden, name="lm").model_id
    trace = "tr-" + uuid.uuid4().hex
    assert alice.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": trace, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": hidden}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}}).status_code == 200
    run_id = run.info.run_id
    put(alice, f"experiments/{hidden}", "user:victor", "DENY")

    def search_ids(c: Caller) -> list[str]:
        r = c.post(f"{R2}/experiments/search", {"max_results": 1000})
        assert r.status_code == 200, r.text
        g = c.get(f"{R2}/experiments/search", params={"max_results": 1000})
        assert g.status_code == 200, g.text
        ids = [e["experiment_id"] for e in r.json().get("experiments", [])]
        assert ids == [e["experiment_id"] for e in g.json().get("experiments", [])]
        return ids

    assert kept in search_ids(victor) and hidden not in search_ids(victor)
    assert {hidden, kept} <= set(search_ids(alice)) and {hidden, kept} <= set(search_ids(other))
    with victor.mlflow() as mlflow:
        ids = [e.experiment_id for e in mlflow.search_experiments(max_results=1000)]
        assert kept in ids and hidden not in ids
        for attempt in [lambda: mlflow.get_experiment(hidden), lambda: mlflow.get_run(run_id),
                        lambda: mlflow.search_runs(experiment_ids=[hidden]),
                        lambda: mlflow.MlflowClient().get_metric_history(run_id, "loss"),
                        lambda: mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes/secret.txt", dst_path=str(tmp_path)),
                        lambda: mlflow.get_logged_model(lm),
                        lambda: mlflow.search_traces(locations=[hidden])]:
            with pytest.raises(MlflowException):
                attempt()
        assert mlflow.get_experiment_by_name(alice.get(f"{R2}/experiments/get", params={"experiment_id": hidden}).json()["experiment"]["name"]) is None
    # Answered like a foreign experiment (same status, same message shape), audited grant_denied.
    r, line = audited(victor, "GET", f"{R2}/experiments/get", params={"experiment_id": hidden})
    f, fline = audited(victor, "GET", f"{R2}/experiments/get", params={"experiment_id": foreign})
    assert (r.status_code, f.status_code) == (403, 403)
    assert r.json()["message"].replace(hidden, "N").split(" (request id")[0] == f.json()["message"].replace(foreign, "N").split(" (request id")[0]
    assert line["reason"] == "grant_denied" and fline["reason"] in ("tenant_mismatch", "resource_not_found")
    for path, params in [(f"{R2}/runs/get", {"run_id": run_id}), (f"{R2}/artifacts/list", {"run_id": run_id}),
                         (f"{MA}/artifacts/{hidden}/{run_id}/artifacts/notes/secret.txt", None),
                         (f"{R2}/logged-models/{lm}", None), (f"{R3}/traces/{trace}", None)]:
        r, line = audited(victor, "GET", path, params=params)
        assert r.status_code == 403 and line["reason"] == "grant_denied", (path, r.text)
        assert "secret" not in r.text
    # GraphQL, as the UI's run page and run search send it.
    r, line = audited(victor, "POST", "/graphql", json={"operationName": "GetRun", "query": GQL_GET_RUN, "variables": {"data": {"runId": run_id}}})
    assert r.status_code == 403 and line["reason"] == "grant_denied", r.text
    r, line = audited(victor, "POST", "/graphql", json={"operationName": "SearchRuns", "query": GQL_SEARCH_RUNS, "variables": {"data": {"experimentIds": [hidden]}}})
    assert r.status_code == 403 and line["reason"] == "grant_denied", r.text
    r = other.post("/graphql", {"operationName": "GetRun", "query": GQL_GET_RUN, "variables": {"data": {"runId": run_id}}})
    assert r.status_code == 200 and r.json()["data"]["mlflowGetRun"]["run"]["info"]["runUuid"] == run_id, r.text
    # Revoked: the very next search shows it, its run reads again.
    delete(alice, f"experiments/{hidden}", "user:victor")
    assert hidden in search_ids(victor)
    assert victor.get(f"{R2}/runs/get", params={"run_id": run_id}).status_code == 200


def test_grants_raise_a_viewer_through_its_user_groups_and_tenant(gw):
    """A viewer writes with EDIT granted to itself, to one of its groups (X-Groups) or to its
    tenant, through the real client; each revoked, the next write is refused; a DENY vetoes
    a MANAGE grant."""
    alice = person(gw, "alice", roles="admin")
    exp = experiment(alice)
    run_id = run_in(alice, exp)
    victor = person(gw, "victor", roles="viewer", groups="ops, ml")

    def write() -> None:
        with victor.mlflow() as mlflow:
            mlflow.MlflowClient().log_metric(run_id, "m", 1.0)

    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        write()
    for subject in ["user:victor", "group:ml", "tenant:team-a"]:
        put(alice, f"experiments/{exp}", subject, "EDIT")
        write()
        with victor.mlflow() as mlflow:
            mlflow.MlflowClient().set_tag(run_id, "by", subject)
            new_run = mlflow.MlflowClient().create_run(exp).info.run_id  # children: a new run
        assert new_run
        delete(alice, f"experiments/{exp}", subject)
        with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
            write()
    # EDIT is not MANAGE: deleting the experiment needs more.
    put(alice, f"experiments/{exp}", "group:ops", "EDIT")
    r, line = audited(victor, "POST", f"{R2}/experiments/delete", json={"experiment_id": exp})
    assert r.status_code == 403 and line["reason"] == "rbac", r.text
    put(alice, f"experiments/{exp}", "group:ops", "MANAGE")
    put(alice, f"experiments/{exp}", "user:victor", "DENY")
    r, line = audited(victor, "POST", f"{R2}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 2, "timestamp": 1})
    assert r.status_code == 403 and line["reason"] == "grant_denied", r.text
    # A DENY to one group vetoes too; another member without that group is unaffected.
    delete(alice, f"experiments/{exp}", "user:victor")
    put(alice, f"experiments/{exp}", "group:ml", "DENY")
    r, line = audited(victor, "GET", f"{R2}/experiments/get", params={"experiment_id": exp})
    assert r.status_code == 403 and line["reason"] == "grant_denied", r.text
    olga = person(gw, "olga", roles="viewer", groups="ops")
    assert olga.get(f"{R2}/experiments/get", params={"experiment_id": exp}).status_code == 200
    r = olga.post(f"{R2}/runs/log-metric", {"run_id": run_id, "key": "m", "value": 3, "timestamp": 1})
    assert r.status_code == 200, r.text


def test_a_prompt_follows_its_grants(gw):
    """Prompts (registered models tagged as prompts, resource prompts/<name>): a DENY hides a
    prompt from a viewer's load and search; an EDIT grant lets the viewer register a new
    version; revoked, the next registration is refused."""
    alice = person(gw, "alice", roles="admin")
    victor = person(gw, "victor", roles="viewer")
    name = unique("prompt")
    with alice.mlflow() as mlflow:
        mlflow.genai.register_prompt(name=name, template="Hello {{x}}")
    put(alice, f"prompts/{name}", "user:victor", "DENY")
    with victor.mlflow() as mlflow:
        with pytest.raises(MlflowException):
            mlflow.genai.load_prompt(f"prompts:/{name}/1", cache_ttl_seconds=0)
        assert name not in [p.name for p in mlflow.genai.search_prompts()]
    delete(alice, f"prompts/{name}", "user:victor")
    with victor.mlflow() as mlflow:
        assert mlflow.genai.load_prompt(f"prompts:/{name}/1", cache_ttl_seconds=0).template == "Hello {{x}}"
        assert name in [p.name for p in mlflow.genai.search_prompts()]
        with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
            mlflow.genai.register_prompt(name=name, template="Hi {{x}}")
    put(alice, f"prompts/{name}", "user:victor", "EDIT")
    with victor.mlflow() as mlflow:
        assert mlflow.genai.register_prompt(name=name, template="Hi {{x}}").version == 2
    delete(alice, f"prompts/{name}", "user:victor")
    with victor.mlflow() as mlflow:
        with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
            mlflow.genai.register_prompt(name=name, template="Hey {{x}}")
        assert mlflow.genai.load_prompt(f"prompts:/{name}/2", cache_ttl_seconds=0).template == "Hi {{x}}"


# ---------------------------------------------------------------- protected aliases

def test_an_editor_cannot_move_champion_but_sets_ordinary_aliases(gw, mlflow_server):
    """protected_aliases=champion,Production: with the real client an editor sets, moves and
    deletes an ordinary alias (edit-class), but cannot set, move or delete @champion (any
    case) nor delete, tag, untag or transition the version carrying it; an admin can, and a
    MANAGE grant on the model makes the editor able to; a viewer sets no alias at all."""
    alice = person(gw, "alice", roles="admin")
    eddie = person(gw, "eddie", roles="editor")
    vera = person(gw, "vera", roles="viewer")
    exp = experiment(alice)
    run_id = run_in(alice, exp)
    name = unique("protected")
    assert alice.post(f"{R2}/registered-models/create", {"name": name}).status_code == 200
    for _ in range(3):
        r = alice.post(f"{R2}/model-versions/create", {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id})
        assert r.status_code == 200, r.text
    with alice.mlflow() as mlflow:
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")

    def refused(fn, needs="MANAGE"):
        with pytest.raises(MlflowException) as e:
            fn()
        assert e.value.error_code == "PERMISSION_DENIED", str(e.value)
        assert f"this needs {needs}" in str(e.value), str(e.value)

    with eddie.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(name, "challenger", "2")
        client.set_registered_model_alias(name, "challenger", "3")  # moved
        client.delete_registered_model_alias(name, "challenger")
        client.set_model_version_tag(name, "2", "validated", "yes")
        for alias in ["champion", "CHAMPION", "Champion", "production"]:
            refused(lambda: client.set_registered_model_alias(name, alias, "2"))
        refused(lambda: client.delete_registered_model_alias(name, "champion"))
        # The version carrying @champion.
        refused(lambda: client.set_model_version_tag(name, "1", "validated", "no"))
        refused(lambda: client.delete_model_version_tag(name, "1", "validated"))
        refused(lambda: client.transition_model_version_stage(name, "1", "Archived"))
        refused(lambda: client.delete_model_version(name, "1"))
        assert client.get_model_version_by_alias(name, "champion").version == "1"
    r, line = audited(eddie, "POST", f"{R2}/registered-models/alias", json={"name": name, "alias": "champion", "version": "3"})
    assert r.status_code == 403 and line["reason"] == "rbac", r.text
    with vera.mlflow() as mlflow:
        refused(lambda: mlflow.MlflowClient().set_registered_model_alias(name, "challenger", "2"), needs="EDIT")
    # The admin moves it; then version 1 is ordinary again for the editor, version 2 protected.
    with alice.mlflow() as mlflow:
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", "2")
    with eddie.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        client.set_model_version_tag(name, "1", "retired", "yes")
        refused(lambda: client.set_model_version_tag(name, "2", "retired", "no"))
    # A MANAGE grant on this model: the editor moves @champion.
    put(alice, f"registered-models/{name}", "user:eddie", "MANAGE")
    with eddie.mlflow() as mlflow:
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", "3")
        assert mlflow.MlflowClient().get_model_version_by_alias(name, "champion").version == "3"
    delete(alice, f"registered-models/{name}", "user:eddie")
    with eddie.mlflow() as mlflow:
        refused(lambda: mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1"))
    # What MLflow holds.
    r = requests.get(f"{mlflow_server.url}{R2}/registered-models/get", params={"name": name},
                     headers=pinned("team-a"), timeout=30)
    assert {a["alias"]: a["version"] for a in r.json()["registered_model"]["aliases"]} == {"champion": "3"}


# ---------------------------------------------------------------- the grant tags are the gateway's

def test_grant_tags_are_refused_on_every_tag_route(gw, mlflow_server):
    """`tenant.grant.*` (any case, NFKC spelling, surrounding spaces) cannot be set or deleted
    through MLflow's tag routes, nor planted at creation: 403 reserved_tag before MLflow sees
    it; the object's grants are unchanged. A forged grant would have given mallory MANAGE."""
    import hashlib

    alice = person(gw, "alice", roles="admin")
    o = Objs(alice)
    put(alice, f"experiments/{o.exp}", "user:bob", "READ")
    put(alice, f"registered-models/{o.rm}", "user:bob", "READ")
    forged = "tenant.grant." + hashlib.sha256(b"user:mallory").hexdigest()[:24]
    bob_key = "tenant.grant." + hashlib.sha256(b"user:bob").hexdigest()[:24]
    keys = [forged, forged.upper(), f" {forged} ", forged.replace("tenant", "ｔｅｎａｎｔ"), "Tenant.Grant.anything", bob_key]
    value = "MANAGE user:mallory"
    trace = "tr-" + uuid.uuid4().hex
    assert alice.post(f"{R3}/traces", {"trace": {"trace_info": {
        "trace_id": trace, "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": o.exp}},
        "request_time": "2026-11-23T00:00:00Z", "state": "OK"}}}).status_code == 200
    for key in keys:
        attempts = [
            ("POST", f"{R2}/experiments/set-experiment-tag", {"experiment_id": o.exp, "key": key, "value": value}),
            ("POST", f"{R2}/experiments/delete-experiment-tag", {"experiment_id": o.exp, "key": key}),
            ("POST", f"{R2}/experiments/create", {"name": unique("forge"), "tags": [{"key": key, "value": value}]}),
            ("POST", f"{R2}/registered-models/set-tag", {"name": o.rm, "key": key, "value": value}),
            ("DELETE", f"{R2}/registered-models/delete-tag", {"name": o.rm, "key": key}),
            ("POST", f"{R2}/registered-models/create", {"name": unique("forge"), "tags": [{"key": key, "value": value}]}),
            ("POST", f"{R2}/model-versions/set-tag", {"name": o.rm, "version": "1", "key": key, "value": value}),
            ("DELETE", f"{R2}/model-versions/delete-tag", {"name": o.rm, "version": "1", "key": key}),
            ("POST", f"{R2}/model-versions/create", {"name": o.rm, "source": f"models:/{o.model}", "model_id": o.model, "tags": [{"key": key, "value": value}]}),
            ("POST", f"{R2}/runs/set-tag", {"run_id": o.run, "key": key, "value": value}),
            ("POST", f"{R2}/runs/delete-tag", {"run_id": o.run, "key": key}),
            ("POST", f"{R2}/runs/log-batch", {"run_id": o.run, "tags": [{"key": key, "value": value}]}),
            ("POST", f"{R2}/runs/create", {"experiment_id": o.exp, "tags": [{"key": key, "value": value}]}),
            ("PATCH", f"{R2}/logged-models/{o.model}/tags", {"model_id": o.model, "tags": [{"key": key, "value": value}]}),
            ("PATCH", f"{R3}/traces/{trace}/tags", {"key": key, "value": value}),
        ]
        for method, path, body in attempts:
            r, line = audited(alice, method, path, json=body)
            assert r.status_code == 403, (key, method, path, r.text)
            assert r.json()["error_code"] == "PERMISSION_DENIED"
            assert (line["reason"], line["upstream_status"]) == ("reserved_tag", None), (key, path, line)
    # The real client gets the refusal too.
    with alice.mlflow() as mlflow:
        with pytest.raises(MlflowException, match="grants endpoint"):
            mlflow.MlflowClient().set_experiment_tag(o.exp, forged, value)
        with pytest.raises(MlflowException, match="grants endpoint"):
            mlflow.MlflowClient().delete_registered_model_tag(o.rm, bob_key)
    # Nothing changed: bob's grants are there, mallory has none, and has no access.
    for kind, ident in [("experiment", o.exp), ("model", o.rm)]:
        assert grant_tags(mlflow_tags(mlflow_server, "team-a", kind, ident)) == {bob_key: "READ user:bob"}
    mallory = person(gw, "mallory", roles="viewer")
    r = mallory.request("PUT", GRANTS, json={"resource": f"experiments/{o.exp}", "subject": "user:mallory", "level": "MANAGE"})
    assert r.status_code == 403, r.text


# ---------------------------------------------------------------- every replica

def redis_keys(redis: RedisServer, db: int, pattern: str) -> list[str]:
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "-n", str(db),
                          "--scan", "--pattern", pattern], capture_output=True, text=True, timeout=10)
    return [k for k in out.stdout.splitlines() if k]


def test_a_revocation_reaches_every_replica_sharing_the_store(workdir, mlflow_server, gw, isolation):
    """Two gateways on one Redis key-value store (two replicas). A grant given through replica 1
    is used through replica 2, which caches the experiment's ownership fact (with the grant) in
    the shared store; revoked through replica 1, the next request through replica 2 is refused.
    The grants come from MLflow, not from a gateway's store: a grant set through the module's
    gateway (its own SQLite store) holds at the replicas (a new gateway, e.g. after a restart
    or scale-out, with an empty store)."""
    redis = RedisServer(workdir).start()
    replicas = [Gateway(workdir / f"gw-replica-{i}", mlflow_server.url,
                        {"auth_mode": "off", "ownership_cache_seconds": "3600"},
                        kv="redis", redis_url=redis.url(0)) for i in (1, 2)]
    try:
        for g in replicas:
            g.start()
        one, two = replicas
        alice1 = person(one, "alice", roles="admin")
        exp = experiment(alice1)
        run_id = run_in(alice1, exp)
        victor2 = person(two, "victor", roles="viewer")

        def write() -> tuple[requests.Response, dict]:
            return audited(victor2, "POST", f"{R2}/runs/log-metric",
                           json={"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1})

        put(alice1, f"experiments/{exp}", "user:victor", "EDIT")
        r, line = write()
        assert r.status_code == 200 and line["decision"] == "allow", r.text
        # Replica 2 decided on the cached fact now in the shared store.
        assert redis_keys(redis, 0, f"*own:v2:exp:{exp}*"), redis_keys(redis, 0, "*")
        assert victor2.get(f"{R2}/experiments/get", params={"experiment_id": exp}).status_code == 200
        delete(alice1, f"experiments/{exp}", "user:victor")
        r, line = write()
        assert r.status_code == 403 and line["reason"] == "rbac", r.text
        # DENY through replica 1: replica 2 hides the experiment on the next request.
        put(alice1, f"experiments/{exp}", "user:victor", "DENY")
        r, line = audited(victor2, "GET", f"{R2}/experiments/get", params={"experiment_id": exp})
        assert r.status_code == 403 and line["reason"] == "grant_denied", r.text

        # A grant set through another gateway (its own store) holds at both replicas.
        alice0 = person(gw, "alice", roles="admin")
        exp0 = experiment(alice0)
        put(alice0, f"experiments/{exp0}", "user:victor", "DENY")
        for g in replicas:
            r = person(g, "victor", roles="viewer").get(f"{R2}/experiments/get", params={"experiment_id": exp0})
            assert r.status_code == 403, r.text

        if isolation == "workspace":
            # A visitor's read, shared and then unshared.
            bob2 = person(two, "bob", tenant="team-b", workspace="team-a")
            put(alice1, f"experiments/{exp}", "user:bob", "READ")
            r = bob2.get(f"{R2}/runs/get", params={"run_id": run_id})
            assert r.status_code == 200, r.text
            assert redis_keys(redis, 0, f"*own:v2:run:{run_id}*")
            delete(alice1, f"experiments/{exp}", "user:bob")
            r, line = audited(bob2, "GET", f"{R2}/runs/get", params={"run_id": run_id})
            assert r.status_code == 403 and line["reason"] == "tenant_mismatch", r.text
    finally:
        for g in replicas:
            g.stop()
        redis.stop()
