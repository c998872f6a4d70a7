"""A strategy's runs under the sequential protocol (evaluation/race.py): the deadline before each run, the look after
each, the monitor each training fit gets, and the record results.json keeps."""

from __future__ import annotations

import numpy as np
import pytest

from bertwise.evaluation.deadline import Deadline
from bertwise.evaluation.early_look import EarlyLook
from bertwise.evaluation.protocol import Fold
from bertwise.evaluation.race import Race, Rival
from bertwise.evaluation.sequential import StoppingRule
from bertwise.strategies.cost import Calibration
from bertwise.strategies.monitor import TrainingProgress

ROWS = 300
FOLD = Fold(train_rows=tuple(range(100)), test_rows=tuple(range(ROWS)))
CALIBRATION = Calibration(encode_texts_per_second=100.0, train_examples_per_second=10.0, probe_seconds_per_row=1e-4)


@pytest.fixture()
def y_true() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 3, size=ROWS)


def _right_on(y_true: np.ndarray, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wrong = rng.random(y_true.size) >= share
    return np.where(wrong, (y_true + 1) % 3, y_true)


def _race(y_true: np.ndarray, rival_share: float, **options: object) -> Race:
    defaults: dict[str, object] = {
        "rule": StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=5),
        "rival": Rival("probe", _right_on(y_true, rival_share, 1)[None, :]),
        "resamples": 300,
        "test_texts": tuple(f"text {row}" for row in range(ROWS)),
        "classes": (0, 1, 2),
    }
    return Race("finetune", planned_runs=3, y_true=y_true, n_classes=3, **(defaults | options))  # type: ignore[arg-type]


def test_a_run_far_behind_its_rival_ends_the_runs_and_says_why(y_true: np.ndarray) -> None:
    race = _race(y_true, 0.95)
    assert race.after_run(_right_on(y_true, 0.40, 2)[None, :]) is False
    record = race.to_dict()
    assert (record["planned_runs"], record["runs"]) == (3, 1)
    assert record["looks"][0]["decision"] == "behind" and record["looks"][0]["unit"] == "seed 1 of 3"
    assert record["stopped"]["skipped"] == "seeds 2 and 3"
    assert record["stopped"]["text"].startswith("fine-tuning stopped after seed 1 of 3: it trails probe by ")


def test_a_close_run_goes_on_and_the_last_run_is_never_looked_at(y_true: np.ndarray) -> None:
    race = _race(y_true, 0.80)
    runs = np.stack([_right_on(y_true, 0.80, seed) for seed in (2, 3, 4)])
    assert race.after_run(runs[:1]) and race.after_run(runs[:2]) and race.after_run(runs)
    assert [look.decision for look in race.looks] == [None, None]  # after runs 1 and 2 only
    assert race.to_dict()["stopped"] is None


def test_without_a_rule_or_a_rival_every_planned_run_runs(y_true: np.ndarray) -> None:
    far_behind = _right_on(y_true, 0.40, 2)[None, :]
    assert _race(y_true, 0.95, rule=None).after_run(far_behind)
    assert _race(y_true, 0.95, rival=None).after_run(far_behind)


def test_the_deadline_refuses_a_later_run_but_never_the_first(y_true: np.ndarray) -> None:
    now = [0.0]
    deadline = Deadline(60.0, 0.0, CALIBRATION, clock=lambda: now[0], finishing_seconds=0.0)
    race = _race(y_true, 0.80, deadline=deadline)
    now[0] = 59.0  # one second left: a fine-tuning run is estimated at far more
    assert race.before_run(0, [FOLD]) is True
    assert race.before_run(1, [FOLD]) is False
    assert race.to_dict()["skipped_for_budget"].startswith("fine-tuning seeds 2 and 3 skipped: estimated at ")


def test_a_training_fit_gets_the_early_look_against_the_rival_or_else_the_deadline(y_true: np.ndarray) -> None:
    now = [0.0]
    deadline = Deadline(60.0, 0.0, CALIBRATION, clock=lambda: now[0], finishing_seconds=0.0)
    assert isinstance(_race(y_true, 0.8).monitor(0, FOLD), EarlyLook)
    alone = _race(y_true, 0.8, rival=None, deadline=deadline).monitor(0, FOLD)
    progress = TrainingProgress(
        step=10, total_steps=40, epoch=1, history=[], best_step=10, classes=(0, 1, 2), predict_best=lambda texts: None
    )
    assert alone(progress) is None
    now[0] = 61.0
    assert alone(progress) == "the budget ran out at step 10 of 40"
    assert _race(y_true, 0.8, rival=None).monitor(0, FOLD) is None  # neither: the whole schedule
    probe = Race("probe", planned_runs=1, y_true=y_true, n_classes=3, deadline=deadline)
    assert probe.monitor(0, FOLD) is None  # no training schedule to stop


def test_a_fit_stopped_inside_its_schedule_is_recorded(y_true: np.ndarray) -> None:
    race = _race(y_true, 0.8)
    race.fit_done(FOLD, first=True, seconds=5.0, details={"stopped_by": "stopped at step 20 of 40: it trails probe"})
    assert race.to_dict()["stopped_training"] == [
        "fine-tuning's training (seed 1) stopped at step 20 of 40: it trails probe"
    ]
