"""Reading one labeled text file (CSV, TSV, JSONL, JSON or Parquet) into :class:`LabeledTexts`.

Every problem a user can cause becomes a one-line :class:`DataError` naming the file, the line/row or column,
what was expected and what was found: the CLI prints only that message, so it has to stand on its own.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import itertools
import json
import os
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bertwise.data.dataset import LabeledTexts
from bertwise.data.json_text import load_json, repeated_keys
from bertwise.data.values import (
    cell_text,
    first_line,
    json_kind,
    list_positions,
    one_line,
    string_labels,
    typed_labels,
)
from bertwise.exceptions import DataError, DataFileNotFoundError

# The order is the one messages list them in; .json (a list of objects) is accepted but not advertised.
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
# JSON Lines records end at any of these: a JSON text holds no raw CR or LF (only escaped), so no string is split.
_JSONL_LINE_END = re.compile(r"\r\n|\r|\n")

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
_SPREADSHEET_SUFFIXES = (".xls", ".xlsx", ".xlsm", ".ods", ".numbers")
# A header's columns listed in a message, and the characters shown of each: enough to spot a typo, not a screenful.
_SHOWN_COLUMNS = 20
_SHOWN_NAME_CHARS = 60


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
    return _all_texts(_read_table(path, text_col, None), text_col)


def check_columns(source: str, columns: Sequence[str], *, text_col: str, label_col: str | None) -> None:
    """Refuse a table in memory (a DataFrame, a ``datasets.Dataset``) whose columns lack ``text_col`` or
    ``label_col``, naming the nearest column, as a file's header is refused."""
    if text_col == label_col:
        raise DataError(
            f"{source}: the text and label columns are both '{text_col}' (text_col, label_col); "
            "expected two different columns"
        )
    column_indices(source, list(columns), text_col, label_col)


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
    check_regular_file(file, source, "expected a .csv, .tsv, .jsonl or .parquet file")
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
    raise_field_size_limit()
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


def raise_field_size_limit() -> None:
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
                ti, li = column_indices(source, header, text_col, label_col)
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
            f"{source} line {end + 1}: malformed quoting ({one_line(str(err))}); "
            "expected a quoted field to end with a quote followed by a separator",
            end + 1,
        ) from None
    if header is None or not positions:
        raise DataError(f"{source} is empty: expected a header row and at least one data row")
    if quoting != csv.QUOTE_NONE:
        # As predict's streaming reader does: a file cut short inside its last quoted field is refused, not read.
        tail = itertools.islice(io.StringIO(text, newline=""), start - 1, None)
        check_last_record_closed("".join(tail), source, delimiter, start)
    return _Table(source, "line", positions, texts, labels, typed=False)


