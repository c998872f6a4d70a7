"""Reading one labeled text file (CSV, TSV, JSONL, JSON or Parquet) into :class:`LabeledTexts`.

Every problem a user can cause becomes a one-line :class:`DataError` naming the file, the line/row or column,
what was expected and what was found: the CLI prints only that message, so it has to stand on its own. The parsing
is :mod:`bertwise.data.readers`', which ``predict`` streams through too; here a file is decoded whole before it is
parsed, then its two columns are cleaned: empty texts dropped, labels typed and checked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bertwise.data.columns import column_indices
from bertwise.data.dataset import LabeledTexts
from bertwise.data.json_text import load_json, repeated_keys
from bertwise.data.readers import (
    EXPECTED_FILE,
    LITERAL_NOTE,
    SUPPORTED_SUFFIXES,
    DelimitedRecords,
    MalformedRowError,
    check_regular_file,
    example_object,
    file_format,
    jsonl_lines,
    jsonl_objects,
    missing_file_error,
    named_columns,
    open_parquet,
    read_utf8,
    repeated_key_error,
    text_lines,
)
from bertwise.data.values import (
    cell_text,
    first_line,
    json_kind,
    list_positions,
    one_line,
    string_labels,
    typed_labels,
)
from bertwise.exceptions import DataError


def read_labeled_file(
    path: str | Path, *, text_col: str = "text", label_col: str = "label"
) -> tuple[LabeledTexts, list[str]]:
    """Read one labeled file; return the data and human-readable notes (dropped rows, label conversions).

    Rows whose text is missing, empty or whitespace-only are dropped (with a note); a row without a label is
    an error, since guessing one would silently change the task.
    """
    return _finish(_read_table(path, text_col, label_col), text_col, label_col)


def read_unlabeled(path: Path, text_col: str) -> tuple[list[str], list[str]]:
    """In-domain texts without labels (``--unlabeled``): a data file's text column, or a text file, one per line;
    the texts and notes."""
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return read_text_file(path, text_col=text_col)
    if not path.exists():
        raise missing_file_error(path)
    check_regular_file(path, str(path), "expected a text file with one text per line, or a data file")
    texts = [line.rstrip("\r\n") for line in text_lines(read_utf8(path, str(path))) if line.strip()]
    if not texts:
        raise DataError(f"--unlabeled {path} holds no texts; expected one text per line")
    return texts, []


def read_text_file(path: str | Path, *, text_col: str = "text") -> tuple[list[str], list[str]]:
    """Read the text column of one file, labels or not; return every row's text and human-readable notes.

    Unlike :func:`read_labeled_file` nothing is dropped: row i of the result is data row i of the file, so whatever
    is computed from the texts lines up with the file. A missing text reads as the empty string, with a note.
    """
    return _all_texts(_read_table(path, text_col, None), text_col)


def labeled_texts_from_values(
    source: str, texts: Sequence[object], labels: Sequence[object], *, text_col: str, label_col: str
) -> tuple[LabeledTexts, list[str]]:
    """:func:`read_labeled_file` for the two columns of a table in memory, as plain Python values: the same checks
    as a typed file's (JSON, Parquet); rows are named by their 0-based position, as ``df.iloc`` and ``dataset[i]``."""
    table = _Table(source, "row", list(range(len(texts))), list(texts), list(labels), typed=True)
    return _finish(table, text_col, label_col)


def texts_from_values(source: str, values: Sequence[object], *, text_col: str) -> tuple[list[str], list[str]]:
    """:func:`read_text_file` for the text column of a table in memory (rows named by 0-based position)."""
    table = _Table(source, "row", list(range(len(values))), list(values), [None] * len(values), typed=True)
    return _all_texts(table, text_col)


def _all_texts(table: _Table, text_col: str) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    empty: list[int] = []
    for position, value in zip(table.positions, table.texts, strict=True):
        text = cell_text(value, source=table.source, unit=table.unit, position=position, column=text_col)
        if text is None or not text.strip():
            empty.append(position)
        texts.append(text or "")
    notes = list(table.notes)
    if empty:
        notes.append(
            f"{len(empty)} of {len(texts)} rows in {table.source} have an empty or missing text in column "
            f"'{one_line(text_col)}' ({list_positions(table.unit, empty)}); kept as empty texts so rows stay aligned"
        )
    return texts, notes


