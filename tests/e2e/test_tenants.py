"""Several tenants per person and read-only shares (issue 34), as people use them: the real
`oidc-provider` IdP (a person in two tenants has a list-valued tenant claim), the gateway with
browser sign-in, the real MLflow client with the project's auth plugin (MLFLOW_TRACKING_AUTH=
gateway-oidc, each person's refresh token from the device flow), the grant helpers of
clients/python (mlflow_gateway_auth.grant / revoke / grants), and headless Chromium
(tests/ui/grants_check.cjs).

The issue's "done when": a person in two tenants switches between them with MLFLOW_WORKSPACE
and in the UI's workspace picker; team-a's admin shares one experiment and one model version
read-only with a team-b user, who reads and loads exactly those (and nothing else) until the
grant is revoked; a DENY hides an experiment from a team-a viewer in the UI and its GraphQL;
every change is in the audit log. Sharing across tenants is workspace-mode only (tag mode
refuses it): those tests are skipped in tag mode."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid

import pytest
import requests
from mlflow.exceptions import MlflowException

from conftest import (ARTIFACTS, OIDC_RESOURCE, REPO, WORKSPACES, Gateway, IdP, OidcProvider,
                      SigningKey, signin_client, signin_gateway, unique)
from test_policy_rows import GQL_GET_RUN, R2

workspace_only = pytest.mark.skipif(
    not WORKSPACES, reason="sharing across tenants needs workspaces (tenant_isolation=tag refuses it)")

TTL = 60
SECRET = "gateway-tenants-secret-0123456789abcdef"
MACHINE_SECRET = "team-b-machine-secret-0123456789abcdef"
ACCOUNTS = {
    "alice": {"tenant_id": "team-a", "roles": ["admin"]},
    "bob": {"tenant_id": "team-b", "roles": ["editor"]},
    "carol": {"tenant_id": ["team-a", "team-b"], "roles": ["editor"]},
    "victor": {"tenant_id": "team-a", "roles": ["viewer"]},
}
CLIENTS = [
    # a person at a terminal: the device flow, then refresh tokens (the plugin's grants)
    {"client_id": "mlflow-cli", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
     "response_types": [], "redirect_uris": [], "token_endpoint_auth_method": "none",
     "application_type": "native"},
    {"client_id": "svc-team-b", "client_secret": MACHINE_SECRET, "grant_types": ["client_credentials"],
     "response_types": [], "redirect_uris": [], "tenant_id": "team-b", "roles": ["editor"]},
]
GRANTS = "/_gateway/v1/grants"


@pytest.fixture(scope="module")
def stack(workdir, mlflow_server):
    idp = OidcProvider(workdir / "idp", [], ACCOUNTS, ttl=TTL)
    g = signin_gateway(workdir / "gw", mlflow_server.url, idp, "gw-tenants", SECRET)
    idp.clients = CLIENTS + [signin_client(g, "gw-tenants", SECRET)]
    idp.start()
    try:
        g.start()
        try:
            yield idp, g
        finally:
            g.stop()
    finally:
        idp.stop()


@pytest.fixture(scope="module")
def idp(stack) -> OidcProvider:
    return stack[0]


@pytest.fixture(scope="module")
def gw(stack) -> Gateway:
    return stack[1]


@pytest.fixture(scope="module")
def refresh_tokens(idp, gw) -> dict[str, str]:
    """Each person's refresh token, from the device flow approved at the IdP's own pages."""
    out = {}
    for login in ACCOUNTS:
        answer = requests.post(idp.issuer + "/device/auth", timeout=10, data={
            "client_id": "mlflow-cli", "scope": "openid offline_access", "resource": OIDC_RESOURCE}).json()
        idp.approve_device_code(answer["verification_uri_complete"], login)
        tokens = requests.post(idp.issuer + "/token", timeout=10, data={
            "client_id": "mlflow-cli", "device_code": answer["device_code"],
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}).json()
        assert "refresh_token" in tokens, tokens
        out[login] = tokens["refresh_token"]
        # Warm the gateway for this person (the IdP's keys fetched, each tenant's workspace
        # provisioned): MLflow's client probes server-info with a fixed 3 s timeout when a
        # workspace is set, which a cold first request on a loaded machine can exceed.
        for t in ACCOUNTS[login]["tenant_id"] if isinstance(ACCOUNTS[login]["tenant_id"], list) else [None]:
            r = requests.get(gw.url + f"{R2}/experiments/search", params={"max_results": 1}, timeout=120,
                             headers={"Authorization": f"Bearer {tokens['access_token']}",
                                      **({"X-MLFLOW-WORKSPACE": t} if t and WORKSPACES else {})})
            assert r.status_code == 200, r.text
    return out


@contextlib.contextmanager
def acting(gw: Gateway, env: dict[str, str], workspace: str | None = None):
    """The real MLflow client (and the grant helpers) pointed at the gateway with `env` (the
    auth plugin's settings), MLFLOW_WORKSPACE set to `workspace` or unset."""
    import mlflow

    wanted = {**env, "MLFLOW_TRACKING_URI": gw.url, "MLFLOW_WORKSPACE": workspace}
    names = set(wanted) | {"MLFLOW_TRACKING_TOKEN"}
    old = {k: os.environ.get(k) for k in names}
    for k in names:
        v = wanted.get(k)
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    mlflow.set_tracking_uri(gw.url)
    try:
        yield mlflow
    finally:
        with contextlib.suppress(Exception):
            while mlflow.active_run():
                mlflow.end_run()
        mlflow.set_workspace(None)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def as_person(gw, idp, refresh_tokens):
    """as_person("bob", workspace="team-a"): the client as that person (device-flow refresh
    token, the gateway-oidc plugin)."""
    def use(login: str, workspace: str | None = None):
        env = idp.plugin_env("mlflow-cli", grant="refresh_token", refresh_token=refresh_tokens[login])
        return acting(gw, env, workspace)
    return use


@pytest.fixture(scope="module")
def as_machine(gw, idp):
    def use(workspace: str | None = None):
        return acting(gw, idp.plugin_env("svc-team-b", MACHINE_SECRET), workspace)
    return use


def bearer(as_person, login: str) -> dict[str, str]:
    """An Authorization header with the person's current access token (from the plugin)."""
    from mlflow_gateway_auth import GatewayAuthConfig
    from mlflow_gateway_auth.provider import token_source

    with as_person(login):
        return {"Authorization": f"Bearer {token_source(GatewayAuthConfig.from_env()).token()}"}


def grant_lines(gw: Gateway) -> list[dict]:
    return [a for a in gw.audit_lines_settled() if (a.get("route") or "").startswith("grants.") and "grant" in a]


def exp_ids(mlflow) -> list[str]:
    return sorted(e.experiment_id for e in mlflow.search_experiments(max_results=1000))


# ---------------------------------------------------------------- a person in two tenants

def test_a_person_in_two_tenants_switches_with_the_client(gw, as_person, isolation):
    """carol's token names team-a and team-b. Workspace mode: MLFLOW_WORKSPACE (or
    mlflow.set_workspace) selects the tenant her client acts in; without it her first tenant
    applies; the workspace list shows exactly her two workspaces; /oauth2/userinfo shows the
    acting tenant and both memberships. Tag mode: MLflow's client does not send a workspace to
    a server without workspaces, so a request selects with the header itself; a tenant she
    does not belong to is refused there (workspace_not_member)."""
    auth = bearer(as_person, "carol")
    names = {t: unique(f"carol-{t}") for t in ("team-a", "team-b")}
    if isolation == "workspace":
        ids = {}
        for t in ("team-a", "team-b"):
            with as_person("carol", workspace=t) as mlflow:
                ids[t] = mlflow.create_experiment(names[t])
                assert mlflow.get_experiment(ids[t]).tags["tenant"] == t
                assert ids[t] in exp_ids(mlflow)
        with as_person("carol", workspace="team-a") as mlflow:
            assert ids["team-b"] not in exp_ids(mlflow)
            assert mlflow.get_experiment_by_name(names["team-b"]) is None
            with pytest.raises(MlflowException):
                mlflow.get_experiment(ids["team-b"])
        with as_person("carol", workspace="team-b") as mlflow:
            assert ids["team-a"] not in exp_ids(mlflow)
            assert mlflow.get_experiment_by_name(names["team-b"]).experiment_id == ids["team-b"]
        with as_person("carol") as mlflow:  # no selector: the first tenant
            assert ids["team-a"] in exp_ids(mlflow) and ids["team-b"] not in exp_ids(mlflow)
            mlflow.set_workspace("team-b")
            assert ids["team-b"] in exp_ids(mlflow) and ids["team-a"] not in exp_ids(mlflow)
            assert sorted(w.name for w in mlflow.list_workspaces()) == ["team-a", "team-b"]
        info = requests.get(gw.url + "/oauth2/userinfo", headers={**auth, "X-MLFLOW-WORKSPACE": "team-b"}, timeout=30).json()
        assert (info["tenant"], info["member"], info["roles"], info["workspace"]) == ("team-b", True, ["editor"], "team-b"), info
    else:
        with as_person("carol", workspace="team-b") as mlflow:
            with pytest.raises(MlflowException, match="does not support workspaces"):
                mlflow.search_experiments()
        for t in ("team-a", "team-b"):
            r = requests.post(gw.url + f"{R2}/experiments/create", json={"name": names[t]},
                              headers={**auth, "X-MLFLOW-WORKSPACE": t}, timeout=30)
            assert r.status_code == 200, r.text
            got = requests.get(gw.url + f"{R2}/experiments/get", params={"experiment_id": r.json()["experiment_id"]},
                               headers={**auth, "X-MLFLOW-WORKSPACE": t}, timeout=30).json()
            assert {x["key"]: x["value"] for x in got["experiment"]["tags"]}["tenant"] == t
        with as_person("carol") as mlflow:  # no selector: the first tenant
            mine = {e.name for e in mlflow.search_experiments(max_results=1000)}
            assert names["team-a"] in mine and names["team-b"] not in mine
        r = requests.get(gw.url + f"{R2}/experiments/search", params={"max_results": 10},
                         headers={**auth, "X-MLFLOW-WORKSPACE": "team-c"}, timeout=30)
        assert r.status_code == 403, r.text
        assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "workspace_not_member"
        info = requests.get(gw.url + "/oauth2/userinfo", headers={**auth, "X-MLFLOW-WORKSPACE": "team-b"}, timeout=30).json()
        assert (info["tenant"], info["member"], info["roles"]) == ("team-b", True, ["editor"]), info
    info = requests.get(gw.url + "/oauth2/userinfo", headers=auth, timeout=30).json()
    assert (info["subject"], info["tenant"], info["member"]) == ("carol", "team-a", True), info
    assert info["tenants"] == [{"tenant": "team-a", "roles": ["editor"]}, {"tenant": "team-b", "roles": ["editor"]}], info


# ---------------------------------------------------------------- read-only shares

class Team:
    """team-a's objects for the share story, made by alice (admin) with the real client: a
    shared and a private experiment, each with a run, params, a metric and an artifact; a
    pyfunc model logged in the private experiment and registered twice (a shared and a
    private registered model, version 1 each)."""

    def __init__(self, mlflow, tmp_path):
        self.shared_exp_name, self.private_exp_name = unique("shared"), unique("private")
        self.shared_exp = mlflow.create_experiment(self.shared_exp_name)
        self.private_exp = mlflow.create_experiment(self.private_exp_name)
        with mlflow.start_run(experiment_id=self.shared_exp, run_name=unique("shared-run")) as run:
            mlflow.log_param("lr", "0.01")
            mlflow.log_metric("loss", 0.25)
            mlflow.log_text("shared results", "data/shared.txt")
        self.shared_run, self.shared_run_name = run.info.run_id, run.info.run_name
        with mlflow.start_run(experiment_id=self.private_exp, run_name=unique("private-run")) as run:
            mlflow.log_text("private results", "data/private.txt")

            class Tripler(mlflow.pyfunc.PythonModel):
                def predict(self, context, model_input, params=None):
                    return [3 * x for x in model_input]

            mlflow.pyfunc.log_model(name="model", python_model=Tripler(), pip_requirements=[])
        self.private_run = run.info.run_id
        self.shared_model, self.private_model = unique("shared-model"), unique("private-model")
        for name in (self.shared_model, self.private_model):
            assert mlflow.register_model(f"runs:/{self.private_run}/model", name).version == "1"


@workspace_only
def test_a_read_only_share_across_tenants_until_revoked(gw, as_person, tmp_path):
    """alice (team-a admin) shares one experiment and one model (its version 1) with bob
    (team-b) through the grant helpers. bob, with MLFLOW_WORKSPACE=team-a, sees and reads
    exactly those: the experiment, its run and artifacts, and loads the model version with
    mlflow.pyfunc.load_model (its files live in an experiment that is not shared); everything
    else of team-a is invisible in searches and refused by id, and nothing is writable. The
    workspace list shows him team-a while something is shared. Each revocation takes effect on
    his very next request. Every change is an audit line with from and to."""
    from mlflow_gateway_auth import grant, grants, revoke

    with as_person("alice") as mlflow:
        team = Team(mlflow, tmp_path)
        shared_exp, shared_model = f"experiments/{team.shared_exp}", f"registered-models/{team.shared_model}"
        assert grant(shared_exp, "user:bob", "READ") == {
            "resource": shared_exp, "grant": {"subject": "user:bob", "level": "READ"}, "previous": None}
        assert grant(shared_model, "user:bob", "READ")["previous"] is None
        assert grants(shared_exp) == {"resource": shared_exp, "grants": [{"subject": "user:bob", "level": "READ"}]}
        assert grants(f"experiments/{team.private_exp}")["grants"] == []

    with as_person("bob") as mlflow:  # his own workspace: nothing of team-a's
        assert team.shared_exp not in exp_ids(mlflow)
        assert sorted(w.name for w in mlflow.list_workspaces()) == ["team-a", "team-b"]
    with as_person("bob", workspace="team-a") as mlflow:
        client = mlflow.MlflowClient()
        # Exactly what is shared is visible ...
        assert exp_ids(mlflow) == [team.shared_exp]
        assert mlflow.get_experiment(team.shared_exp).name == team.shared_exp_name
        assert mlflow.get_experiment_by_name(team.shared_exp_name).experiment_id == team.shared_exp
        runs = mlflow.search_runs(experiment_ids=[team.shared_exp], output_format="list")
        assert [r.info.run_id for r in runs] == [team.shared_run]
        run = mlflow.get_run(team.shared_run)
        assert run.data.params == {"lr": "0.01"} and run.data.metrics == {"loss": 0.25}
        assert [m.value for m in client.get_metric_history(team.shared_run, "loss")] == [0.25]
        assert [f.path for f in client.list_artifacts(team.shared_run, "data")] == ["data/shared.txt"]
        got = mlflow.artifacts.download_artifacts(run_id=team.shared_run, artifact_path="data/shared.txt",
                                                  dst_path=str(tmp_path / "dl"))
        assert open(got).read() == "shared results"
        assert [m.name for m in client.search_registered_models()] == [team.shared_model]
        assert [(v.name, v.version) for v in client.search_model_versions()] == [(team.shared_model, "1")]
        assert client.get_model_version(team.shared_model, "1").status == "READY"
        model = mlflow.pyfunc.load_model(f"models:/{team.shared_model}/1")
        assert model.predict([1, 2]) == [3, 6]
        # ... and nothing else.
        assert mlflow.get_experiment_by_name(team.private_exp_name) is None
        for attempt in [
            lambda: mlflow.get_experiment(team.private_exp),
            lambda: mlflow.get_run(team.private_run),
            lambda: mlflow.search_runs(experiment_ids=[team.private_exp]),
            lambda: mlflow.artifacts.download_artifacts(run_id=team.private_run, artifact_path="data/private.txt",
                                                        dst_path=str(tmp_path / "no")),
            lambda: client.get_registered_model(team.private_model),
            lambda: client.get_model_version(team.private_model, "1"),
            lambda: mlflow.pyfunc.load_model(f"models:/{team.private_model}/1"),
        ]:
            with pytest.raises(MlflowException):
                attempt()
        # Read-only: every write is refused, in the shared objects and in the workspace.
        for attempt in [
            lambda: client.log_metric(team.shared_run, "loss", 0.0),
            lambda: client.set_tag(team.shared_run, "by", "bob"),
            lambda: client.create_run(team.shared_exp),
            lambda: client.set_experiment_tag(team.shared_exp, "k", "v"),
            lambda: client.rename_experiment(team.shared_exp, unique("renamed")),
            lambda: client.delete_experiment(team.shared_exp),
            lambda: mlflow.create_experiment(unique("bob-in-a")),
            lambda: client.create_registered_model(unique("bob-model")),
            lambda: client.set_registered_model_alias(team.shared_model, "mine", "1"),
            lambda: client.set_model_version_tag(team.shared_model, "1", "k", "v"),
            lambda: client.update_registered_model(team.shared_model, description="bob was here"),
            lambda: client.delete_model_version(team.shared_model, "1"),
            lambda: client.delete_registered_model(team.shared_model),
            lambda: grant(shared_exp, "user:bob", "MANAGE"),
            lambda: grants(shared_exp),
        ]:
            with pytest.raises(MlflowException) as e:
                attempt()
            assert e.value.error_code in ("PERMISSION_DENIED", "RESOURCE_DOES_NOT_EXIST"), str(e.value)
    # The share stayed read-only and the objects are unchanged.
    with as_person("alice") as mlflow:
        assert mlflow.get_run(team.shared_run).data.metrics == {"loss": 0.25}
        assert mlflow.MlflowClient().get_registered_model(team.shared_model).description in (None, "")

    # Revoke the experiment: bob's very next request is refused; the model still loads.
    with as_person("alice"):
        assert revoke(shared_exp, "user:bob") == {"resource": shared_exp, "revoked": {"subject": "user:bob"}, "previous": "READ"}
    with as_person("bob", workspace="team-a") as mlflow:
        for attempt in [lambda: mlflow.get_run(team.shared_run), lambda: mlflow.get_experiment(team.shared_exp),
                        lambda: mlflow.artifacts.download_artifacts(run_id=team.shared_run, artifact_path="data/shared.txt",
                                                                    dst_path=str(tmp_path / "dl2"))]:
            with pytest.raises(MlflowException):
                attempt()
        assert exp_ids(mlflow) == []
        assert mlflow.pyfunc.load_model(f"models:/{team.shared_model}/1").predict([2]) == [6]
    # Revoke the model: the next load is refused, and team-a leaves bob's workspace list.
    with as_person("alice"):
        assert revoke(shared_model, "user:bob")["previous"] == "READ"
    with as_person("bob", workspace="team-a") as mlflow:
        with pytest.raises(MlflowException):
            mlflow.pyfunc.load_model(f"models:/{team.shared_model}/1")
        with pytest.raises(MlflowException):
            mlflow.MlflowClient().get_registered_model(team.shared_model)
        assert mlflow.MlflowClient().search_registered_models() == []
    with as_person("bob") as mlflow:
        assert [w.name for w in mlflow.list_workspaces()] == ["team-b"]

    # Every change, once, with who, what, from and to.
    lines = [(a["subject"], a["route"], a["grant"]) for a in grant_lines(gw)
             if a["grant"]["resource"] in (shared_exp, shared_model)]
    assert lines == [
        ("alice", "grants.put", {"resource": shared_exp, "subject": "user:bob", "from": None, "to": "READ"}),
        ("alice", "grants.put", {"resource": shared_model, "subject": "user:bob", "from": None, "to": "READ"}),
        ("alice", "grants.delete", {"resource": shared_exp, "subject": "user:bob", "from": "READ", "to": None}),
        ("alice", "grants.delete", {"resource": shared_model, "subject": "user:bob", "from": "READ", "to": None}),
    ], lines
    refused = [a for a in gw.audit_lines_settled() if (a.get("route") or "").startswith("grants.") and a.get("subject") == "bob"]
    assert refused and all(a["decision"] == "deny" for a in refused)


@workspace_only
def test_a_share_with_a_whole_tenant_is_read_only(gw, as_person, as_machine):
    """READ to tenant:team-b reaches every team-b principal visiting team-a (a machine too);
    EDIT or MANAGE to another tenant is refused by the endpoint (the helper raises with the
    gateway's message); a DENY to one of them vetoes the tenant share for it only."""
    from mlflow_gateway_auth import grant, revoke

    with as_person("alice") as mlflow:
        exp = mlflow.create_experiment(unique("for-team-b"))
        res = f"experiments/{exp}"
        for level in ("EDIT", "MANAGE"):
            with pytest.raises(MlflowException, match="READ only") as e:
                grant(res, "tenant:team-b", level)
            assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        grant(res, "tenant:team-b", "READ")
    with as_machine(workspace="team-a") as mlflow:
        assert exp_ids(mlflow) == [exp]
        with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
            mlflow.MlflowClient().create_run(exp)
    with as_person("bob", workspace="team-a") as mlflow:
        assert exp_ids(mlflow) == [exp]
    with as_person("alice"):
        grant(res, "user:svc-team-b", "DENY")
    with as_machine(workspace="team-a") as mlflow:
        assert exp_ids(mlflow) == []
        with pytest.raises(MlflowException):
            mlflow.get_experiment(exp)
    with as_person("bob", workspace="team-a") as mlflow:
        assert exp_ids(mlflow) == [exp]
    with as_person("alice"):
        revoke(res, "tenant:team-b")
    with as_person("bob", workspace="team-a") as mlflow:
        assert exp_ids(mlflow) == []
    # A prompt shared with the tenant: loaded by name and version, listed alone.
    prompt = unique("shared-prompt")
    with as_person("alice") as mlflow:
        mlflow.genai.register_prompt(name=prompt, template="Summarise {{text}}")
        mlflow.genai.register_prompt(name=unique("private-prompt"), template="secret {{x}}")
        grant(f"prompts/{prompt}", "tenant:team-b", "READ")
    with as_machine(workspace="team-a") as mlflow:
        assert mlflow.genai.load_prompt(f"prompts:/{prompt}/1", cache_ttl_seconds=0).template == "Summarise {{text}}"
        assert [p.name for p in mlflow.genai.search_prompts()] == [prompt]
        with pytest.raises(MlflowException):
            mlflow.genai.register_prompt(name=prompt, template="hijacked {{text}}")
    with as_person("alice"):
        revoke(f"prompts/{prompt}", "tenant:team-b")
    with as_machine(workspace="team-a") as mlflow:
        with pytest.raises(MlflowException):
            mlflow.genai.load_prompt(f"prompts:/{prompt}/1", cache_ttl_seconds=0)


def test_visitors_and_strangers_at_the_workspace_selector(gw, as_person, isolation):
    """bob selecting team-a's workspace: a visitor with no role there (workspace mode; userinfo
    says member false, nothing is listed or writable), refused in tag mode; a name that is no
    tenant's workspace is refused in both modes."""
    auth = bearer(as_person, "bob")
    r = requests.get(gw.url + "/oauth2/userinfo", headers={**auth, "X-MLFLOW-WORKSPACE": "team-a"}, timeout=30)
    if isolation == "workspace":
        info = r.json()
        assert (info["tenant"], info["member"], info["roles"]) == ("team-a", False, []), info
        assert info["tenants"] == [{"tenant": "team-b", "roles": ["editor"]}], info
        r = requests.post(gw.url + f"{R2}/experiments/create", json={"name": unique("bob")},
                          headers={**auth, "X-MLFLOW-WORKSPACE": "team-a"}, timeout=30)
        assert r.status_code == 403 and "no role" in r.json()["message"], r.text
    else:
        assert r.status_code == 403, r.text
        assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "workspace_not_member"
    for name in ["default", "Team-A", "team a"]:
        r = requests.get(gw.url + f"{R2}/experiments/search", params={"max_results": 1},
                         headers={**auth, "X-MLFLOW-WORKSPACE": name}, timeout=30)
        assert r.status_code == 403, (name, r.text)
        assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "workspace_not_member"


def test_groups_that_fit_the_pattern_are_memberships(workdir, mlflow_server, isolation):
    """tenant_group_pattern=/mlflow/{tenant}/{role}: a token with no tenant claim whose groups
    say admin of team-a and viewer of team-b acts as such (team-a first, team-b selected with
    the workspace header); a group naming an unknown role makes no membership; its other
    groups are grant subjects (group:ops EDIT lets the team-b viewer write one experiment)."""
    idp = IdP().start()
    key = SigningKey("groups-key")
    idp.keys.append(key)
    g = Gateway(workdir / "gw-groups", mlflow_server.url,
                idp.gateway_vars(tenant_group_pattern="/mlflow/{tenant}/{role}")).start()
    try:
        dana = idp.mint(key, tenant=None, sub="dana", roles=(),
                        groups=["/mlflow/team-a/admin", "/mlflow/team-b/viewer", "/mlflow/team-c/owner", "ops"])
        bea = idp.mint(key, tenant="team-b", sub="bea", roles=("admin",))

        def call(token, method, path, workspace=None, **kw):
            h = {"Authorization": f"Bearer {token}", **({"X-MLFLOW-WORKSPACE": workspace} if workspace else {})}
            r = requests.request(method, g.url + path, headers=h, timeout=30, **kw)
            return r, g.audit_for(r.headers["x-request-id"])[0]

        r, line = call(dana, "POST", f"{R2}/experiments/create", json={"name": unique("dana-a")})
        assert r.status_code == 200 and (line["tenant"], line["roles"]) == ("team-a", ["admin"]), (r.text, line)
        r, line = call(dana, "POST", f"{R2}/experiments/create", "team-b", json={"name": unique("dana-b")})
        assert r.status_code == 403 and line["reason"] == "rbac" and line["roles"] == ["viewer"], (r.text, line)
        r, line = call(dana, "GET", f"{R2}/experiments/search", "team-b", params={"max_results": 10})
        assert r.status_code == 200 and line["tenant"] == "team-b", r.text
        r, line = call(dana, "POST", f"{R2}/experiments/create", "team-c", json={"name": unique("dana-c")})
        assert r.status_code == 403, r.text
        # Workspace mode: a visit to team-c, whose workspace a visitor never creates; tag mode:
        # not a member.
        assert line["reason"] == ("workspace_missing" if isolation == "workspace" else "workspace_not_member"), line
        # A grant to one of the token's other groups.
        r, _ = call(bea, "POST", f"{R2}/experiments/create", json={"name": unique("bea")})
        exp = r.json()["experiment_id"]
        r, _ = call(bea, "PUT", GRANTS, json={"resource": f"experiments/{exp}", "subject": "group:ops", "level": "EDIT"})
        assert r.status_code == 200, r.text
        r, line = call(dana, "POST", f"{R2}/runs/create", "team-b", json={"experiment_id": exp})
        assert r.status_code == 200 and line["decision"] == "allow", r.text
        r, _ = call(bea, "DELETE", GRANTS, json={"resource": f"experiments/{exp}", "subject": "group:ops"})
        assert r.status_code == 200, r.text
        r, line = call(dana, "POST", f"{R2}/runs/create", "team-b", json={"experiment_id": exp})
        assert r.status_code == 403 and line["reason"] == "rbac", r.text
    finally:
        g.stop()
        idp.stop()


# ---------------------------------------------------------------- the UI

def test_the_ui_picker_switches_tenants_shows_shares_and_hides_denied(gw, idp, as_person, isolation):
    """Chromium, every person signed in at the real IdP (tests/ui/grants_check.cjs).
    Workspace mode: carol's landing page lists team-a and team-b, and the sidebar's workspace
    picker switches her experiment list between them (the UI's API calls carry the picked
    workspace); bob, a member of team-b only, lands in team-b, and his picker shows team-a
    (something is shared there), where his list shows
    the shared experiment only, its run page works and the private experiment's page errors.
    Both modes: victor, a team-a viewer with a DENY on one experiment, does not see it in the
    experiment list, its run page shows an error, and the UI's GraphQL GetRun is refused for
    its run (allowed for another)."""
    from mlflow_gateway_auth import grant

    node, node_path = shutil.which("node"), os.environ.get("UI_NODE_PATH")
    if not node or not node_path or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("node, playwright-core (UI_NODE_PATH) and /usr/bin/chromium are required (scripts/test.sh installs them)")
    cfg = {"gw": gw.url, "idp": idp.issuer, "isolation": isolation}
    with as_person("alice") as mlflow:
        def exp_with_run(prefix):
            name = unique(prefix)
            exp = mlflow.create_experiment(name)
            with mlflow.start_run(experiment_id=exp, run_name=unique(prefix + "-run")) as run:
                mlflow.log_metric("loss", 0.5)
            return exp, name, run.info.run_id, run.info.run_name

        kept, kept_name, kept_run, kept_run_name = exp_with_run("ui-kept")
        denied, denied_name, denied_run, denied_run_name = exp_with_run("ui-denied")
        grant(f"experiments/{denied}", "user:victor", "DENY")
        cfg["victor"] = {"login": "victor", "kept_exp": kept_name, "kept_exp_id": kept, "kept_run_id": kept_run,
                         "kept_run": kept_run_name, "denied_exp_id": denied, "denied_exp": denied_name,
                         "denied_run_id": denied_run, "denied_run": denied_run_name, "query": GQL_GET_RUN}
        if isolation == "workspace":
            shared, shared_name, shared_run, shared_run_name = exp_with_run("ui-shared")
            private, private_name, _, _ = exp_with_run("ui-private")
            grant(f"experiments/{shared}", "user:bob", "READ")
            cfg["bob"] = {"login": "bob", "shared_exp_id": shared, "shared_exp": shared_name, "shared_run_id": shared_run,
                          "shared_run": shared_run_name, "private_exp_id": private, "private_exp": private_name}
    if isolation == "workspace":
        carol = {"login": "carol"}
        for t, key in (("team-a", "exp_a"), ("team-b", "exp_b")):
            with as_person("carol", workspace=t) as mlflow:
                carol[key] = unique(f"ui-carol-{t}")
                mlflow.create_experiment(carol[key])
        cfg["carol"] = carol
    out = ARTIFACTS / "ui"
    out.mkdir(parents=True, exist_ok=True)
    cfg["out"] = str(out)
    cfg_path = out / f"grants-{uuid.uuid4().hex[:8]}.json"
    cfg_path.write_text(json.dumps(cfg))
    proc = subprocess.run([node, str(REPO / "tests/ui/grants_check.cjs"), str(cfg_path)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "NODE_PATH": node_path})
    cfg_path.unlink()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if isolation == "workspace":
        assert r["carol_home_lists_a"] and r["carol_home_lists_b"], r
        assert r["carol_in_a_shows"] and r["carol_in_a_hides"], r
        assert sorted(r["carol_picker_options"]) == ["team-a", "team-b"], r
        assert r["carol_in_b_shows"] and r["carol_in_b_hides"], r
        assert r["carol_back_in_a_shows"] and r["carol_back_in_a_hides"], r
        assert r["carol_active_workspace"] == "team-b", r
        assert set(r["carol_search_workspaces"]) == {"team-a", "team-b"}, r
        info = r["carol_userinfo_b"]["body"]
        assert (info["subject"], info["tenant"], info["member"]) == ("carol", "team-b", True), r
        # bob is a member of team-b only: sign-in lands him in team-b's workspace (not on the
        # chooser), and the picker offers team-a, where something is shared with him.
        assert r["bob_home_lists_b"] and r["bob_lands_in"] == "team-b", r
        assert sorted(r["bob_picker_options"]) == ["team-a", "team-b"], r
        assert r["bob_in_a_shows"] and r["bob_in_a_hides"], r
        assert r["bob_shared_run_shows_name"], r
        assert not r["bob_private_shows_name"] and r["bob_private_shows_error"], r
        info = r["bob_userinfo_a"]["body"]
        assert (info["tenant"], info["member"]) == ("team-a", False), r
    assert r["victor_list_shows"] and r["victor_list_hides"], r
    assert not r["victor_denied_run_shows_name"] and r["victor_denied_run_shows_error"], r
    assert r["victor_denied_run_graphql"] and set(r["victor_denied_run_graphql"]) == {403}, r
    assert r["victor_kept_run_shows_name"], r
    assert r["victor_kept_run_graphql"] and set(r["victor_kept_run_graphql"]) == {200}, r
    assert r["victor_graphql_denied"]["status"] == 403, r
    assert r["victor_graphql_denied"]["body"]["error_code"] == "PERMISSION_DENIED", r
    assert r["victor_graphql_kept"]["status"] == 200, r
    assert r["victor_graphql_kept"]["body"]["data"]["mlflowGetRun"]["run"]["info"]["runUuid"] == kept_run, r
    denied_lines = [a for a in gw.audit_lines_settled() if a.get("subject") == "victor" and a.get("reason") == "grant_denied"]
    assert any(a["route"] == "graphql.post" for a in denied_lines), denied_lines
