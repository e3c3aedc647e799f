"""The quick start as a newcomer runs it (issue 35): the README's first command, `scripts/up.sh`,
starts the real MLflow, the local IdP (the real `oidc-provider`) and the gateway in OIDC mode
with browser sign-in; then, as the README says,

* the README's Python snippet with `quickstart.env` (the MLflow client with the project's auth
  plugin, team-a's machine client) logs a run and a registered model in team-a's workspace,
  which team-b does not see;
* `demo/run_demo.sh` passes against it;
* headless Chromium signs in as alice, sees only team-a, signs out, signs in as bob, sees only
  team-b (tests/ui/signin_check.cjs); a deep link as the client prints it survives the sign-in;
  the admin of both teams chooses between them (tests/ui/deeplink_check.cjs);
* it is safe to run twice and to move: every port here is moved (free ports, own DATA_DIR), the
  printed hints carry the moved URLs, and a taken port or a second `scripts/up.sh` on the same
  DATA_DIR fails at once, before anything is built or started.

`scripts/up.sh` picks its own isolation mode (workspace), whatever E2E_ISOLATION says: the
module is mode_independent (harness/selection.py), run once. Every process of `scripts/up.sh` is
stopped at the end (its whole process group)."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import types

import pytest
import requests

from conftest import ARTIFACTS, REPO, Proc, environment, free_port, spin_bin, unique, wait_until

UP = REPO / "scripts/up.sh"


def env_file(path) -> dict[str, str]:
    """The variables of a quickstart env file, as `set -a; . file; set +a` sets them."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def up_env(data, mlflow_port: int, gw_port: int, idp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPIN_VARIABLE_", "MLFLOW_", "GATEWAY_URL", "DEMO_"))}
    env.update({"DATA_DIR": str(data), "MLFLOW_PORT": str(mlflow_port),
                "GATEWAY_LISTEN": f"127.0.0.1:{gw_port}", "IDP_PORT": str(idp_port),
                "SPIN_BIN": spin_bin()})
    return env


def stop(proc: Proc):
    """Ctrl-C, as up.sh documents: SIGINT to its process group; then nothing of it survives."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGINT)
    try:
        proc.popen.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(timeout=15)
    proc.log_file.close()


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def qs(tmp_path_factory):
    base = tmp_path_factory.mktemp("quickstart")
    data = base / "data"
    ports = {"mlflow": free_port(), "gw": free_port(), "idp": free_port()}
    started = time.monotonic()
    proc = Proc("scripts/up.sh", ["bash", str(UP)], base / "up.log",
                env=up_env(data, ports["mlflow"], ports["gw"], ports["idp"]), cwd=str(REPO))
    try:
        wait_until(lambda: "==> ready in" in proc.log_text(), "scripts/up.sh: ready", timeout=900, proc=proc)
        took = time.monotonic() - started
        print(f"MEASURE scripts/up.sh ready after {took:.1f} s")
        yield types.SimpleNamespace(
            proc=proc, data=data, url=f"http://127.0.0.1:{ports['gw']}", ports=ports,
            mlflow=f"http://127.0.0.1:{ports['mlflow']}", issuer=f"http://127.0.0.1:{ports['idp']}",
            env_a=env_file(data / "quickstart.env"), env_b=env_file(data / "quickstart-team-b.env"))
    finally:
        stop(proc)
    # Ctrl-C stopped MLflow (and its workers), the IdP and spin: every port is free again.
    still = [name for name, port in ports.items() if listening(port)]
    assert not still, f"still listening after Ctrl-C: {still}"


@contextlib.contextmanager
def client_as(qs, env: dict[str, str]):
    """The real MLflow client in this process with a quickstart env file's settings."""
    import mlflow

    with environment(env):
        mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
        yield mlflow


