"""How ``bertwise compare`` draws the pipeline's progress events: the plan, the done lines, one bar that ends full."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from bertwise.cli.progress import CompareProgress
from bertwise.pipeline import progress as events

ESTIMATES = {"zero-shot": 2.0, "probe": 4.0, "probe curve": 6.0}


def plan(stages: tuple[str, ...] = (events.STRATEGIES, events.CURVES)) -> events.PlanReady:
    # print_plan is replaced in these tests: the comparison so far only needs to be passed on.
    return events.PlanReady(SimpleNamespace(), ESTIMATES, stages)  # type: ignore[arg-type]


def result(name: str) -> Any:
    return SimpleNamespace(
        name=name,
        status="ok",
        metrics={"macro_f1": 0.5},
        metrics_interval={"macro_f1": (0.4, 0.6)},
        runs=[{}],
        cost={"total_seconds": 3.0},
    )


def drawn(bar: bool, sequence: list[events.ProgressEvent]) -> tuple[str, list[float]]:
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    completed: list[float] = []
    with CompareProgress(console, results=Path("out/results.json"), bar=bar) as drawing:
        for event in sequence:
            drawing(event)
            if drawing._progress is not None:
                completed.append(drawing._progress.tasks[0].completed)
    return console.file.getvalue(), completed  # type: ignore[attr-defined]


RUN: list[events.ProgressEvent] = [
    events.PartStarted("zero-shot", 1),
    events.FitFinished(events.STRATEGIES, "zero-shot", "zero-shot", 1, 1, 1),
    events.StrategyDone(result("zero-shot")),
    events.PartStarted("probe", 2),
    events.FitFinished(events.STRATEGIES, "probe", "probe", 2, 1, 2),
    events.FitFinished(events.STRATEGIES, "probe", "probe", 2, 2, 2),
    events.StrategyDone(result("probe")),
    events.StageFinished(events.STRATEGIES),
    events.FitFinished(events.CURVES, "probe", "probe curve", 3, 1, 3, per_class=4),
    events.PartReused("nothing estimated"),
    events.FitFinished(events.CURVES, "probe", "probe curve", 3, 2, 3, per_class=8),
]


def test_the_bar_advances_by_each_part_s_share_of_its_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bertwise.report.table.print_plan", lambda comparison, console: console.print("PLAN"))
    text, completed = drawn(True, [plan(), *RUN])
    assert completed == pytest.approx([0, 0, 2, 2, 2, 4, 6, 6, 6, 8, 8, 10])
    assert text.index("PLAN") < text.index("done zero-shot: macro-F1 50.0 [40.0, 60.0] over 1 run(s), 3 s")
    assert "(saved to out/results.json)" in text
    assert " 100% " in text  # stopped full when the comparison ends, however it ends (as an interrupt)


def test_the_bar_ends_full_after_the_last_planned_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bertwise.report.table.print_plan", lambda comparison, console: None)
    after = [events.StageFinished(events.CURVES), events.FitFinished(events.STRATEGIES, "x", "probe", 1, 1, 1)]
    text, completed = drawn(True, [plan(), *RUN, *after, events.Note("--save-best: training")])
    assert len(completed) == 1 + len(RUN)  # nothing moved it once the curves were done
    (bar,) = [line for line in text.splitlines() if "remaining" in line]
    assert "learning curve: probe at 8/class (2 of 3)" in bar and " 100% " in bar
    assert text.rstrip().endswith("--save-best: training")  # a note after the bar, printed below it


def test_without_the_bar_only_the_plan_and_the_done_lines_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bertwise.report.table.print_plan", lambda comparison, console: console.print("PLAN"))
    text, completed = drawn(False, [plan(), *RUN, events.Note("--save-best: training")])
    assert completed == []
    assert text.splitlines() == [
        "PLAN",
        "done zero-shot: macro-F1 50.0 [40.0, 60.0] over 1 run(s), 3 s (saved to out/results.json)",
        "done probe: macro-F1 50.0 [40.0, 60.0] over 1 run(s), 3 s (saved to out/results.json)",
    ]
