"""Each strategy's prediction time is its own measurement: never a replay of cached encoding seconds, never another
strategy's number (issue 12: zero-shot and finetune once reported the identical 1.448 s)."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from bertwise.config import CompareConfig
from bertwise.data.dataset import LabeledTexts
from bertwise.evaluation.runner import PREDICT_TIMING_TEXTS, fit_predict
from tests.conftest import toy_data


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class FakeStrategy:
    """Predicting costs ``per_text`` clock seconds a text, plus ``once`` seconds on the first call (label vectors)."""

    def __init__(self, clock: FakeClock, per_text: float, once: float) -> None:
        self.clock, self.per_text, self.once, self.called = clock, per_text, once, False

    def get_params(self) -> dict[str, Any]:
        return {}

    def set_params(self, **params: Any) -> FakeStrategy:
        return self

    def fit(self, texts: list[str], labels: list[str]) -> FakeStrategy:
        self.classes_ = np.array(sorted(set(labels)), dtype=object)
        self.clock.now += 1.0
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if not self.called:
            self.clock.now += self.once
            self.called = True
        self.clock.now += self.per_text * len(texts)
        return np.full((len(texts), len(self.classes_)), 1 / len(self.classes_))

    def fit_details(self) -> dict[str, Any]:
        return {}


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("bertwise.evaluation.cost.time", types.SimpleNamespace(perf_counter=fake.perf_counter))
    costs = {"zero-shot": (0.002, 0.5), "finetune": (0.003, 0.0), "probe": (0.0025, 0.0)}
    monkeypatch.setattr(
        "bertwise.evaluation.runner.build_strategy",
        lambda name, config, progress=False: FakeStrategy(fake, *costs[name]),
    )
    return fake


@pytest.mark.parametrize("n_test", [100, PREDICT_TIMING_TEXTS, 1000])
def test_each_strategy_reports_its_own_prediction_time(clock: FakeClock, n_test: int) -> None:
    texts, labels = toy_data()
    train = LabeledTexts(texts=texts, labels=labels)
    test = [f"text {i}" for i in range(n_test)]
    classes = sorted(set(labels))
    seconds = {
        name: fit_predict(name, CompareConfig(), train, test, classes, seed=0).predict_seconds
        for name in ("zero-shot", "finetune", "probe")
    }
    # Per text, exactly as each strategy spends it; zero-shot's one-time work (its label vectors) is not per text,
    # and a test set larger than the timed spread scales to all of it.
    assert seconds == pytest.approx({"zero-shot": 0.002 * n_test, "finetune": 0.003 * n_test, "probe": 0.0025 * n_test})
    assert len(set(seconds.values())) == 3


def test_cached_embeddings_do_not_stand_in_for_the_strategys_own_encoding(tiny_bert: str) -> None:
    """Another strategy (or run) put the test texts' embeddings in the disk cache; the probe's prediction is timed
    encoding them itself, not by replaying the seconds recorded when someone else did."""
    from bertwise.backbone.encoder import forget_embeddings, load_encoder

    texts, labels = toy_data()
    train = LabeledTexts(texts=texts[::2], labels=labels[::2])
    test = [text.upper() + " again" for text in texts[1::2]]
    config = CompareConfig(model=tiny_bert, device="cpu")
    encoder = load_encoder(tiny_bert, "auto", "cpu", "auto")
    encoder.encode(list(train.texts) + test)  # into the disk cache, as zero-shot or an earlier run would
    forget_embeddings()
    before = encoder.cache_stats.copy()
    fit = fit_predict("probe", config, train, test, sorted(set(labels)), seed=0)
    happened = encoder.cache_stats.since(before)
    # Training texts may come from the cache (their recorded seconds count as fitting); the test texts were encoded.
    assert happened.computed >= len(set(test))
    assert fit.predict_seconds > 0
    assert fit.probabilities.shape == (len(test), len(set(labels)))
