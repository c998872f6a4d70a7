"""Tables already in memory as labeled texts: a pandas DataFrame, a Hugging Face ``datasets.Dataset``/``DatasetDict``.

Their columns are read as plain Python values and checked by the very code that checks a file
(:func:`bertwise.data.io.labeled_texts_from_values`), so the same rows are dropped and the same mistakes refused.
Neither pandas nor datasets is imported here: a value can only be one of their tables if its library is already
imported, so a path never pays for importing them (datasets alone takes about a second).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bertwise.data.columns import check_columns
from bertwise.data.dataset import LabeledTexts
from bertwise.data.io import labeled_texts_from_values, texts_from_values
from bertwise.exceptions import DataError

TableKind = Literal["DataFrame", "Dataset", "DatasetDict", "streaming"]
# A DatasetDict's test set: its "test" split, else its "validation" split (the one most hubs label when "test" is
# withheld); without either, the training split is held out or cross-validated like a single file.
TEST_SPLITS = ("test", "validation")
_NAMES = {"DataFrame": "pandas.DataFrame", "Dataset": "datasets.Dataset", "DatasetDict": "datasets.DatasetDict"}
_MISSING_CLASS = -1  # what datasets stores in a ClassLabel column for "no label" (hidden test labels, for one)


@dataclass(frozen=True)
class Table:
    """One table in memory (a DataFrame or a Dataset) and the name messages give it."""

    data: Any
    kind: Literal["DataFrame", "Dataset"]
    name: str  # "pandas.DataFrame", "datasets.DatasetDict['test']", ...

    @property
    def source(self) -> str:
        rows = len(self.data)
        return f"{self.name} ({rows} row{'s' if rows != 1 else ''})"

    @property
    def columns(self) -> list[str]:
        if self.kind == "Dataset":
            return list(self.data.column_names)
        return [str(name) for name in self.data.columns]


def table_kind(value: object) -> TableKind | None:
    """What kind of table ``value`` is, or None (a path, say); imports neither pandas nor datasets."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return "DataFrame"
    datasets = sys.modules.get("datasets")
    if datasets is None:
        return None
    if isinstance(value, datasets.Dataset):
        return "Dataset"
    if isinstance(value, datasets.DatasetDict):
        return "DatasetDict"
    if isinstance(value, datasets.IterableDataset | datasets.IterableDatasetDict):
        return "streaming"
    return None


def is_table(value: object) -> bool:
    return table_kind(value) is not None


def table_parts(value: Any) -> tuple[Table, Table | None, list[str]]:
    """Training data given as a table: (the training table, the test table it brings or None, notes).

    A DataFrame or a Dataset is all training data. A DatasetDict brings its "train" split and, as the test set, its
    "test" split, else its "validation" split; other splits are left out, with a note.
    """
    if table_kind(value) != "DatasetDict":
        return single_table(value, role="data"), None, []
    splits = list(value)
    if "train" not in value:
        first = splits[0] if splits else "train"
        raise DataError(
            f"the datasets.DatasetDict has no 'train' split (it has {_list(splits) or 'none'}); expected a 'train' "
            f"split and optionally 'test' or 'validation', or pass one split as the data, e.g. dataset[{first!r}]"
        )
    tested = next((name for name in TEST_SPLITS if name in value), None)
    notes: list[str] = []
    if tested == "validation":
        notes.append("the datasets.DatasetDict has no 'test' split: its 'validation' split is the test set")
    unused = [name for name in splits if name not in ("train", tested)]
    if unused:
        notes.append(
            f"left out the datasets.DatasetDict's other split{'s' if len(unused) > 1 else ''}: {_list(unused)}"
        )
    test = _dataset_split(value, tested) if tested is not None else None
    return _dataset_split(value, "train"), test, notes


