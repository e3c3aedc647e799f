"""The project's own run command, `scripts/up.sh` (issue 29, item 5), in each isolation mode:
MLflow and `spin up` as the script starts them (the script builds the component first; after
scripts/test.sh has built it that is a no-op), then a user's flow with the real MLflow client
(dev-mode X-Tenant headers): a run with an artifact under `model/`, a registered model, and a
model version whose `source` is the run's `artifact_uri` + "/model", copied as a user copies
it. In tag mode MLflow must run without workspaces, or that URI names MLflow's `default`
workspace and the gateway refuses it. `--dev`: header dev mode (the default OIDC mode with the
local IdP is tests/e2e/test_quickstart.py's).

Both modes are named here, so the module runs once, in the workspace pass."""

import contextlib
import os
import signal
import subprocess
import types

import pytest
import requests

from conftest import REPO, WORKSPACES, Caller, Proc, free_port, spin_bin, unique, wait_until

pytestmark = pytest.mark.skipif(not WORKSPACES, reason="names both modes itself; runs in the workspace pass")


MODES = ("tag", "workspace")


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """`scripts/up.sh` once per isolation mode (SPIN_VARIABLE_TENANT_ISOLATION), both started at
    once on free ports so their start-ups overlap; each whole process group is stopped at the
    end."""
    ups = {}
    try:
        for mode in MODES:
            data = tmp_path_factory.mktemp(f"up-{mode}")
            mlflow_port, gw_port = free_port(), free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("SPIN_VARIABLE_")}
            env.update({"SPIN_VARIABLE_TENANT_ISOLATION": mode, "DATA_DIR": str(data),
                        "MLFLOW_PORT": str(mlflow_port), "GATEWAY_LISTEN": f"127.0.0.1:{gw_port}",
                        "SPIN_BIN": spin_bin()})
            proc = Proc(f"up.sh {mode}", ["bash", str(REPO / "scripts/up.sh"), "--dev"], data / "up.log",
                        env=env, cwd=str(REPO))
            ups[mode] = types.SimpleNamespace(url=f"http://127.0.0.1:{gw_port}", port=gw_port,
                                              mlflow=f"http://127.0.0.1:{mlflow_port}", mode=mode, proc=proc)
        yield ups
    finally:
        # Ctrl-C, as up.sh documents: SIGINT to each whole process group (up.sh, MLflow, spin).
        for u in ups.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(u.proc.popen.pid, signal.SIGINT)
        for u in ups.values():
            try:
                u.proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(u.proc.popen.pid, signal.SIGKILL)  # nothing of the group outlives the module
            u.proc.popen.wait(timeout=15)
            u.proc.log_file.close()


@pytest.fixture
def up(started, request):
    u = started[request.param]
    wait_until(lambda: requests.get(u.url + "/readyz", timeout=2).status_code == 200,
               f"scripts/up.sh ({u.mode}): the gateway's /readyz", timeout=600, proc=u.proc)
    return u


@pytest.mark.parametrize("up", MODES, indirect=True)
def test_up_sh_serves_a_model_version_from_the_runs_own_artifact_uri(up):
    ready = requests.get(up.url + "/readyz", timeout=30).json()
    assert ready["isolation"] == up.mode, ready
    with Caller(up, tenant=unique("team-up"), subject="alice").mlflow() as mlflow:
        mlflow.set_experiment(unique("up-" + up.mode))
        with mlflow.start_run() as run:
            mlflow.log_text("weights", "model/weights.txt")
            mlflow.log_metric("loss", 0.5)
        artifact_uri = mlflow.get_run(run.info.run_id).info.artifact_uri
        assert [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "model")] == ["model/weights.txt"]
        client = mlflow.MlflowClient()
        name = unique("up-model")
        client.create_registered_model(name)
        mv = client.create_model_version(name, source=artifact_uri + "/model", run_id=run.info.run_id)
        assert (mv.version, mv.source, mv.run_id) == ("1", artifact_uri + "/model", run.info.run_id)
        assert client.get_model_version(name, "1").source == artifact_uri + "/model"
    # MLflow as up.sh started it: workspaces on in workspace mode only (docs/isolation.md).
    info = requests.get(f"{up.mlflow}/api/3.0/mlflow/server-info", timeout=30).json()
    assert bool(info.get("workspaces_enabled")) == (up.mode == "workspace"), info
