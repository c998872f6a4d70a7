"""One strategy's evaluation under the sequential protocol: the look after each of its runs, the early look inside a
training run, and the deadline before each run.

The runner (:func:`bertwise.evaluation.runner.evaluate_strategy`) asks a :class:`Race` before each run whether there
is time for it, hands each fit the monitor that may end its training early, and after each run whether the runs
still planned could change anything. The race keeps what it decided and why, for results.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bertwise.evaluation.deadline import Deadline
from bertwise.evaluation.protocol import Fold
from bertwise.evaluation.sequential import Look, StoppingRule, look
from bertwise.strategies.cost import FitWork
from bertwise.strategies.registry import strategy_tags


@dataclass(frozen=True)
class Rival:
    """The strategy a race is run against: the best of those already finished, and its runs' predicted indices."""

    name: str
    run_predictions: np.ndarray  # (runs, test rows)


@dataclass
class Race:
    """The sequential protocol's decisions for one strategy's runs (``rule`` None: every planned run, as in the full
    protocol; ``deadline`` None: no budget)."""

    name: str
    planned_runs: int
    y_true: np.ndarray
    n_classes: int
    rule: StoppingRule | None = None
    rival: Rival | None = None
    deadline: Deadline | None = None
    resamples: int = 1000
    seed: int = 0
    schedule_scale: float = 1.0
    # Makes the monitor of one training fit: (race, run, fold) -> a callable the strategy calls at each validation.
    monitor_factory: Callable[[Race, int, Fold], Any] | None = None
    looks: list[Look] = field(default_factory=list)
    stopped: dict[str, Any] | None = None
    skipped_for_budget: str | None = None
    runs_done: int = 0

    def fit_work(self, fold: Fold, *, first: bool) -> FitWork:
        return FitWork(
            len(fold.train_rows),
            len(fold.test_rows),
            self.n_classes,
            encode_train=first,
            schedule_scale=self.schedule_scale,
        )

    def before_run(self, run: int, folds: Sequence[Fold]) -> bool:
        """Whether run ``run`` (0-based) fits in the time left; the first run always runs (it is the answer)."""
        if run == 0 or self.deadline is None:
            return True
        what = f"{strategy_tags(self.name).in_words} {_seeds_from(run + 1, self.planned_runs)}"
        refusal = self.deadline.refusal(self.name, [self.fit_work(fold, first=False) for fold in folds], what)
        if refusal is None:
            return True
        self.skipped_for_budget = refusal
        return False

    def monitor(self, run: int, fold: Fold) -> Any:
        """The monitor for this fit's training (None: train the whole schedule)."""
        return None if self.monitor_factory is None else self.monitor_factory(self, run, fold)

    def fit_done(self, fold: Fold, *, first: bool, seconds: float) -> None:
        if self.deadline is not None:
            self.deadline.record(self.name, self.fit_work(fold, first=first), seconds)

    def after_run(self, runs: np.ndarray) -> bool:
        """Whether to go on after ``runs`` (predicted indices, one row per finished run): False once decided."""
        self.runs_done = runs.shape[0]
        if self.rule is None or self.rival is None or self.runs_done >= self.planned_runs:
            return True
        done = self.runs_done
        current = look(
            self.y_true,
            runs,
            self.rival.run_predictions,
            self.n_classes,
            self.rule,
            part="strategies",
            strategy=self.name,
            against=self.rival.name,
            unit=f"seed {done} of {self.planned_runs}",
            planned=self.planned_runs,
            prior_spread_points=strategy_tags(self.name).run_spread_points,
            resamples=self.resamples,
            seed=self.seed,
        )
        self.looks.append(current)
        if current.decision is None:
            return True
        in_words = strategy_tags(self.name).in_words
        skipped = _seeds_from(done + 1, self.planned_runs)
        self.stopped = {
            "after": f"seed {done} of {self.planned_runs}",
            "skipped": skipped,
            "text": (
                f"{in_words} stopped after seed {done} of {self.planned_runs}: "
                f"{current.reason(self.rule.tolerance_points)}; more seeds could not change the answer"
            ),
        }
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned_runs": self.planned_runs,
            "runs": self.runs_done,
            "looks": [one.to_dict() for one in self.looks],
            "stopped": self.stopped,
            "skipped_for_budget": self.skipped_for_budget,
        }


def _seeds_from(first: int, planned: int) -> str:
    """'seed 3' or 'seeds 2 and 3' or 'seeds 2 to 5' (1-based, up to ``planned``)."""
    if first == planned:
        return f"seed {first}"
    if first + 1 == planned:
        return f"seeds {first} and {planned}"
    return f"seeds {first} to {planned}"
