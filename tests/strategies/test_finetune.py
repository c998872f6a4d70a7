from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.backbone.encoder import Tokenized
from bertwise.exceptions import ConfigError
from bertwise.strategies import FinetuneClassifier
from bertwise.strategies.finetune_cost import planned_epochs
from bertwise.strategies.finetune_loop import length_grouped_batches
from tests.conftest import toy_data


def test_small_data_gets_at_least_min_steps(tiny_bert: str) -> None:
    texts, labels = toy_data()
    model = FinetuneClassifier(model=tiny_bert, device="cpu", batch_size=8, min_steps=12, patience=100, max_epochs=50)
    model.fit(texts, labels)
    # 16 training texts after the validation carve -> 2 steps per epoch -> 6 epochs to reach 12 steps.
    assert model.planned_steps_ >= 12
    assert model.steps_ == model.planned_steps_
    assert model.history_ and all(0.0 <= h["val_macro_f1"] <= 1.0 for h in model.history_)


def test_early_stopping_keeps_the_best_step(tiny_bert: str) -> None:
    texts, labels = toy_data()
    model = FinetuneClassifier(
        model=tiny_bert,
        device="cpu",
        batch_size=4,
        min_steps=200,
        min_epochs=1,
        max_epochs=50,
        patience=1,
        learning_rate=1e-6,
    )
    model.fit(texts, labels)
    best = max(model.history_, key=lambda h: (h["val_macro_f1"], -h["val_loss"]))
    assert model.best_step_ == best["step"]
    assert model.stopped_early_, "with patience 1 and a tiny learning rate, validation stops improving"
    assert model.steps_ < model.planned_steps_
    assert 2 * model.steps_ >= model.planned_steps_  # never stopped in the first half of the schedule


def test_length_grouped_batches_cover_every_index_once() -> None:
    lengths = [5, 50, 7, 48, 6, 49, 8, 47, 9, 46] * 7
    tokenized = Tokenized(input_ids=[[1] * n for n in lengths], truncated=0)
    batches = length_grouped_batches(tokenized, 4, np.random.default_rng(0))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    # Sorted pools: the spread of lengths inside a batch is far below the overall spread.
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert np.median(spreads) <= 3


@pytest.mark.parametrize(
    ("param", "value"),
    [("learning_rate", 0.0), ("validation_fraction", 1.5), ("patience", 0), ("min_epochs", 0)],
)
def test_out_of_range_parameters_are_refused(tiny_bert: str, param: str, value: float) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match=f"the '{param}' parameter of FinetuneClassifier is out of range"):
        FinetuneClassifier(model=tiny_bert, device="cpu", **{param: value}).fit(texts, labels)


def test_min_epochs_above_an_explicit_max_epochs_is_refused(tiny_bert: str) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match="'min_epochs' parameter of FinetuneClassifier is out of range: got 9"):
        FinetuneClassifier(model=tiny_bert, device="cpu", min_epochs=9, max_epochs=3).fit(texts, labels)


@pytest.mark.parametrize(
    ("steps_per_epoch", "min_epochs", "max_epochs", "min_steps", "epochs"),
    [
        (1, 5, None, 400, 400),  # 8 examples a class of a 2-class set: min_steps rules, however many epochs
        (3, 5, None, 400, 134),
        (200, 5, None, 400, 5),  # large data: min_epochs rules
        (3, 5, 20, 400, 20),  # an explicit cap wins over min_steps
        (0, 1, None, 10, 10),  # never divides by zero
    ],
)
def test_planned_epochs_reach_min_steps_unless_capped(
    steps_per_epoch: int, min_epochs: int, max_epochs: int | None, min_steps: int, epochs: int
) -> None:
    assert planned_epochs(steps_per_epoch, min_epochs, max_epochs, min_steps) == epochs


def test_the_cost_schedule_plans_the_steps_fit_trains() -> None:
    schedule = FinetuneClassifier.schedule()
    # 16 texts: 14 after the validation carve, one batch an epoch; min_steps 400 with no default cap.
    assert schedule.max_epochs is None and schedule.planned_steps(16) == 400
    assert schedule.planned_steps(16, scale=0.5) == 200
    assert schedule.shortened(0.5) == {"min_steps": 200, "max_epochs": None, "min_epochs": 2}


# Checkpoints: a fit killed mid-training resumes from its last checkpoint and ends exactly as an uninterrupted one.

RESUMABLE = {"device": "cpu", "batch_size": 4, "min_steps": 24, "min_epochs": 6, "patience": 100, "seed": 3}


