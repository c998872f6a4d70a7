"""``--track mlflow`` on ``bertwise compare`` and ``bertwise train``: a real comparison's runs in a local MLflow store,
and an unreachable store that costs one line and exit code 1 while the results stay saved."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from bertwise.cli.main import app


def compare_args(toy_csv: Path, tiny_bert: str, out: Path, uri: str) -> list[str]:
    strategies = [
        "--strategies",
        "zero-shot,probe",
        "--folds",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
    ]
    tracking = ["--track", "mlflow", "--tracking-uri", uri, "--experiment", "cli"]
    return ["compare", str(toy_csv), "--model", tiny_bert, *strategies, *tracking]


def test_compare_logs_its_runs_and_says_where(toy_csv: Path, tiny_bert: str, mlflow_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    out = tmp_path / "results"
    result = CliRunner().invoke(app, compare_args(toy_csv, tiny_bert, out, mlflow_uri))
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("mlflow: run ") and line.endswith(f" in experiment 'cli' at {mlflow_uri}")
    run_id = line.split()[2]

    client = MlflowClient()
    saved = json.loads((out / "results.json").read_text())
    logged = Path(client.download_artifacts(run_id, "results.json", str(tmp_path / "download")))
    assert json.loads(logged.read_text()) == saved
    children = client.search_runs([client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    by_name = {child.info.run_name: child for child in children}
    assert sorted(by_name) == ["probe", "zero-shot"]
    probe = next(entry for entry in saved["strategies"] if entry["name"] == "probe")
    assert by_name["probe"].data.metrics["macro_f1_low"] == probe["metrics_interval"]["macro_f1"][0]
    # The comparison's own learning curve, point by point, at its training sizes.
    curve = saved["learning_curve"]["strategies"]["probe"]
    history = client.get_metric_history(by_name["probe"].info.run_id, "curve_macro_f1")
    assert sorted((m.step, m.value) for m in history) == [(p["train_rows"], p["macro_f1"]) for p in curve]


def test_an_unreachable_server_keeps_the_results_and_says_so_in_one_line(
    toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(app, compare_args(toy_csv, tiny_bert, out, "http://127.0.0.1:9"))
    assert result.exit_code == 1, result.output
    warned, failed = result.stderr.strip().splitlines()[0], result.stderr.strip().splitlines()[-1]
    assert warned == (
        "bertwise: warning: --track: cannot reach the tracking server: Connection refused at http://127.0.0.1:9; "
        "tracking is tried again when done"
    )
    assert failed == (
        "bertwise: error: --track: MLflow tracking at http://127.0.0.1:9 failed: cannot reach the tracking server: "
        f"Connection refused; the results are kept in {out}"
    )
    assert json.loads((out / "results.json").read_text())["recommendation"]["strategy"] in ("zero-shot", "probe")
    assert (out / "report.html").is_file() and (out / "summary.md").is_file()


def test_train_logs_the_model_as_a_pyfunc_model(toy_csv: Path, tiny_bert: str, mlflow_uri: str, tmp_path: Path) -> None:
    import mlflow

    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        ["train", str(toy_csv), "--strategy", "zero-shot", "--out", str(out), "--model", tiny_bert, "--device", "cpu"]
        + ["--no-progress", "--track", "mlflow", "--experiment", "cli-train"],
    )
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("mlflow: run ") and f"in experiment 'cli-train' at {mlflow_uri};" in line
    model_uri = line.rsplit("mlflow.pyfunc.load_model('", 1)[1].removesuffix("')")
    predicted = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({"text": ["rain all day", "a goal"]}))
    assert len(predicted) == 2 and set(predicted) <= {"cooking", "sports", "weather"}