def check_last_record_closed(tail: str, source: str, delimiter: str, start: int) -> None:
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
    # Not splitlines(): JSON strings may hold a raw U+2028, which splitlines() breaks on.
    for number, line in enumerate(_JSONL_LINE_END.split(text), start=1):
        if not line.strip():
            continue
        try:
            obj = load_json(line)
        except json.JSONDecodeError as err:
            hint = "; the file looks like a JSON array: name it .json" if line.lstrip().startswith("[") else ""
            raise DataError(
                f"{source} line {number}: not valid JSON ({err.msg} at column {err.colno}); "
                f"expected one JSON object per line{hint}"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{source} line {number}: expected a JSON object such as "
                f"{_example_object(text_col, label_col)}, found {json_kind(obj)}"
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
        data = load_json(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{source} line {err.lineno}: not valid JSON ({err.msg} at column {err.colno}); "
            "expected a JSON list of objects"
        ) from None
    if not isinstance(data, list):
        raise DataError(
            f"{source}: expected a JSON list of objects such as "
            f"[{_example_object(text_col, label_col)}], found {json_kind(data)}"
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
            raise DataError(
                f"{source} {unit} {position}: the object gives the key '{one_line(repeated[0])}' more than once; "
                "expected each key once (JSON keeps only the last, silently)"
            )
    texts = [row.get(text_col) for row in rows]
    labels = [row.get(label_col) if label_col is not None else None for row in rows]
    return _Table(source, unit, positions, texts, labels, typed=True)


def _example_object(text_col: str, label_col: str | None) -> str:
    label = f', "{label_col}": "..."' if label_col is not None else ""
    return f'{{"{text_col}": "..."{label}}}'


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
            f"cannot read {source} as Parquet ({first_line(err)}); expected a Parquet file "
            "such as pandas' DataFrame.to_parquet writes"
        ) from None
    column_indices(source, columns, text_col, label_col)
    try:
        table = parquet.read(columns=[text_col] if label_col is None else [text_col, label_col])
    except Exception as err:
        raise DataError(f"cannot read {source} as Parquet ({first_line(err)})") from None
    if table.num_rows == 0:
        raise DataError(f"{source} is empty: expected a Parquet file with at least one row")
    texts: list[object] = table.column(text_col).to_pylist()
    labels: list[object] = table.column(label_col).to_pylist() if label_col is not None else [None] * table.num_rows
    return _Table(source, "row", list(range(1, table.num_rows + 1)), texts, labels, typed=True)


# ----------------------------------------------------------------------------------------------------
# Shared


def check_regular_file(path: Path, source: str, expected: str) -> None:
    """Refuse a folder, a named pipe, a device or a socket before anything opens it.

    Opening a pipe without a writer waits forever, and a device such as /dev/zero never ends; a data file is a
    regular file (a symbolic link to one is followed).
    """
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise DataError(f"cannot read '{source}': it is a folder; {expected}")
    kind = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise DataError(f"cannot read '{source}': it is {kind}, not a regular file; {expected}")


def utf16_without_bom(raw: bytes) -> bool:
    """Whether ``raw`` (a file's first bytes) looks like UTF-16 text saved without a byte-order mark.

    ASCII text in UTF-16 has a NUL byte beside every character, which is valid UTF-8 but never a data file.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False  # with its mark, the decoding error names it
    head = raw[:200]
    return len(head) >= 4 and max(head[0::2].count(0), head[1::2].count(0)) * 2 >= len(head) * 3 // 4


def _read_utf8(path: Path, source: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    if utf16_without_bom(raw):
        raise DataError(
            f"{source} is not UTF-8: it looks like UTF-16 without a byte-order mark; save the file as UTF-8"
        )
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


def column_indices(source: str, columns: list[str], text_col: str, label_col: str | None) -> tuple[int, int | None]:
    """The positions of the text and label columns in a header; a missing or repeated one is refused."""
    wanted = [(text_col, label_col or "", "text", "--text-col")]
    if label_col is not None:
        wanted.append((label_col, text_col, "label", "--label-col"))
    for name, other, role, flag in wanted:
        if name not in columns:
            guess = _suggest_column(name, other, role, columns)
            did_you_mean = f"; did you mean '{_shown_name(guess)}'?" if guess is not None else ""
            raise DataError(
                f"{source}: no {role} column '{_shown_name(name)}' ({flag}); found columns: "
                f"{_shown_columns(columns)}{did_you_mean}"
            )
        where = [i for i, column in enumerate(columns) if column == name]
        if len(where) > 1:
            # Reading either one would silently ignore the other.
            numbers = ", ".join(str(i + 1) for i in where[:_SHOWN_COLUMNS])
            raise DataError(
                f"{source}: {len(where)} columns are named '{_shown_name(name)}' (columns {numbers} of "
                f"{len(columns)}); expected one {role} column (rename or drop the others)"
            )
    return columns.index(text_col), columns.index(label_col) if label_col is not None else None


def _shown_name(name: str) -> str:
    name = one_line(name)
    return name if len(name) <= _SHOWN_NAME_CHARS else name[: _SHOWN_NAME_CHARS - 3] + "..."


def _shown_columns(columns: list[str]) -> str:
    if not columns:
        return "(none)"
    more = f", ... ({len(columns)} in all)" if len(columns) > _SHOWN_COLUMNS else ""
    return ", ".join(_shown_name(c) for c in columns[:_SHOWN_COLUMNS]) + more


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