def test_up_sh_starts_mlflow_the_idp_and_the_gateway_in_oidc_mode(qs):
    ready = requests.get(qs.url + "/readyz", timeout=60).json()
    assert ready == {"status": "ready", "mlflow": "ok", "isolation": "workspace", "enforcement": "enforce",
                     "workspaces": "enabled", "issuer": "ok", "signing_keys": "ok"}, ready
    assert requests.get(qs.issuer + "/.well-known/openid-configuration", timeout=30).json()["issuer"] == qs.issuer
    assert requests.get(qs.mlflow + "/health", timeout=30).status_code == 200
    # OIDC mode: identity headers are refused, a browser navigation goes to sign-in.
    r = requests.get(qs.url + "/api/2.0/mlflow/experiments/search", headers={"X-Tenant": "team-a"}, timeout=30)
    assert r.status_code == 400 and "oidc" in r.json()["message"].lower(), r.text
    r = requests.get(qs.url + "/", headers={"Sec-Fetch-Mode": "navigate"}, timeout=30, allow_redirects=False)
    assert r.status_code == 401 and "/oauth2/sign_in" in r.text, r.text[:500]
    # The client's settings carry the moved URLs, and so do the printed hints.
    assert qs.env_a == {"MLFLOW_TRACKING_URI": qs.url, "MLFLOW_TRACKING_AUTH": "gateway-oidc",
                        "MLFLOW_GATEWAY_OIDC_ISSUER": qs.issuer, "MLFLOW_GATEWAY_OIDC_CLIENT_ID": "svc-team-a",
                        "MLFLOW_GATEWAY_OIDC_CLIENT_SECRET": qs.env_a["MLFLOW_GATEWAY_OIDC_CLIENT_SECRET"]}
    assert qs.env_b["MLFLOW_GATEWAY_OIDC_CLIENT_ID"] == "svc-team-b"
    log = qs.proc.log_text()
    assert f"open {qs.url}/ and sign in" in log
    assert f"GATEWAY_URL={qs.url} DATA_DIR={qs.data} demo/run_demo.sh" in log
    assert f"set -a; . {qs.data}/quickstart.env; set +a" in log
    # Demo secrets: random per DATA_DIR, owner-only files, never printed.
    secrets = sorted(p.name for p in (qs.data / "secrets").iterdir())
    assert secrets == ["gateway-client", "session-cookie-key", "svc-team-a", "svc-team-b"], secrets
    for p in [*(qs.data / "secrets").iterdir(), qs.data / "quickstart.env", qs.data / "quickstart-team-b.env",
              qs.data / "idp" / "idp.json"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        if p.parent.name == "secrets":
            assert len(p.read_text().strip()) >= 32 and p.read_text().strip() not in log, p
    assert qs.env_a["MLFLOW_GATEWAY_OIDC_CLIENT_SECRET"] == (qs.data / "secrets/svc-team-a").read_text().strip()


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- quickstart-snippet[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no quickstart snippet"
    return m.group(1)


def test_the_readme_snippet_with_quickstart_env_logs_a_run_and_a_model_as_team_a(qs, tmp_path):
    (tmp_path / "quickstart.py").write_text(readme_snippet())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(qs.env_a)  # set -a; . quickstart.env; set +a
    proc = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"^run (\w+) by (\S+)$", proc.stdout, re.M)
    assert m and m.group(2) == "svc-team-a", proc.stdout
    run_id = m.group(1)
    with client_as(qs, qs.env_a) as mlflow:
        client = mlflow.MlflowClient()
        run = client.get_run(run_id)
        assert run.data.params == {"factor": "2"} and run.data.metrics == {"loss": 0.25}
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/workspaces/team-a/"), run.info.artifact_uri
        (version,) = client.search_model_versions("name='doubler'")
        assert (version.version, version.run_id) == ("1", run_id)
        model = mlflow.pyfunc.load_model("models:/doubler/1")
        assert list(model.predict([1, 2])) == [2, 4]
    with client_as(qs, qs.env_b) as mlflow:
        client = mlflow.MlflowClient()
        assert client.get_experiment_by_name("quickstart") is None
        assert "doubler" not in [m.name for m in client.search_registered_models()]
        with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST"):
            client.get_registered_model("doubler")


def test_the_demo_passes_against_the_default_oidc_mode(qs):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DEMO_"))}
    env.update({"GATEWAY_URL": qs.url, "DATA_DIR": str(qs.data)})
    proc = subprocess.run(["bash", str(REPO / "demo/run_demo.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "SUCCESS", out[-4000:]
    assert "auth_mode=oidc" in out and "bearer token of svc-team-b" in out
    assert "eyJ" not in out  # no token printed


def test_the_browser_alice_then_bob_a_deep_link_and_the_admin(qs):
    node, node_path = shutil.which("node"), os.environ.get("UI_NODE_PATH")
    if not node or not node_path or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("node, playwright-core (UI_NODE_PATH) and /usr/bin/chromium are required "
                    "(scripts/test.sh installs them)")
    a_exp, a_run, b_exp = unique("qs-a"), unique("qs-run"), unique("qs-b")
    with client_as(qs, qs.env_a) as mlflow:
        a_exp_id = mlflow.set_experiment(a_exp).experiment_id
        with mlflow.start_run(run_name=a_run) as run:
            mlflow.log_param("lr", "0.01")
            mlflow.log_metric("loss", 0.5)
    with client_as(qs, qs.env_b) as mlflow:
        mlflow.set_experiment(b_exp)
    out = ARTIFACTS / "ui"
    out.mkdir(parents=True, exist_ok=True)

    def browser(script: str, cfg: dict) -> dict:
        path = out / f"{script}-quickstart-config.json"
        path.write_text(json.dumps(cfg))
        proc = subprocess.run([node, str(REPO / "tests/ui" / f"{script}.cjs"), str(path)], capture_output=True,
                              text=True, timeout=900, env={**os.environ, "NODE_PATH": node_path})
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    # alice, sign-out, bob: the same walk as test_signin.py's, at the quick start's IdP.
    r = browser("signin_check", {
        "gw": qs.url, "idp": qs.issuer, "out": str(out), "isolation": "workspace",
        "a": {"login": "alice", "tenant": "team-a", "exp_id": a_exp_id, "exp_name": a_exp,
              "run_id": run.info.run_id, "run_name": a_run},
        "b": {"login": "bob", "tenant": "team-b", "exp_name": b_exp}})
    assert r["a_landed_at_idp_login"] and r["a_landed_in_workspace"], r
    assert r["a_home_shows_own"] and not r["a_home_shows_other"], r
    assert r["a_list_shows_own_experiment"] and not r["a_list_shows_other_experiment"], r
    assert r["a_run_shows_name"] and r["a_run_shows_metric"], r
    assert r["a_userinfo"]["body"]["subject"] == "alice" and r["a_userinfo"]["body"]["tenant"] == "team-a", r
    assert r["a_signout_confirm_shown"] and r["a_after_signout_at_idp_login"], r
    assert r["b_landed_at_idp_login"] and r["b_landed_in_workspace"], r
    assert r["b_home_shows_own"] and not r["b_home_shows_other"], r
    assert r["b_list_shows_own_experiment"] and not r["b_list_shows_other_experiment"], r
    assert r["b_userinfo"]["body"]["subject"] == "bob" and r["b_userinfo"]["body"]["tenant"] == "team-b", r
    assert not r["b_run_of_a_shows_name"] and r["b_run_of_a_shows_error"], r

    # The link the MLflow client printed for alice's run (no workspace in it).
    link = f"{qs.url}/#/experiments/{a_exp_id}/runs/{run.info.run_id}"
    r = browser("deeplink_check", {"gw": qs.url, "idp": qs.issuer, "out": str(out), "link": link,
                                   "run_name": a_run, "login": "alice",
                                   "admin": {"login": "admin", "tenants": ["team-a", "team-b"]}})
    assert any(u.startswith(qs.issuer + "/") for u in r["deep_navigations"]), r
    assert r["deep_back_at"] == f"{link}?workspace=team-a", r
    assert r["deep_run_shown"], r
    assert r["admin_chooser_shows"] == {"team-a": True, "team-b": True}, r
    info = r["admin_userinfo"]["body"]
    assert info["subject"] == "admin", info
    assert sorted((t["tenant"], t["roles"]) for t in info["tenants"]) == [
        ("team-a", ["admin"]), ("team-b", ["admin"])], info


@pytest.mark.parametrize("taken", ["MLFLOW_PORT", "GATEWAY_LISTEN", "IDP_PORT", "DATA_DIR"])
def test_a_taken_port_or_a_second_up_sh_fails_at_once(qs, tmp_path, taken):
    """Against the running quick start's own servers (the issue: another MLflow's /health was
    taken for ours): a clear message naming the variable, before anything is built or started."""
    ports = {"MLFLOW_PORT": free_port(), "GATEWAY_LISTEN": free_port(), "IDP_PORT": free_port()}
    data = tmp_path / "data"
    if taken != "DATA_DIR":
        ports[taken] = {"MLFLOW_PORT": qs.ports["mlflow"], "GATEWAY_LISTEN": qs.ports["gw"],
                        "IDP_PORT": qs.ports["idp"]}[taken]
    else:
        data = qs.data
    env = up_env(data, ports["MLFLOW_PORT"], ports["GATEWAY_LISTEN"], ports["IDP_PORT"])
    started = time.monotonic()
    proc = subprocess.run(["bash", str(UP)], env=env, cwd=str(REPO), capture_output=True, text=True,
                          timeout=120, start_new_session=True)
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    if taken == "DATA_DIR":
        assert f"another scripts/up.sh is running with DATA_DIR={qs.data}" in out, out
    else:
        assert f"port {ports[taken]} ({taken}) on 127.0.0.1 is already in use" in out, out
        assert not (data / "logs").exists()
    assert "building the component" not in out and "starting" not in out, out
    print(f"MEASURE up.sh with {taken} taken: failed after {took:.1f} s")
    # The running quick start is untouched.
    assert requests.get(qs.url + "/readyz", timeout=60).status_code == 200


@pytest.mark.parametrize("name", ["PROTECTED_ALIASES", "OIDC_ISUER"])
def test_a_variable_spin_would_ignore_stops_up_sh_at_once(tmp_path, name):
    """A setting given as a variable of its own (as before `settings`) or a misspelt variable:
    Spin would drop it silently, so scripts/up.sh refuses to start and says what to write."""
    env = up_env(tmp_path / "data", free_port(), free_port(), free_port())
    env[f"SPIN_VARIABLE_{name}"] = "champion"
    proc = subprocess.run(["bash", str(UP), "--dev"], env=env, cwd=str(REPO), capture_output=True, text=True,
                          timeout=120, start_new_session=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    if name == "PROTECTED_ALIASES":
        assert "SPIN_VARIABLE_SETTINGS='protected_aliases = <value>'" in out, out
    else:
        assert "SPIN_VARIABLE_OIDC_ISUER names no variable of the gateway" in out and "oidc_issuer" in out, out
    assert "building the component" not in out and "starting" not in out, out
    assert not (tmp_path / "data").exists()
