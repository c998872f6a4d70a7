"""Classification metrics on predictions by label: the one implementation in :mod:`bertwise.evaluation.statistics`
(scikit-learn's definitions, computed from a confusion matrix), keyed by the labels themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bertwise.data.dataset import Label
from bertwise.evaluation.statistics import confusion_counts, metrics_from_confusion


def classification_metrics(
    y_true: Sequence[Label], y_pred: Sequence[Label], classes: Sequence[Label]
) -> dict[str, Any]:
    """Accuracy, macro-F1 (a class counts when it occurs among the true labels or the predictions, as in
    ``bertwise compare``) and per-class F1 for every one of ``classes``."""
    codes = {label: code for code, label in enumerate(classes)}
    for label in [*y_true, *y_pred]:  # a label outside ``classes`` is one more class (wrong whenever predicted)
        codes.setdefault(label, len(codes))
    true = np.array([codes[label] for label in y_true], dtype=np.int64)
    predicted = np.array([codes[label] for label in y_pred], dtype=np.int64)
    scores = metrics_from_confusion(confusion_counts(true, predicted, len(codes)))
    per_class = np.atleast_1d(scores["per_class_f1"])[: len(classes)]
    return {
        "accuracy": float(scores["accuracy"]),
        "macro_f1": float(scores["macro_f1"]),
        "per_class_f1": {str(label): float(score) for label, score in zip(classes, per_class, strict=True)},
    }
