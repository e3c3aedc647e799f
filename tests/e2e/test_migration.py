"""Moving an MLflow that tenants used in tag mode to workspace mode (docs/operations.md): what
the tenants wrote through a tag-mode gateway, after `scripts/migrate_to_workspaces.py` and a
restart with `--enable-workspaces`, is each tenant's again through a workspace-mode gateway,
and only theirs. Both modes are named explicitly here, so the test runs once, in the workspace
pass of the suite."""

import subprocess
import sys
import tempfile

import pytest

from conftest import REPO, WORKSPACES, Caller, Gateway, MlflowServer, unique

pytestmark = pytest.mark.skipif(not WORKSPACES, reason="names both modes itself; runs in the workspace pass")


def migrate(srv: MlflowServer, *extra: str) -> str:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts/migrate_to_workspaces.py"),
         "--backend-store-uri", srv.backend_uri,
         "--artifacts-destination", str(srv.workdir / "artifacts"), *extra],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_tag_mode_data_moves_into_each_tenants_workspace(workdir):
    srv = MlflowServer(workdir / "mlflow-migrate", workspaces=False).start()
    gw = Gateway(workdir / "gw-migrate-tag", srv.url, {"auth_mode": "off", "tenant_isolation": "tag"}).start()
    made = {}
    try:
        for team in ("team-a", "team-b"):
            with Caller(gw, tenant=team).mlflow() as mlflow:
                exp = mlflow.set_experiment(unique(f"{team}-before")).experiment_id
                with mlflow.start_run() as run:
                    mlflow.log_metric("loss", 0.5)
                    mlflow.log_text(f"{team} notes", "notes.txt")
                model = unique(f"{team}-model")
                client = mlflow.MlflowClient()
                client.create_registered_model(model)
                client.create_model_version(model, f"{run.info.artifact_uri}/notes.txt", run_id=run.info.run_id)
                made[team] = (exp, run.info.run_id, model)
    finally:
        gw.stop()
        srv.stop()

    # The plan first: nothing changes without --apply.
    plan = migrate(srv)
    assert "tenant team-a -> workspace team-a (created): 1 experiment(s), 1 registered model(s)" in plan, plan
    assert "dry run: nothing changed" in plan
    assert (srv.workdir / "artifacts" / made["team-a"][0]).is_dir()
    applied = migrate(srv, "--apply")
    assert "dry run" not in applied
    assert (srv.workdir / "artifacts" / "workspaces" / "team-a" / made["team-a"][0]).is_dir()

    srv.workspaces = True
    srv.start()
    gw = Gateway(workdir / "gw-migrate-ws", srv.url, {"auth_mode": "off", "tenant_isolation": "workspace"}).start()
    try:
        for team, other in (("team-a", "team-b"), ("team-b", "team-a")):
            exp, run_id, model = made[team]
            with Caller(gw, tenant=team).mlflow() as mlflow:
                client = mlflow.MlflowClient()
                assert [e.experiment_id for e in mlflow.search_experiments()] == [exp]
                assert client.get_run(run_id).data.metrics == {"loss": 0.5}
                with tempfile.TemporaryDirectory() as d:
                    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt", dst_path=d)
                    assert open(path).read() == f"{team} notes"
                assert [m.name for m in client.search_registered_models()] == [model]
                assert client.get_model_version(model, "1").run_id == run_id
                foreign_exp, foreign_run, foreign_model = made[other]
                r = Caller(gw, tenant=team).get("/api/2.0/mlflow/runs/get", params={"run_id": foreign_run})
                assert r.status_code in (403, 404), r.text
                r = Caller(gw, tenant=team).get("/api/2.0/mlflow/registered-models/get", params={"name": foreign_model})
                assert r.status_code == 404, r.text
    finally:
        gw.stop()
        srv.stop()
