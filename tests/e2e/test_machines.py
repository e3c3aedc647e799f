"""Machines and long runs (issue 21): the real MLflow client, configured only through environment
variables and the project's auth plugin (clients/python, MLFLOW_TRACKING_AUTH=gateway-oidc),
gets its tokens from the real `oidc-provider` (npm) whose access tokens live TTL seconds, and
talks to the gateway in auth_mode=oidc with no clock-skew leeway, so an expired token would be
refused. Bounded: a few hundred requests, well under two minutes."""

from __future__ import annotations

import time

import pytest
import requests

from conftest import OIDC_RESOURCE, Gateway, OidcProvider, environment, unique

TTL = 4
SECRETS = {"svc-team-a": "team-a-machine-secret-0123456789abcdef",
           "svc-team-b": "team-b-machine-secret-0123456789abcdef",
           "svc-retired": "retired-machine-secret-0123456789abcdef"}


def machine(client_id: str, tenant: str, roles: list[str]) -> dict:
    return {"client_id": client_id, "client_secret": SECRETS[client_id],
            "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [],
            "tenant_id": tenant, "roles": roles}


CLIENTS = [
    machine("svc-team-a", "team-a", ["editor"]),
    machine("svc-team-b", "team-b", ["editor"]),
    machine("svc-retired", "team-a", ["editor"]),
    # a person at a terminal: device flow, then refresh tokens (public client)
    {"client_id": "mlflow-cli", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code",
                                                "refresh_token"],
     "response_types": [], "redirect_uris": [], "token_endpoint_auth_method": "none",
     "application_type": "native"},
]
ACCOUNTS = {"carol": {"tenant_id": "team-a", "roles": ["editor"]}}


@pytest.fixture(scope="module")
def idp(workdir):
    p = OidcProvider(workdir / "idp", CLIENTS, ACCOUNTS, ttl=TTL).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def gw(workdir, mlflow_server, idp):
    g = Gateway(workdir / "gw", mlflow_server.url,
                idp.gateway_vars(clock_skew_seconds="0")).start()
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def tracking(gw, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", gw.url)
    mlflow.set_tracking_uri(gw.url)
    yield
    while mlflow.active_run():
        mlflow.end_run()


def sources():
    from mlflow_gateway_auth import provider

    return provider._sources


def refusals(gw: Gateway) -> int:
    """How many requests the gateway has answered 401 so far (an expired token has no subject,
    so these are counted for all callers; the tests of this module run one at a time)."""
    return sum(1 for a in gw.audit_lines_settled() if a.get("status") == 401)


def test_control_an_expired_token_is_refused(gw, idp):
    """The setup is sharp: without the plugin's refresh, a token TTL seconds old fails."""
    token = requests.post(idp.issuer + "/token", timeout=10,
                          auth=("svc-team-a", SECRETS["svc-team-a"]),
                          data={"grant_type": "client_credentials", "resource": OIDC_RESOURCE}
                          ).json()["access_token"]
    url = gw.url + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200
    time.sleep(TTL + 2)  # exp has passed; clock_skew_seconds=0
    r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 401
    assert gw.audit_for(r.headers["x-request-id"])[0]["reason"] == "token_expired"


def train(mlflow, seconds: float, tmp_path, steps: int = 300) -> str:
    """A training loop: params, `steps` metrics paced over `seconds`, an artifact, a model."""
    start = time.monotonic()
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": 0.01, "epochs": steps, "optimizer": "adam"})
        for step in range(steps):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            pause = start + seconds * (step + 1) / steps - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        report = tmp_path / "report.txt"
        report.write_text("trained\n" * 1000)
        mlflow.log_artifact(str(report))

        class Doubler(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return [2 * x for x in model_input]

        mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=[])
    return run.info.run_id


def test_training_loop_outlives_many_tokens(gw, idp, tmp_path):
    import mlflow

    before = refusals(gw)
    with environment(idp.plugin_env("svc-team-a", SECRETS["svc-team-a"])):
        mlflow.set_experiment(unique("machine-a"))
        t0 = time.monotonic()
        run_id = train(mlflow, seconds=4 * TTL, tmp_path=tmp_path)
        elapsed = time.monotonic() - t0
        got = mlflow.get_run(run_id)
        history = mlflow.MlflowClient().get_metric_history(run_id, "loss")
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report.txt",
                                                    dst_path=str(tmp_path / "dl"))
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert elapsed >= 4 * TTL and elapsed < 120
    assert got.info.user_id == "svc-team-a" and got.data.tags["tenant"] == "team-a"
    assert got.data.params["optimizer"] == "adam" and len(history) == 300
    assert open(local).read().startswith("trained")
    assert model.predict([1, 2]) == [2, 4]
    # Several tokens were used, and not one request was refused for an expired token.
    (source,) = [s for c, s in sources().items() if c.client_id == "svc-team-a"]
    assert source.fetches >= 4
    assert refusals(gw) == before


