"""``train`` and ``compare(save_best=...)`` on tiny random BERTs: the saved model predicts exactly what compare
reported for that strategy and split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bertwise.artifact.folder import load
from bertwise.exceptions import ConfigError, DataError
from bertwise.pipeline.comparison import compare
from bertwise.training import train
from tests.conftest import toy_data

QUICK = {"device": "cpu", "learning_curve": False, "bootstrap_resamples": 200, "seeds": 1, "report": False}


def reported(results: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(results / f"predictions-{name}.csv", keep_default_na=False)


def assert_predicts_as_reported(model: Any, frame: pd.DataFrame) -> None:
    texts = frame["text"].tolist()
    assert model.predict(texts).tolist() == frame["predicted_label"].tolist()
    columns = [f"proba_{label}" for label in model.classes_]
    # predictions-*.csv holds full-precision floats: the saved model's probabilities are the reported ones.
    np.testing.assert_allclose(model.predict_proba(texts), frame[columns].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["probe", "finetune"])
def test_save_best_predicts_exactly_the_reported_predictions(
    name: str, data_folder: Path, tiny_bert: str, tmp_path: Path
) -> None:
    comparison = compare(
        data_folder, strategies=[name], model=tiny_bert, out=tmp_path / "results", save_best=tmp_path / "best", **QUICK
    )
    assert comparison.saved_model == tmp_path / "best" and comparison.save_best_error is None
    model = load(tmp_path / "best", device="cpu")
    assert_predicts_as_reported(model, reported(tmp_path / "results", name))
    manifest = model.manifest_
    saved = json.loads((tmp_path / "results" / "results.json").read_text())["strategies"][0]
    assert manifest["metrics"]["macro_f1"] == saved["metrics"]["macro_f1"]
    assert manifest["metrics"]["scheme"] == "fixed-test" and manifest["metrics"]["test_rows"] == 18
    assert manifest["comparison"]["refit"] is False
    assert manifest["comparison"]["reproduces_reported_predictions"] is True
    assert manifest["training_data"]["rows"] == 36
    assert manifest["params"] == {key: value for key, value in saved["params"].items() if key != "device"}
    assert all(result.estimator is None for result in comparison.results)  # no model outlives the saving


def test_a_strategy_resumed_from_the_run_cache_is_refit_to_the_same_model(
    data_folder: Path, tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "cache"))
    options: dict[str, Any] = {"strategies": ["probe"], "model": tiny_bert, **QUICK}
    compare(data_folder, out=tmp_path / "first", **options)
    comparison = compare(data_folder, out=tmp_path / "second", save_best=tmp_path / "best", **options)
    assert "probe" in comparison.resumed
    model = load(tmp_path / "best", device="cpu")
    assert model.manifest_["comparison"]["refit"] is True
    assert model.manifest_["comparison"]["reproduces_reported_predictions"] is True
    assert_predicts_as_reported(model, reported(tmp_path / "second", "probe"))


def test_under_cross_validation_the_model_is_refit_on_every_row(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    comparison = compare(
        toy_csv, strategies=["probe"], model=tiny_bert, out=tmp_path / "results", save_best=tmp_path / "best", **QUICK
    )
    assert comparison.protocol.scheme == "cross-validation"
    manifest = load(tmp_path / "best", device="cpu").manifest_
    assert manifest["training_data"]["rows"] == 18  # every row, where each fold's model saw 4/5 of them
    assert "cross-validation" in manifest["trained_on"] and "no single model" in manifest["trained_on"]
    assert manifest["comparison"]["refit"] is True and manifest["metrics"]["scheme"] == "cross-validation"


def test_when_nothing_is_recommended_no_model_is_saved_and_results_stay(
    toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    comparison = compare(
        toy_csv,
        strategies=["zero-shot"],
        zero_shot_mode="nli",  # the tiny plain BERT has no NLI head: zero-shot fails
        model=tiny_bert,
        out=tmp_path / "results",
        save_best=tmp_path / "best",
        **QUICK,
    )
    assert comparison.saved_model is None
    assert comparison.save_best_error is not None
    assert "no strategy was recommended because none finished (zero-shot:" in comparison.save_best_error
    assert not (tmp_path / "best").exists()
    assert json.loads((tmp_path / "results" / "results.json").read_text())["strategies"][0]["status"] == "failed"


def test_a_foreign_save_best_folder_is_refused_before_any_work(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "data.csv").write_text("mine")
    with pytest.raises(ConfigError, match=r"'.*best' exists and is not a bertwise model folder \(it holds data\.csv\)"):
        compare(toy_csv, model=tiny_bert, out=tmp_path / "results", save_best=tmp_path / "best", **QUICK)
    assert not (tmp_path / "results").exists()


# train ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["probe", "finetune"])
def test_train_with_params_from_reproduces_compares_fixed_test_predictions(
    name: str, data_folder: Path, tiny_bert: str, tmp_path: Path
) -> None:
    compare(data_folder, strategies=[name], model=tiny_bert, out=tmp_path / "results", **QUICK)
    trained = train(
        data_folder, strategy=name, out=tmp_path / "model", device="cpu", params_from=tmp_path / "results/results.json"
    )
    model = load(tmp_path / "model", device="cpu")
    frame = reported(tmp_path / "results", name)
    assert_predicts_as_reported(model, frame)
    assert_predicts_as_reported(trained, frame)
    saved = json.loads((tmp_path / "results" / "results.json").read_text())["strategies"][0]
    assert model.manifest_["metrics"]["macro_f1"] == saved["metrics"]["macro_f1"]
    assert model.manifest_["metrics"]["test_rows"] == 18 and model.manifest_["params_from"].endswith("results.json")


def test_train_on_a_file_saves_an_unevaluated_model(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    trained = train(toy_csv, strategy="probe", out=tmp_path / "model", model=tiny_bert, device="cpu")
    model = load(tmp_path / "model", device="cpu")
    assert model.manifest_["metrics"] is None and model.manifest_["training_data"]["rows"] == 18
    assert model.manifest_["trained_on"] == f"all 18 rows of {toy_csv}"
    texts, _ = toy_data()
    np.testing.assert_allclose(model.predict_proba(texts), trained.predict_proba(texts), rtol=0, atol=1e-12)
    assert trained.folder_ == (tmp_path / "model").resolve()


def test_train_finetune_records_its_validation_score_and_takes_params(
    toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    train(
        toy_csv,
        strategy="finetune",
        out=tmp_path / "model",
        model=tiny_bert,
        device="cpu",
        params={"min_steps": 4, "min_epochs": 1, "max_epochs": 2, "batch_size": 8},
    )
    manifest = load(tmp_path / "model", device="cpu").manifest_
    assert manifest["params"]["max_epochs"] == 2 and manifest["details"]["optimizer_steps"] <= 4
    assert 0 <= manifest["metrics"]["validation_macro_f1"] <= 1 and manifest["metrics"]["validation_rows"] >= 1
    assert "not a test score" in manifest["metrics"]["evaluated_by"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"strategy": "magic"},
            ConfigError,
            r"unknown strategy 'magic'; expected one of zero-shot, probe, finetune, lora, setfit",
        ),
        ({"params_from": "missing.json"}, ConfigError, r"--params-from 'missing\.json' not found"),
        ({"params": {"magic": 1}}, ConfigError, r"'magic' is not a parameter of ProbeClassifier"),
        ({"test": "nowhere.csv"}, DataError, r"data file not found: 'nowhere\.csv'"),
    ],
)
def test_train_refuses_bad_input_with_what_was_expected(
    kwargs: dict[str, Any], error: type[Exception], message: str, toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    options: dict[str, Any] = {"strategy": "probe", "out": tmp_path / "model", "model": tiny_bert, "device": "cpu"}
    with pytest.raises(error, match=message):
        train(toy_csv, **{**options, **kwargs})
    assert not (tmp_path / "model").exists()


def test_params_from_must_hold_a_finished_result_for_the_strategy(
    toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"strategies": [{"name": "probe", "status": "failed", "params": {}}]}))
    options: dict[str, Any] = {"out": tmp_path / "model", "model": tiny_bert, "params_from": results}
    with pytest.raises(ConfigError, match=r"has no result for 'finetune'; it ran: probe"):
        train(toy_csv, strategy="finetune", **options)
    with pytest.raises(ConfigError, match=r"probe has status 'failed' and no usable params"):
        train(toy_csv, strategy="probe", **options)
    results.write_text("not json")
    with pytest.raises(ConfigError, match=r"cannot be read as JSON .*; expected the results\.json written by compare"):
        train(toy_csv, strategy="probe", **options)


def test_train_refuses_to_overwrite_a_foreign_folder_before_training(
    toy_csv: Path, tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.me").write_text("x")

    def no_fit(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("trained before checking the output folder")

    monkeypatch.setattr(ProbeClassifier, "fit", no_fit)
    with pytest.raises(ConfigError, match=r"'.*out' exists and is not a bertwise model folder \(it holds keep\.me\)"):
        train(toy_csv, strategy="probe", out=tmp_path / "out", model=tiny_bert)
    shutil.rmtree(tmp_path / "out")
