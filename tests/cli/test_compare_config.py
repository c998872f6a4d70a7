"""`bertwise compare --config FILE --set strategy.parameter=value`: what reaches the library, in which precedence,
the one-line refusals, and a results.json run again from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bertwise.cli.main import app
from bertwise.exceptions import ConfigError


@pytest.fixture()
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keywords the CLI hands to the library's compare (which then does nothing)."""
    calls: list[dict[str, Any]] = []

    def compare(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr("bertwise.pipeline.comparison.compare", compare)
    return calls


def test_the_command_line_wins_over_the_file_which_wins_over_the_defaults(
    asked: list[dict[str, Any]], toy_csv: Path, tmp_path: Path
) -> None:
    config = tmp_path / "bertwise.toml"
    config.write_text(
        f'[compare]\ndata = "{toy_csv.name}"\nseeds = 5\nfolds = 4\npriority = "cost"\n'
        'strategies = ["probe", "finetune"]\n'
        "[params.finetune]\nlearning_rate = 1e-4\nmax_epochs = 6\n"
    )
    # --folds 5 is the default's value, typed: what the user typed wins over the file even so.
    args = ["compare", "--config", str(config), "--seeds", "2", "--folds", "5", "--set", "finetune.max_epochs=8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    options = asked[0]
    assert options["data"] == str(tmp_path / toy_csv.name)  # from the file, read from its folder
    assert (options["seeds"], options["folds"]) == (2, 5)  # typed
    assert options["priority"] == "cost" and options["strategies"] == ["probe", "finetune"]  # the file's
    assert options["protocol"] == "sequential" and options["seed"] == 0  # neither: the defaults
    assert options["params"] == {"finetune": {"learning_rate": 1e-4, "max_epochs": 8}}


def test_without_a_config_file_every_option_is_the_command_lines(asked: list[dict[str, Any]], toy_csv: Path) -> None:
    result = CliRunner().invoke(app, ["compare", str(toy_csv), "--set", "probe.Cs=[0.5, 5]", "--priority", "cost"])
    assert result.exit_code == 0, result.output
    assert asked[0]["data"] == toy_csv and asked[0]["priority"] == "cost" and asked[0]["folds"] == 5
    assert asked[0]["params"] == {"probe": {"Cs": (0.5, 5.0)}}


@pytest.mark.parametrize(
    ("args", "file", "message"),
    [
        (
            ["--set", "finetune.learnin_rate=5e-5"],
            None,
            "--set finetune.learnin_rate: finetune has no parameter 'learnin_rate' (did you mean 'learning_rate'?); "
            "it has: learning_rate, batch_size, min_epochs, max_epochs, min_steps, patience, evaluations_per_epoch, "
            "warmup_ratio, weight_decay, validation_fraction, max_length",
        ),
        (
            ["--config", "{folder}/bertwise.toml"],
            '[compare]\nseeds = "three"\n',
            '{folder}/bertwise.toml: [compare] seeds: expected an integer, found "three"',
        ),
    ],
)
def test_a_bad_setting_is_refused_before_any_work(
    args: list[str], file: str | None, message: str, toy_csv: Path, tmp_path: Path
) -> None:
    """The message in full; tests/cli/test_usage_errors.py runs such cases through the entry point (one line, exit 2,
    before torch loads)."""
    if file is not None:
        (tmp_path / "bertwise.toml").write_text(file)
    args = [arg.format(folder=tmp_path) for arg in args]
    result = CliRunner().invoke(app, ["compare", str(toy_csv), "--out", str(tmp_path / "out"), *args])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == message.format(folder=tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_results_json_runs_its_comparison_again(tiny_bert: str, toy_csv: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    options = ["--strategies", "probe", "--model", tiny_bert, "--no-learning-curve", "--no-progress"]
    options += ["--no-report", "--device", "cpu", "--set", "probe.cv=2", "--set", "probe.Cs=[0.5]"]
    result = CliRunner().invoke(app, ["compare", str(toy_csv), *options, "--out", str(first)])
    assert result.exit_code == 0, result.output
    saved = json.loads((first / "results.json").read_text())

    second = tmp_path / "second"
    result = CliRunner().invoke(app, ["compare", "--config", str(first / "results.json"), "--out", str(second)])
    assert result.exit_code == 0, result.output
    again = json.loads((second / "results.json").read_text())
    assert again["effective_config"]["compare"] == {**saved["effective_config"]["compare"], "out": str(second)}
    assert (
        again["effective_config"]["params"] == saved["effective_config"]["params"] == {"probe": {"cv": 2, "Cs": [0.5]}}
    )
    assert again["resumed"] == ["calibration", "probe"]  # the run cache answers only the very same settings
    assert again["strategies"][0]["params"] == saved["strategies"][0]["params"]
    assert again["strategies"][0]["metrics"] == saved["strategies"][0]["metrics"]
    assert not (second / "report.html").exists()  # --no-report came along too
