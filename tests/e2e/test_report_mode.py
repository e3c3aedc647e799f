"""Report-only mode (issues 22 and 29, `enforcement=report`): a phased rollout. The gateway
forwards a request it would refuse for two reasons only, the caller's role (`rbac`) and an
ownership refusal about the object the request itself acts on (`tenant_mismatch`,
`resource_not_found`), plus the answer checks; the forward is the request enforce mode would
have sent, pinned to the caller's own workspace in workspace mode, and audited `would_deny`.
Everything else is refused exactly as enforce mode refuses it (audit `deny`, nothing reaches
MLflow): missing or invalid credentials, every route refusal (the workspace API, unknown
routes), path refusals, protected tags, and references to another tenant's objects.

What MLflow holds afterwards is checked on MLflow itself (no gateway), pinned to the owner's
workspace. Each test makes its own tenants, so one test's failure cannot spill into another."""

import uuid

import pytest
import requests

from conftest import WORKSPACES, Caller, Gateway, IdP, SigningKey, pinned, unique

R2 = "/api/2.0/mlflow"
R3 = "/api/3.0/mlflow"
AJ3 = "/ajax-api/3.0/mlflow"
MA = "/api/2.0/mlflow-artifacts"
SEARCH = R2 + "/experiments/search"

workspace_only = pytest.mark.skipif(not WORKSPACES, reason="workspace mode only (E2E_ISOLATION=workspace)")


@pytest.fixture(scope="module")
def report(workdir, mlflow_server):
    """Dev-mode identity, enforcement=report, in front of the module's MLflow (`gw` is the same
    in enforce mode)."""
    g = Gateway(workdir / "gw-report", mlflow_server.url,
                {"auth_mode": "off", "enforcement": "report"}).start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def idp():
    i = IdP()
    i.keys = [SigningKey("k-report-1", "RS256")]
    i.start()
    yield i
    i.stop()


@pytest.fixture(scope="module")
def report_oidc(workdir, mlflow_server, idp):
    """OIDC identity (bearer tokens), enforcement=report."""
    g = Gateway(workdir / "gw-report-oidc", mlflow_server.url,
                idp.gateway_vars(enforcement="report")).start()
    yield g
    g.stop()


def audit(g: Gateway, r: requests.Response) -> dict:
    return g.audit_for(r.headers["x-request-id"])[0]


def outcome(g: Gateway, r: requests.Response) -> tuple:
    """(status, MLflow error code, audit decision, audit reason) of one gateway answer."""
    line = audit(g, r)
    try:
        code = r.json().get("error_code")
    except ValueError:
        code = None
    return r.status_code, code, line["decision"], line["reason"]


def raw(caller: Caller, method: str, path: str) -> tuple:
    """`path` sent byte-for-byte; (status, decision, reason)."""
    rid = "raw-" + uuid.uuid4().hex
    status, _ = caller.raw(method, path, headers={"X-Request-ID": rid})
    line = caller.gw.audit_for(rid)[0]
    return status, line["decision"], line["reason"]


