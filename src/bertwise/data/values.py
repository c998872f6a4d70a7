"""What one cell of a data file or table means: a text, a label, a missing value, or something refused.

Shared by the training loaders (:mod:`bertwise.data.io`, :mod:`bertwise.data.frames`) and ``predict``'s streaming
reader (:mod:`bertwise.data.chunks`), so that a cell is read the same way whichever command reads it. The messages'
pieces are here too: each error must stay on one line whatever the file holds.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Sequence
from typing import Any

from bertwise.data.dataset import Label
from bertwise.exceptions import DataError

# Up to 18 digits: the labels int() and float() read exactly; longer digit strings (IDs, hashes) stay text.
_INT_LABEL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
# pandas writes an int column holding NaN as floats ("1.0"), so a CSV from it still has integer labels.
_INTEGRAL_FLOAT_LABEL = re.compile(r"-?(?:0|[1-9][0-9]{0,14})\.0+")
# A label spelled NaN is a missing value written out as text: pandas reads it as NaN, and `df.label.astype(str)`
# writes a missing label as "nan". Made a class, it would be trained and reported as one. Other spellings pandas
# reads as missing (NA, None, null, N/A) stay labels: they are also common names of real classes ("None" intent).
_NAN_LABEL = re.compile(r"[+-]?nan", re.IGNORECASE)
_SHOWN_POSITIONS = 5
# Nested values: what JSON, Parquet (list, struct, map) and tables give for a cell that is not one value.
_NESTED = (list, tuple, dict, set, frozenset)
# Only JSON escapes ("\ud800") and tables can give one; no encoder writes it, and no tokenizer takes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Preview(reprlib.Repr):
    """A short, bounded repr: a few items, two levels deep, strings cut at 40 characters."""

    def __init__(self) -> None:
        super().__init__()  # attributes, not keywords: Python 3.11 takes none
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 2, 3, 3, 3, 3
        self.maxstring = self.maxother = 40

    def repr1(self, x: Any, level: int) -> str:
        # reprlib picks its method by the exact type name, and a subclass (JSON objects are read as one) would get
        # the builtin repr, unbounded.
        for kind in (dict, list, tuple, set, frozenset):
            if isinstance(x, kind) and type(x) is not kind:
                return str(getattr(self, f"repr_{kind.__name__}")(x, level))
        return super().repr1(x, level)


_PREVIEW = _Preview()


def one_line(text: str) -> str:
    """``text`` with every character that would break or hide in a one-line message escaped (\\n, \\x00, U+2028)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def first_line(err: BaseException) -> str:
    """The first line of an exception from a library (pyarrow's run on), made safe to print on one line."""
    text = str(err).strip()
    return one_line(text.splitlines()[0]) if text else type(err).__name__


def json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list"
    return "an object"


def list_positions(unit: str, positions: Sequence[int]) -> str:
    shown = ", ".join(str(p) for p in positions[:_SHOWN_POSITIONS])
    more = ", ..." if len(positions) > _SHOWN_POSITIONS else ""
    return f"{unit}{'s' if len(positions) != 1 else ''} {shown}{more}"


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def cell_text(value: object, *, source: str, unit: str, position: int, column: str) -> str | None:
    """A text cell as a string, or None where it is missing (null, NaN); a nested value is refused.

    Numbers and other scalars become their text (a CSV would hold them so); bytes are decoded. A list or object is
    refused, naming the column and row: its Python form (``"['What state ...']"``) is no text anyone wrote.
    """
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise DataError(
                f"{source} {unit} {position}: the text in column '{one_line(column)}' holds "
                f"{_surrogate(value)}; expected valid Unicode text"
            )
        return str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, _NESTED):
        raise DataError(
            f"{source} {unit} {position}: the text in column '{one_line(column)}' is {_nested(value)}; expected one "
            "string per row (join the parts into one text, or give one row per part)"
        )
    return str(value)