def single_table(value: Any, *, role: Literal["data", "test", "input"]) -> Table:
    """A DataFrame or a Dataset given as ``role``; a DatasetDict or a streaming dataset is refused with advice."""
    kind = table_kind(value)
    if kind == "streaming":
        raise DataError(
            f"{role}: a streaming {type(value).__name__} cannot be used (its rows are read more than once); "
            "expected a datasets.Dataset: load it without streaming=True"
        )
    if kind == "DatasetDict":
        raise DataError(
            f"{role}: expected one table, got a datasets.DatasetDict with splits {_list(list(value))}; "
            f"pass one split, e.g. dataset[{next(iter(value), 'test')!r}]"
        )
    if kind is None:
        raise DataError(f"{role}: expected a pandas DataFrame or a datasets.Dataset; got {type(value).__name__}")
    return Table(value, kind, _NAMES[kind] + (" given as test" if role == "test" else ""))


def read_labeled_table(table: Table, *, text_col: str, label_col: str) -> tuple[LabeledTexts, list[str]]:
    """The labeled texts of ``table`` and notes, exactly as :func:`bertwise.data.io.read_labeled_file` gives a
    file's; a ClassLabel column's integers become its names."""
    source = table.source
    check_columns(source, table.columns, text_col=text_col, label_col=label_col)
    texts, labels = _values(table, [text_col, label_col])
    return labeled_texts_from_values(source, texts, labels, text_col=text_col, label_col=label_col)


def read_text_table(table: Table, *, text_col: str) -> tuple[list[str], list[str]]:
    """Every row's text in order (a missing one as ""), and notes, as :func:`bertwise.data.io.read_text_file`."""
    check_columns(table.source, table.columns, text_col=text_col, label_col=None)
    (texts,) = _values(table, [text_col])
    return texts_from_values(table.source, texts, text_col=text_col)


def _dataset_split(value: Any, split: str) -> Table:
    return Table(value[split], "Dataset", f"datasets.DatasetDict[{split!r}]")


def _values(table: Table, names: list[str]) -> list[list[object]]:
    """The columns ``names`` as lists of plain Python values (numpy scalars unwrapped, missing values as None)."""
    if table.kind == "DataFrame":
        values = [_frame_column(table, name) for name in names]
    else:
        # with_format(None): plain Python lists whatever format the user set (numpy, torch); [:] honours a selection.
        columns = table.data.select_columns(names).with_format(None)[:]
        values = [list(columns[name]) for name in names]
    if table.kind == "Dataset" and len(names) == 2:
        feature = table.data.features[names[1]]
        if type(feature).__name__ == "ClassLabel":
            values[1] = _class_names(values[1], list(feature.names), table.source, names[1])
    return values


def _frame_column(table: Table, name: str) -> list[object]:
    import numpy as np  # already imported with pandas

    frame = table.data
    keys = [key for key in frame.columns if str(key) == name]
    if len(keys) > 1:
        raise DataError(
            f"{table.source}: {len(keys)} columns are named '{name}'; expected one (rename or drop the others)"
        )
    column = frame[keys[0]]
    # isna() also knows pandas' own missing values (pd.NA, NaT), which the checks would take for values.
    missing = column.isna().tolist()
    values: list[object] = []
    for value, gone in zip(column.tolist(), missing, strict=True):
        # numpy scalars (np.int64, np.str_) become plain ints and strs, as the classes must be; a nested array
        # becomes a list, so that the checks see it for what it is.
        if isinstance(value, np.generic | np.ndarray):
            value = value.tolist()
        values.append(None if gone is True else value)
    return values


def _class_names(values: Sequence[object], names: list[str], source: str, column: str) -> list[object]:
    if values and all(value == _MISSING_CLASS for value in values):
        raise DataError(
            f"{source}: every label in column '{column}' is -1, which datasets uses for a missing label (a split "
            "whose labels are withheld?); expected labeled rows: evaluate on another split, e.g. "
            "test=dataset['validation']"
        )
    result: list[object] = []
    for row, value in enumerate(values):
        if value is None or value == _MISSING_CLASS:
            result.append(None)  # refused by the checks as a row without a label, naming the rows
        elif isinstance(value, int) and 0 <= value < len(names):
            result.append(names[value])
        else:
            raise DataError(
                f"{source} row {row}: label {value!r} in column '{column}' is not one of the ClassLabel's "
                f"{len(names)} classes; expected 0 to {len(names) - 1} (or -1 for a missing label)"
            )
    return result


def _list(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)
