"""A fitted scikit-learn logistic regression kept in a model folder as safetensors (never pickled), and read back.

The probe and SetFit both end in one; the file holds its coef, intercept and class indices, with the labels in its
metadata, so an edited manifest cannot silently rename its columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.exceptions import ModelError

HEAD_FILE = "head.safetensors"


def save_logistic_head(head: Any, classes: np.ndarray, path: Path) -> None:
    """Write fitted LogisticRegression ``head`` (its classes_ index ``classes``) to ``path``."""
    from safetensors.numpy import save_file

    labels = json.dumps([_plain(label) for label in classes.tolist()], ensure_ascii=True)
    save_file(
        {
            # In the dtype they were fitted in (float32, like the embeddings): widening them would change the
            # probabilities in their last digits.
            "coef": np.ascontiguousarray(head.coef_),
            "intercept": np.ascontiguousarray(head.intercept_),
            # Columns of predict_proba: which of the model's classes each of the head's rows scores.
            "classes": np.ascontiguousarray(head.classes_, dtype=np.int64),
        },
        str(path),
        metadata={"classes": labels},
    )


def read_logistic_head(
    path: Path, manifest: Mapping[str, Any], dimension: int, *, iterations: int, **params: Any
) -> Any:
    """The LogisticRegression (``params`` go to its constructor) saved at ``path``, its arrays checked against the
    manifest's classes and the encoder's ``dimension``."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file
    from sklearn.linear_model import LogisticRegression

    classes = manifest["classes"]
    try:
        arrays = load_file(str(path))
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelError(f"'{path}' cannot be read as safetensors ({error}); save the model again") from None
    if "classes" in metadata and _json_or_none(metadata["classes"]) != classes:
        raise ModelError(
            f"'{path}' was trained for the classes {metadata['classes'][:200]}, but manifest.json lists "
            f"{json.dumps(classes)[:200]}; was the manifest edited? Save the model again"
        )
    coef, intercept, head_classes = arrays.get("coef"), arrays.get("intercept"), arrays.get("classes")
    seen = len(head_classes) if head_classes is not None and head_classes.ndim == 1 else len(classes)
    rows = 1 if seen == 2 else seen  # scikit-learn keeps one row of weights for two classes
    if (
        coef is None
        or intercept is None
        or head_classes is None
        or head_classes.dtype.kind not in "iu"
        or head_classes.ndim != 1
        or not 2 <= len(head_classes) <= len(classes)
        or head_classes.min() < 0
        or head_classes.max() >= len(classes)
        or np.any(np.diff(head_classes) <= 0)  # each column a different class, in order, as sklearn keeps them
        or coef.dtype not in (np.float32, np.float64)
        or intercept.dtype != coef.dtype
        or coef.shape != (rows, dimension)
        or intercept.shape != (rows,)
    ):
        shapes = {key: f"{value.dtype}{list(value.shape)}" for key, value in arrays.items()}
        raise ModelError(
            f"'{path}' holds {shapes}; expected float coef [{rows}, {dimension}], intercept [{rows}] and "
            f"increasing int classes [{seen}] for {len(classes)} classes and the backbone's {dimension} dimensions"
        )
    # A LogisticRegression with the saved fitted attributes computes predict_proba with sklearn's own code, so the
    # probabilities equal those of the model that was saved, bit for bit.
    head = LogisticRegression(**params)
    head.coef_ = coef
    head.intercept_ = intercept
    head.classes_ = head_classes
    head.n_features_in_ = dimension
    head.n_iter_ = np.array([iterations], dtype=np.int32)
    return head


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
