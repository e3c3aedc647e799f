"""The MLflow UI per tenant through the gateway, in a real headless Chromium driven by
playwright-core, with the identity header injected as a header-injecting SSO proxy would.
Screenshots are saved under tests/e2e/.artifacts/ui/."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import ARTIFACTS, REPO, Caller, unique


def test_ui_per_tenant_in_a_real_browser(gw, isolation):
    node = shutil.which("node")
    node_path = os.environ.get("UI_NODE_PATH")
    if not node or not node_path or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("node, playwright-core (UI_NODE_PATH) and /usr/bin/chromium are required (scripts/test.sh installs them)")
    a = Caller(gw, tenant="team-a", subject="alice")
    exp_name = unique("ui-team-a")
    run_name = unique("ui-run")
    with a.mlflow() as mlflow:
        exp_id = mlflow.set_experiment(exp_name).experiment_id
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_param("lr", "0.01")
            for step in range(10):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    # team-b exists (in workspace mode: has its workspace), so the chooser could show it.
    Caller(gw, tenant="team-b").get("/api/2.0/mlflow/experiments/search", params={"max_results": 1})
    out = ARTIFACTS / "ui"
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [node, str(REPO / "tests/ui/ui_check.cjs"), gw.url, exp_id, exp_name, run.info.run_id, run_name, str(out), isolation],
        capture_output=True, text=True, timeout=600, env={**os.environ, "NODE_PATH": node_path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if isolation == "workspace":
        assert result["a_chooser_shows_own"] and not result["a_chooser_shows_other"], result
        assert result["a_chooser_opens_workspace"], result
    assert result["a_experiment_shows_run"], result
    assert result["a_run_shows_name"] and result["a_run_shows_metric"], result
    assert result["b_list_rendered"] and not result["b_list_shows_a"], result
    assert not result["b_run_shows_name"] and result["b_run_shows_error"], result
    shots = ["team-a-experiment", "team-a-run", "team-b-experiments", "team-b-run"]
    for shot in shots + (["team-a-workspaces"] if isolation == "workspace" else []):
        assert (out / f"{shot}.png").stat().st_size > 0
