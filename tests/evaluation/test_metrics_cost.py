from __future__ import annotations

import time

import numpy as np
import pytest

from bertwise.evaluation.cost import SAMPLE_SECONDS, measure
from bertwise.evaluation.metrics import classification_metrics


def test_macro_f1_counts_never_predicted_classes_as_zero() -> None:
    metrics = classification_metrics(["a", "a", "b", "c"], ["a", "a", "b", "b"], ["a", "b", "c"])
    assert metrics["accuracy"] == 0.75
    assert metrics["per_class_f1"] == {"a": 1.0, "b": pytest.approx(2 / 3), "c": 0.0}
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_macro_f1_by_label_agrees_with_scikit_learn_and_the_comparisons_bootstrap() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    classes = ["w", "x", "y", "z"]  # "z" occurs in neither: it takes no part, as in sklearn without labels=
    truth = rng.choice(classes[:3], 200).tolist()
    predicted = rng.choice(classes[:3], 200).tolist()
    metrics = classification_metrics(truth, predicted, classes)
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert metrics["per_class_f1"]["z"] == 0.0


def test_a_true_label_outside_the_classes_counts_as_a_class_never_predicted() -> None:
    metrics = classification_metrics(["a", "q"], ["a", "a"], ["a", "b"])
    assert metrics["accuracy"] == 0.5
    assert metrics["per_class_f1"] == {"a": pytest.approx(2 / 3), "b": 0.0}
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)  # "a" and "q" occur; "b" does not


def test_measure_sees_memory_allocated_inside_the_block() -> None:
    with measure() as before:
        pass
    with measure() as cost:
        block = bytearray(300 * 2**20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
        time.sleep(10 * SAMPLE_SECONDS)  # held for several sampling intervals, as real work would be
        del block
    assert cost.peak_rss_mb >= before.peak_rss_mb + 200
    assert cost.seconds > 0