def keep_checkpoint(monkeypatch: pytest.MonkeyPatch, count: int) -> list[int]:
    """Make fit leave its ``count``-th checkpoint on disk, as a kill right after writing it would; return the steps
    written. Every checkpoint is taken here (none left out for being too recent), one after the other."""
    from bertwise.strategies import checkpoint

    steps: list[int] = []
    real = checkpoint.save_checkpoint

    def save_only_first(path: Path, **kwargs: Any) -> bool:
        if len(steps) == count:
            return False  # the process is "dead": nothing more is written
        steps.append(kwargs["step"])
        return real(path, **kwargs)

    def synchronous(writer: checkpoint.CheckpointWriter) -> bool:
        writer.wait()
        return True

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_only_first)
    monkeypatch.setattr(checkpoint, "remove_checkpoint", lambda path: None)
    monkeypatch.setattr(checkpoint.CheckpointWriter, "due", synchronous)
    return steps


@pytest.fixture(scope="module")
def uninterrupted(tiny_bert: str) -> FinetuneClassifier:
    texts, labels = toy_data()
    # Two validations an epoch: checkpoints come mid-epoch as well as at its end.
    return FinetuneClassifier(model=tiny_bert, evaluations_per_epoch=2, **RESUMABLE).fit(texts, labels)


def test_a_fit_killed_mid_training_resumes_from_its_checkpoint_exactly(
    tiny_bert: str, uninterrupted: FinetuneClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, labels = toy_data()
    checkpoint = tmp_path / "fit.checkpoint"
    killed = FinetuneClassifier(model=tiny_bert, evaluations_per_epoch=2, **RESUMABLE)
    killed.checkpoint_path = checkpoint
    steps = keep_checkpoint(monkeypatch, 3)
    killed.fit(texts, labels)
    assert steps == [2, 4, 6]  # 16 training texts in batches of 4: 4 steps an epoch, validated every 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fit.checkpoint", "fit.checkpoint.step-6.pt"]
    assert uninterrupted.steps_ > 6  # training went on after the kill: its validations are compared below

    monkeypatch.undo()
    resumed = FinetuneClassifier(model=tiny_bert, evaluations_per_epoch=2, **RESUMABLE)
    resumed.checkpoint_path = checkpoint
    resumed.fit(texts, labels)
    assert resumed.resumed_from_step_ == 6
    # Every validation loss after step 6 comes from weights trained after the resume: any part of the state not
    # restored exactly (weights, optimiser moments, schedule, dropout's generator, batch order) would change them.
    assert resumed.history_ == uninterrupted.history_
    assert (resumed.best_step_, resumed.steps_) == (uninterrupted.best_step_, uninterrupted.steps_)
    assert np.array_equal(resumed.predict_proba(texts), uninterrupted.predict_proba(texts))
    assert list(tmp_path.iterdir()) == []  # finished: its checkpoint is gone


def test_a_damaged_checkpoint_or_another_fits_is_not_resumed(
    tiny_bert: str, uninterrupted: FinetuneClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertwise.strategies.checkpoint import CheckpointWarning

    texts, labels = toy_data()
    checkpoint = tmp_path / "fit.checkpoint"
    killed = FinetuneClassifier(model=tiny_bert, evaluations_per_epoch=2, **RESUMABLE)
    killed.checkpoint_path = checkpoint
    keep_checkpoint(monkeypatch, 2)
    killed.fit(texts, labels)
    monkeypatch.undo()

    other = FinetuneClassifier(model=tiny_bert, evaluations_per_epoch=2, **{**RESUMABLE, "seed": 4})
    other.checkpoint_path = checkpoint
    other.fit(texts, labels)
    assert other.resumed_from_step_ is None  # another seed's training: not this one's to resume

    keep_checkpoint(monkeypatch, 2)
    killed.fit(texts, labels)
    monkeypatch.undo()
    (tensors,) = tmp_path.glob("*.pt")
    tensors.write_bytes(tensors.read_bytes()[:-100] + bytes(100))  # damaged on disk, its record intact
    damaged = FinetuneClassifier(model=tiny_bert, evaluations_per_epoch=2, **RESUMABLE)
    damaged.checkpoint_path = checkpoint
    with pytest.warns(CheckpointWarning, match="does not match the sha256"):
        damaged.fit(texts, labels)
    assert damaged.resumed_from_step_ is None
    assert np.array_equal(damaged.predict_proba(texts), uninterrupted.predict_proba(texts))  # trained from scratch