def string_labels(raw: Sequence[object], positions: Sequence[int]) -> tuple[list[Label], list[int], bool]:
    """Labels read from text (CSV, TSV): integers where every label is one, else the stripped strings.

    Returns (labels, the positions without a label, whether a NaN spelling was among those): an empty cell or one
    spelled NaN is no label.
    """
    stripped = [str(label).strip() for label in raw]
    nan = [p for p, label in zip(positions, stripped, strict=True) if _NAN_LABEL.fullmatch(label)]
    unlabeled = [p for p, label in zip(positions, stripped, strict=True) if not label or _NAN_LABEL.fullmatch(label)]
    if unlabeled:
        return [], unlabeled, bool(nan)
    if all(_INT_LABEL.fullmatch(label) for label in stripped):
        return [int(label) for label in stripped], [], False
    if all(_INT_LABEL.fullmatch(label) or _INTEGRAL_FLOAT_LABEL.fullmatch(label) for label in stripped):
        # int() for the plain integers: float() would round those past 2**53.
        return [int(label) if _INT_LABEL.fullmatch(label) else int(float(label)) for label in stripped], [], False
    return list(stripped), [], False


def typed_labels(
    raw: Sequence[object], positions: Sequence[int], *, source: str, unit: str, column: str
) -> tuple[list[Label], list[int], bool, list[str]]:
    """Labels that carry their own type (JSON, Parquet, tables): (labels, unlabeled positions, NaN seen, notes).

    null, a float NaN, an empty string and a string spelled NaN are no label; a nested value is refused.
    """
    labels: list[Label] = []
    unlabeled: list[int] = []
    nan_text = floats_seen = False
    for position, value in zip(positions, raw, strict=True):
        label: Label
        if value is None or (isinstance(value, float) and math.isnan(value)):
            unlabeled.append(position)
            continue
        if isinstance(value, bool):
            # A boolean is a category name, not a number (True == 1 would merge it with the label 1).
            label = str(value)
        elif isinstance(value, int):
            label = int(value)
        elif isinstance(value, float) and value.is_integer():
            label = int(value)
            floats_seen = True
        elif isinstance(value, str | bytes):
            label = (value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)).strip()
            if _SURROGATE.search(label):
                raise DataError(
                    f"{source} {unit} {position}: the label in column '{one_line(column)}' holds "
                    f"{_surrogate(label)}; expected valid Unicode text"
                )
            if not label or _NAN_LABEL.fullmatch(label):
                nan_text = nan_text or bool(label)
                unlabeled.append(position)
                continue
        elif isinstance(value, _NESTED):
            raise DataError(
                f"{source} {unit} {position}: the label in column '{one_line(column)}' is {_nested(value)}; "
                "expected one string or number per row (one class per text)"
            )
        else:
            label = str(value)
        labels.append(label)
    if unlabeled:
        return [], unlabeled, nan_text, []
    notes: list[str] = []
    if floats_seen and all(isinstance(label, int) for label in labels):
        notes.append(f"read the whole-number labels in column '{one_line(column)}' of {source} as integers (1.0 -> 1)")
    if any(isinstance(label, int) for label in labels) and any(isinstance(label, str) for label in labels):
        # Mixed kinds cannot be sorted or compared; text is the lossless common form.
        example = next(label for label in labels if isinstance(label, int))
        notes.append(
            f"{source} mixes number and text labels in column '{one_line(column)}'; read them all as text "
            f"({example} -> '{example}')"
        )
        labels = [str(label) for label in labels]
    return labels, [], False, notes


def _surrogate(text: str) -> str:
    found = _SURROGATE.search(text)
    assert found is not None
    code = f"\\u{ord(found.group()):04x}"
    return f"a lone surrogate ({code}, at character {found.start() + 1}), half of a UTF-16 pair and no character"


def _nested(value: object) -> str:
    # reprlib bounds the depth and length shown, so a value nested a thousand deep or a megabyte long stays short.
    return f"{json_kind(value)} ({one_line(_PREVIEW.repr(value))})"
