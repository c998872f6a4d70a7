"""Reading one labeled text file (CSV, TSV, JSONL, JSON or Parquet) into :class:`LabeledTexts`.

Every problem a user can cause becomes a one-line :class:`DataError` naming the file, the line/row or column,
what was expected and what was found: the CLI prints only that message, so it has to stand on its own.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bertwise.data.dataset import Label, LabeledTexts
from bertwise.exceptions import DataError, DataFileNotFoundError

# The order is the one messages list them in; .json (a list of objects) is accepted but not advertised.
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")

_INT_LABEL = re.compile(r"-?(?:0|[1-9][0-9]*)")
# pandas writes an int column holding NaN as floats ("1.0"), so a CSV from it still has integer labels.
_INTEGRAL_FLOAT_LABEL = re.compile(r"-?(?:0|[1-9][0-9]*)\.0+")

_TEXT_COLUMN_NAMES = (
    "text",
    "sentence",
    "review",
    "content",
    "body",
    "document",
    "question",
    "utterance",
    "comment",
    "message",
    "tweet",
    "abstract",
    "query",
)
_LABEL_COLUMN_NAMES = (
    "label",
    "labels",
    "class",
    "category",
    "target",
    "intent",
    "sentiment",
    "topic",
    "tag",
    "y",
)
_SHOWN_POSITIONS = 5
_SPREADSHEET_SUFFIXES = (".xls", ".xlsx", ".xlsm", ".ods", ".numbers")


def missing_file_error(path: str | os.PathLike[str]) -> DataFileNotFoundError:
    """The error for a data path that does not exist (shared with the folder handling in ``split``)."""
    return DataFileNotFoundError(
        f"data file not found: '{os.fspath(path)}' (expected a .csv, .tsv, .jsonl or .parquet file, "
        "or a folder holding train.* and test.*)"
    )


def read_labeled_file(
    path: str | Path, *, text_col: str = "text", label_col: str = "label"
) -> tuple[LabeledTexts, list[str]]:
    """Read one labeled file; return the data and human-readable notes (dropped rows, label conversions).

    Rows whose text is missing, empty or whitespace-only are dropped (with a note); a row without a label is
    an error, since guessing one would silently change the task.
    """
    return _finish(_read_table(path, text_col, label_col), text_col, label_col)


def read_text_file(path: str | Path, *, text_col: str = "text") -> tuple[list[str], list[str]]:
    """Read the text column of one file, labels or not; return every row's text and human-readable notes.

    Unlike :func:`read_labeled_file` nothing is dropped: row i of the result is data row i of the file, so whatever
    is computed from the texts lines up with the file. A missing text reads as the empty string, with a note.
    """
    table = _read_table(path, text_col, None)
    texts: list[str] = []
    empty: list[int] = []
    for position, value in zip(table.positions, table.texts, strict=True):
        text = value if type(value) is str else _as_text(value)
        if text is None or not text.strip():
            empty.append(position)
        texts.append(text or "")
    notes = list(table.notes)
    if empty:
        notes.append(
            f"{len(empty)} of {len(texts)} rows in {table.source} have an empty or missing text in column "
            f"'{text_col}' ({_list_positions(table.unit, empty)}); kept as empty texts so rows stay aligned"
        )
    return texts, notes


def _read_table(path: str | Path, text_col: str, label_col: str | None) -> _Table:
    source = os.fspath(path)
    file = Path(path)
    if not file.exists():
        raise missing_file_error(source)
    if file.is_dir():
        raise DataError(f"cannot read '{source}': it is a folder; expected a .csv, .tsv, .jsonl or .parquet file")
    if text_col == label_col:
        raise DataError(
            f"{source}: the text and label columns are both '{text_col}' (--text-col, --label-col); "
            "expected two different columns"
        )
    suffix = file.suffix.lower()
    if suffix == ".csv":
        table = _read_delimited(file, source, ",", text_col, label_col)
    elif suffix == ".tsv":
        table = _read_delimited(file, source, "\t", text_col, label_col)
    elif suffix == ".jsonl":
        table = _read_jsonl(file, source, text_col, label_col)
    elif suffix == ".json":
        table = _read_json(file, source, text_col, label_col)
    elif suffix == ".parquet":
        table = _read_parquet(file, source, text_col, label_col)
    else:
        shown = f"'{suffix}'" if suffix else "'' (no file extension)"
        hint = "; save the sheet as CSV (UTF-8)" if suffix in _SPREADSHEET_SUFFIXES else ""
        raise DataError(
            f"cannot read '{source}': unknown format {shown}; expected one of .csv, .tsv, .jsonl, .parquet{hint}"
        )
    return table


@dataclass
class _Table:
    """The two columns of interest as read, before any cleaning, with each row's position in the file."""

    source: str
    unit: str  # how positions are named in messages: "line" (text formats), "row" (parquet), "item" (json)
    positions: list[int]
    texts: list[object]
    labels: list[object]  # all None when no label column was asked for
    typed: bool  # labels carry their own types (JSON, Parquet) instead of being strings to infer a type from
    notes: list[str] = field(default_factory=list)


