"""The real embedded model on slices of the bundled sample: each strategy learns something real."""

from __future__ import annotations

import csv

import pytest
from sklearn.metrics import f1_score

from bertwise.strategies import FinetuneClassifier, ProbeClassifier, ZeroShotClassifier
from tests.conftest import SAMPLE

pytestmark = pytest.mark.integration


def sample(part: str) -> tuple[list[str], list[str]]:
    with (SAMPLE / f"{part}.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def test_each_strategy_is_well_above_chance_on_the_sample() -> None:
    texts, labels = sample("train")
    test_texts, test_labels = sample("test")
    chance = 1 / len(set(labels))  # 0.1
    scores = {}
    for name, strategy in (
        ("zero-shot", ZeroShotClassifier(device="cpu")),
        ("probe", ProbeClassifier(device="cpu")),
        # A short run keeps the test quick; it still has to learn the ten intents from scratch.
        ("finetune", FinetuneClassifier(device="cpu", min_steps=36, min_epochs=1, max_epochs=3)),
    ):
        predictions = strategy.fit(texts, labels).predict(test_texts)
        scores[name] = f1_score(test_labels, predictions.tolist(), average="macro")
    assert scores["probe"] > 0.9
    assert scores["zero-shot"] > 5 * chance
    assert scores["finetune"] > 5 * chance, scores
