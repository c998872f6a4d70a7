"""The early look at fine-tuning on constructed runs: it stops a clearly losing run halfway, never a winning one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from bertwise.evaluation.deadline import Deadline
from bertwise.evaluation.early_look import EarlyLook, early_look_monitor, remaining_gain
from bertwise.evaluation.sequential import StoppingRule
from bertwise.strategies.cost import Calibration
from bertwise.strategies.monitor import TrainingProgress

CLASSES = ["a", "b", "c"]
ROWS = 300
RULE = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=4)
Y_TRUE = np.arange(ROWS) % 3


def predicted_with_accuracy(accuracy: float, seed: int = 0) -> np.ndarray:
    """Class indices right on about ``accuracy`` of the rows, a wrong class elsewhere."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(ROWS) >= accuracy
    return np.where(wrong, (Y_TRUE + 1) % 3, Y_TRUE)


def progress_at(
    step: int, predicted: np.ndarray, *, total: int = 400, slope: float = 0.0, classes: Sequence[str] = CLASSES
) -> TrainingProgress:
    """A run at ``step`` of ``total`` whose best weights predict ``predicted`` (indices into CLASSES) and whose
    validation macro-F1 rose by ``slope`` per step over its last 50 steps."""
    history = [
        {"step": float(step - 50), "epoch": 1.0, "val_macro_f1": 0.5, "val_loss": 1.0},
        {"step": float(step), "epoch": 1.0, "val_macro_f1": 0.5 + 50 * slope, "val_loss": 1.0},
    ]
    own = [classes.index(label) for label in CLASSES]  # CLASSES index -> column of the run's own order
    probabilities = np.full((ROWS, len(classes)), 0.1)
    probabilities[np.arange(ROWS), np.array(own)[predicted]] = 0.8

    def predict_best(texts: Sequence[str]) -> np.ndarray:
        assert len(texts) == ROWS
        return probabilities

    return TrainingProgress(
        step=step,
        total_steps=total,
        epoch=1,
        history=history,
        best_step=step,
        classes=tuple(classes),
        predict_best=predict_best,
    )


def monitor(leader_accuracy: float = 0.9, deadline: Deadline | None = None) -> EarlyLook:
    rival = np.stack([predicted_with_accuracy(leader_accuracy, seed) for seed in (1, 2, 3)])
    return early_look_monitor(
        y_true=Y_TRUE,
        texts=[f"text {i}" for i in range(ROWS)],
        classes=CLASSES,
        rival_runs=rival,
        rule=RULE,
        strategy="finetune",
        against="probe",
        planned=3,
        prior_spread_points=3.0,
        resamples=300,
        seed=0,
        deadline=deadline,
    )


def test_a_run_far_behind_stops_at_the_halfway_validation_and_not_before() -> None:
    watcher = monitor()
    losing = predicted_with_accuracy(0.4)
    assert watcher(progress_at(100, losing)) is None
    assert watcher(progress_at(150, losing)) is None
    assert watcher.looks == []  # nothing looked at before half of the schedule
    reason = watcher(progress_at(200, losing))
    assert reason is not None and reason.startswith("stopped at step 200 of 400: it trails probe by ")
    assert reason.endswith("; allowing also for up to 0.0 more points from the rest of its schedule")
    [made] = watcher.looks
    assert (made.part, made.unit, made.decision) == ("training", "step 200 of 400", "behind")
    assert made.widened[1] < -RULE.tolerance_points / 100


@pytest.mark.parametrize(("leader_accuracy", "decision"), [(0.5, "ahead"), (0.9, None)])
def test_a_run_ahead_or_level_is_never_stopped(leader_accuracy: float, decision: str | None) -> None:
    watcher = monitor(leader_accuracy)
    run = predicted_with_accuracy(0.9, seed=7)
    assert [watcher(progress_at(step, run)) for step in (200, 250, 300, 350)] == [None] * 4
    [made] = watcher.looks  # one look only, at the halfway validation
    assert made.decision == decision


def test_a_run_whose_interval_straddles_the_margin_goes_on() -> None:
    watcher = monitor()
    slightly_behind = predicted_with_accuracy(0.87, seed=7)
    assert watcher(progress_at(200, slightly_behind)) is None
    [made] = watcher.looks
    assert made.decision is None
    assert made.widened[0] < -RULE.tolerance_points / 100 < made.widened[1]


def test_a_steep_recent_rise_keeps_a_run_that_a_flat_one_would_stop() -> None:
    losing = predicted_with_accuracy(0.7)
    flat, steep = monitor(), monitor()
    assert flat(progress_at(200, losing, slope=0.0)) is not None
    # 0.2 points a step over the 200 steps left: up to 40 points more, enough to catch up.
    assert steep(progress_at(200, losing, slope=0.002)) is None
    assert steep.looks[0].decision is None


def test_the_run_may_order_its_classes_otherwise() -> None:
    watcher = monitor()
    reordered = progress_at(200, predicted_with_accuracy(0.9, seed=7), classes=["c", "a", "b"])
    assert watcher(reordered) is None
    assert abs(watcher.looks[0].difference) < 0.05  # read in the comparison's order: level with the leader


def test_a_spent_budget_stops_at_the_next_validation() -> None:
    now = [0.0]
    deadline = Deadline(
        limit_seconds=60.0,
        started=0.0,
        calibration=Calibration(1.0, 1.0, 1.0),
        clock=lambda: now[0],
        finishing_seconds=0.0,
    )
    watcher = monitor(deadline=deadline)
    winning = predicted_with_accuracy(0.99)
    assert watcher(progress_at(50, winning)) is None
    now[0] = 61.0
    assert watcher(progress_at(100, winning)) == "the budget ran out at step 100 of 400"
    assert watcher.looks == []


def test_the_remaining_gain_extrapolates_the_latest_slope() -> None:
    one = [{"step": 100.0, "epoch": 1.0, "val_macro_f1": 0.5, "val_loss": 1.0}]
    assert remaining_gain(one, 400) == pytest.approx(0.5 / 100 * 300)  # from 0 at step 0
    falling = [*one, {"step": 200.0, "epoch": 2.0, "val_macro_f1": 0.4, "val_loss": 1.0}]
    assert remaining_gain(falling, 400) == 0.0


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"rival runs of shape \(runs, 300\); got 300 texts, 300 classes"):
        early_look_monitor(
            y_true=Y_TRUE,
            texts=[""] * ROWS,
            classes=CLASSES,
            rival_runs=Y_TRUE[:10][None, :],
            rule=RULE,
            strategy="finetune",
            against="probe",
            planned=3,
            prior_spread_points=3.0,
            resamples=100,
            seed=0,
        )
