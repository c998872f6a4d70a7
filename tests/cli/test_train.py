"""``bertwise train`` and ``compare --save-best`` from the command line: the summary, the folder, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bertwise.artifact.folder import load
from bertwise.cli.main import app
from tests.conftest import toy_data


def bertwise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bertwise", *args], capture_output=True, text=True, timeout=600)


def test_train_writes_a_folder_and_a_short_summary(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        ["train", str(toy_csv), "--strategy", "probe", "--out", str(out), "--model", tiny_bert]
        + ["--device", "cpu", "--seed", "3", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert f"saved probe model to {out} (" in result.output and " MB)" in result.output
    assert "classes: cooking, sports, weather" in result.output
    assert f"trained on 18 rows of {toy_csv} in " in result.output
    assert f"predict with: bertwise predict {out} FILE" in result.output
    model = load(out, device="cpu")
    assert model.manifest_["params"]["seed"] == 3 and model.manifest_["params"]["model"] == tiny_bert
    texts, labels = toy_data()
    assert model.predict(texts).shape == (18,)


def test_train_with_a_test_file_prints_its_scores(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    texts, labels = toy_data()
    test = tmp_path / "test.csv"
    pd.DataFrame({"text": [f"{t} today" for t in texts], "label": labels}).to_csv(test, index=False)
    result = CliRunner().invoke(
        app,
        ["train", str(toy_csv), "--strategy", "zero-shot", "--out", str(tmp_path / "model"), "--test", str(test)]
        + ["--model", tiny_bert, "--device", "cpu", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    metrics = load(tmp_path / "model", device="cpu").manifest_["metrics"]
    assert f"test: macro-F1 {metrics['macro_f1'] * 100:.1f}, accuracy " in result.output
    assert f"on 18 rows of {test}" in result.output


def test_train_errors_are_one_line_with_exit_code_2(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    result = bertwise("train", str(toy_csv), "--strategy", "magic", "--out", str(tmp_path / "m"), "--model", tiny_bert)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "bertwise: error: unknown strategy 'magic'; expected one of zero-shot, probe, finetune, lora, setfit"
    )
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "report.docx").write_text("x")
    result = bertwise("train", str(toy_csv), "--strategy", "probe", "--out", str(tmp_path / "taken"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a bertwise model folder (it holds report.docx)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_save_best_from_the_command_line(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    common = [str(toy_csv), "--model", tiny_bert, "--device", "cpu", "--no-learning-curve", "--no-report"]
    result = bertwise(
        "compare", *common, "--strategies", "probe", "--out", str(tmp_path / "r"), "--save-best", str(tmp_path / "b")
    )
    assert result.returncode == 0, result.stderr
    assert f"model: {tmp_path / 'b'} (probe, " in result.stdout
    assert load(tmp_path / "b", device="cpu").manifest_["comparison"]["recommended"] == "probe"

    # The tiny plain BERT has no NLI head, so the only strategy fails and nothing can be recommended.
    nli = ["--strategies", "zero-shot", "--zero-shot-mode", "nli"]
    failed = bertwise("compare", *common, *nli, "--out", str(tmp_path / "r2"), "--save-best", str(tmp_path / "b2"))
    assert failed.returncode == 1
    assert "bertwise: error: --save-best: no model saved to" in failed.stderr
    assert "no strategy was recommended because none finished" in failed.stderr
    assert not (tmp_path / "b2").exists()
    assert json.loads((tmp_path / "r2" / "results.json").read_text())["recommendation"]["strategy"] is None
    assert np.isfinite(
        json.loads((tmp_path / "r" / "results.json").read_text())["strategies"][0]["metrics"]["macro_f1"]
    )
