"""The learning curve under the sequential protocol: stop a point's repeats once they cannot change which is ahead,
and skip the fits the budget's deadline has no time left for.

Only the strategy the crossover compares (``a``, the one that trains the backbone) is watched: after each of its
repeats at a point but the last, its runs there are set against its rival's (``b``, the frozen one, run first and in
full because it is cheap) with :func:`bertwise.evaluation.sequential.look`. Once the look is decided, the point's
remaining repeats could narrow its interval but not move it across the tolerance band. Everything decided is kept
for results.json (``learning_curve.stopping``), so that what was not run is stated with why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bertwise.evaluation.sequential import Look, StoppingRule, look
from bertwise.strategies.registry import strategy_tags

if TYPE_CHECKING:
    from bertwise.evaluation.deadline import Deadline
    from bertwise.strategies.cost import FitWork
    from bertwise.strategies.monitor import TrainingProgress


@dataclass(frozen=True)
class CurveStopping:
    """The stopping rule the curve's looks apply, with the bootstrap's ``resamples`` and ``seed``."""

    rule: StoppingRule
    resamples: int
    seed: int


@dataclass
class CurveWatch:
    """What the stopping rule and the deadline decided along one curve: every look, every stop, every skip.

    ``rivals`` maps a watched strategy to its rival (a -> b); ``y_true`` are the class indices of the fold's test
    rows, on which every curve point is scored.
    """

    stopping: CurveStopping | None
    deadline: Deadline | None
    y_true: np.ndarray
    n_classes: int
    rivals: dict[str, str]
    looks: list[Look] = field(default_factory=list)
    stopped: list[dict[str, Any]] = field(default_factory=list)
    skipped_for_budget: list[str] = field(default_factory=list)
    # Each point's runs of every strategy some other strategy is watched against: (name, per class) -> runs.
    _kept: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    def order(self, names: tuple[str, ...]) -> list[str]:
        """The order the strategies' curves run in: under stopping, each rival before the strategy it is
        compared with (its runs are what that strategy's looks need); otherwise as planned."""
        if self.stopping is None:
            return list(names)
        rivals = [name for name in names if name in self.rivals.values()]
        return rivals + [name for name in names if name not in rivals]

    def keep(self, name: str, per_class: int, runs: np.ndarray) -> None:
        """A finished point of ``name``: kept when a watched strategy's looks will need it."""
        if name in self.rivals.values():
            self._kept[(name, per_class)] = runs

    def stops(self, name: str, per_class: int, runs: np.ndarray, planned: int) -> bool:
        """After ``runs`` (one row per finished repeat) of ``name``'s ``planned`` at ``per_class``: look, when it has a
        rival measured at that point and repeats remain, and say whether the rest of the point's repeats can go."""
        rival = self.rivals.get(name)
        done = int(runs.shape[0])
        if self.stopping is None or rival is None or done >= planned or (rival, per_class) not in self._kept:
            return False
        stopping = self.stopping
        after = f"repeat {done} of {planned}"
        seen = look(
            self.y_true,
            runs,
            self._kept[(rival, per_class)],
            self.n_classes,
            stopping.rule,
            part="curve",
            strategy=name,
            against=rival,
            unit=f"{per_class} per class, {after}",
            planned=planned,
            prior_spread_points=strategy_tags(name).run_spread_points,
            resamples=stopping.resamples,
            seed=stopping.seed,
        )
        self.looks.append(seen)
        if seen.decision is None:
            return False
        reason = seen.reason(stopping.rule.tolerance_points)
        self.stopped.append(
            {
                "strategy": name,
                "per_class": per_class,
                "after": after,
                "text": f"{strategy_tags(name).in_words}'s curve at {per_class} per class stopped after {after}: "
                f"{reason}; more repeats could not change which is ahead there",
            }
        )
        return True

    def refusal(self, name: str, work: FitWork, what: str, later: list[int]) -> bool:
        """Whether the deadline refuses ``what`` (one fit of ``name``); a refusal is recorded, naming the ``later``
        points of the strategy's curve that go with it."""
        if self.deadline is None:
            return False
        text = self.deadline.refusal(name, work, what)
        if text is None:
            return False
        if later:
            text += f"; so were its later points ({', '.join(str(point) for point in later)} per class)"
        self.skipped_for_budget.append(text)
        return True

    def training_monitor(self, name: str) -> Callable[[TrainingProgress], str | None] | None:
        """For a strategy that trains in steps: what ends its curve fit's training when the budget's time is spent
        (the fit is then left out, see :meth:`stopped_by_budget`). None without a deadline or a schedule."""
        deadline = self.deadline
        if deadline is None or not strategy_tags(name).has_training_schedule:
            return None
        return lambda progress: deadline.training_stop(progress.step, progress.total_steps)

    def stopped_by_budget(self, what: str, details: Mapping[str, Any], later: list[int]) -> bool:
        """Whether a curve fit's training was ended by the deadline; such a fit is no point of the curve (it would
        read as the score of that many examples, trained less than planned), so it is recorded as skipped."""
        reason = details.get("stopped_by")
        if self.deadline is None or not reason:
            return False
        text = f"{what} abandoned: {reason}"
        if later:
            text += f"; its later points were skipped ({', '.join(str(point) for point in later)} per class)"
        self.skipped_for_budget.append(text)
        return True

    def record(self, name: str, work: FitWork, seconds: float) -> None:
        """A fit measured on this machine now: the deadline's later estimates follow it."""
        if self.deadline is not None:
            self.deadline.record(name, work, seconds)

    def to_dict(self) -> dict[str, Any] | None:
        """The curve's ``stopping`` part; None when neither stopping nor a deadline was asked for (the full
        protocol's curve, unchanged)."""
        if self.stopping is None and self.deadline is None:
            return None
        return {
            "looks": [seen.to_dict() for seen in self.looks],
            "stopped": list(self.stopped),
            "skipped_for_budget": list(self.skipped_for_budget),
        }
