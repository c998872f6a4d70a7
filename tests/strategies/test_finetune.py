from __future__ import annotations

import numpy as np
import pytest

from bertwise.backbone.encoder import Tokenized
from bertwise.exceptions import ConfigError
from bertwise.strategies import FinetuneClassifier
from bertwise.strategies.finetune import _length_grouped_batches
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
    batches = _length_grouped_batches(tokenized, 4, np.random.default_rng(0))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    # Sorted pools: the spread of lengths inside a batch is far below the overall spread.
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert np.median(spreads) <= 3


@pytest.mark.parametrize(
    ("param", "value"),
    [("learning_rate", 0.0), ("validation_fraction", 1.5), ("patience", 0), ("min_epochs", 99)],
)
def test_out_of_range_parameters_are_refused(tiny_bert: str, param: str, value: float) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match=f"the '{param}' parameter of FinetuneClassifier is out of range"):
        FinetuneClassifier(model=tiny_bert, device="cpu", **{param: value}).fit(texts, labels)
