"""The estimators take the containers of the scientific Python stack and refuse those they cannot read as one column.

Every accepted container gives exactly the predictions of a plain list; a two-dimensional input with more than one
column, a lone string, a mapping, a set or a missing value is refused with a one-line DataError, never read wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bertwise.data.containers import check_labels, check_texts
from bertwise.exceptions import DataError
from bertwise.strategies import FinetuneClassifier, ProbeClassifier, ZeroShotClassifier
from tests.conftest import toy_data

TEXTS, LABELS = toy_data()
# 150 rows, as in the issue: predict(df[["text"]]) once returned one prediction for all of them.
MANY = [TEXTS[i % len(TEXTS)] for i in range(150)]

TEXT_CONTAINERS: dict[str, Callable[[list[str]], Any]] = {
    "tuple": tuple,
    "numpy str array": np.array,
    "numpy object array": lambda texts: np.array(texts, dtype=object),
    "numpy (n, 1) array": lambda texts: np.array(texts).reshape(-1, 1),
    "pandas Series": pd.Series,
    "pandas Series, shuffled index": lambda texts: pd.Series(texts, index=np.arange(len(texts))[::-1] * 7),
    "pandas string Series": lambda texts: pd.Series(texts, dtype="string"),
    "pandas one-column DataFrame": lambda texts: pd.DataFrame({"text": texts, "other": 0})[["text"]],
    "pandas Index": pd.Index,
    "generator": lambda texts: (text for text in texts),
}


@pytest.fixture(scope="module")
def probe(tiny_bert: str) -> ProbeClassifier:
    return ProbeClassifier(model=tiny_bert, device="cpu", cv=3).fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def zero_shot(tiny_bert: str) -> ZeroShotClassifier:
    return ZeroShotClassifier(model=tiny_bert, mode="embedding", device="cpu").fit(TEXTS, LABELS)


@pytest.mark.parametrize("container", list(TEXT_CONTAINERS))
def test_every_text_container_predicts_what_a_list_does(
    container: str, probe: ProbeClassifier, zero_shot: ZeroShotClassifier
) -> None:
    for model in (probe, zero_shot):
        expected = model.predict_proba(MANY)
        got = model.predict_proba(TEXT_CONTAINERS[container](MANY))
        assert got.shape == (150, 3)
        np.testing.assert_array_equal(got, expected)
    labels = probe.predict(TEXT_CONTAINERS[container](MANY))
    assert labels.tolist() == probe.predict(MANY).tolist()


def test_finetune_fits_and_predicts_on_pandas_as_on_lists(tiny_bert: str) -> None:
    fast: dict[str, Any] = {"min_steps": 4, "max_epochs": 2, "min_epochs": 1, "batch_size": 8, "seed": 3}
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS}, index=np.arange(len(TEXTS))[::-1])
    from_lists = FinetuneClassifier(model=tiny_bert, device="cpu", **fast).fit(TEXTS, LABELS)
    from_frame = FinetuneClassifier(model=tiny_bert, device="cpu", **fast).fit(frame[["text"]], frame["label"])
    assert from_frame.classes_.tolist() == from_lists.classes_.tolist()
    expected = from_lists.predict_proba(MANY)
    np.testing.assert_array_equal(from_frame.predict_proba(MANY), expected)
    for container in ("numpy object array", "pandas one-column DataFrame", "pandas Series, shuffled index"):
        np.testing.assert_array_equal(from_lists.predict_proba(TEXT_CONTAINERS[container](MANY)), expected)


def test_a_dataframe_column_selected_as_a_frame_gives_one_prediction_per_row(probe: ProbeClassifier) -> None:
    frame = pd.DataFrame({"text": MANY, "label": [LABELS[i % len(LABELS)] for i in range(150)]})
    assert len(probe.predict(frame[["text"]])) == 150  # not 1: the column name is not a text
    refit = ProbeClassifier(model=probe.model, device="cpu", cv=3).fit(frame[["text"]], frame[["label"]])
    np.testing.assert_allclose(
        refit.predict_proba(TEXTS),
        ProbeClassifier(model=probe.model, device="cpu", cv=3).fit(MANY, frame["label"].tolist()).predict_proba(TEXTS),
    )


@pytest.mark.parametrize(
    ("labels", "dtype", "kind"),
    [
        (LABELS, object, str),
        (np.array(LABELS), object, str),  # np.str_ would otherwise leak into classes_
        (pd.Series(LABELS, dtype="category"), object, str),
        (pd.Series(LABELS, dtype="string"), object, str),
        (np.array([len(label) for label in LABELS], dtype=np.int64), np.int64, int),
        (pd.Series([len(label) for label in LABELS], dtype="Int64"), np.int64, int),
        (tuple(len(label) for label in LABELS), np.int64, int),
    ],
    ids=["list", "numpy str", "category", "string", "numpy int64", "nullable Int64", "tuple of int"],
)
def test_labels_from_numpy_and_pandas_become_plain_python_classes(
    labels: Any, dtype: type, kind: type, zero_shot: ZeroShotClassifier
) -> None:
    model = ZeroShotClassifier(model=zero_shot.model, mode="embedding", device="cpu").fit(TEXTS, labels)
    assert model.classes_.dtype == np.dtype(dtype)
    assert all(type(label) is kind for label in model.classes_.tolist())
    assert all(type(label) is kind for label in check_labels(labels, "fit"))
    assert model.predict(TEXTS[:2]).dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]}), "one column of texts; got a DataFrame with 3 columns"),
        (pd.DataFrame({"text": ["x"], "label": ["y"]}), "select the text column, e.g. X['text']"),
        (np.array([["x", "y"]] * 3), "a 2-D array of shape (3 x 2)"),
        (np.array([[["x"]]]), "a 3-D array"),
        ("where is my card", "got a single str (wrap it in a list)"),
        ({"text": "x"}, "ordered sequence of texts"),
        ({"x", "y"}, "ordered sequence of texts"),
        (5, "expects a sequence of texts; got int"),
        (["fine", None], "missing text (None or NaN) in row 1"),
        (pd.Series(["fine", np.nan, "fine"], index=[10, 20, 30]), "row 1 (index 20)"),
        (pd.Series(["fine", pd.NA], dtype="string"), "missing text (None or NaN) in row 1"),
        (np.array(["fine", 3], dtype=object), "row 1 is int (3)"),
        ([["nested"]], "row 0 is list"),
    ],
    ids=[
        "3 columns",
        "text and label",
        "2-D array",
        "3-D array",
        "str",
        "dict",
        "set",
        "int",
        "None",
        "NaN with index",
        "pd.NA",
        "number",
        "nested",
    ],
)
def test_what_is_not_one_column_of_texts_is_refused_in_one_line(
    texts: Any, expected: str, probe: ProbeClassifier
) -> None:
    for call in (probe.predict, probe.predict_proba, lambda x: check_texts(x, "fit")):
        with pytest.raises(DataError) as error:
            call(texts)
        assert expected in str(error.value)
        assert "\n" not in str(error.value)


def test_fit_refuses_a_whole_dataframe_and_missing_labels(tiny_bert: str) -> None:
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS})
    model = ZeroShotClassifier(model=tiny_bert, mode="embedding", device="cpu")
    with pytest.raises(DataError, match=r"fit expects one column of texts; got a DataFrame with 2 columns"):
        model.fit(frame, frame["label"])  # once: "1 texts but 18 labels"
    with pytest.raises(DataError, match=r"select the label column, e.g. y\['label'\]"):
        model.fit(frame["text"], frame)
    with pytest.raises(DataError, match=r"missing label \(None or NaN\) in row 2"):
        model.fit(TEXTS, [*LABELS[:2], np.nan, *LABELS[3:]])
    with pytest.raises(DataError, match="single str"):
        model.fit(TEXTS, "sports")
    with pytest.raises(DataError, match=r"expects one column of labels; got a 2-D array of shape \(18 x 2\)"):
        model.fit(TEXTS, np.array([LABELS, LABELS]).T)
    nested = [[label] for label in LABELS]
    with pytest.raises(DataError, match=r"fit expects one label per text \(a str or a number\); row 0 is list"):
        model.fit(TEXTS, nested)
    with pytest.raises(DataError, match=r"row 1 \(index 'b'\) is dict \(\{'a': 'x'\}\)"):
        model.fit(TEXTS[:2], pd.Series(["sports", {"a": "x"}], index=["a", "b"]))
