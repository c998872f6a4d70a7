"""How ``bertwise compare`` draws the comparison's progress events: the plan first, a "done <strategy>" line as each
strategy finishes, and one bar for the whole run, measured in estimated seconds, so its remaining time covers every
part (strategies and learning curves)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bertwise.pipeline import progress as events
from bertwise.report import table


class CompareProgress:
    """The callback ``bertwise compare`` passes as ``compare(progress=...)``; a context manager, so the bar stops
    however the comparison ends. ``bar=False`` (``--no-progress``) prints the plan and the done lines only."""

    def __init__(self, console: Console, *, results: Path, bar: bool) -> None:
        self.console = console
        self.results = results  # where results.json is written, named in each done line
        self.bar = bar
        self._progress: Progress | None = None
        self._task: Any = None
        self._estimates: Mapping[str, float] = {}
        self._last_stage: str | None = None

    def __enter__(self) -> CompareProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def __call__(self, event: events.ProgressEvent) -> None:
        if isinstance(event, events.PlanReady):
            table.print_plan(event.comparison, self.console)
            if self.bar:
                self._start(event)
        elif isinstance(event, events.StrategyDone):
            self._announce(event.result)
        elif isinstance(event, events.StageFinished) and event.stage == self._last_stage:
            self._stop()
        elif isinstance(event, events.Note):
            if self.bar:
                self.console.print(event.message, markup=False, highlight=False)
        elif self._progress is not None:
            self._advance(event)

    def _start(self, plan: events.PlanReady) -> None:
        self._estimates = plan.estimates
        self._last_stage = plan.stages[-1] if plan.stages else None
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("remaining"),
            TimeRemainingColumn(),
            # stdout stays clean for the results table; prints to this console appear above the bar.
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("starting", total=max(sum(plan.estimates.values()), 1.0))

    def _advance(self, event: events.ProgressEvent) -> None:
        assert self._progress is not None
        description = events.describe(event)
        if isinstance(event, events.PartStarted):
            self._progress.update(self._task, description=description)
        elif isinstance(event, events.FitFinished):
            share = self._estimates.get(event.part, 0.0) / max(event.part_fits, 1)
            self._progress.update(self._task, advance=share, description=description)
        elif isinstance(event, events.PartReused):
            self._progress.update(self._task, advance=self._estimates.get(event.part, 0.0), description=description)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self._progress.tasks[0].total)
            self._progress.stop()
            self._progress = None

    def _announce(self, result: Any) -> None:
        if result.status == "ok":
            low, high = result.metrics_interval["macro_f1"]
            self.console.print(
                f"[green]done[/] {result.name}: macro-F1 {result.metrics['macro_f1'] * 100:.1f} "
                f"[{low * 100:.1f}, {high * 100:.1f}]"
                f" over {len(result.runs)} run(s), {result.cost['total_seconds']:.0f} s "
                f"(saved to {self.results})"
            )
        else:
            self.console.print(f"[red]failed[/] {result.name}: {result.error}")
