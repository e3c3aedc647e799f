"""A realistic data-science session with the real MLflow Python client through the gateway:
experiment, run, params and metrics in a loop, artifacts (single and directory), an sklearn
model logged through proxied artifacts, searches, metric history and artifact download. The same
calls as another tenant against these ids fail with a clear MlflowException."""

import pathlib

import pytest

from conftest import Caller, unique


@pytest.fixture(scope="module")
def session(gw, tmp_path_factory):
    a = Caller(gw, tenant="team-a", subject="alice")
    files = tmp_path_factory.mktemp("files")
    (files / "report.txt").write_text("accuracy report")
    d = files / "plots"
    d.mkdir()
    (d / "a.csv").write_text("x,y\n1,2\n")
    (d / "b.csv").write_text("x,y\n3,4\n")
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    with a.mlflow() as mlflow:
        exp_id = mlflow.set_experiment(unique("session")).experiment_id
        with mlflow.start_run() as run:
            mlflow.log_param("C", 1.0)
            for step in range(20):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metrics({f"m{i}": float(i) for i in range(100)})
            mlflow.log_artifact(str(files / "report.txt"))
            mlflow.log_artifacts(str(d), artifact_path="plots")
            model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
            info = mlflow.sklearn.log_model(model, name="model")
    return a, exp_id, run.info.run_id, info


def test_owner_session_succeeds(session, tmp_path):
    a, exp_id, run_id, info = session
    with a.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        runs = mlflow.search_runs(experiment_ids=[exp_id], output_format="list")
        assert [r.info.run_id for r in runs] == [run_id]
        hist = client.get_metric_history(run_id, "loss")
        assert len(hist) == 20
        assert runs[0].data.metrics["m99"] == 99.0
        arts = sorted(f.path for f in client.list_artifacts(run_id))
        assert "report.txt" in arts and "plots" in arts
        out = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="plots", dst_path=str(tmp_path)))
        assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv"]
        loaded = mlflow.sklearn.load_model(info.model_uri)
        assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
        models = client.search_logged_models(experiment_ids=[exp_id])
        assert [m.model_id for m in models] == [info.model_id]


def test_other_tenant_gets_clear_errors(session, gw, tmp_path):
    _, exp_id, run_id, info = session
    b = Caller(gw, tenant="team-b", subject="bob")
    import mlflow.exceptions

    with b.mlflow() as mlflow:
        client = mlflow.MlflowClient()
        attempts = [
            lambda: client.get_run(run_id),
            lambda: mlflow.search_runs(experiment_ids=[exp_id], output_format="list"),
            lambda: client.get_metric_history(run_id, "loss"),
            lambda: client.list_artifacts(run_id),
            lambda: client.log_metric(run_id, "loss", 0.0),
            lambda: client.set_tag(run_id, "owner", "bob"),
            lambda: mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report.txt", dst_path=str(tmp_path)),
            lambda: mlflow.sklearn.load_model(info.model_uri),
            lambda: client.get_logged_model(info.model_id),
            lambda: client.search_logged_models(experiment_ids=[exp_id]),
        ]
        for attempt in attempts:
            with pytest.raises(Exception) as e:
                attempt()
            text = str(e.value)
            assert "PERMISSION_DENIED" in text or "403" in text or "does not exist or belongs to another tenant" in text, text
        assert exp_id not in [x.experiment_id for x in mlflow.search_experiments()]
