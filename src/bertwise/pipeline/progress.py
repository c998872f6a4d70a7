"""What :func:`~bertwise.pipeline.comparison.compare` reports while it runs: small events handed to a callback.

The library only reports; drawing is the caller's. The command line draws a progress bar with the time remaining
(``bertwise.cli.progress``); ``compare(progress=True)`` prints :func:`describe`'s plain lines to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bertwise.evaluation.runner import StrategyResult
    from bertwise.pipeline.results import Comparison

# The named stages of a comparison, in the order they run (StageStarted and StageFinished carry these names).
LOAD = "load"
PLAN = "plan"
STRATEGIES = "strategies"
CURVES = "learning curve"
DIAGNOSTICS = "diagnostics"
RECOMMEND = "recommend"
SAVE = "save"
SAVE_BEST = "save best"


@dataclass(frozen=True)
class StageStarted:
    stage: str


@dataclass(frozen=True)
class StageFinished:
    stage: str


@dataclass(frozen=True)
class PlanReady:
    """The plan is made and nothing has run yet: ``comparison`` holds the protocol and the budget so far;
    ``estimates`` are the seconds expected per part (a strategy's name, "<name> curve"), covering ``stages``."""

    comparison: Comparison
    estimates: Mapping[str, float]
    stages: tuple[str, ...]


@dataclass(frozen=True)
class PartStarted:
    """A strategy's evaluation begins: ``fits`` fits (seeds x folds) count against its estimate."""

    part: str
    fits: int


@dataclass(frozen=True)
class FitFinished:
    """One fit of ``part`` is done: the ``done``-th of the stage's ``total``; it is one of the ``part_fits`` fits that
    share ``part``'s estimate. ``per_class`` is the training size of a learning-curve point (None for a strategy)."""

    stage: str
    strategy: str
    part: str
    part_fits: int
    done: int
    total: int
    per_class: int | None = None


@dataclass(frozen=True)
class PartReused:
    """``part`` came whole from the run cache: its estimate is done at once."""

    part: str


@dataclass(frozen=True)
class StrategyDone:
    """A strategy finished (or failed) and results.json, when written, holds it."""

    result: StrategyResult


@dataclass(frozen=True)
class Note:
    """A long step outside the estimates says what it is doing (``--save-best`` training a model again)."""

    message: str


ProgressEvent = StageStarted | StageFinished | PlanReady | PartStarted | FitFinished | PartReused | StrategyDone | Note
ProgressCallback = Callable[[ProgressEvent], None]


def describe(event: ProgressEvent) -> str | None:
    """The line that says where the comparison stands after ``event``, or None for events that move nothing."""
    if isinstance(event, PartStarted):
        return f"{event.part}: fit 1 of {event.fits}"
    if isinstance(event, FitFinished):
        if event.per_class is None:
            return f"{event.strategy}: fit {event.done} of {event.total}"
        return f"learning curve: {event.strategy} at {event.per_class}/class ({event.done} of {event.total})"
    if isinstance(event, PartReused):
        return f"{event.part}: reused from an earlier run"
    if isinstance(event, Note):
        return event.message
    return None


def ignore(event: ProgressEvent) -> None:
    """The callback of ``compare(progress=False)``."""


def plain_printer(console: Any = None) -> ProgressCallback:
    """The callback of ``compare(progress=True)``: :func:`describe`'s lines, to ``console.print`` when given (a rich
    Console, printed without markup) or else to stderr."""

    def show(event: ProgressEvent) -> None:
        line = describe(event)
        if line is None:
            return
        if console is not None:
            console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


def progress_callback(progress: bool | ProgressCallback, console: Any = None) -> ProgressCallback:
    """``compare``'s ``progress`` argument as a callback: a callable as given, True as plain lines, False as nothing."""
    if callable(progress):
        return progress
    return plain_printer(console) if progress else ignore