def _read_table(path: str | Path, text_col: str, label_col: str | None) -> _Table:
    source = os.fspath(path)
    file = Path(path)
    if not file.exists():
        raise missing_file_error(source)
    check_regular_file(file, source, EXPECTED_FILE)
    if text_col == label_col:
        raise DataError(
            f"{source}: the text and label columns are both '{text_col}' (--text-col, --label-col); "
            "expected two different columns"
        )
    fmt = file_format(file, source, streaming=False)
    if fmt in ("csv", "tsv"):
        return _read_delimited(file, source, "," if fmt == "csv" else "\t", text_col, label_col)
    if fmt == "jsonl":
        return _read_jsonl(file, source, text_col, label_col)
    if fmt == "json":
        return _read_json(file, source, text_col, label_col)
    return _read_parquet(file, source, text_col, label_col)


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


# ----------------------------------------------------------------------------------------------------
# CSV / TSV


def _read_delimited(path: Path, source: str, delimiter: str, text_col: str, label_col: str | None) -> _Table:
    text = read_utf8(path, source)
    try:
        return _parse_delimited(text, source, delimiter, False, text_col, label_col)
    except MalformedRowError as quoted_error:
        if delimiter != "\t":
            raise
        # Many TSV writers never quote, so a text that merely starts with a quote breaks quoted parsing;
        # accept the file when reading it literally gives consistent rows, else report the quoted complaint.
        try:
            table = _parse_delimited(text, source, delimiter, True, text_col, label_col)
        except DataError as literal_error:
            # The reading that got further into the file is the likelier one to be right about it; any other
            # complaint (say, a quoted header read literally) only shows that the file is quoted after all.
            further = isinstance(literal_error, MalformedRowError) and literal_error.line > quoted_error.line
            raise (literal_error if further else quoted_error) from None
    table.notes.append(LITERAL_NOTE.format(source=source))
    return table


def _parse_delimited(
    text: str, source: str, delimiter: str, literal: bool, text_col: str, label_col: str | None
) -> _Table:
    records = DelimitedRecords(
        text_lines(text), source, delimiter, literal=literal, separator="separator", name_unclosed=False
    )
    empty = DataError(f"{source} is empty: expected a header row and at least one data row")
    if not records.read_header():
        raise empty
    ti, li = column_indices(source, [cell.strip() for cell in records.header], text_col, label_col)
    positions: list[int] = []
    texts: list[object] = []
    labels: list[object] = []
    for start, record in records.rows():
        cell = record[ti]
        if not cell.strip() and not any(c.strip() for c in record):
            continue  # a blank row such as ",": padding, not data
        positions.append(start)
        texts.append(cell)
        labels.append(record[li] if li is not None else None)
    if not positions:
        raise empty
    # A file cut short inside its last quoted field is refused, not read (predict streams it the same way).
    records.check_closed()
    return _Table(source, "line", positions, texts, labels, typed=False)


# ----------------------------------------------------------------------------------------------------
# JSON Lines / JSON


def _read_jsonl(path: Path, source: str, text_col: str, label_col: str | None) -> _Table:
    lines = jsonl_lines(read_utf8(path, source))
    example = example_object(text_col, label_col)
    rows: list[dict[str, object]] = []
    positions: list[int] = []
    columns: dict[str, None] = {}
    for number, obj in jsonl_objects(lines, source, example=example, array_hint="name it .json"):
        rows.append(obj)
        positions.append(number)
        columns.update(dict.fromkeys(obj))
    if not rows:
        raise DataError(f"{source} is empty: expected one JSON object per line, and at least one line")
    return _json_table(source, "line", rows, positions, list(columns), text_col, label_col)