def test_team_b_machine_is_refused_team_a_run(gw, idp, tmp_path):
    import mlflow
    from mlflow.exceptions import MlflowException

    with environment(idp.plugin_env("svc-team-a", SECRETS["svc-team-a"])):
        exp_id = mlflow.set_experiment(unique("machine-a-private")).experiment_id
        with mlflow.start_run() as run:
            mlflow.log_metric("acc", 0.9)
    with environment(idp.plugin_env("svc-team-b", SECRETS["svc-team-b"])):
        with pytest.raises(MlflowException):
            mlflow.get_run(run.info.run_id)
        with pytest.raises(MlflowException):
            mlflow.MlflowClient().log_metric(run.info.run_id, "acc", 0.1)
        assert exp_id not in [e.experiment_id for e in mlflow.search_experiments()]
    assert any(a.get("subject") == "svc-team-b" and a.get("status") in (403, 404)
               for a in gw.audit_lines_settled())


def test_wrong_secret_is_a_clear_error(gw, idp):
    import mlflow
    from mlflow.exceptions import MlflowException

    wrong = "not-the-secret-0123456789abcdef"
    with environment(idp.plugin_env("svc-team-b", wrong)):
        with pytest.raises(MlflowException) as e:
            mlflow.search_experiments()
    msg = str(e.value)
    assert "invalid_client" in msg and "svc-team-b" in msg and idp.issuer in msg, msg
    assert wrong not in msg


def test_revoked_client_gets_a_clear_error(gw, idp):
    import mlflow
    from mlflow.exceptions import MlflowException

    before = refusals(gw)
    with environment(idp.plugin_env("svc-retired", SECRETS["svc-retired"])):
        mlflow.search_experiments()  # works while the client is registered
        idp.restart(clients=[c for c in CLIENTS if c["client_id"] != "svc-retired"])
        try:
            # Its last token expires within TTL seconds; from then on the IdP says invalid_client.
            deadline = time.monotonic() + 6 * TTL
            while True:
                try:
                    mlflow.search_experiments()
                except MlflowException as e:
                    msg = str(e)
                    break
                assert time.monotonic() < deadline, "a revoked client kept working"
                time.sleep(0.5)
        finally:
            idp.restart(clients=CLIENTS)
    assert "invalid_client" in msg and "svc-retired" in msg, msg
    assert SECRETS["svc-retired"] not in msg
    assert refusals(gw) == before  # refused by the IdP; no expired token was sent to the gateway


def device_approval(idp: OidcProvider, login: str):
    prompts: list[dict] = []

    def approve(answer: dict) -> None:
        prompts.append(answer)
        idp.approve_device_code(answer["verification_uri_complete"], login)

    return prompts, approve


def test_device_code_then_refresh_across_lifetimes(gw, idp, tmp_path):
    import mlflow
    from mlflow_gateway_auth import set_device_prompt

    prompts, approve = device_approval(idp, "carol")
    before = refusals(gw)
    set_device_prompt(approve)
    try:
        with environment(idp.plugin_env("mlflow-cli", grant="device_code",
                                        scope="openid offline_access")):
            mlflow.set_experiment(unique("carol"))
            run_id = train(mlflow, seconds=2.5 * TTL, tmp_path=tmp_path, steps=100)
            got = mlflow.get_run(run_id)
    finally:
        set_device_prompt(None)
    assert len(prompts) == 1  # one approval, then refresh tokens
    assert got.info.user_id == "carol" and got.data.tags["tenant"] == "team-a"
    (source,) = [s for c, s in sources().items() if c.client_id == "mlflow-cli"
                 and c.grant == "device_code"]
    assert source.fetches >= 3
    assert refusals(gw) == before


def test_refresh_token_from_the_environment(gw, idp, tmp_path):
    """A refresh token obtained once (here: the device flow by hand) drives a job."""
    import mlflow

    answer = requests.post(idp.issuer + "/device/auth", timeout=10, data={
        "client_id": "mlflow-cli", "scope": "openid offline_access",
        "resource": OIDC_RESOURCE}).json()
    idp.approve_device_code(answer["verification_uri_complete"], "carol")
    tokens = requests.post(idp.issuer + "/token", timeout=10, data={
        "client_id": "mlflow-cli", "device_code": answer["device_code"],
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}).json()
    before = refusals(gw)
    with environment(idp.plugin_env("mlflow-cli", grant="refresh_token",
                                    refresh_token=tokens["refresh_token"])):
        mlflow.set_experiment(unique("carol-job"))
        run_id = train(mlflow, seconds=2.5 * TTL, tmp_path=tmp_path, steps=60)
        assert mlflow.get_run(run_id).info.user_id == "carol"
    assert refusals(gw) == before
