"""Classification metrics on predictions; pure functions of arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bertwise.data.dataset import Label


def classification_metrics(
    y_true: Sequence[Label], y_pred: Sequence[Label], classes: Sequence[Label]
) -> dict[str, Any]:
    """Accuracy, macro-F1 (every class counts equally, absent predictions included) and per-class F1."""
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(classes)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0.0)),
        "per_class_f1": {
            str(label): float(score) for label, score in zip(labels, np.atleast_1d(per_class), strict=True)
        },
    }