class _MalformedRowError(DataError):
    """A record the delimited parser could not make sense of (lets the TSV reader retry without quoting)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# ----------------------------------------------------------------------------------------------------
# CSV / TSV


def _read_delimited(path: Path, source: str, delimiter: str, text_col: str, label_col: str | None) -> _Table:
    text = _read_utf8(path, source)
    _raise_field_size_limit()
    try:
        return _parse_delimited(text, source, delimiter, csv.QUOTE_MINIMAL, text_col, label_col)
    except _MalformedRowError as quoted_error:
        if delimiter != "\t":
            raise
        # Many TSV writers never quote, so a text that merely starts with a quote breaks quoted parsing;
        # accept the file when reading it literally gives consistent rows, else report the quoted complaint.
        try:
            table = _parse_delimited(text, source, delimiter, csv.QUOTE_NONE, text_col, label_col)
        except DataError as literal_error:
            # The reading that got further into the file is the likelier one to be right about it; any other
            # complaint (say, a quoted header read literally) only shows that the file is quoted after all.
            further = isinstance(literal_error, _MalformedRowError) and literal_error.line > quoted_error.line
            raise (literal_error if further else quoted_error) from None
    table.notes.append(f"read {source} without CSV quoting: its quote characters are part of the texts")
    return table


def _raise_field_size_limit() -> None:
    # The default limit (128 KiB per field) rejects long documents; the C long on some platforms is 32 bits.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _parse_delimited(
    text: str, source: str, delimiter: str, quoting: Literal[0, 1, 2, 3], text_col: str, label_col: str | None
) -> _Table:
    sep_name = "tab" if delimiter == "\t" else "comma"
    # TSV is parsed strictly so that a text like `"Hi" she said` fails here and gets re-read literally,
    # instead of silently losing its quotes; CSV stays as lenient as spreadsheet programs and pandas are.
    strict = delimiter == "\t" and quoting != csv.QUOTE_NONE
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=strict)
    header: list[str] | None = None
    width = ti = 0
    li: int | None = None
    positions: list[int] = []
    texts: list[object] = []
    labels: list[object] = []
    start = end = 0
    try:
        for record in reader:
            # reader.line_num counts physical lines consumed, so a record starts one after the previous ended.
            start, end = end + 1, reader.line_num
            if header is None:
                if not any(cell.strip() for cell in record):
                    continue
                header = [cell.strip() for cell in record]
                width = len(header)
                ti, li = _column_indices(source, header, text_col, label_col)
                continue
            if len(record) != width:
                if not any(cell.strip() for cell in record):
                    continue
                runs_on = f"; the record runs on to line {end}: an unclosed quote?" if end > start else ""
                raise _MalformedRowError(
                    f"{source} line {start}: expected {width} fields as in the header, found {len(record)} "
                    f"(an unquoted {sep_name} or quote?{runs_on})",
                    start,
                )
            cell = record[ti]
            if not cell.strip() and not any(c.strip() for c in record):
                continue  # a blank row such as ",": padding, not data
            positions.append(start)
            texts.append(cell)
            labels.append(record[li] if li is not None else None)
    except csv.Error as err:
        raise _MalformedRowError(
            f"{source} line {end + 1}: malformed quoting ({_one_line(str(err))}); "
            "expected a quoted field to end with a quote followed by a separator",
            end + 1,
        ) from None
    if header is None or not positions:
        raise DataError(f"{source} is empty: expected a header row and at least one data row")
    if end > start and quoting != csv.QUOTE_NONE:
        lines = io.StringIO(text, newline="").readlines()
        _check_last_record_closed("".join(lines[start - 1 :]), source, delimiter, start)
    return _Table(source, "line", positions, texts, labels, typed=False)


def _check_last_record_closed(tail: str, source: str, delimiter: str, start: int) -> None:
    """``tail``: the text of a file's last record, which starts on line ``start``.

    A quote opened in the last record swallows the rest of the file without changing the field count, and the
    lenient parser accepts that silently; only a strict parse of that tail tells.
    """
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True):
            pass
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            raise _MalformedRowError(
                f"{source} line {start}: a quoted field starting on this line is never closed; "
                "expected a closing '\"' (an unbalanced quote?)",
                start,
            ) from None


# ----------------------------------------------------------------------------------------------------
# JSON Lines / JSON


def _read_jsonl(path: Path, source: str, text_col: str, label_col: str | None) -> _Table:
    text = _read_utf8(path, source)
    rows: list[dict[str, object]] = []
    positions: list[int] = []
    columns: dict[str, None] = {}
    # split("\n") rather than splitlines(): JSON strings may hold a raw U+2028, which splitlines() breaks on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            hint = "; the file looks like a JSON array: name it .json" if line.lstrip().startswith("[") else ""
            raise DataError(
                f"{source} line {number}: not valid JSON ({err.msg} at column {err.colno}); "
                f"expected one JSON object per line{hint}"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{source} line {number}: expected a JSON object such as "
                f"{_example_object(text_col, label_col)}, found {_json_kind(obj)}"
            )
        rows.append(obj)
        positions.append(number)
        columns.update(dict.fromkeys(obj))
    if not rows:
        raise DataError(f"{source} is empty: expected one JSON object per line, and at least one line")
    return _json_table(source, "line", rows, positions, list(columns), text_col, label_col)


def _read_json(path: Path, source: str, text_col: str, label_col: str | None) -> _Table:
    text = _read_utf8(path, source)
    if not text.strip():
        raise DataError(f"{source} is empty: expected a JSON list of objects with at least one item")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{source} line {err.lineno}: not valid JSON ({err.msg} at column {err.colno}); "
            "expected a JSON list of objects"
        ) from None
    if not isinstance(data, list):
        raise DataError(
            f"{source}: expected a JSON list of objects such as "
            f"[{_example_object(text_col, label_col)}], found {_json_kind(data)}"
        )
    if not data:
        raise DataError(f"{source} is empty: expected a JSON list of objects with at least one item")
    columns: dict[str, None] = {}
    for number, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise DataError(f"{source} item {number}: expected a JSON object, found {_json_kind(obj)}")
        columns.update(dict.fromkeys(obj))
    positions = list(range(1, len(data) + 1))
    return _json_table(source, "item", data, positions, list(columns), text_col, label_col)


def _json_table(
    source: str,
    unit: str,
    rows: Sequence[dict[str, object]],
    positions: list[int],
    columns: list[str],
    text_col: str,
    label_col: str | None,
) -> _Table:
    _column_indices(source, columns, text_col, label_col)
    texts = [row.get(text_col) for row in rows]
    labels = [row.get(label_col) if label_col is not None else None for row in rows]
    return _Table(source, unit, positions, texts, labels, typed=True)


def _example_object(text_col: str, label_col: str | None) -> str:
    label = f', "{label_col}": "..."' if label_col is not None else ""
    return f'{{"{text_col}": "..."{label}}}'


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# ----------------------------------------------------------------------------------------------------
# Parquet


def _read_parquet(path: Path, source: str, text_col: str, label_col: str | None) -> _Table:
    import pyarrow.parquet as pq  # deferred: pyarrow is slow to import and only Parquet needs it

    try:
        size = path.stat().st_size
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None
    if size == 0:
        raise DataError(f"{source} is empty: expected a Parquet file with at least one row")
    try:
        parquet = pq.ParquetFile(path)
        # pandas stores a non-default index as an extra column; it is not something the user named.
        columns = [name for name in parquet.schema_arrow.names if not name.startswith("__index_level_")]
    except Exception as err:  # pyarrow raises several unrelated types (ArrowInvalid, OSError, ...)
        raise DataError(
            f"cannot read {source} as Parquet ({_first_line(err)}); expected a Parquet file "
            "such as pandas' DataFrame.to_parquet writes"
        ) from None
    _column_indices(source, columns, text_col, label_col)
    try:
        table = parquet.read(columns=[text_col] if label_col is None else [text_col, label_col])
    except Exception as err:
        raise DataError(f"cannot read {source} as Parquet ({_first_line(err)})") from None
    if table.num_rows == 0:
        raise DataError(f"{source} is empty: expected a Parquet file with at least one row")
    texts: list[object] = table.column(text_col).to_pylist()
    labels: list[object] = table.column(label_col).to_pylist() if label_col is not None else [None] * table.num_rows
    return _Table(source, "row", list(range(1, table.num_rows + 1)), texts, labels, typed=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# ----------------------------------------------------------------------------------------------------
# Shared


def _read_utf8(path: Path, source: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + skip
        line = raw.count(b"\n", 0, offset) + 1
        utf16 = " (it looks like UTF-16)" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else ""
        raise DataError(
            f"{source} is not valid UTF-8{utf16}: byte 0x{raw[offset]:02x} at line {line} "
            f"(byte offset {offset}); save the file as UTF-8"
        ) from None


def _column_indices(source: str, columns: list[str], text_col: str, label_col: str | None) -> tuple[int, int | None]:
    wanted = [(text_col, label_col or "", "text", "--text-col")]
    if label_col is not None:
        wanted.append((label_col, text_col, "label", "--label-col"))
    for name, other, role, flag in wanted:
        if name not in columns:
            shown = ", ".join(_one_line(c) for c in columns) if columns else "(none)"
            guess = _suggest_column(name, other, role, columns)
            did_you_mean = f"; did you mean '{_one_line(guess)}'?" if guess is not None else ""
            raise DataError(
                f"{source}: no {role} column '{_one_line(name)}' ({flag}); found columns: {shown}{did_you_mean}"
            )
    return columns.index(text_col), columns.index(label_col) if label_col is not None else None


def _suggest_column(name: str, other: str, role: str, columns: list[str]) -> str | None:
    candidates = [c for c in columns if c != other]
    if not candidates:
        return None
    by_case = [c for c in candidates if c.lower() == name.lower()]
    if by_case:
        return by_case[0]
    close = difflib.get_close_matches(name, candidates, n=1)
    if close:
        return close[0]
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    if close:
        return lowered[close[0]]
    # Synonyms stand in only for the default names; any other name was chosen on purpose, so spelling decides.
    if name == ("text" if role == "text" else "label"):
        for usual in _TEXT_COLUMN_NAMES if role == "text" else _LABEL_COLUMN_NAMES:
            if usual in lowered:
                return lowered[usual]
    if other in columns and len(candidates) == 1:
        return candidates[0]
    return None


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _as_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _list_positions(unit: str, positions: Sequence[int]) -> str:
    shown = ", ".join(str(p) for p in positions[:_SHOWN_POSITIONS])
    more = ", ..." if len(positions) > _SHOWN_POSITIONS else ""
    return f"{unit}{'s' if len(positions) != 1 else ''} {shown}{more}"


def _finish(table: _Table, text_col: str, label_col: str) -> tuple[LabeledTexts, list[str]]:
    source = table.source
    notes = list(table.notes)
    total = len(table.positions)
    texts: list[str] = []
    raw_labels: list[object] = []
    kept_positions: list[int] = []
    dropped: list[int] = []
    for position, value, label in zip(table.positions, table.texts, table.labels, strict=True):
        text = value if type(value) is str else _as_text(value)
        if text is None or not text.strip():
            dropped.append(position)
            continue
        texts.append(text)
        raw_labels.append(label)
        kept_positions.append(position)
    if not texts:
        raise DataError(
            f"{source}: all {total} rows have an empty or whitespace-only text in column '{text_col}'; "
            "expected texts to classify"
        )
    if dropped:
        notes.append(
            f"dropped {len(dropped)} of {total} rows in {source} whose text is empty or whitespace-only "
            f"({_list_positions(table.unit, dropped)})"
        )

    if table.typed:
        labels, unlabeled, label_notes = _typed_labels(raw_labels, kept_positions, source, label_col)
    else:
        labels, unlabeled, label_notes = _string_labels(raw_labels, kept_positions)
    if unlabeled:
        rows = f"{len(unlabeled)} rows have" if len(unlabeled) != 1 else "1 row has"
        raise DataError(
            f"{source}: {rows} no label in column '{label_col}' ({_list_positions(table.unit, unlabeled)}); "
            "expected every row to be labeled"
        )
    notes.extend(label_notes)
    return LabeledTexts(texts=tuple(texts), labels=tuple(labels), source=source), notes


def _string_labels(raw: list[object], positions: list[int]) -> tuple[list[Label], list[int], list[str]]:
    stripped = [str(label).strip() for label in raw]
    unlabeled = [p for p, label in zip(positions, stripped, strict=True) if not label]
    if unlabeled:
        return [], unlabeled, []
    if all(_INT_LABEL.fullmatch(label) for label in stripped):
        return [int(label) for label in stripped], [], []
    if all(_INT_LABEL.fullmatch(label) or _INTEGRAL_FLOAT_LABEL.fullmatch(label) for label in stripped):
        return [int(float(label)) for label in stripped], [], []
    return list(stripped), [], []


def _typed_labels(
    raw: list[object], positions: list[int], source: str, label_col: str
) -> tuple[list[Label], list[int], list[str]]:
    labels: list[Label] = []
    unlabeled: list[int] = []
    floats_seen = False
    for position, value in zip(positions, raw, strict=True):
        label: Label
        if value is None or (isinstance(value, float) and math.isnan(value)):
            unlabeled.append(position)
            continue
        if isinstance(value, bool):
            # A boolean is a category name, not a number (True == 1 would merge it with the label 1).
            label = str(value)
        elif isinstance(value, int):
            label = value
        elif isinstance(value, float) and value.is_integer():
            label = int(value)
            floats_seen = True
        elif isinstance(value, str):
            label = value.strip()
            if not label:
                unlabeled.append(position)
                continue
        elif isinstance(value, bytes):
            label = value.decode("utf-8", errors="replace").strip()
        else:
            label = str(value)
        labels.append(label)
    if unlabeled:
        return [], unlabeled, []
    notes: list[str] = []
    if floats_seen and all(isinstance(label, int) for label in labels):
        notes.append(f"read the whole-number labels in column '{label_col}' of {source} as integers (1.0 -> 1)")
    if any(isinstance(label, int) for label in labels) and any(isinstance(label, str) for label in labels):
        # Mixed kinds cannot be sorted or compared; text is the lossless common form.
        example = next(label for label in labels if isinstance(label, int))
        notes.append(
            f"{source} mixes number and text labels in column '{label_col}'; read them all as text "
            f"({example} -> '{example}')"
        )
        labels = [str(label) for label in labels]
    return labels, [], notes