def _read_json(path: Path, source: str, text_col: str, label_col: str | None) -> _Table:
    text = read_utf8(path, source)
    if not text.strip():
        raise DataError(f"{source} is empty: expected a JSON list of objects with at least one item")
    try:
        data = load_json(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{source} line {err.lineno}: not valid JSON ({err.msg} at column {err.colno}); "
            "expected a JSON list of objects"
        ) from None
    if not isinstance(data, list):
        raise DataError(
            f"{source}: expected a JSON list of objects such as "
            f"[{example_object(text_col, label_col)}], found {json_kind(data)}"
        )
    if not data:
        raise DataError(f"{source} is empty: expected a JSON list of objects with at least one item")
    columns: dict[str, None] = {}
    for number, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise DataError(f"{source} item {number}: expected a JSON object, found {json_kind(obj)}")
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
    column_indices(source, columns, text_col, label_col)
    for position, row in zip(positions, rows, strict=True):
        repeated = repeated_keys(row, [text_col, label_col])
        if repeated:
            raise repeated_key_error(source, unit, position, repeated[0])
    texts = [row.get(text_col) for row in rows]
    labels = [row.get(label_col) if label_col is not None else None for row in rows]
    return _Table(source, unit, positions, texts, labels, typed=True)


# ----------------------------------------------------------------------------------------------------
# Parquet


def _read_parquet(path: Path, source: str, text_col: str, label_col: str | None) -> _Table:
    parquet = open_parquet(path, source, empty="expected a Parquet file with at least one row")
    column_indices(source, named_columns(parquet.schema_arrow.names), text_col, label_col)
    try:
        table = parquet.read(columns=[text_col] if label_col is None else [text_col, label_col])
    except Exception as err:  # pyarrow raises several unrelated types (ArrowInvalid, OSError, ...)
        raise DataError(f"cannot read {source} as Parquet ({first_line(err)})") from None
    if table.num_rows == 0:
        raise DataError(f"{source} is empty: expected a Parquet file with at least one row")
    texts: list[object] = table.column(text_col).to_pylist()
    labels: list[object] = table.column(label_col).to_pylist() if label_col is not None else [None] * table.num_rows
    return _Table(source, "row", list(range(1, table.num_rows + 1)), texts, labels, typed=True)


def _finish(table: _Table, text_col: str, label_col: str) -> tuple[LabeledTexts, list[str]]:
    source = table.source
    notes = list(table.notes)
    total = len(table.positions)
    texts: list[str] = []
    raw_labels: list[object] = []
    kept_positions: list[int] = []
    dropped: list[int] = []
    for position, value, label in zip(table.positions, table.texts, table.labels, strict=True):
        text = cell_text(value, source=source, unit=table.unit, position=position, column=text_col)
        if text is None or not text.strip():
            dropped.append(position)
            continue
        texts.append(text)
        raw_labels.append(label)
        kept_positions.append(position)
    if not texts:
        raise DataError(
            f"{source}: all {total} rows have an empty or whitespace-only text in column '{one_line(text_col)}'; "
            "expected texts to classify"
        )
    if dropped:
        notes.append(
            f"dropped {len(dropped)} of {total} rows in {source} whose text is empty or whitespace-only "
            f"({list_positions(table.unit, dropped)})"
        )

    label_notes: list[str] = []
    if table.typed:
        labels, unlabeled, nan, label_notes = typed_labels(
            raw_labels, kept_positions, source=source, unit=table.unit, column=label_col
        )
    else:
        labels, unlabeled, nan = string_labels(raw_labels, kept_positions)
    if unlabeled:
        rows = f"{len(unlabeled)} rows have" if len(unlabeled) != 1 else "1 row has"
        why = "; a label spelled NaN counts as none, as pandas reads it" if nan else ""
        raise DataError(
            f"{source}: {rows} no label in column '{one_line(label_col)}' "
            f"({list_positions(table.unit, unlabeled)}); expected every row to be labeled{why}"
        )
    notes.extend(label_notes)
    return LabeledTexts(texts=tuple(texts), labels=tuple(labels), source=source), notes
