"""A trained model folder logged as an MLflow pyfunc model: the run's parameters and scores, and a model that
mlflow.pyfunc loads and that predicts what bertwise.load predicts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import bertwise
from bertwise.tracking.mlflow_tracking import MlflowTracking
from bertwise.tracking.model_runs import model_run
from tests.conftest import toy_data


@pytest.fixture(scope="module")
def probe_folder(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, labels = toy_data()
    folder = tmp_path_factory.mktemp("probe") / "model"
    data = pd.DataFrame({"text": texts, "label": labels})
    test = pd.DataFrame({"text": [f"{text} today" for text in texts], "label": labels})
    bertwise.train(data, strategy="probe", out=folder, model=tiny_bert, device="cpu", test=test)
    return folder


def test_the_run_holds_the_manifest_params_and_scores(probe_folder: Path) -> None:
    manifest = bertwise.load(probe_folder, device="cpu").manifest_
    record = model_run(manifest)
    assert record.name == "train probe" and record.params["strategy"] == "probe"
    assert record.params["seed"] == "0" and record.params["data.train_rows"] == "18"
    values = {point.key: point.value for point in record.metrics}
    assert values["macro_f1"] == manifest["metrics"]["macro_f1"]
    assert values["fit_seconds"] == manifest["fit_seconds"]


def test_the_logged_pyfunc_model_predicts_what_bertwise_load_predicts(
    probe_folder: Path, mlflow_uri: str, tmp_path: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    tracked = MlflowTracking(tracking_uri=mlflow_uri, experiment="models").log_model(probe_folder)
    assert tracked.error is None, tracked.message
    assert tracked.model_uri is not None and tracked.message.endswith(
        f"load the model with mlflow.pyfunc.load_model('{tracked.model_uri}')"
    )
    run = MlflowClient().get_run(str(tracked.run_id))
    assert run.info.status == "FINISHED" and run.data.params["strategy"] == "probe"
    assert run.data.tags["bertwise.kind"] == "train" and "macro_f1" in run.data.metrics

    texts = [*toy_data()[0], "a sunny day for a match", "stir the soup"]
    expected = bertwise.load(probe_folder, device="cpu").predict(texts).tolist()
    for uri in (tracked.model_uri, f"runs:/{tracked.run_id}/model"):
        model = mlflow.pyfunc.load_model(uri)
        assert model.predict(pd.DataFrame({"text": texts, "other": range(len(texts))})) == expected
    assert model.metadata.get_input_schema().input_names() == ["text"]


def test_an_edited_model_folder_is_not_logged(probe_folder: Path, mlflow_uri: str, tmp_path: Path) -> None:
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(probe_folder, edited)
    weights = next(path for path in edited.iterdir() if path.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-8])
    tracked = MlflowTracking(experiment="edited").log_model(edited)
    assert tracked.error is not None and tracked.run_id is None
    assert tracked.message.endswith(f"; the model folder {edited} is kept")
