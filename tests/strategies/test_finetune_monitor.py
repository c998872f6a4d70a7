"""A monitor watching fine-tuning: called once per validation, it can stop training, and watching changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.strategies.finetune import FinetuneClassifier
from bertwise.strategies.monitor import TrainingProgress
from tests.conftest import toy_data
from tests.strategies.test_finetune import RESUMABLE, keep_checkpoint

# 16 training texts in batches of 4, validated twice an epoch: validations at steps 2, 4, ..., 24.
SETTINGS = {**RESUMABLE, "evaluations_per_epoch": 2, "learning_rate": 1e-3}


class Watcher:
    """Records every call (step, best step, best weights' probabilities); says ``reason`` at call ``stop_at``."""

    def __init__(self, stop_at: int | None = None, reason: str = "enough") -> None:
        self.stop_at, self.reason = stop_at, reason
        self.seen: list[tuple[int, int, np.ndarray]] = []
        self.progress: list[TrainingProgress] = []

    def __call__(self, progress: TrainingProgress) -> str | None:
        texts, _ = toy_data()
        self.seen.append((progress.step, progress.best_step, progress.predict_best(texts)))
        self.progress.append(progress)
        return self.reason if len(self.seen) == self.stop_at else None


def fit(tiny_bert: str, watcher: Watcher | None, **settings: Any) -> FinetuneClassifier:
    texts, labels = toy_data()
    model = FinetuneClassifier(model=tiny_bert, **{**SETTINGS, **settings})
    model.monitor = watcher
    return model.fit(texts, labels)


@pytest.fixture(scope="module")
def unwatched(tiny_bert: str) -> FinetuneClassifier:
    return fit(tiny_bert, None)


@pytest.fixture(scope="module")
def watched(tiny_bert: str) -> tuple[FinetuneClassifier, Watcher]:
    watcher = Watcher()
    return fit(tiny_bert, watcher), watcher


def test_a_monitor_that_never_stops_changes_nothing(
    unwatched: FinetuneClassifier, watched: tuple[FinetuneClassifier, Watcher]
) -> None:
    texts, _ = toy_data()
    model, watcher = watched
    # Its predictions with the best weights swapped in and out again left training exactly as it was.
    assert model.history_ == unwatched.history_
    assert (model.best_step_, model.steps_) == (unwatched.best_step_, unwatched.steps_)
    assert np.array_equal(model.predict_proba(texts), unwatched.predict_proba(texts))
    assert "stopped_by" not in model.fit_details() and "stopped_at_step" not in model.fit_details()
    # Once per validation, except the last (training ends there anyway).
    assert [step for step, _, _ in watcher.seen] == [entry["step"] for entry in model.history_][:-1]
    last = watcher.progress[-1]
    assert (last.total_steps, last.classes) == (24, ("cooking", "sports", "weather"))
    assert last.history == model.history_[:-1]


def test_a_monitor_stops_training_and_the_best_weights_are_kept(
    tiny_bert: str, watched: tuple[FinetuneClassifier, Watcher]
) -> None:
    texts, _ = toy_data()
    _, seen = watched
    model = fit(tiny_bert, Watcher(stop_at=2, reason="it trails"))
    details = model.fit_details()
    assert (details["stopped_by"], details["stopped_at_step"], details["optimizer_steps"]) == ("it trails", 4, 4)
    assert details["stopped_early"] is False  # the validation plateau did not stop it
    step, best_step, probabilities = seen.seen[1]
    assert (step, model.best_step_) == (4, best_step)
    # predict_best at the second validation gave what the model stopped there predicts.
    assert np.array_equal(model.predict_proba(texts), probabilities)


class Clock(Watcher):
    """A deadline: says ``reason`` from step ``stop_at`` on, asked after every step between validations too."""

    def step_stop(self, step: int, total_steps: int) -> str | None:
        self.steps_asked = [*getattr(self, "steps_asked", []), step]
        return self.reason if self.stop_at is not None and step >= self.stop_at else None


def test_a_clock_stops_training_between_validations_keeping_the_last_validated_weights(
    tiny_bert: str, watched: tuple[FinetuneClassifier, Watcher]
) -> None:
    texts, _ = toy_data()
    _, seen = watched
    clock = Clock(stop_at=3, reason="the budget ran out")
    model = fit(tiny_bert, clock)
    details = model.fit_details()
    assert (details["stopped_by"], details["stopped_at_step"], details["optimizer_steps"]) == (
        "the budget ran out",
        3,
        3,
    )
    assert clock.steps_asked == [1, 3]  # every step but the validations' (2), where the monitor itself is asked
    step, best_step, probabilities = seen.seen[0]  # the first validation, at step 2
    assert (step, model.best_step_) == (2, best_step)
    assert np.array_equal(model.predict_proba(texts), probabilities)


def test_predict_best_uses_the_best_weights_not_the_latest(
    tiny_bert: str, watched: tuple[FinetuneClassifier, Watcher]
) -> None:
    texts, _ = toy_data()
    _, seen = watched
    call = next(i for i, (step, best, _) in enumerate(seen.seen) if best < step)  # the best lies behind
    step, best_step, probabilities = seen.seen[call]
    model = fit(tiny_bert, Watcher(stop_at=call + 1))
    assert (model.steps_, model.best_step_) == (step, best_step)
    assert np.array_equal(model.predict_proba(texts), probabilities)
    when_latest = {earlier_step: earlier for earlier_step, _, earlier in seen.seen[:call]}[best_step]
    assert np.array_equal(when_latest, probabilities)  # the same as when those weights were the latest


def test_a_resumed_fit_is_watched_at_the_validations_still_to_come(
    tiny_bert: str, unwatched: FinetuneClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "fit.checkpoint"
    texts, labels = toy_data()
    killed = FinetuneClassifier(model=tiny_bert, **SETTINGS)
    killed.checkpoint_path, killed.monitor = checkpoint, Watcher()
    keep_checkpoint(monkeypatch, 3)
    killed.fit(texts, labels)
    monkeypatch.undo()

    resumed = FinetuneClassifier(model=tiny_bert, **SETTINGS)
    watcher = Watcher(stop_at=2)
    resumed.checkpoint_path, resumed.monitor = checkpoint, watcher
    resumed.fit(texts, labels)
    assert resumed.resumed_from_step_ == 6
    assert [step for step, _, _ in watcher.seen] == [8, 10]
    assert resumed.fit_details()["stopped_at_step"] == 10
    assert resumed.history_ == unwatched.history_[:5]
    assert list(tmp_path.iterdir()) == []  # stopped: the fit is over, its checkpoint gone
