"""RBAC end to end: roles from minted tokens (roles and group claims mapped through
role_aliases) decide what the real MLflow client may do within its tenant."""

import pytest

from conftest import Caller, Gateway, IdP, SigningKey, unique

ALIASES = "mlflow-readers=viewer,ml-engineers=editor,mlflow-admins=admin,viewer=viewer,editor=editor,admin=admin"


@pytest.fixture(scope="module")
def idp():
    i = IdP()
    i.keys = [SigningKey("k1", "RS256")]
    i.start()
    yield i
    i.stop()


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server, idp):
    g = Gateway(workdir / "gw", mlflow_server.url,
                idp.gateway_vars(role_claim="roles,groups", role_aliases=ALIASES)).start()
    yield g
    g.stop()


def token(idp, roles=(), groups=None, tenant="team-a"):
    extra = {"groups": list(groups)} if groups is not None else {}
    return idp.mint(idp.keys[0], tenant=tenant, roles=roles, **extra)


@pytest.fixture(scope="module")
def run_ids(gw, idp):
    """team-a's experiment with runs, made by an admin."""
    admin = Caller(gw, token=token(idp, roles=["admin"]))
    with admin.mlflow() as mlflow:
        exp = mlflow.set_experiment(unique("rbac")).experiment_id
        ids = []
        for _ in range(3):
            with mlflow.start_run() as r:
                mlflow.log_metric("m", 1.0)
            ids.append(r.info.run_id)
    return exp, ids


def test_viewer_reads_but_cannot_log(gw, idp, run_ids):
    exp, ids = run_ids
    viewer = Caller(gw, token=token(idp, roles=["viewer"]))
    import mlflow.exceptions

    with viewer.mlflow() as mlflow:
        assert len(mlflow.search_runs(experiment_ids=[exp], output_format="list")) == 3
        assert mlflow.get_run(ids[0]).data.metrics["m"] == 1.0
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            mlflow.MlflowClient().log_metric(ids[0], "m", 2.0)
        msg = str(e.value)
        assert "write" in msg and "editor or admin" in msg and "viewer" in msg
    r = viewer.post("/api/2.0/mlflow/runs/log-metric", {"run_id": ids[0], "key": "m", "value": 2, "timestamp": 1})
    assert r.status_code == 403
    line = gw.audit_for(r.headers["x-request-id"])[0]
    assert line["decision"] == "deny" and line["reason"] == "rbac"
    assert line["action"] == "write" and line["roles"] == ["viewer"]


def test_editor_logs_but_cannot_delete(gw, idp, run_ids):
    exp, ids = run_ids
    editor = Caller(gw, token=token(idp, roles=["editor"]))
    import mlflow.exceptions

    with editor.mlflow() as mlflow:
        mlflow.MlflowClient().log_metric(ids[1], "m", 3.0, step=1)
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            mlflow.delete_run(ids[1])
        assert "delete" in str(e.value) and "admin" in str(e.value)
        assert mlflow.get_run(ids[1]).info.lifecycle_stage == "active"


def test_admin_deletes(gw, idp, run_ids):
    _, ids = run_ids
    admin = Caller(gw, token=token(idp, roles=["admin"]))
    with admin.mlflow() as mlflow:
        mlflow.delete_run(ids[2])
        assert mlflow.get_run(ids[2]).info.lifecycle_stage == "deleted"


def test_group_alias_grants_its_role(gw, idp, run_ids):
    exp, ids = run_ids
    engineer = Caller(gw, token=token(idp, roles=[], groups=["Everyone", "ml-engineers"]))
    r = engineer.post("/api/2.0/mlflow/runs/log-parameter", {"run_id": ids[0], "key": "via", "value": "group"})
    assert r.status_code == 200, r.text
    reader = Caller(gw, token=token(idp, roles=[], groups=["mlflow-readers"]))
    assert reader.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp]}).status_code == 200
    assert reader.post("/api/2.0/mlflow/runs/log-parameter",
                       {"run_id": ids[0], "key": "x", "value": "y"}).status_code == 403


def test_only_unknown_groups_is_denied_everything(gw, idp, run_ids):
    exp, _ = run_ids
    nobody = Caller(gw, token=token(idp, roles=["MLFLOW-ADMINS"], groups=["Everyone", "mlflow-admin"]))
    for r in [nobody.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp]}),
              nobody.get("/version")]:
        assert r.status_code == 403
        assert "no recognised role" in r.json()["message"]
    assert nobody.get("/healthz").status_code == 200


def test_dev_mode_roles_header(workdir, mlflow_server):
    gw = Gateway(workdir / "gw-dev", mlflow_server.url, {"auth_mode": "off"}).start()
    try:
        admin = Caller(gw, tenant="team-a")  # dev_default_role = admin
        exp = admin.post("/api/2.0/mlflow/experiments/create", {"name": unique("dev")}).json()["experiment_id"]
        viewer = Caller(gw, tenant="team-a", roles="viewer")
        assert viewer.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": exp}).status_code == 200
        assert viewer.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp}).status_code == 403
        assert Caller(gw, tenant="team-a", roles="root").get("/version").status_code == 400
    finally:
        gw.stop()
