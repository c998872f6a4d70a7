"""compare's progress: events handed to a callback as the named stages run, plain lines with progress=True, and no
drawing in the library (the command line draws the bar: tests/cli/test_progress.py)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import bertwise.pipeline
from bertwise.pipeline import progress as events
from bertwise.pipeline.comparison import compare

OPTIONS: dict[str, Any] = {
    "strategies": ["zero-shot", "probe"],
    "device": "cpu",
    "curve_repeats": {"probe": 1},
    "bootstrap_resamples": 100,
    # The full protocol: every planned fit runs, in the order asked for, so each can be counted against its estimate.
    "protocol": "full",
}


def run(toy_csv: Path, tiny_bert: str, out: Path, **options: Any) -> tuple[Any, list[events.ProgressEvent]]:
    received: list[events.ProgressEvent] = []
    comparison = compare(toy_csv, model=tiny_bert, out=out, progress=received.append, **{**OPTIONS, **options})
    return comparison, received


def test_the_stages_report_in_order_and_every_fit_counts_against_its_estimate(
    toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    comparison, received = run(toy_csv, tiny_bert, tmp_path / "out", cache=False)
    started = [event.stage for event in received if isinstance(event, events.StageStarted)]
    finished = [event.stage for event in received if isinstance(event, events.StageFinished)]
    expected = [events.LOAD, events.PLAN, events.STRATEGIES, events.CURVES, events.DIAGNOSTICS, events.RECOMMEND]
    assert started == finished == [*expected, events.SAVE]
    (plan,) = [event for event in received if isinstance(event, events.PlanReady)]
    assert plan.stages == (events.STRATEGIES, events.CURVES)
    assert set(plan.estimates) == set(comparison.budget["estimated_seconds_by_part"])
    assert plan.comparison is comparison and received.index(plan) < received.index(events.StageStarted("strategies"))
    # Every fit of a part names how many share its estimate, and that many arrive: the bar ends at its total.
    fits = [event for event in received if isinstance(event, events.FitFinished)]
    counts = Counter(event.part for event in fits)
    assert {event.part: event.part_fits for event in fits} == dict(counts)
    assert set(counts) == {"zero-shot", "probe", "probe curve"}
    assert [event.done for event in fits if event.stage == events.CURVES] == list(range(1, counts["probe curve"] + 1))
    assert all(event.per_class for event in fits if event.stage == events.CURVES)
    done = [event.result.name for event in received if isinstance(event, events.StrategyDone)]
    assert done == ["zero-shot", "probe"]
    last_fit = max(index for index, event in enumerate(received) if isinstance(event, events.FitFinished))
    assert last_fit < received.index(events.StageFinished(events.CURVES))
    assert not [event for event in received if isinstance(event, events.PartReused)]


def test_a_rerun_reports_each_part_as_reused_instead_of_its_fits(
    toy_csv: Path, tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "cache"))
    run(toy_csv, tiny_bert, tmp_path / "first")
    comparison, received = run(toy_csv, tiny_bert, tmp_path / "second")
    assert comparison.resumed == ["calibration", "zero-shot", "probe", "learning curve"]
    reused = [event.part for event in received if isinstance(event, events.PartReused)]
    assert reused == ["zero-shot", "probe", "probe curve"]
    assert not [event for event in received if isinstance(event, (events.FitFinished, events.PartStarted))]


def test_progress_true_prints_plain_lines_to_stderr(
    toy_csv: Path, tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare(toy_csv, model=tiny_bert, out=tmp_path / "out", progress=True, cache=False, **OPTIONS)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert "zero-shot: fit 1 of 5" in lines and "probe: fit 5 of 5" in lines  # 5-fold cross-validation
    assert any(line.startswith("learning curve: probe at ") for line in lines)
    assert captured.out == ""


def test_progress_false_reports_nothing(
    toy_csv: Path, tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare(toy_csv, model=tiny_bert, out=tmp_path / "out", cache=False, **{**OPTIONS, "learning_curve": False})
    assert capsys.readouterr().err == ""


def test_the_library_draws_nothing_itself() -> None:
    """Drawing is the command line's: no pipeline module imports rich."""
    imported = []
    for path in Path(bertwise.pipeline.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.append((path.name, node.module))
    assert imported and not [(name, module) for name, module in imported if module.split(".")[0] == "rich"]


def test_describe_gives_the_lines_the_bar_shows() -> None:
    assert events.describe(events.PartStarted("probe", 5)) == "probe: fit 1 of 5"
    assert events.describe(events.FitFinished("strategies", "probe", "probe", 5, 2, 5)) == "probe: fit 2 of 5"
    curve_fit = events.FitFinished("learning curve", "probe", "probe curve", 4, 3, 8, per_class=16)
    assert events.describe(curve_fit) == "learning curve: probe at 16/class (3 of 8)"
    assert events.describe(events.PartReused("probe curve")) == "probe curve: reused from an earlier run"
    assert events.describe(events.StageStarted("load")) is None
