"""One strategy's evaluation under the sequential protocol: the look after each of its runs, the early look inside a
training run, and the deadline before each run.

The runner (:func:`bertwise.evaluation.runner.evaluate_strategy`) asks a :class:`Race` before each run whether there
is time for it, hands each fit the monitor that may end its training early, and after each run whether the runs
still planned could change anything. The race keeps what it decided and why, for results.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bertwise.data.dataset import Label
from bertwise.evaluation.deadline import Deadline
from bertwise.evaluation.early_look import EarlyLook, early_look_monitor
from bertwise.evaluation.protocol import Fold
from bertwise.evaluation.sequential import Look, StoppingRule, look
from bertwise.strategies.cost import FitWork
from bertwise.strategies.monitor import TrainingProgress
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
    # The test texts and the class order: what a training fit's early look predicts, and how its columns read.
    test_texts: Sequence[str] = ()
    classes: Sequence[Label] = ()
    looks: list[Look] = field(default_factory=list)
    monitors: list[EarlyLook] = field(default_factory=list)
    stopped: dict[str, Any] | None = None
    stopped_training: list[str] = field(default_factory=list)
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
        """The monitor of this fit's training, for a strategy with a training schedule: the early look against the
        rival (which may stop a clearly losing run halfway) and the deadline. None: train the whole schedule."""
        tags = strategy_tags(self.name)
        if not tags.has_training_schedule:
            return None
        if self.rule is not None and self.rival is not None and self.test_texts:
            rows = list(fold.test_rows)
            monitor = early_look_monitor(
                y_true=self.y_true[rows],
                texts=[self.test_texts[row] for row in rows],
                classes=self.classes,
                rival_runs=self.rival.run_predictions[:, rows],
                rule=self.rule,
                strategy=self.name,
                against=self.rival.name,
                planned=self.planned_runs,
                prior_spread_points=tags.run_spread_points,
                resamples=self.resamples,
                seed=self.seed,
                deadline=self.deadline,
            )
            self.monitors.append(monitor)
            return monitor
        return None if self.deadline is None else _DeadlineMonitor(self.deadline)

    def fit_done(self, fold: Fold, *, first: bool, seconds: float, details: Mapping[str, Any]) -> None:
        """After a fit: its time corrects the deadline's estimates; the early look it made, and whether its training
        was stopped, are kept."""
        if self.deadline is not None:
            self.deadline.record(self.name, self.fit_work(fold, first=first), seconds)
        if self.monitors:
            self.looks.extend(self.monitors[-1].looks)
            self.monitors.clear()
        if details.get("stopped_by"):
            self.stopped_training.append(
                f"{strategy_tags(self.name).in_words}'s training (seed {self.runs_done + 1}) {details['stopped_by']}"
            )

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
            "stopped_training": list(self.stopped_training),
            "skipped_for_budget": self.skipped_for_budget,
        }


@dataclass(frozen=True)
class _DeadlineMonitor:
    """Ends a training run when the budget's time is spent (the run keeps its best weights so far)."""

    deadline: Deadline

    def __call__(self, progress: TrainingProgress) -> str | None:
        return self.deadline.training_stop(progress.step, progress.total_steps)

    def step_stop(self, step: int, total_steps: int) -> str | None:
        return self.deadline.training_stop(step, total_steps)


def _seeds_from(first: int, planned: int) -> str:
    """'seed 3' or 'seeds 2 and 3' or 'seeds 2 to 5' (1-based, up to ``planned``)."""
    if first == planned:
        return f"seed {first}"
    if first + 1 == planned:
        return f"seeds {first} and {planned}"
    return f"seeds {first} to {planned}"
