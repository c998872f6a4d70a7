"""A saved comparison logged to a real local MLflow store (sqlite), read back with MlflowClient; an unreachable
store costs one line and keeps the results; a missing mlflow package is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bertwise.exceptions import ConfigError
from bertwise.tracking.mlflow_tracking import MlflowTracking, tracking_option
from tests.report.conftest import failed_finetune, full_results


def saved_folder(folder: Path, results: dict[str, Any]) -> Path:
    """A results folder as compare leaves it: results.json, summary.md and report.html."""
    from bertwise.report.markdown import render_markdown

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    (folder / "summary.md").write_text(render_markdown(results))
    (folder / "report.html").write_text("<html><body>report</body></html>\n")
    return folder


def runs_of(experiment: str) -> dict[str, Any]:
    from mlflow import MlflowClient

    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return {run.info.run_name: run for run in client.search_runs([found.experiment_id])}


def test_a_comparison_is_a_parent_run_with_a_nested_run_per_strategy(mlflow_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    results = full_results()
    folder = saved_folder(tmp_path / "results", results)
    tracked = MlflowTracking(tracking_uri=mlflow_uri, experiment="nested").log_results(folder)
    assert tracked.error is None, tracked.message
    assert tracked.message == (
        f"mlflow: run {tracked.run_id} with 3 nested strategy runs in experiment 'nested' at {mlflow_uri}"
    )
    runs = runs_of("nested")
    parent = runs.pop("compare train.csv")
    assert parent.info.run_id == tracked.run_id and parent.info.status == "FINISHED"
    assert sorted(runs) == ["finetune", "probe", "zero-shot"]
    assert {run.data.tags["mlflow.parentRunId"] for run in runs.values()} == {parent.info.run_id}
    assert parent.data.params["seeds"] == "3" and parent.data.params["priority"] == "balanced"
    assert parent.data.tags["bertwise.recommended"] == results["recommendation"]["strategy"]

    probe, source = runs["probe"], results["strategies"][1]
    assert probe.data.params == {"C": "1.0", "strategy": "probe", "backbone": "sentence-transformers/all-MiniLM-L6-v2"}
    assert probe.data.metrics["macro_f1"] == source["metrics"]["macro_f1"]
    assert probe.data.metrics["accuracy"] == source["metrics"]["accuracy"]
    assert probe.data.metrics["macro_f1_low"] == source["metrics_interval"]["macro_f1"][0]
    assert probe.data.metrics["macro_f1_high"] == source["metrics_interval"]["macro_f1"][1]
    assert probe.data.metrics["accuracy_high"] == source["metrics_interval"]["accuracy"][1]
    assert probe.data.metrics["fit_seconds"] == source["cost"]["fit_seconds"]
    assert probe.data.metrics["peak_memory_mb"] == source["cost"]["peak_memory_mb"]

    client = MlflowClient()
    history = client.get_metric_history(probe.info.run_id, "curve_macro_f1")
    curve = results["learning_curve"]["strategies"]["probe"]
    assert sorted((m.step, m.value) for m in history) == [(p["train_rows"], p["macro_f1"]) for p in curve]
    bounds = client.get_metric_history(probe.info.run_id, "curve_macro_f1_low")
    assert sorted((m.step, m.value) for m in bounds) == [(p["train_rows"], p["interval"][0]) for p in curve]

    names = sorted(artifact.path for artifact in client.list_artifacts(parent.info.run_id))
    assert names == ["report.html", "results.json", "summary.md"]
    local = Path(client.download_artifacts(parent.info.run_id, "results.json", str(tmp_path / "download")))
    assert json.loads(local.read_text()) == results


def test_a_failed_strategy_is_a_finished_child_tagged_with_its_error(mlflow_uri: str, tmp_path: Path) -> None:
    folder = saved_folder(tmp_path / "results", failed_finetune())
    assert MlflowTracking(experiment="failed").log_results(folder).error is None  # $MLFLOW_TRACKING_URI
    finetune = runs_of("failed")["finetune"]
    assert finetune.info.status == "FINISHED" and finetune.data.tags["bertwise.status"] == "failed"
    assert finetune.data.tags["bertwise.error"].startswith("CUDA out of memory") and finetune.data.metrics == {}


def test_an_unreachable_store_costs_one_line_and_keeps_the_results(tmp_path: Path) -> None:
    folder = saved_folder(tmp_path / "results", full_results())
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    tracked = MlflowTracking(tracking_uri="http://127.0.0.1:9", experiment="away").log_results(folder)
    assert tracked.run_id is None and tracked.error is not None
    # Said at the first refusal, not after mlflow's client has retried for minutes.
    assert tracked.message == (
        "MLflow tracking at http://127.0.0.1:9 failed: cannot reach the tracking server: Connection refused; "
        f"the results are kept in {folder}"
    )
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_a_folder_without_results_is_a_failure_not_an_exception(mlflow_uri: str, tmp_path: Path) -> None:
    tracked = MlflowTracking(experiment="empty").log_results(tmp_path)
    assert tracked.error is not None and "results.json" in tracked.message


def test_without_the_mlflow_package_tracking_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError) as refused:
        MlflowTracking()
    assert str(refused.value) == "tracking with MLflow needs the mlflow package: pip install 'bertwise[mlflow]'"


def test_the_options_ask_for_a_known_tracker() -> None:
    assert tracking_option(None, None, None) is None
    assert tracking_option("mlflow", "sqlite:///x.db", None) == MlflowTracking("sqlite:///x.db", "bertwise")
    with pytest.raises(ConfigError, match=r"^--track must be one of mlflow; got 'wandb'$"):
        tracking_option("wandb", None, None)
    with pytest.raises(ConfigError, match=r"^--tracking-uri and --experiment need --track mlflow; add it or drop"):
        tracking_option(None, "sqlite:///x.db", "e")
    with pytest.raises(ConfigError, match="experiment name is empty"):
        MlflowTracking(experiment=" ")


def test_compare_with_a_tracker_and_no_folder_logs_the_reports_too(
    toy_csv: Path, tiny_bert: str, mlflow_uri: str
) -> None:
    from mlflow import MlflowClient

    import bertwise

    comparison = bertwise.compare(
        toy_csv, model=tiny_bert, strategies=["zero-shot", "probe"], folds=2, device="cpu", track=MlflowTracking()
    )
    tracked = comparison.tracked
    assert tracked is not None and tracked.error is None and tracked.run_id is not None, tracked
    client = MlflowClient()
    names = sorted(artifact.path for artifact in client.list_artifacts(tracked.run_id))
    assert names == ["report.html", "results.json", "summary.md"]
    logged = Path(client.download_artifacts(tracked.run_id, "results.json", "download"))
    assert json.loads(logged.read_text())["strategies"] == json.loads(json.dumps(comparison.to_dict()["strategies"]))
