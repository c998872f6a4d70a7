"""End to end through the installed entry point: exit codes, one-line errors, the results.json schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE


def bertwise(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bertwise", *args], capture_output=True, text=True, cwd=cwd, timeout=900, input=stdin
    )


def test_help_lists_the_commands() -> None:
    result = bertwise("--help")
    assert result.returncode == 0
    assert "compare" in result.stdout and "zero-shot" in result.stdout and "embed" in result.stdout


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; sys.argv=['bertwise','--help']\n"
        "from bertwise.cli.main import main\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("False")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "missing.csv"], "data file not found: 'missing.csv'"),
        (["compare", "{toy}", "--text-col", "sentence"], "no text column 'sentence'"),
        (["compare", "{toy}", "--strategies", "probe,magic"], "unknown strategy 'magic'"),
        (["compare", "{toy}", "--device", "tpu"], "device must be one of"),
        (["compare", "{toy}", "--zero-shot-mode", "nli", "--strategies", "zero-shot"], None),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    args: list[str], message: str | None, toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    args = [a.replace("{toy}", str(toy_csv)) for a in args] + ["--model", tiny_bert, "--out", str(tmp_path / "out")]
    result = bertwise(*args)
    if message is None:  # a strategy that fails is recorded, the others still run, and the exit code says so
        assert result.returncode == 1
        saved = json.loads((tmp_path / "out" / "results.json").read_text())
        assert saved["strategies"][0]["status"] == "failed"
        assert "natural language inference" in saved["strategies"][0]["error"]
        return
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("bertwise: error:")]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_compare_writes_the_documented_schema(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = bertwise(
        "compare",
        str(toy_csv),
        "--model",
        tiny_bert,
        "--out",
        str(out),
        "--test-size",
        "0.5",
        "--device",
        "cpu",
        "--no-progress",
        "--no-learning-curve",
        "--seeds",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert "recommendation" in result.stdout and "report.html" in result.stdout
    saved = json.loads((out / "results.json").read_text())
    assert saved["schema_version"] == 2
    assert sorted(s["name"] for s in saved["strategies"]) == ["finetune", "probe", "zero-shot"]  # cheapest first
    for strategy in saved["strategies"]:
        assert strategy["status"] == "ok"
        assert 0.0 <= strategy["metrics"]["accuracy"] <= 1.0
        low, high = strategy["metrics_interval"]["macro_f1"]
        assert 0.0 <= low <= strategy["metrics"]["macro_f1"] <= high <= 1.0
        assert set(strategy["per_class"]) == {"cooking", "sports", "weather"}
        for key in ("fit_seconds", "predict_texts_per_second", "peak_memory_mb"):
            assert strategy["cost"][key] > 0 or key == "fit_seconds"
        predictions = (out / strategy["predictions_file"]).read_text().splitlines()
        assert predictions[0].startswith("text,label,predicted_label,proba_cooking")
        assert len(predictions) == 1 + saved["dataset"]["test"]["rows"]
    assert saved["dataset"]["test"]["origin"] == "held-out"
    assert saved["protocol"]["scheme"] == "holdout"
    assert saved["dataset"]["train"]["rows"] + saved["dataset"]["test"]["rows"] == 18
    assert saved["dataset"]["classes"] == ["cooking", "sports", "weather"]
    assert saved["model"]["sha256"] and saved["model"]["id"] == tiny_bert
    assert saved["recommendation"]["strategy"] in {"zero-shot", "probe", "finetune"}
    assert saved["recommendation"]["reasons"]
    assert {"paired", "learning_curve", "diagnostics", "budget"} <= set(saved)
    assert (out / "report.html").exists() and (out / "summary.md").exists()


def test_zero_shot_command_prints_pipeline_shaped_json(tiny_bert: str) -> None:
    result = bertwise("zero-shot", "bake the bread", "--labels", "cooking,sports,weather", "--model", tiny_bert)
    assert result.returncode == 0, result.stderr
    ranking = json.loads(result.stdout)
    assert ranking["sequence"] == "bake the bread"
    assert sorted(ranking["labels"]) == ["cooking", "sports", "weather"]


@pytest.mark.integration
def test_compare_on_the_bundled_sample_with_the_embedded_model(tmp_path: Path) -> None:
    """The README's main job, restricted to the two fast strategies: real model, real data, clearly above chance."""
    out = tmp_path / "sample"
    result = bertwise("compare", str(SAMPLE), "--strategies", "zero-shot,probe", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "results.json").read_text())
    scores = {s["name"]: s["metrics"]["macro_f1"] for s in saved["strategies"]}
    assert scores["probe"] > 0.9  # 10 intents: chance is 0.1
    assert scores["zero-shot"] > 0.5
    assert saved["model"]["sha256"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def test_compare_prints_its_plan_before_the_first_strategy_and_records_its_command(
    toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["compare", str(toy_csv), "--model", tiny_bert, "--out", str(out), "--strategies", "zero-shot,probe"]
    args += ["--no-learning-curve", "--no-progress", "--device", "cpu"]
    result = bertwise(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    first_done = next(index for index, line in enumerate(lines) if line.startswith("done "))
    plan = next(index for index, line in enumerate(lines) if line.startswith("plan: cross-validation"))
    estimate = next(index for index, line in enumerate(lines) if line.startswith("  estimated time: "))
    assert plan < estimate < first_done
    assert "zero-shot" in lines[estimate] and "probe" in lines[estimate]
    saved = json.loads((out / "results.json").read_text())
    assert saved["command"] == ["bertwise", *args]
    assert saved["budget"]["suggested"] is None  # seconds long: no advice


def test_compare_passes_every_model_given_and_refuses_one_given_twice(
    toy_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bertwise.cli.main import app

    asked: list[Any] = []

    def compare(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["model"])
        raise SystemExit(0)  # what reaches the library is all this test needs

    monkeypatch.setattr("bertwise.pipeline.comparison.compare", compare)
    for models in (["a/one"], ["a/one", "b/two"]):
        options = [part for model in models for part in ("--model", model)]
        CliRunner().invoke(app, ["compare", str(toy_csv), *options, "--out", str(tmp_path / "run")])
    assert asked == ["a/one", ["a/one", "b/two"]]
    # The library's own check, through the entry point: one line, no traceback, exit code 2.
    args = ["compare", str(toy_csv), "--model", str(tmp_path), "--model", str(tmp_path), "--out", str(tmp_path / "x")]
    twice = bertwise(*args)
    assert twice.returncode == 2
    refusal = f"bertwise: error: a model is listed twice: {tmp_path}; expected each backbone once"
    assert twice.stderr.strip().splitlines() == [refusal]


@pytest.mark.parametrize("where", ["a file", "a foreign folder"])
def test_compare_refuses_a_bad_out_before_computing_anything(
    where: str, toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "results.json").write_text("{}\n")
    out = tmp_path / ("file" if where == "a file" else "theirs")
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "bertwise", "compare", str(toy_csv), "--model", tiny_bert, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BERTWISE_CACHE_DIR": str(cache)},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("bertwise: error: ") and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"'{out}'" in result.stderr
    assert not cache.exists() or not any(cache.rglob("*"))  # no calibration, no strategy, no embedding


def test_predict_refuses_an_unwritable_out_before_loading_the_model(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "in.csv").write_text("text\nhello\n")
    # The model folder does not exist either: the output's error coming first shows it is checked first.
    result = bertwise(
        "predict", str(tmp_path / "no-model"), str(tmp_path / "in.csv"), "--out", str(tmp_path / "file" / "p.csv")
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"bertwise: error: cannot write --out '{tmp_path}/file/p.csv': '{tmp_path}/file' is a file, not a folder"
    ]
