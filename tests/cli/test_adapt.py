"""``bertwise adapt`` from the command line: it adapts, says where the folder is, and compare can use that folder."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bertwise.backbone.resolve import resolve_backbone
from bertwise.cli.main import app


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # On a shared, loaded CPU two OpenMP threads per tiny matrix product wait on each other.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_adapt_then_compare_with_the_adapted_folder(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    extra = tmp_path / "more.txt"
    extra.write_text("the striker scored twice\r\n\nrain and wind tonight\n", encoding="utf-8")
    out = tmp_path / "adapted"
    arguments = ["adapt", str(toy_csv), "--unlabeled", str(extra), "--model", tiny_bert, "--out", str(out)]
    arguments += ["--steps", "4", "--batch-size", "4", "--mlm-probability", "0.5", "--device", "cpu", "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "a fresh MLM head (decoder tied to the word embeddings): 4 steps on 18 texts" in result.output
    assert "masked-LM loss on 2 held-out texts: " in result.output
    assert f"adapted model: {out}\n" in result.output
    assert f"compare it with its base: bertwise compare {toy_csv} --model {tiny_bert} --model {out}" in result.output
    record = json.loads((out / "adaptation.json").read_text())
    assert record["texts"] + record["held_out"] == 20 and record["settings"]["steps"] == 4
    assert resolve_backbone(str(out)).sha256 != resolve_backbone(tiny_bert).sha256

    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0, again.output
    assert "found this adaptation already made" in again.output and "not trained again" in again.output

    compared = CliRunner().invoke(
        app,
        ["compare", str(toy_csv), "--model", str(out), "--strategies", "probe", "--seeds", "1", "--device", "cpu"]
        + ["--out", str(tmp_path / "run"), "--no-progress", "--no-learning-curve", "--no-report"],
    )
    assert compared.exit_code == 0, compared.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert str(out) in json.dumps(results)


def test_usage_errors_are_one_line(tmp_path: Path, toy_csv: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "bertwise", "adapt", str(tmp_path / "nothing.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("bertwise: error: data file not found") and missing.stderr.count("\n") == 1
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    blank = subprocess.run(
        [sys.executable, "-m", "bertwise", "adapt", str(toy_csv), "--unlabeled", str(empty)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert blank.returncode == 2 and blank.stderr.count("\n") == 1
    assert "holds no texts; expected one text per line" in blank.stderr
