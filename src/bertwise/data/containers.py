"""Texts and labels from the containers of the scientific Python stack, as plain lists, or one clear error.

The estimators, ``embed()`` and the ONNX predictor take what scikit-learn users pass: lists, tuples, numpy arrays
(1-D, or 2-D with one column), pandas Series and one-column DataFrames. pandas is never imported here: a value can be
a DataFrame only if the caller already imported it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Set
from typing import Any

import numpy as np

from bertwise.data.dataset import Label
from bertwise.exceptions import DataError

_SHOWN_COLUMNS = 5


def check_texts(texts: Any, where: str) -> list[str]:
    """``texts`` as a list of str: a list, tuple, numpy array (1-D, or 2-D with one column), pandas Series or
    one-column DataFrame of strings. Anything with more columns, a lone string, a mapping or a set, a missing value
    (None, NaN) or a value that is not a string is refused with a one-line :class:`DataError` naming the row."""
    values = _one_column(texts, where, "texts")
    result: list[str] = []
    for index, text in enumerate(values):
        if type(text) is not str:
            if _is_missing(text):
                raise DataError(
                    f"{where} got a missing text (None or NaN) in row {_row(texts, index)}; "
                    "expected a str in every row: drop or fill the missing texts first (e.g. X.dropna())"
                )
            if not isinstance(text, str):
                raise DataError(
                    f"{where} expects str texts; row {_row(texts, index)} is {type(text).__name__} ({_preview(text)})"
                )
            text = str(text)  # numpy.str_ and other str subclasses become plain str
        result.append(text)
    return result


def check_labels(labels: Any, where: str) -> list[Label]:
    """``labels`` as a list of plain Python values (numpy and pandas scalars unwrapped, so ``classes_`` holds the
    user's own ints and strs), from the same containers as :func:`check_texts`; a missing label is refused, and so
    is a nested one (a list, tuple, dict, set or array: one label per text, multi-label data is not supported)."""
    values = _one_column(labels, where, "labels")
    result: list[Label] = []
    for index, label in enumerate(values):
        if _is_missing(label):
            raise DataError(
                f"{where} got a missing label (None or NaN) in row {_row(labels, index)}; expected a label for every "
                "text: drop the unlabeled rows first"
            )
        if isinstance(label, list | tuple | dict | Set | np.ndarray):
            raise DataError(
                f"{where} expects one label per text (a str or a number); row {_row(labels, index)} is "
                f"{type(label).__name__} ({_preview(label)}): multi-label data is not supported"
            )
        result.append(label.item() if isinstance(label, np.generic) else label)
    return result


def _one_column(values: Any, where: str, what: str) -> list[Any]:
    """The items of a one-dimensional container, or of the single column of a two-dimensional one."""
    kind = type(values).__name__
    if isinstance(values, str | bytes):
        raise DataError(f"{where} expects a sequence of {what}; got a single {kind} (wrap it in a list)")
    if isinstance(values, Mapping | Set):
        raise DataError(f"{where} expects an ordered sequence of {what} (a list, array or Series); got a {kind}")
    pandas = sys.modules.get("pandas")  # without pandas imported, nothing can be a DataFrame: no import needed
    if pandas is not None and isinstance(values, pandas.DataFrame):
        if values.shape[1] != 1:
            names = [str(name) for name in values.columns]
            shown = ", ".join(repr(name) for name in names[:_SHOWN_COLUMNS]) + (
                ", ..." if len(names) > _SHOWN_COLUMNS else ""
            )
            usual = what[:-1]  # "text" or "label"
            frame = "X" if what == "texts" else "y"
            example = f"{frame}[{(usual if usual in names or not names else names[0])!r}]"
            raise DataError(
                f"{where} expects one column of {what}; got a DataFrame with {len(names)} columns [{shown}]; "
                f"select the {what[:-1]} column, e.g. {example}"
            )
        values = values.iloc[:, 0]
    if pandas is not None and isinstance(values, pandas.Series | pandas.Index):
        return values.astype(object).tolist()
    if isinstance(values, np.ndarray):
        if values.ndim == 2 and values.shape[1] == 1:
            return values[:, 0].tolist()
        if values.ndim != 1:
            shape = " x ".join(str(size) for size in values.shape)
            raise DataError(
                f"{where} expects one column of {what}; got a {values.ndim}-D array of shape ({shape}); "
                f"expected a 1-D array or a single column (shape (n, 1))"
            )
        return values.tolist()
    try:
        return list(values)
    except TypeError:
        raise DataError(f"{where} expects a sequence of {what}; got {kind}") from None


def _is_missing(value: object) -> bool:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def _row(values: Any, index: int) -> str:
    """Row ``index`` (0-based position), with its index label when a pandas index names it otherwise."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(values, pandas.Series | pandas.DataFrame):
        label = values.index[index]
        label = label.item() if isinstance(label, np.generic) else label
        if label != index:
            return f"{index} (index {label!r})"
    return str(index)


def _preview(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
