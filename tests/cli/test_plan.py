"""The plan compare prints before any training: its lines (report.table.plan_lines) on fabricated plans, and its place
before the first strategy in a real comparison and on the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from bertwise.evaluation.protocol import Protocol
from bertwise.report.table import budget_option, plan_lines

HOLDOUT = Protocol(scheme="holdout", folds=(), seeds=(0, 1, 2), why="2,700 rows: a 0.2 hold-out")
PARTS = {"zero-shot": 30.0, "probe": 90.0, "finetune": 3600.0, "finetune curve": 600.0}


def budget(**changes: Any) -> dict[str, Any]:
    return {
        "limit_seconds": None,
        "estimated_seconds": sum(PARTS.values()),
        "estimated_seconds_uncut": sum(PARTS.values()),
        "estimated_seconds_by_part": PARTS,
        "cuts": [],
        "suggested": None,
        **changes,
    }


def test_a_long_plan_without_a_budget_names_the_budget_that_fits_and_what_it_would_cut() -> None:
    suggested = {
        "when_over_seconds": 1800,
        "budget_seconds": 900,
        "estimated_seconds": 840.0,
        "cuts": ["finetune seeds 3 -> 1", "no finetune learning curve (its full-data point is kept)"],
    }
    lines = plan_lines(HOLDOUT, budget(suggested=suggested))
    assert lines[0] == "plan: holdout, fine-tuning seeds [0, 1, 2]: 2,700 rows: a 0.2 hold-out"
    assert lines[1] == (
        "  estimated time: 72.0 min (zero-shot 30 s, probe 90 s, finetune 60.0 min, finetune curve 10.0 min)"
    )
    assert lines[2] == (
        "  estimated 72.0 min, over 30.0 min: --budget 15m would cut it to about 14.0 min (finetune seeds 3 -> 1; "
        "no finetune learning curve (its full-data point is kept)); running the full plan"
    )
    assert len(lines) == 3


def test_a_short_plan_gets_no_advice_and_names_no_seeds_without_fine_tuning() -> None:
    lines = plan_lines(HOLDOUT, budget(estimated_seconds_by_part={"probe": 5.0}, estimated_seconds=5.0))
    assert lines == ["plan: holdout: 2,700 rows: a 0.2 hold-out", "  estimated time: 5.0 s (probe 5.0 s)"]


def test_a_budget_shows_its_cuts_or_that_nothing_was_cut() -> None:
    cut = plan_lines(HOLDOUT, budget(limit_seconds=600.0, estimated_seconds=580.0, cuts=["finetune seeds 3 -> 1"]))
    assert cut[2:] == ["  --budget 10m: the full plan is 72.0 min, cut to fit", "  budget cut: finetune seeds 3 -> 1"]
    fits = plan_lines(HOLDOUT, budget(limit_seconds=7200.0))
    assert fits[2:] == ["  --budget 2h: the full plan fits, nothing cut"]


def test_a_sequential_plan_names_its_first_runs_and_says_it_runs_without_a_deadline() -> None:
    suggested = {"when_over_seconds": 1800, "budget_seconds": 900, "estimated_seconds": 840.0, "cuts": []}
    lines = plan_lines(HOLDOUT, budget(protocol="sequential", estimated_seconds_first_runs=1320.0, suggested=suggested))
    assert lines[2] == (
        "  sequential protocol: one run of each strategy is about 22.0 min; the rest runs only where it can still "
        "change the recommendation"
    )
    assert lines[3] == (
        "  estimated 72.0 min, over 30.0 min: --budget 15m would run one of each strategy in about 14.0 min and the "
        "rest while time is left; running the sequential protocol without a deadline"
    )


def test_budget_option_spells_durations_as_the_option_reads_them() -> None:
    assert [budget_option(s) for s in (900, 3600, 5400, 90)] == ["15m", "1h", "90m", "90s"]


def test_a_long_plan_no_budget_can_fit_says_so_instead_of_naming_one() -> None:
    suggested = {
        "when_over_seconds": 1800,
        "budget_seconds": 900,
        "estimated_seconds": 2400.0,
        "fits": False,
        "cuts": ["finetune seeds 3 -> 1"],
    }
    (advice,) = plan_lines(HOLDOUT, budget(suggested=suggested))[2:]
    assert advice == (
        "  estimated 72.0 min, over 30.0 min: even --budget 15m would leave about 40.0 min after its cuts (finetune "
        "seeds 3 -> 1), so no budget makes it fit 15.0 min: fewer strategies (--strategies) or fewer rows would; "
        "running the full plan"
    )
    assert "would cut it to" not in advice


def test_the_plan_is_announced_before_the_first_strategy_finishes(
    tiny_bert: str, toy_csv: Path, tmp_path: Path
) -> None:
    from bertwise.pipeline.comparison import compare

    events: list[str] = []
    compare(
        toy_csv,
        model=tiny_bert,
        out=tmp_path / "out",
        strategies=["zero-shot", "probe"],
        device="cpu",
        learning_curve=False,
        bootstrap_resamples=200,
        cache=False,
        on_plan=lambda comparison: events.append(f"plan with {len(comparison.results)} results"),
        on_result=lambda result: events.append(f"{result.name} {result.status}"),
    )
    # The sequential protocol runs the cheaper strategy first, whichever it is here.
    assert events[0] == "plan with 0 results" and sorted(events[1:]) == ["probe ok", "zero-shot ok"]


# A machine this slow makes the default plan hours long (the tiny model would run it in seconds): the plan, not the
# run, is what these tests look at.
SLOW = {"encode_texts_per_second": 50.0, "train_examples_per_second": 10.0, "probe_seconds_per_row": 0.001}


class StrategyStarted(Exception):
    pass


def test_the_command_prints_the_plan_and_the_budget_that_fits_before_any_strategy_runs(
    tiny_bert: str,
    toy_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bertwise.cli.main import main
    from bertwise.evaluation.budget import Calibration

    monkeypatch.setattr("bertwise.evaluation.budget.calibrate", lambda *args, **kwargs: Calibration(**SLOW))
    printed_before: list[str] = []

    def first_strategy(*args: Any, **kwargs: Any) -> Any:
        printed_before.append(capsys.readouterr().err)  # all the command had printed when the first strategy began
        raise StrategyStarted

    monkeypatch.setattr("bertwise.evaluation.runner.evaluate_strategy", first_strategy)
    out = tmp_path / "out"
    argv = ["bertwise", "compare", str(toy_csv), "--model", tiny_bert, "--out", str(out), "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", [*argv, "--no-cache", "--no-progress"])
    with pytest.raises(StrategyStarted):
        main()
    (printed,) = printed_before
    lines = printed.splitlines()
    assert lines[0].startswith("plan: cross-validation (5 folds), fine-tuning seeds [0]: ")
    assert lines[1].startswith("  estimated time: ") and all(
        name in lines[1] for name in ("zero-shot", "probe", "finetune", "finetune curve")
    )
    (advice,) = [line for line in lines if "--budget 15m would run one of each strategy in about" in line]
    assert (
        advice.startswith("  estimated ")
        and "over 30.0 min" in advice
        and advice.endswith("running the sequential protocol without a deadline")
    )
    assert not (out / "results.json").exists()  # nothing ran yet


def test_a_budget_s_cuts_are_printed_before_any_strategy_runs(
    tiny_bert: str,
    toy_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bertwise.cli.main import main
    from bertwise.evaluation.budget import Calibration

    monkeypatch.setattr("bertwise.evaluation.budget.calibrate", lambda *args, **kwargs: Calibration(**SLOW))
    printed_before: list[str] = []

    def first_strategy(*args: Any, **kwargs: Any) -> Any:
        printed_before.append(capsys.readouterr().err)
        raise StrategyStarted

    monkeypatch.setattr("bertwise.evaluation.runner.evaluate_strategy", first_strategy)
    argv = ["bertwise", "compare", str(toy_csv), "--model", tiny_bert, "--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", [*argv, "--device", "cpu", "--budget", "20m", "--no-cache", "--no-progress"])
    with pytest.raises(StrategyStarted):
        main()
    lines = printed_before[0].splitlines()
    (limit,) = [line for line in lines if line.startswith("  --budget 20m: the full plan is ")]
    assert limit.endswith(", cut to fit")
    assert [line for line in lines if line.startswith("  budget cut: ")]
    assert not [line for line in lines if "would cut it to" in line]  # a budget was given: no advice
