"""The one reader of data files: format, file checks, UTF-8 decoding, and the records of CSV, TSV, JSON Lines and
Parquet with the line or row each starts on, every problem a one-line :class:`DataError`.

Two callers build on it: :mod:`bertwise.data.io` reads a whole labeled file (training, compare, embed) and
:mod:`bertwise.data.chunks` streams any file in chunks (predict). Where their messages differ, it is because they
accept different things (``predict`` takes no JSON array, and reads a stream it cannot decode ahead of time).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from bertwise.data.json_text import load_json
from bertwise.data.values import first_line, json_kind, one_line
from bertwise.exceptions import DataError, DataFileNotFoundError

if TYPE_CHECKING:
    import pyarrow.parquet as pq

StreamFormat = Literal["csv", "tsv", "jsonl", "parquet", "lines"]
# What ``--format`` may name, for a file or for stdin ("-"): "lines" is one text per line with no header.
INPUT_FORMATS: tuple[StreamFormat, ...] = ("csv", "tsv", "jsonl", "parquet", "lines")
# What predict streams; labeled data may also be a .json list of objects (accepted, but not advertised).
STREAM_FORMATS: dict[str, StreamFormat] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
# The order is the one messages list them in.
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
EXPECTED_FILE = "expected a .csv, .tsv, .jsonl or .parquet file"
# The note when a TSV file is read literally (see reads_literally).
LITERAL_NOTE = "read {source} without CSV quoting: its quote characters are part of the texts"
_SPREADSHEET_SUFFIXES = (".xls", ".xlsx", ".xlsm", ".ods", ".numbers")
# JSON Lines records end at any of these: a JSON text holds no raw CR or LF (only escaped), so no string is split.
_JSONL_LINE_END = re.compile(r"\r\n|\r|\n")
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


# ----------------------------------------------------------------------------------------------------
# The file and its format


def missing_file_error(path: str | os.PathLike[str]) -> DataFileNotFoundError:
    """The error for a data path that does not exist (shared with the folder handling in ``split``)."""
    return DataFileNotFoundError(
        f"data file not found: '{os.fspath(path)}' ({EXPECTED_FILE}, or a folder holding train.* and test.*)"
    )


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


def file_format(path: Path, source: str, *, streaming: bool) -> StreamFormat | Literal["json"]:
    """The format named by the file's suffix: one of STREAM_FORMATS' values, or "json" unless ``streaming``."""
    suffix = path.suffix.lower()
    if suffix in STREAM_FORMATS:
        return STREAM_FORMATS[suffix]
    if suffix == ".json" and not streaming:
        return "json"
    shown = f"'{suffix}'" if suffix else "'' (no file extension)"
    if streaming:
        hint = (
            "; a JSON array cannot be read in chunks: write one object per line as .jsonl"
            if suffix == ".json"
            else " (or pass --format)"
        )
    else:
        hint = "; save the sheet as CSV (UTF-8)" if suffix in _SPREADSHEET_SUFFIXES else ""
    raise DataError(
        f"cannot read '{source}': unknown format {shown}; expected one of .csv, .tsv, .jsonl, .parquet{hint}"
    )


# ----------------------------------------------------------------------------------------------------
# Text: UTF-8, whole or line by line


def utf16_without_bom(raw: bytes) -> bool:
    """Whether ``raw`` (a file's first bytes) looks like UTF-16 text saved without a byte-order mark.

    ASCII text in UTF-16 has a NUL byte beside every character, which is valid UTF-8 but never a data file.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False  # with its mark, the decoding error names it
    head = raw[:200]
    return len(head) >= 4 and max(head[0::2].count(0), head[1::2].count(0)) * 2 >= len(head) * 3 // 4


def _utf16_error(source: str) -> DataError:
    return DataError(f"{source} is not UTF-8: it looks like UTF-16 without a byte-order mark; save the file as UTF-8")


def _not_utf8_error(source: str, byte: int, where: str, starts_utf16: bool) -> DataError:
    utf16 = " (it looks like UTF-16)" if starts_utf16 else ""
    return DataError(f"{source} is not valid UTF-8{utf16}: byte 0x{byte:02x} at {where}; save the file as UTF-8")


def read_utf8(path: Path, source: str) -> str:
    """A whole file's text: checked as UTF-8 before any of it is parsed, its byte-order mark dropped."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    if utf16_without_bom(raw):
        raise _utf16_error(source)
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + skip
        line = raw.count(b"\n", 0, offset) + 1
        utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        raise _not_utf8_error(source, raw[offset], f"line {line} (byte offset {offset})", utf16) from None


def text_lines(text: str) -> Iterator[str]:
    """The lines of a decoded text as the csv module reads them: ended by LF, CRLF or a lone CR, ends kept."""
    return iter(io.StringIO(text, newline=""))


class Lines:
    """The lines of a binary stream decoded as UTF-8, counted for messages, their bytes counted for the progress bar.

    Lines end as in :func:`text_lines`, so a stream and a whole text give the same line numbers.
    """

    def __init__(self, stream: IO[bytes], source: str) -> None:
        self._stream = stream
        self._source = source
        self.number = 0
        self.bytes = 0
        self.bom = False
        self.newline = "\n"
        self._split: list[bytes] = []  # the rest of a read that held lines ended by a lone CR, last one first

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._split:
            raw = self._split.pop()
        else:
            raw = self._stream.readline()
            if b"\r" in raw:
                # readline() ends lines at LF only; a lone CR ends one too (old Mac files).
                parts = [part for part in _LONE_CR.split(raw) if part]
                raw, self._split = parts[0], parts[:0:-1]
        if not raw:
            raise StopIteration
        self.number += 1
        self.bytes += len(raw)
        if self.number == 1:
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
                self.bom = True
            elif utf16_without_bom(raw):
                raise _utf16_error(self._source)
            self.newline = "\r\n" if raw.endswith(b"\r\n") else "\r" if raw.endswith(b"\r") else "\n"
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            utf16 = self.number == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            raise _not_utf8_error(self._source, raw[err.start], f"line {self.number}", utf16) from None


# ----------------------------------------------------------------------------------------------------
# CSV / TSV


class MalformedRowError(DataError):
    """A record the delimited parser could not make sense of (lets a TSV reader retry without quoting)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def raise_field_size_limit() -> None:
    # The default limit (128 KiB per field) rejects long documents; the C long on some platforms is 32 bits.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


class DelimitedRecords:
    """The records of a CSV or TSV text, each with the line it starts on: the header, then rows of its width.

    TSV is parsed strictly so that a text like `"Hi" she said` fails (and can be re-read literally) instead of
    silently losing its quotes; CSV stays as lenient as spreadsheet programs and pandas are. ``separator`` is the
    word the malformed-quoting message ends with; ``name_unclosed`` reports a strict parse that ends inside a quoted
    field as such, rather than as malformed quoting.
    """

    def __init__(
        self, lines: Iterable[str], source: str, delimiter: str, *, literal: bool, separator: str, name_unclosed: bool
    ) -> None:
        raise_field_size_limit()
        self.source = source
        self.delimiter = delimiter
        self.literal = literal
        self.strict = delimiter == "\t" and not literal
        self.header: list[str] = []
        self._separator = separator
        self._name_unclosed = name_unclosed
        self._sep_name = "tab" if delimiter == "\t" else "comma"
        self._recent: list[str] = []  # the lines of the record being read
        self._last: list[str] = []  # the lines of the last record read: lets it be re-checked at the end
        self._csv = csv.reader(
            self._remembered(lines),
            delimiter=delimiter,
            quoting=csv.QUOTE_NONE if literal else csv.QUOTE_MINIMAL,
            strict=self.strict,
        )
        self.start = self.end = 0
        self._records = self._parse()

    def _remembered(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            self._recent.append(line)
            yield line

    def _parse(self) -> Iterator[list[str]]:
        try:
            for record in self._csv:
                # line_num counts physical lines consumed, so a record starts one after the previous one ended.
                self.start, self.end = self.end + 1, self._csv.line_num
                self._last, self._recent = self._recent, []
                yield record
        except csv.Error as err:
            line = self.end + 1
            if self._name_unclosed and "unexpected end of data" in str(err):
                raise self._never_closed(line) from None
            raise MalformedRowError(
                f"{self.source} line {line}: malformed quoting ({one_line(str(err))}); "
                f"expected a quoted field to end with a quote followed by a {self._separator}",
                line,
            ) from None

    def read_header(self) -> bool:
        """Read up to the first record with a non-blank cell into ``header``; False if there is none."""
        for record in self._records:
            if any(cell.strip() for cell in record):
                self.header = record
                return True
        return False

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """The records after the header, with their first line; blank lines skipped, a wrong width refused."""
        width = len(self.header)
        for record in self._records:
            if len(record) != width:
                if not any(cell.strip() for cell in record):
                    continue  # a blank line: layout, not a row
                runs_on = (
                    f"; the record runs on to line {self.end}: an unclosed quote?" if self.end > self.start else ""
                )
                raise MalformedRowError(
                    f"{self.source} line {self.start}: expected {width} fields as in the header, found "
                    f"{len(record)} (an unquoted {self._sep_name} or quote?{runs_on})",
                    self.start,
                )
            yield self.start, record

    def check_closed(self) -> None:
        """Refuse a file cut short inside its last quoted field (call once every row was read).

        A quote opened in the last record swallows the rest of the file without changing the field count, and the
        lenient parser accepts that silently; only a strict parse of that record tells.
        """
        if not self.end or self.strict or self.literal:
            return
        tail = "".join(self._last)
        try:
            for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=self.delimiter, strict=True):
                pass
        except csv.Error as err:
            if "unexpected end of data" in str(err):
                raise self._never_closed(self.start) from None

    def _never_closed(self, line: int) -> MalformedRowError:
        return MalformedRowError(
            f"{self.source} line {line}: a quoted field starting on this line is never closed; "
            "expected a closing '\"' (an unbalanced quote?)",
            line,
        )


def reads_literally(path: Path) -> bool:
    """Whether a TSV file must be read without quoting: a strict quoted parse fails, a literal one is consistent.

    Many TSV writers never quote, so a text that merely starts with a quote breaks quoted parsing. Deciding takes a
    pass over the file before the real one (quick next to the model), since a stream cannot be re-read.
    """

    def consistent(quoting: Literal[0, 3]) -> bool:
        try:
            with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
                width = None
                for record in csv.reader(handle, delimiter="\t", quoting=quoting, strict=True):
                    if not any(cell.strip() for cell in record):
                        continue
                    if width is None:
                        width = len(record)
                    elif len(record) != width:
                        return False
            return True
        except (csv.Error, OSError):
            return False

    raise_field_size_limit()
    return not consistent(csv.QUOTE_MINIMAL) and consistent(csv.QUOTE_NONE)


# ----------------------------------------------------------------------------------------------------
# JSON Lines


def jsonl_lines(text: str) -> list[str]:
    """The lines of a decoded JSON Lines text; not splitlines(), which also breaks on a raw U+2028 in a string."""
    return _JSONL_LINE_END.split(text)


def example_object(text_col: str, label_col: str | None) -> str:
    label = f', "{label_col}": "..."' if label_col is not None else ""
    return f'{{"{text_col}": "..."{label}}}'


def jsonl_objects(lines: Iterable[str], source: str, *, example: str, array_hint: str) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's JSON object, with its line number; ``array_hint`` ends the message for a line that
    starts a JSON array, ``example`` shows the object expected."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = load_json(line)
        except json.JSONDecodeError as err:
            hint = f"; the file looks like a JSON array: {array_hint}" if line.lstrip()[:1] == "[" else ""
            raise DataError(
                f"{source} line {number}: not valid JSON ({err.msg} at column {err.colno}); "
                f"expected one JSON object per line{hint}"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{source} line {number}: expected a JSON object such as {example}, found {json_kind(obj)}")
        yield number, obj


def repeated_key_error(source: str, unit: str, position: int, key: str) -> DataError:
    return DataError(
        f"{source} {unit} {position}: the object gives the key '{one_line(key)}' more than once; "
        "expected each key once (JSON keeps only the last, silently)"
    )


# ----------------------------------------------------------------------------------------------------
# Parquet


def open_parquet(path: Path, source: str, *, empty: str) -> pq.ParquetFile:
    """Open a Parquet file and read its schema; ``empty`` says what was expected of a file of no bytes."""
    import pyarrow.parquet as pq  # deferred: pyarrow is slow to import and only Parquet needs it

    try:
        size = path.stat().st_size
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None
    if size == 0:
        raise DataError(f"{source} is empty: {empty}")
    try:
        parquet = pq.ParquetFile(path)
        parquet.schema_arrow  # noqa: B018 - reading the schema is what fails on a file that is not Parquet
    except Exception as err:  # pyarrow raises several unrelated types (ArrowInvalid, OSError, ...)
        raise DataError(
            f"cannot read {source} as Parquet ({first_line(err)}); expected a Parquet file "
            "such as pandas' DataFrame.to_parquet writes"
        ) from None
    return parquet


def named_columns(names: Iterable[str]) -> list[str]:
    """The columns a user could name: pandas stores a non-default index as an extra column, not one of those."""
    return [name for name in names if not name.startswith("__index_level_")]
