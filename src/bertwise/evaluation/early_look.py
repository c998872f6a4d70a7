"""The early look at fine-tuning: halfway through its schedule, is the run already clearly losing?

Once, at the first validation at or after half of the planned steps, the weights fine-tuning would keep if stopped
now predict the fold's test texts, and :func:`bertwise.evaluation.sequential.look` sets them against the leader's
predictions on the same rows. Training stops only when the look says "behind": a run ahead of the leader, or
equivalent to it, is never cut. The interval is widened, besides the allowance for runs not yet seen, by what the
rest of the schedule could still add: the latest validation macro-F1 slope per step times the steps left. Learning
curves in steps are concave, so that linear extrapolation bounds the remaining gain from above.

With a :class:`~bertwise.evaluation.deadline.Deadline`, training also stops at the first validation after the
budget ran out, keeping its best weights so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bertwise.data.dataset import Label
from bertwise.evaluation.deadline import Deadline
from bertwise.evaluation.sequential import Look, StoppingRule, look
from bertwise.strategies.monitor import TrainingProgress


@dataclass
class EarlyLook:
    """A fine-tuning monitor (:data:`bertwise.strategies.monitor.Monitor`); ``looks`` keeps the look it made."""

    y_true: np.ndarray
    texts: Sequence[str]
    classes: Sequence[Label]
    rival_runs: np.ndarray
    rule: StoppingRule
    strategy: str
    against: str
    planned: int
    prior_spread_points: float
    resamples: int
    seed: int
    deadline: Deadline | None = None
    looks: list[Look] = field(default_factory=list)

    def step_stop(self, step: int, total_steps: int) -> str | None:
        """Between validations only the deadline is asked (the look needs a validation)."""
        return self.deadline.training_stop(step, total_steps) if self.deadline is not None else None

    def __call__(self, progress: TrainingProgress) -> str | None:
        where = f"step {progress.step} of {progress.total_steps}"
        spent = self.deadline.training_stop(progress.step, progress.total_steps) if self.deadline is not None else None
        if spent is not None:
            return spent
        if self.looks or 2 * progress.step < progress.total_steps:
            return None
        gain = remaining_gain(progress.history, progress.total_steps)
        made = look(
            self.y_true,
            self._predicted(progress)[None, :],
            self.rival_runs,
            len(self.classes),
            self.rule,
            part="training",
            strategy=self.strategy,
            against=self.against,
            unit=where,
            planned=self.planned,
            prior_spread_points=self.prior_spread_points,
            resamples=self.resamples,
            seed=self.seed,
            extra=gain,
        )
        self.looks.append(made)
        if made.decision != "behind":
            return None  # ahead, equivalent or undecided: the rest of the schedule may matter
        return (
            f"stopped at {where}: {made.reason(self.rule.tolerance_points)}; allowing also for up to "
            f"{100 * gain:.1f} more points from the rest of its schedule"
        )

    def _predicted(self, progress: TrainingProgress) -> np.ndarray:
        """The best weights' predicted classes, as indices into ``classes`` (the strategy's own order may differ)."""
        probabilities = progress.predict_best(list(self.texts))
        index = {label: position for position, label in enumerate(self.classes)}
        own = np.array([index[label] for label in progress.classes])
        return own[probabilities.argmax(axis=1)]


def remaining_gain(history: Sequence[dict[str, float]], total_steps: int) -> float:
    """An optimistic bound (macro-F1, a fraction) on what the steps left could add: the latest slope of validation
    macro-F1 per step (from 0 at step 0 when there is one validation) times the steps left, never below 0."""
    last = history[-1]
    before = history[-2] if len(history) >= 2 else {"step": 0.0, "val_macro_f1": 0.0}
    steps = last["step"] - before["step"]
    if steps <= 0:
        return 0.0
    slope = (last["val_macro_f1"] - before["val_macro_f1"]) / steps
    return max(0.0, slope * (total_steps - last["step"]))


def early_look_monitor(
    *,
    y_true: np.ndarray,
    texts: Sequence[str],
    classes: Sequence[Label],
    rival_runs: np.ndarray,
    rule: StoppingRule,
    strategy: str,
    against: str,
    planned: int,
    prior_spread_points: float,
    resamples: int,
    seed: int,
    deadline: Deadline | None = None,
) -> EarlyLook:
    """A monitor for one fine-tuning fit of the fold whose test ``texts`` have true classes ``y_true`` (indices
    into ``classes``, the comparison's order), against the leader ``against`` whose predicted indices on those rows
    are ``rival_runs`` (one row per run). ``planned``: how many runs of ``strategy`` the full protocol makes;
    ``prior_spread_points``: its ``run_spread_points`` tag."""
    y_true, rival_runs = np.asarray(y_true), np.asarray(rival_runs)
    if len(texts) != len(y_true) or rival_runs.ndim != 2 or rival_runs.shape[1] != len(y_true):
        raise ValueError(
            f"the early look needs one true class per test text and rival runs of shape (runs, {len(y_true)}); got "
            f"{len(texts)} texts, {len(y_true)} classes and rival runs of shape {rival_runs.shape}"
        )
    return EarlyLook(
        y_true=y_true,
        texts=list(texts),
        classes=list(classes),
        rival_runs=rival_runs,
        rule=rule,
        strategy=strategy,
        against=against,
        planned=planned,
        prior_spread_points=prior_spread_points,
        resamples=resamples,
        seed=seed,
        deadline=deadline,
    )