def assert_rows(got: list[tuple], want: list[tuple]):
    """Compares two tables of outcomes row by row; the message lists every differing row."""
    assert len(got) == len(want)
    bad = [f"\n  got  {g}\n  want {w}" for g, w in zip(got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(got)} rows differ:" + "".join(bad)


def direct(mlflow_server, method: str, path: str, tenant: str | None = None, **kw) -> requests.Response:
    """MLflow itself, no gateway; pinned to `tenant`'s workspace in workspace mode."""
    return requests.request(method, mlflow_server.url + path, timeout=30,
                            headers=pinned(tenant) if tenant else {}, **kw)


class Tenant:
    """A tenant with an experiment, a run and an artifact file, made through the enforce
    gateway as an editor."""

    def __init__(self, gw: Gateway, prefix: str):
        self.tenant = unique(prefix)
        self.c = Caller(gw, tenant=self.tenant, subject="owner-" + prefix, roles="editor")
        r = self.c.post(f"{R2}/experiments/create", {"name": unique(prefix + "-exp")})
        assert r.status_code == 200, r.text
        self.exp = r.json()["experiment_id"]
        r = self.c.post(f"{R2}/runs/create", {"experiment_id": self.exp, "start_time": 1})
        assert r.status_code == 200, r.text
        self.run = r.json()["run"]["info"]["run_id"]
        self.file = f"{self.exp}/{self.run}/artifacts/secret.txt"
        self.payload = b"secret of " + self.tenant.encode()
        r = self.c.request("PUT", f"{MA}/artifacts/{self.file}", data=self.payload)
        assert r.status_code == 200, r.text

    def logged_model(self) -> str:
        r = self.c.post(f"{R2}/logged-models", {"experiment_id": self.exp, "name": "lm",
                                                "source_run_id": self.run})
        assert r.status_code == 200, r.text
        return r.json()["model"]["info"]["model_id"]

    def file_intact(self, mlflow_server) -> bool:
        r = direct(mlflow_server, "GET", f"{MA}/artifacts/{self.file}", self.tenant)
        return r.status_code == 200 and r.content == self.payload

    def experiment_active(self, mlflow_server) -> bool:
        r = direct(mlflow_server, "GET", f"{R2}/experiments/get", self.tenant,
                   params={"experiment_id": self.exp})
        return r.status_code == 200 and r.json()["experiment"]["lifecycle_stage"] == "active"


def workspaces_held(mlflow_server) -> dict:
    """Every workspace MLflow holds, by name (its whole record)."""
    r = direct(mlflow_server, "GET", f"{R3}/workspaces")
    assert r.status_code == 200, r.text
    return {w["name"]: w for w in r.json()["workspaces"]}


# ---------------------------------------------------------------- what report mode still forwards

def test_report_mode_forwards_would_deny_and_enforce_refuses(report, mlflow_server, gw, isolation):
    """The two reportable refusals: another tenant's read of an object (the request's target)
    and the caller's role. Both reach MLflow, pinned to the caller's own workspace."""
    a = Caller(report, tenant=unique("team-a"), subject="alice")
    r = a.post(f"{R2}/experiments/create", {"name": f"report-{uuid.uuid4().hex[:8]}"})
    assert r.status_code == 200, r.text
    exp = r.json()["experiment_id"]
    assert audit(report, r)["decision"] == "allow"

    # Another tenant's read: forwarded, audited as what enforce would have refused.
    b = Caller(report, tenant=unique("team-b"), subject="bob")
    r = b.get(f"{R2}/experiments/get", params={"experiment_id": exp})
    line = audit(report, r)
    # (In workspace mode the gateway's own pre-flight, pinned to team-b's workspace, finds
    # no such experiment: the reason it would give is `resource_not_found`.)
    reason = "tenant_mismatch" if isolation == "tag" else "resource_not_found"
    assert (line["decision"], line["reason"], line["tenant"]) == ("would_deny", reason, b.tenant)
    if isolation == "tag":
        assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == exp, r.text
    else:
        # Pinned to team-b's workspace: MLflow answers the foreign id as absent.
        assert r.status_code == 404 and line["upstream_status"] == 404, r.text
    assert "enforcement=report" in report.log_text()

    # The role: a viewer's write to its own tenant's experiment is forwarded (would_deny rbac)
    # and lands on that experiment.
    viewer = Caller(report, tenant=a.tenant, subject="victor", roles="viewer")
    key = "k-" + uuid.uuid4().hex[:8]
    r = viewer.post(f"{R2}/experiments/set-experiment-tag", {"experiment_id": exp, "key": key, "value": "v"})
    assert r.status_code == 200, r.text
    line = audit(report, r)
    assert (line["decision"], line["reason"], line["tenant"]) == ("would_deny", "rbac", a.tenant)
    got = direct(mlflow_server, "GET", f"{R2}/experiments/get", a.tenant, params={"experiment_id": exp})
    assert {t["key"]: t["value"] for t in got.json()["experiment"].get("tags", [])}.get(key) == "v", got.text

    # No credentials at all: refused as in enforce mode (issue 29), never forwarded.
    r = Caller(report).get(SEARCH, params={"max_results": 5})
    assert outcome(report, r) == (400, "INVALID_PARAMETER_VALUE", "deny", "tenant_header_missing"), r.text
    assert audit(report, r).get("upstream_status") is None

    # Protected tags stay enforced in report mode.
    r = a.post(f"{R2}/experiments/set-experiment-tag",
               {"experiment_id": exp, "key": "tenant", "value": "team-b"})
    assert r.status_code == 403 and "reserved" in r.json()["message"], r.text
    assert audit(report, r)["decision"] == "deny"
    assert Caller(report).get("/readyz").json()["enforcement"] == "report"

    # enforce (the module's gateway, default settings): the same read is refused.
    r = Caller(gw, tenant=b.tenant).get(f"{R2}/experiments/get", params={"experiment_id": exp})
    assert r.status_code == 403, r.text


def test_a_reported_write_is_sent_as_enforce_mode_sends_it(report, gw, mlflow_server):
    """A viewer's writes in report mode (would_deny `rbac`) reach MLflow exactly as enforce
    mode sends an editor's: the tenant tag injected, the caller's own workspace pinned; so
    MLflow stores them as the tenant's, never unowned or elsewhere. Naming another tenant's
    workspace makes the caller a visitor there, with no role: its write is refused, in report
    mode too, and nothing is created in the visited workspace."""
    owner, other = unique("team-a"), unique("team-b")
    assert Caller(gw, tenant=other).get(SEARCH, params={"max_results": 1}).status_code == 200
    viewer = Caller(report, tenant=owner, subject="victor", roles="viewer")
    visitor = Caller(report, tenant=owner, subject="victor", roles="admin", extra={"X-MLFLOW-WORKSPACE": other})
    visiting = unique("visiting")
    r = visitor.post(f"{R2}/experiments/create", {"name": visiting})
    line = audit(report, r)
    if WORKSPACES:
        assert r.status_code == 403 and (line["decision"], line["reason"]) == ("deny", "rbac"), (r.text, line)
        assert line["upstream_status"] is None
    else:  # tag mode: the header selects one of the caller's own tenants only (test_tenants.py)
        assert r.status_code == 403 and line["decision"] == "deny", (r.text, line)
    for ws in (owner, other):
        r = direct(mlflow_server, "GET", f"{R2}/experiments/get-by-name", ws, params={"experiment_name": visiting})
        assert r.status_code == 404, r.text
    editor = Caller(gw, tenant=owner, subject="alice", roles="editor")
    names = {"viewer": unique("reported"), "editor": unique("enforced")}
    exps, runs = {}, {}
    for who, c, g in (("editor", editor, gw), ("viewer", viewer, report)):
        r = c.post(f"{R2}/experiments/create", {"name": names[who]})
        assert r.status_code == 200, r.text
        exps[who] = r.json()["experiment_id"]
        r2 = c.post(f"{R2}/runs/create", {"experiment_id": exps["editor"], "start_time": 1})
        assert r2.status_code == 200, r2.text
        runs[who] = r2.json()["run"]["info"]["run_id"]
        if who == "viewer":
            for resp in (r, r2):
                line = audit(report, resp)
                assert (line["decision"], line["reason"]) == ("would_deny", "rbac"), line

    def tags(path, key, params):
        r = direct(mlflow_server, "GET", path, owner, params=params)
        assert r.status_code == 200, (path, r.text)
        obj = r.json()[key]
        items = obj.get("tags") or obj.get("data", {}).get("tags") or []
        return {t["key"]: t["value"] for t in items if not t["key"].startswith("mlflow.")}

    assert tags(f"{R2}/experiments/get", "experiment", {"experiment_id": exps["viewer"]}) == \
        tags(f"{R2}/experiments/get", "experiment", {"experiment_id": exps["editor"]})
    assert tags(f"{R2}/runs/get", "run", {"run_id": runs["viewer"]}) == \
        tags(f"{R2}/runs/get", "run", {"run_id": runs["editor"]})
    if WORKSPACES:
        r = direct(mlflow_server, "GET", f"{R2}/experiments/get-by-name", other,
                   params={"experiment_name": names["viewer"]})
        assert r.status_code == 404, r.text


# ---------------------------------------------------------------- issue 29, item 1: route refusals

def test_report_mode_never_administers_workspaces(report, gw, mlflow_server):
    """A viewer of another tenant at MLflow's workspace API (both mounts): reading, updating,
    deleting (every mode) and creating workspaces is refused exactly as in enforce mode, and
    MLflow's workspaces, the victim's experiment and its artifact are unchanged."""
    victim = Tenant(gw, "team-a")
    bob = Caller(report, tenant=unique("team-b"), subject="bob", roles="viewer")
    assert bob.get(SEARCH, params={"max_results": 1}).status_code == 200  # bob's workspace exists
    bob_enforced = Caller(gw, tenant=bob.tenant, subject="bob", roles="viewer")
    held = workspaces_held(mlflow_server) if WORKSPACES else None
    v = victim.tenant
    foreign_root = f"mlflow-artifacts:/workspaces/{v}"
    cases = []
    for mount in (R3, AJ3):
        cases += [
            ("GET", f"{mount}/workspaces/{v}", None),
            ("PATCH", f"{mount}/workspaces/{v}", {"description": "taken over", "default_artifact_root": "/tmp/elsewhere"}),
            ("POST", f"{mount}/workspaces", {"name": unique("squat")}),
            ("POST", f"{mount}/workspaces", {"name": unique("squat"), "default_artifact_root": foreign_root}),
            ("DELETE", f"{mount}/workspaces/{v}?mode=SET_DEFAULT", None),
            ("DELETE", f"{mount}/workspaces/{v}?mode=CASCADE", None),
            ("DELETE", f"{mount}/workspaces/{v}", None),
        ]
    got, want = [], []
    for method, path, body in cases:
        e_out = outcome(gw, bob_enforced.request(method, path, json=body))
        r = bob.request(method, path, json=body)
        got.append((method, path, e_out[:3], outcome(report, r), audit(report, r).get("upstream_status")))
        # Refused as in enforce mode: 404 for a read of another workspace (workspace mode),
        # 403 for everything else; nothing sent to MLflow.
        if method == "GET" and WORKSPACES:
            expected = (404, "RESOURCE_DOES_NOT_EXIST", "deny")
        else:
            expected = (403, "PERMISSION_DENIED", "deny")
        want.append((method, path, expected, e_out, None))
    assert_rows(got, want)

    # MLflow itself: no workspace created, changed or deleted; the victim's data is intact.
    if WORKSPACES:
        assert workspaces_held(mlflow_server) == held
        assert victim.experiment_active(mlflow_server)
    assert victim.file_intact(mlflow_server)


def test_report_mode_enforces_every_route_refusal(report, gw):
    """An unknown route and the server-wide families the policy refuses (the assistant, the
    prompt lab's gateway-proxy, generic job search, online scoring, presigned URLs) are refused
    in report mode exactly as in enforce mode; so is a webhook target outside the allow-list
    (a check of the body, never reportable)."""
    t = unique("team-r")
    rep, enf = Caller(report, tenant=t, subject="rita"), Caller(gw, tenant=t, subject="rita")
    route = [("deny", "route_not_allowed"), ("deny", "route_denied")]
    cases = [
        ("GET", f"{R2}/no-such-route", None, route),
        ("GET", "/ajax-api/3.0/mlflow/assistant/sessions", None, route),
        ("POST", "/ajax-api/2.0/mlflow/gateway-proxy", {"gateway_path": "x"}, route),
        ("POST", "/ajax-api/3.0/jobs/search", {}, route),
        ("PUT", f"{R3}/scorers/online-config", {"experiment_id": "1", "name": "x"}, route),
        ("POST", f"{R2}/artifacts/presigned-download-url", {"run_id": "0" * 32, "path": "x"}, route),
        ("POST", f"{R2}/webhooks", {"name": "hook", "url": "https://127.0.0.1:9/x", "events": [
            {"entity": "REGISTERED_MODEL", "action": "CREATED"}]}, [("deny", "webhook_url_refused"), *route]),
    ]
    got, want = [], []
    for method, path, body, refusals in cases:
        e_out = outcome(gw, enf.request(method, path, json=body))
        r = rep.request(method, path, json=body)
        got.append((method, path, e_out[2:] in refusals,
                    outcome(report, r), audit(report, r).get("upstream_status")))
        want.append((method, path, True, e_out, None))
    assert_rows(got, want)


# ---------------------------------------------------------------- issue 29, item 2: no identity

def traversals(victim: Tenant) -> list[tuple[str, str]]:
    """MLflow's default-workspace weakness (handlers.py _get_workspace_scoped_repo_path_if_enabled):
    a path into `workspaces/<ws>/...` spelled so it does not start with `workspaces/`."""
    ws, f = victim.tenant, victim.file
    out = []
    for dot in (".", "%2E", "%2e"):
        out += [("GET", f"{MA}/artifacts/{dot}/workspaces/{ws}/{f}"),
                ("DELETE", f"{MA}/artifacts/{dot}/workspaces/{ws}/{f}")]
    out += [("GET", f"{MA}/artifacts?path=./workspaces/{ws}/{victim.exp}"),
            ("GET", f"{MA}/artifacts?path=%2E/workspaces/{ws}/{victim.exp}/{victim.run}/artifacts"),
            ("GET", f"/ajax-api/2.0/mlflow-artifacts/artifacts/./workspaces/{ws}/{f}")]
    return out


def test_report_mode_refuses_missing_or_invalid_credentials(report, report_oidc, idp):
    """A missing or invalid credential is never reportable: refused in report mode as in enforce
    mode (dev: 400 tenant_header_*; oidc: 401 token_*), decision `deny`, nothing forwarded."""
    dev_cases = {
        "tenant_header_missing": {},
        "tenant_header_invalid": {"X-Tenant": "not a tenant!"},
        "roles_header_invalid": {"X-Tenant": unique("team-c"), "X-Roles": "superuser"},
    }
    for reason, headers in dev_cases.items():
        for method, path in [("GET", SEARCH + "?max_results=5"), ("GET", f"{R3}/workspaces"),
                             ("POST", f"{R2}/experiments/create")]:
            body = {"name": unique("anon")} if method == "POST" else None
            r = requests.request(method, report.url + path, headers=headers, json=body, timeout=30)
            assert outcome(report, r) == (400, "INVALID_PARAMETER_VALUE", "deny", reason), (path, r.text)
            assert audit(report, r).get("upstream_status") is None
    oidc_cases = {
        "token_missing": None,
        "token_malformed": "not.a.jwt",
        "token_expired": idp.mint(idp.keys[0], tenant="team-a", lifetime=-3600),
        "wrong_audience": idp.mint(idp.keys[0], tenant="team-a", aud="other"),
    }
    for reason, token in oidc_cases.items():
        c = Caller(report_oidc, token=token)
        for method, path in [("GET", SEARCH + "?max_results=5"), ("GET", f"{R3}/workspaces")]:
            r = c.request(method, path)
            assert outcome(report_oidc, r) == (401, "UNAUTHENTICATED", "deny", reason), (path, r.text)
            assert audit(report_oidc, r).get("upstream_status") is None


@workspace_only
def test_anonymous_requests_never_reach_the_default_workspace(report, report_oidc, gw, mlflow_server):
    """No identity in report mode (dev: no X-Tenant; oidc: no token): MLflow's artifact paths
    into another workspace (`./workspaces/<ws>/...`, `%2E`, listings, delete) and the workspace
    list are refused, nothing is forwarded, and the victim's artifact is still there."""
    victim = Tenant(gw, "team-a")
    assert victim.file_intact(mlflow_server)
    got = []
    for g, status, reason in [(report, 400, "tenant_header_missing"), (report_oidc, 401, "token_missing")]:
        anon = Caller(g)
        for method, path in traversals(victim) + [("GET", f"{R3}/workspaces"),
                                                  ("GET", "/ajax-api/3.0/mlflow/workspaces")]:
            got.append((g.port, method, path, raw(anon, method, path), (status, "deny", reason)))
    assert_rows([x[:4] for x in got], [x[:3] + (x[4],) for x in got])
    assert victim.file_intact(mlflow_server)


@workspace_only
def test_authenticated_traversal_into_another_workspace_is_refused(report, gw, mlflow_server):
    """The same `./workspaces/<ws>/...` spellings by an authenticated tenant in report mode: a
    path refusal (`invalid_path`), enforced; the victim's artifact is intact."""
    victim = Tenant(gw, "team-a")
    bob = Caller(report, tenant=unique("team-b"), subject="bob")
    got = [(method, path, raw(bob, method, path)) for method, path in traversals(victim)]
    assert_rows([(m, p, out[1:]) for m, p, out in got], [(m, p, ("deny", "invalid_path")) for m, p, _ in got])
    assert all(400 <= out[0] < 500 for _, _, out in got), got
    assert victim.file_intact(mlflow_server)


# ---------------------------------------------------------------- issue 29, item 4: references

def test_report_mode_refuses_references_to_another_tenants_objects(report, gw, mlflow_server):
    """A team-a editor acting on its own run, experiment, dataset and registered model while
    naming team-b's objects: refused in report mode as in enforce mode (403 `tenant_mismatch`,
    or `resource_not_found` where the pre-flight pinned to team-a's workspace cannot see
    team-b's object), never forwarded, and MLflow stores nothing."""
    a, b = Tenant(gw, "team-a"), Tenant(gw, "team-b")
    b_model = b.logged_model()
    rm_run, rm_model = unique("rm"), unique("rm")  # one registered model per attempt
    for name in (rm_run, rm_model):
        assert a.c.post(f"{R2}/registered-models/create", {"name": name}).status_code == 200
    r = a.c.post(f"{R3}/datasets/create", {"name": unique("ds"), "experiment_ids": [a.exp]})
    assert r.status_code == 200, r.text
    a_ds = r.json()["dataset"]["dataset_id"]
    t = a.tenant

    def held(method, path, **kw) -> dict:
        r = direct(mlflow_server, method, path, t, **kw)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def lm_names():
        return {m["info"]["name"] for m in held("POST", f"{R2}/logged-models/search",
                                                 json={"experiment_ids": [a.exp]}).get("models", [])}

    def ds_names():
        return {d["name"] for d in held("POST", f"{R3}/datasets/search",
                                        json={"experiment_ids": [a.exp]}).get("datasets", [])}

    def ds_exps():
        return sorted(held("GET", f"{R3}/datasets/{a_ds}/experiment-ids").get("experiment_ids", []))

    def run_of_a():
        return held("GET", f"{R2}/runs/get", params={"run_id": a.run})["run"]

    def versions(name):
        return held("GET", f"{R2}/model-versions/search",
                    params={"filter": f"name = '{name}'"}).get("model_versions", [])

    def issue_names():
        return {i["name"] for i in held("POST", f"{R3}/issues/search",
                                        json={"experiment_id": a.exp}).get("issues", [])}

    lm, ds, issue = unique("lm-ref"), unique("ds-ref"), unique("issue-ref")
    cases = [
        ("logged model from team-b's run", "POST", f"{R2}/logged-models",
         {"experiment_id": a.exp, "name": lm, "source_run_id": b.run},
         lambda: lm not in lm_names()),
        ("dataset in team-a's and team-b's experiments", "POST", f"{R3}/datasets/create",
         {"name": ds, "experiment_ids": [a.exp, b.exp]},
         lambda: ds not in ds_names()),
        ("team-b's experiment added to team-a's dataset", "POST", f"{R3}/datasets/{a_ds}/add-experiments",
         {"experiment_ids": [b.exp]},
         lambda: ds_exps() == [a.exp]),
        ("team-b's logged model as an input of team-a's run", "POST", f"{R2}/runs/log-inputs",
         {"run_id": a.run, "models": [{"model_id": b_model}]},
         lambda: not run_of_a().get("inputs", {}).get("model_inputs")),
        ("a metric of team-a's run linked to team-b's logged model", "POST", f"{R2}/runs/log-metric",
         {"run_id": a.run, "key": "ref_metric", "value": 1.0, "timestamp": 1, "step": 0, "model_id": b_model},
         lambda: "ref_metric" not in {m["key"] for m in run_of_a()["data"].get("metrics", [])}),
        ("a version of team-a's model from team-b's run", "POST", f"{R2}/model-versions/create",
         {"name": rm_run, "source": f"runs:/{b.run}/model", "run_id": b.run},
         lambda: versions(rm_run) == []),
        ("a version of team-a's model from team-b's logged model", "POST", f"{R2}/model-versions/create",
         {"name": rm_model, "source": f"models:/{b_model}", "model_id": b_model},
         lambda: versions(rm_model) == []),
        ("an issue of team-a's experiment found in team-b's run", "POST", f"{R3}/issues",
         {"experiment_id": a.exp, "name": issue, "description": "d", "source_run_id": b.run},
         lambda: issue not in issue_names()),
    ]
    editor = Caller(report, tenant=t, subject="alice", roles="editor")
    enforced = Caller(gw, tenant=t, subject="alice", roles="editor")
    got, want = [], []
    for what, method, path, body, nothing_stored in cases:
        # enforce mode is the reference: it already refuses each one
        e_out = outcome(gw, enforced.request(method, path, json=body))
        r = editor.request(method, path, json=body)
        got.append((what, e_out, outcome(report, r), audit(report, r).get("upstream_status"), nothing_stored()))
        # The reason depends on what the gateway knows: an object it saw created is known as
        # team-b's (tenant_mismatch); in workspace mode one it never saw is invisible to its
        # pre-flight pinned to team-a (resource_not_found). Either way: refused.
        refused = [(403, "PERMISSION_DENIED", "deny", reason) for reason in ("tenant_mismatch", "resource_not_found")]
        want.append((what, e_out if e_out in refused else refused[0],
                     got[-1][2] if got[-1][2] in refused else refused[0], None, True))
    assert_rows(got, want)
