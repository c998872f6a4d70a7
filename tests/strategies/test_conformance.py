"""Every strategy honours the scikit-learn classifier contract (on tiny random BERTs: behaviour, not accuracy)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from bertwise.exceptions import DataError
from bertwise.strategies import (
    FinetuneClassifier,
    LoraClassifier,
    NotFittedError,
    ProbeClassifier,
    SetFitClassifier,
    ZeroShotClassifier,
)
from tests.conftest import toy_data

FAST_FINETUNE = {"min_steps": 4, "max_epochs": 2, "min_epochs": 1, "batch_size": 8}
FAST_SETFIT = {"num_iterations": 1, "batch_size": 8}


def make(name: str, model: str) -> Any:
    if name == "zero-shot":
        return ZeroShotClassifier(model=model, device="cpu")
    if name == "probe":
        return ProbeClassifier(model=model, device="cpu", cv=2)
    if name == "lora":
        return LoraClassifier(model=model, device="cpu", **FAST_FINETUNE)
    if name == "setfit":
        return SetFitClassifier(model=model, device="cpu", **FAST_SETFIT)
    return FinetuneClassifier(model=model, device="cpu", **FAST_FINETUNE)


STRATEGIES = ["zero-shot", "probe", "finetune", "lora", "setfit"]


@pytest.mark.parametrize("name", STRATEGIES)
def test_fit_returns_self_and_proba_follows_classes(name: str, tiny_bert: str) -> None:
    texts, labels = toy_data()
    strategy = make(name, tiny_bert)
    assert strategy.fit(texts, labels) is strategy
    assert strategy.classes_.tolist() == ["cooking", "sports", "weather"]
    probabilities = strategy.predict_proba(texts[:5])
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    predictions = strategy.predict(texts[:5])
    assert predictions.tolist() == strategy.classes_[probabilities.argmax(axis=1)].tolist()
    assert strategy.predict([]).shape == (0,)


@pytest.mark.parametrize("name", STRATEGIES)
def test_predict_before_fit_is_a_clear_error(name: str, tiny_bert: str) -> None:
    with pytest.raises(NotFittedError, match="is not fitted yet. Call 'fit'"):
        make(name, tiny_bert).predict(["some text"])


@pytest.mark.parametrize("name", STRATEGIES)
def test_clone_keeps_params_and_drops_fitted_state(name: str, tiny_bert: str) -> None:
    texts, labels = toy_data()
    strategy = make(name, tiny_bert).fit(texts, labels)
    copy = clone(strategy)
    assert copy.get_params() == strategy.get_params()
    assert not hasattr(copy, "classes_")


@pytest.mark.parametrize("name", STRATEGIES)
def test_refit_gives_identical_predictions(name: str, tiny_bert: str) -> None:
    texts, labels = toy_data()
    first = make(name, tiny_bert).fit(texts, labels).predict_proba(texts)
    second = make(name, tiny_bert).fit(texts, labels).predict_proba(texts)
    np.testing.assert_allclose(first, second, atol=1e-6)


@pytest.mark.parametrize("name", STRATEGIES)
def test_one_class_is_refused(name: str, tiny_bert: str) -> None:
    with pytest.raises(DataError, match="at least 2 classes"):
        make(name, tiny_bert).fit(["a text", "another text"], ["x", "x"])


@pytest.mark.parametrize("name", ["probe", "finetune", "lora", "setfit"])
def test_integer_labels_come_back_as_integers(name: str, tiny_bert: str) -> None:
    texts, labels = toy_data()
    numbers = {"cooking": 3, "sports": 10, "weather": 7}
    strategy = make(name, tiny_bert).fit(texts, [numbers[label] for label in labels])
    assert strategy.classes_.tolist() == [3, 7, 10]
    assert all(isinstance(value, int) for value in strategy.predict(texts[:3]).tolist())


def test_single_string_instead_of_list_is_refused(tiny_bert: str) -> None:
    texts, labels = toy_data()
    strategy = make("probe", tiny_bert).fit(texts, labels)
    with pytest.raises(DataError, match="got a single str"):
        strategy.predict("one text")


def test_mismatched_lengths_are_refused(tiny_bert: str) -> None:
    with pytest.raises(DataError, match="3 texts but 2 labels"):
        make("probe", tiny_bert).fit(["a", "b", "c"], ["x", "y"])
