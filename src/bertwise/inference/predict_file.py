"""Predicting every row of a file in bounded memory: the engine of ``bertwise predict DIR INPUT [--out FILE]``.

The input is read, predicted and written ``chunk_rows`` rows at a time (CSV and TSV through the csv module, JSON Lines
line by line, Parquet through ``ParquetFile.iter_batches`` and a ``ParquetWriter``), so the memory it needs depends on
the chunk size and the model, not on the file's length.

Output: every input column unchanged (CSV cells as read, JSON objects key by key, Parquet columns with their types),
then ``predicted_label`` and one ``proba_<label>`` column per class in the model's ``classes_`` order. An input that
already has one of those names is refused (it is most often a file ``predict`` wrote before), never overwritten.

Rows whose text is missing, empty or whitespace-only are written like every other row, but without a prediction:
their ``predicted_label`` and probabilities are empty (an empty CSV/TSV cell, JSON ``null``, a Parquet null); a
label for "no text" would only be the model's prior dressed up as an answer. The summary counts them and names the
first few lines. A row the reader cannot parse (wrong number of fields, invalid JSON or UTF-8) stops the run with an
error naming its line: nothing appears under ``--out`` (the temporary file beside it is deleted) and an existing file
there is left as it was; on stdout the rows before it have already been written.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

import numpy as np

from bertwise.data.frames import read_text_table, single_table, table_kind
from bertwise.data.io import (
    check_last_record_closed,
    check_regular_file,
    column_indices,
    raise_field_size_limit,
    utf16_without_bom,
)
from bertwise.data.json_text import load_json, repeated_keys
from bertwise.data.values import cell_text, first_line, has_surrogate, json_kind, one_line
from bertwise.evaluation.runner import PREDICTED_LABEL_COLUMN, PROBABILITY_PREFIX
from bertwise.exceptions import ConfigError, DataError, DataFileNotFoundError, ModelError

Format = Literal["csv", "tsv", "jsonl", "parquet"]
FORMATS: dict[str, Format] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
LABEL_COLUMN = PREDICTED_LABEL_COLUMN  # the same columns as compare's predictions-<name>.csv
PROBA_PREFIX = PROBABILITY_PREFIX
# Large enough that the encoder's length-sorted batches stay full and per-chunk overhead is noise; small enough that a
# chunk of long documents plus its probabilities stays a few megabytes.
DEFAULT_CHUNK_ROWS = 2048
# Parquet output is gathered into row groups of this size (see _ParquetWriter._flush).
ROW_GROUP_BYTES = 8 * 2**20
ROW_GROUP_ROWS = 65_536
_SHOWN_POSITIONS = 5
STDIO = "-"
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


class Predictor(Protocol):
    """What :func:`predict_file` needs of a model: what ``bertwise.load`` returns, or any fitted bertwise strategy."""

    @property
    def classes_(self) -> np.ndarray: ...

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class PredictSummary:
    """What one :func:`predict_file` run did; :meth:`line` is the one-line summary the CLI prints."""

    rows: int  # data rows written, with or without a prediction
    empty_rows: int  # rows whose text was missing or blank: written without a prediction
    seconds: float  # reading, predicting and writing (the model load is in load_seconds)
    load_seconds: float
    destination: str  # the output path, or "stdout"
    format: Format
    added_columns: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def rows_per_second(self) -> float:
        return self.rows / max(self.seconds, 1e-9)

    def line(self) -> str:
        rows = f"{self.rows:,} row{'s' if self.rows != 1 else ''}"
        empty = f", {self.empty_rows:,} without text" if self.empty_rows else ""
        return (
            f"predicted {rows}{empty} in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s; "
            f"model loaded in {self.load_seconds:.1f} s) -> {self.destination}"
        )


def output_columns(classes: Sequence[object]) -> list[str]:
    """The columns ``predict`` adds for a model with these classes: ``predicted_label``, then ``proba_<label>``."""
    return [LABEL_COLUMN, *(f"{PROBA_PREFIX}{label}" for label in classes)]


if TYPE_CHECKING:
    import datasets
    import pandas

    InMemory = TypeVar("InMemory", pandas.DataFrame, datasets.Dataset)


@overload
def predict_file(
    model: str | os.PathLike[str] | Predictor,
    input: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    text_col: str = "text",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    input_format: str | None = None,
    decimals: int | None = None,
    device: str = "auto",
    precision: str | None = None,
    runtime: str = "torch",
    progress: bool = False,
) -> PredictSummary: ...


@overload
def predict_file(
    model: str | os.PathLike[str] | Predictor,
    input: InMemory,
    out: None = None,
    *,
    text_col: str = "text",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    input_format: str | None = None,
    decimals: int | None = None,
    device: str = "auto",
    precision: str | None = None,
    runtime: str = "torch",
    progress: bool = False,
) -> InMemory: ...


def predict_file(
    model: str | os.PathLike[str] | Predictor,
    input: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    text_col: str = "text",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    input_format: str | None = None,
    decimals: int | None = None,
    device: str = "auto",
    precision: str | None = None,
    runtime: str = "torch",
    progress: bool = False,
) -> Any:
    """Predict every row of ``input`` and write it, with its prediction, to ``out`` in the same format.

    ``model`` is a model folder (loaded with ``bertwise.load``) or an already loaded estimator with ``classes_`` and
    ``predict_proba``. ``input`` is a .csv, .tsv, .jsonl or .parquet file, or ``"-"`` for stdin (CSV unless
    ``input_format`` says tsv or jsonl). ``out=None`` (or ``"-"``) writes to stdout, which Parquet cannot use; a file
    is written beside ``out`` under a temporary name and renamed into place once complete. ``decimals`` rounds the
    probabilities (the predicted label is always taken from the unrounded ones). ``device`` and ``precision`` are
    passed to ``bertwise.load`` (precision defaults to the one the model was trained with), and so is ``runtime``
    ("onnx" runs the folder's ONNX export); an estimator passed in runs where it already is.

    ``input`` may also be a pandas DataFrame or a ``datasets.Dataset``: then nothing is written (``out`` must be None)
    and a copy of it with the added columns is returned, of the same type, rows and index as the input
    (:func:`_predict_table`).
    """
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1; got {chunk_rows}")
    if decimals is not None and not 0 <= decimals <= 17:
        raise ConfigError(f"--decimals must be between 0 and 17 (float64 holds 17 significant digits); got {decimals}")
    if table_kind(input) is not None:
        if out is not None:
            raise ConfigError(
                f"out= is for file inputs; predict_file returns the {type(input).__name__} with its predictions: "
                "write that (e.g. .to_csv(path), .to_parquet(path)), or pass the input as a file"
            )
        estimator = _load_model(model, device, precision, runtime)
        return _predict_table(estimator, input, text_col, chunk_rows, decimals, progress)
    source_path, source, fmt = _resolve_input(input, input_format)
    destination = _resolve_output(out, fmt, source_path)

    with _open_binary_input(source_path, source) as stream:
        reader = _open_reader(fmt, stream, source_path, source, text_col, chunk_rows)
        # The input's header and text column are checked before the model loads: a typo costs no model load.
        started = time.perf_counter()
        estimator = _load_model(model, device, precision, runtime)
        load_seconds = time.perf_counter() - started
        classes = np.asarray(estimator.classes_).tolist()
        added = _check_added_columns(classes, reader.columns, source)
        started = time.perf_counter()
        with _Output(destination) as handle:
            writer = _open_writer(fmt, handle, reader, added, classes, decimals)
            try:
                rows, empty_rows, empty_positions = _run(estimator, reader, writer, len(classes), progress)
            except BaseException:
                # Also on a bad row or Ctrl-C the writers must let go of the stream: a text wrapper that is garbage
                # collected closes what it wraps, stdout included. The error that stopped the run is the one to report.
                with suppress(Exception):
                    writer.close(complete=False)
                raise
            writer.close(complete=True)
        seconds = time.perf_counter() - started
    notes = list(reader.notes)
    if empty_rows:
        shown = ", ".join(str(p) for p in empty_positions)
        more = ", ..." if empty_rows > len(empty_positions) else ""
        plural = "s" if empty_rows != 1 else ""
        notes.append(
            f"{empty_rows} of {rows} rows in {source} have an empty or missing text in column '{text_col}' "
            f"({reader.unit}{plural} {shown}{more}); written without a prediction (empty {LABEL_COLUMN} and "
            "probabilities)"
        )
    return PredictSummary(
        rows=rows,
        empty_rows=empty_rows,
        seconds=seconds,
        load_seconds=load_seconds,
        destination="stdout" if destination is None else os.fspath(destination),
        format=fmt,
        added_columns=tuple(added),
        notes=tuple(notes),
    )


def _predict_table(
    estimator: Predictor, value: Any, text_col: str, chunk_rows: int, decimals: int | None, progress: bool
) -> Any:
    """A DataFrame or Dataset with the columns a file would get; a row without text gets none (NaN, None)."""
    from tqdm.auto import tqdm

    table = single_table(value, role="input")
    texts, _ = read_text_table(table, text_col=text_col)  # its one note (empty texts) is what the NaNs say
    classes = np.asarray(estimator.classes_).tolist()
    added = _check_added_columns(classes, table.columns, table.source)
    present = [i for i, text in enumerate(texts) if text.strip()]
    probabilities = np.full((len(texts), len(classes)), np.nan)
    for start in tqdm(range(0, len(present), chunk_rows), desc="predict", disable=not progress, file=sys.stderr):
        rows = present[start : start + chunk_rows]
        predicted = np.asarray(estimator.predict_proba([texts[i] for i in rows]), dtype=np.float64)
        if predicted.shape != (len(rows), len(classes)):
            raise ModelError(
                f"the model returned probabilities of shape {predicted.shape} for {len(rows)} texts; "
                f"expected ({len(rows)}, {len(classes)}), one column per class"
            )
        probabilities[rows] = predicted
    best = np.nan_to_num(probabilities, nan=-1.0).argmax(axis=1).tolist()
    has_text = set(present)
    labels = [classes[j] if i in has_text else None for i, j in enumerate(best)]
    values = probabilities if decimals is None else np.round(probabilities, decimals)
    columns = {name: values[:, j] for j, name in enumerate(added[1:])}
    if table.kind == "Dataset":
        dataset = table.data.add_column(added[0], labels)
        for name, column in columns.items():
            dataset = dataset.add_column(name, column.tolist())
        return dataset
    import pandas as pd

    integral = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
    label_column = pd.array(labels, dtype="Int64" if integral else object)  # Int64: ints stay ints beside missing
    frame = table.data
    return pd.concat([frame, pd.DataFrame({added[0]: label_column, **columns}, index=frame.index)], axis=1)


# ----------------------------------------------------------------------------------------------------
# Input, output and model


def _resolve_input(input: str | os.PathLike[str], input_format: str | None) -> tuple[Path | None, str, Format]:
    fmt: Format | None = None
    if input_format is not None:
        wanted = input_format.strip().lower().lstrip(".")
        if f".{wanted}" not in FORMATS:
            raise ConfigError(f"--format must be csv, tsv, jsonl or parquet; got {input_format!r}")
        fmt = FORMATS[f".{wanted}"]
    if os.fspath(input) == STDIO:
        if fmt == "parquet":
            raise ConfigError(
                "--format parquet cannot be read from stdin: Parquet is read by seeking in a file; pass the file's path"
            )
        return None, "stdin", fmt or "csv"
    path = Path(input)
    source = os.fspath(input)
    if not path.exists():
        raise DataFileNotFoundError(
            f"input file not found: '{source}' (expected a .csv, .tsv, .jsonl or .parquet file, or - for stdin)"
        )
    # A pipe is read through stdin ("-"): a named pipe without a writer would make open() wait forever.
    check_regular_file(path, source, "expected a .csv, .tsv, .jsonl or .parquet file, or - to read a stream on stdin")
    if fmt is None:
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            shown = f"'{suffix}'" if suffix else "'' (no file extension)"
            hint = (
                "; a JSON array cannot be read in chunks: write one object per line as .jsonl"
                if suffix == ".json"
                else " (or pass --format)"
            )
            raise DataError(
                f"cannot read '{source}': unknown format {shown}; expected one of .csv, .tsv, .jsonl, .parquet{hint}"
            )
        fmt = FORMATS[suffix]
    return path, source, fmt


def _resolve_output(out: str | os.PathLike[str] | None, fmt: Format, source_path: Path | None) -> Path | None:
    if out is None or os.fspath(out) == STDIO:
        if fmt == "parquet":
            raise ConfigError(
                "Parquet output cannot go to stdout (a Parquet file ends with its index, so it is not a stream); "
                "pass --out FILE.parquet"
            )
        return None
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix in FORMATS and FORMATS[suffix] != fmt:
        raise ConfigError(
            f"--out '{os.fspath(out)}' ends in {suffix} but the input is {fmt.upper()}; predict writes the input's "
            f"format: expected a file ending in .{fmt}"
        )
    if path.is_dir():
        raise ConfigError(f"--out '{os.fspath(out)}' is a folder; expected a file ending in .{fmt}")
    if source_path is not None and path.exists() and os.path.samefile(path, source_path):
        raise ConfigError(
            f"--out '{os.fspath(out)}' is the input file; expected a different file (the input is still being read "
            "while the output is written)"
        )
    return path


def _open_binary_input(path: Path | None, source: str) -> AbstractContextManager[IO[bytes]]:
    if path is None:
        # stdin belongs to the process: leaving the with-block must not close it.
        return nullcontext(sys.stdin.buffer)
    try:
        return path.open("rb")
    except OSError as err:
        raise DataError(f"cannot read '{source}': {err.strerror or err}") from None


def _load_model(
    model: str | os.PathLike[str] | Predictor, device: str, precision: str | None, runtime: str = "torch"
) -> Predictor:
    if isinstance(model, str | os.PathLike):
        import bertwise

        folder = os.fspath(model)
        try:
            loader = bertwise.load
        except AttributeError:
            raise ModelError(
                f"cannot load the model folder '{folder}': this bertwise has no model-folder loader (bertwise.load)"
            ) from None
        estimator = loader(folder, device=device, precision=precision, runtime=runtime)
        what = f"the model in '{folder}'"
    else:
        estimator, what = model, f"the model ({type(model).__name__})"
    if not hasattr(estimator, "classes_") or not callable(getattr(estimator, "predict_proba", None)):
        raise ModelError(
            f"{what} cannot predict: expected a fitted estimator with classes_ and predict_proba "
            f"(a folder written by bertwise train), found {type(estimator).__name__}"
        )
    return estimator


def _check_added_columns(classes: list[Any], columns: Sequence[str], source: str) -> list[str]:
    added = output_columns(classes)
    if len(set(added)) != len(added):
        raise ModelError(
            f"the model's labels {classes!r} give duplicate column names once written as text; "
            "expected labels that differ as text"
        )
    clashes = [name for name in added if name in set(columns)]
    if clashes:
        shown = ", ".join(f"'{one_line(name)}'" for name in clashes[:_SHOWN_POSITIONS])
        more = ", ..." if len(clashes) > _SHOWN_POSITIONS else ""
        raise DataError(
            f"{source} already has column(s) {shown}{more}, which predict adds; expected an input without them "
            "(rename or drop them: is this a file predict already wrote?)"
        )
    return added


class _Output:
    """The destination stream: a temporary file beside ``path``, renamed over it on success, or stdout."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.temporary = None if path is None else path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.stream: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self.path is None or self.temporary is None:
            sys.stdout.flush()  # text already printed through sys.stdout comes before the rows
            return sys.stdout.buffer
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.stream = self.temporary.open("wb")
        except OSError as err:
            raise ConfigError(f"cannot write --out '{self.path}': {err.strerror or err}") from None
        return self.stream

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self.temporary is None or self.path is None:
            sys.stdout.flush()
            return
        assert self.stream is not None
        try:
            self.stream.close()
            if kind is None:
                os.replace(self.temporary, self.path)
        except OSError as err:
            raise ConfigError(f"cannot write --out '{self.path}': {err.strerror or err}") from None
        finally:
            # Whatever stopped the run (a bad row, Ctrl-C, a full disk), no half file stays behind.
            self.temporary.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------------
# The loop


@dataclass
class _Chunk:
    rows: Any  # the format's own rows: list of CSV records, list of JSON objects, a pyarrow RecordBatch
    texts: list[str | None]
    positions: list[int]  # each row's line (text formats) or row number (Parquet), for messages


def _run(
    model: Predictor, reader: _Reader, writer: _Writer, n_classes: int, progress: bool
) -> tuple[int, int, list[int]]:
    from tqdm.auto import tqdm

    rows = empty_rows = 0
    empty_positions: list[int] = []
    by_bytes = reader.unit == "line"
    with tqdm(
        total=reader.total,
        desc="predict",
        unit="B" if by_bytes else "row",
        unit_scale=by_bytes,
        unit_divisor=1024 if by_bytes else 1000,
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        done = 0
        for chunk in reader.chunks():
            present = [i for i, text in enumerate(chunk.texts) if text is not None and text.strip()]
            probabilities = np.full((len(chunk.texts), n_classes), np.nan)
            if present:
                texts = [text for text in chunk.texts if text is not None and text.strip()]
                predicted = np.asarray(model.predict_proba(texts), dtype=np.float64)
                if predicted.shape != (len(present), n_classes):
                    raise ModelError(
                        f"the model returned probabilities of shape {predicted.shape} for {len(present)} texts; "
                        f"expected ({len(present)}, {n_classes}), one column per class"
                    )
                probabilities[present] = predicted
            if len(present) < len(chunk.texts):
                missing = sorted(set(range(len(chunk.texts))) - set(present))
                empty_rows += len(missing)
                room = _SHOWN_POSITIONS - len(empty_positions)
                empty_positions += [chunk.positions[i] for i in missing[:room]] if room > 0 else []
            writer.write(chunk, present, probabilities)
            rows += len(chunk.texts)
            now = reader.done()
            bar.update(now - done)
            done = now
    return rows, empty_rows, empty_positions


# ----------------------------------------------------------------------------------------------------
# Readers


class _Reader(Protocol):
    unit: str  # "line" for the text formats, "row" for Parquet
    columns: list[str]
    total: int | None  # bytes (text formats) or rows (Parquet) in all, for the progress bar
    notes: list[str]

    def chunks(self) -> Iterator[_Chunk]: ...

    def done(self) -> int: ...


def _open_reader(
    fmt: Format, stream: IO[bytes], path: Path | None, source: str, text_col: str, chunk_rows: int
) -> _Reader:
    total = path.stat().st_size if path is not None else None
    if fmt == "parquet":
        assert path is not None
        return _ParquetReader(path, source, text_col, chunk_rows)
    if fmt == "jsonl":
        return _JsonlReader(stream, source, text_col, chunk_rows, total)
    literal = False
    notes: list[str] = []
    if fmt == "tsv" and path is not None and _reads_literally(path):
        literal = True
        notes.append(f"read {source} without CSV quoting: its quote characters are part of the texts")
    reader = _DelimitedReader(stream, source, "," if fmt == "csv" else "\t", literal, text_col, chunk_rows, total)
    reader.notes += notes
    return reader


class _Lines:
    """The lines of a binary stream decoded as UTF-8, counted for messages, their bytes counted for the progress bar."""

    def __init__(self, stream: IO[bytes], source: str) -> None:
        self._stream = stream
        self._source = source
        self.number = 0
        self.bytes = 0
        self.bom = False
        self.newline = "\n"
        self.recent: list[str] = []  # the lines since the last reset: lets the last CSV record be re-checked
        self._split: list[bytes] = []  # the rest of a read that held lines ended by a lone CR, last one first

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._split:
            raw = self._split.pop()
        else:
            raw = self._stream.readline()
            if b"\r" in raw:
                # readline() ends lines at LF only; a lone CR ends one too (old Mac files), as the training reader
                # sees it.
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
                raise DataError(
                    f"{self._source} is not UTF-8: it looks like UTF-16 without a byte-order mark; "
                    "save the file as UTF-8"
                )
            self.newline = "\r\n" if raw.endswith(b"\r\n") else "\r" if raw.endswith(b"\r") else "\n"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            utf16 = (
                " (it looks like UTF-16)"
                if self.number == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
                else ""
            )
            raise DataError(
                f"{self._source} is not valid UTF-8{utf16}: byte 0x{raw[err.start]:02x} at line {self.number}; "
                "save the file as UTF-8"
            ) from None
        self.recent.append(line)
        return line


class _DelimitedReader:
    unit = "line"

    def __init__(
        self,
        stream: IO[bytes],
        source: str,
        delimiter: str,
        literal: bool,
        text_col: str,
        chunk_rows: int,
        total: int | None,
    ) -> None:
        raise_field_size_limit()
        self.source = source
        self.delimiter = delimiter
        self.literal = literal
        self.total = total
        self.notes: list[str] = []
        self._chunk_rows = chunk_rows
        self._lines = _Lines(stream, source)
        # TSV is parsed strictly, as bertwise's training reader does: a text like `"Hi" she said` fails instead of
        # silently losing its quotes (files with such texts were already detected and are read literally). CSV stays
        # as lenient as spreadsheet programs and pandas are.
        self._strict = delimiter == "\t" and not literal
        self._csv = csv.reader(
            self._lines,
            delimiter=delimiter,
            quoting=csv.QUOTE_NONE if literal else csv.QUOTE_MINIMAL,
            strict=self._strict,
        )
        self._records = self._parse()
        header: list[str] | None = None
        for _, record in self._records:
            if any(cell.strip() for cell in record):
                header = record
                break
        if header is None:
            raise DataError(f"{source} is empty: expected a header row, then one row per text")
        self.header = header
        self.columns = [cell.strip() for cell in header]
        self._text_index, _ = column_indices(source, self.columns, text_col, None)

    @property
    def bom(self) -> bool:
        return self._lines.bom

    @property
    def newline(self) -> str:
        return self._lines.newline

    def done(self) -> int:
        return self._lines.bytes

    def _parse(self) -> Iterator[tuple[int, list[str]]]:
        sep_name = "tab" if self.delimiter == "\t" else "comma"
        start = end = 0
        lines: list[str] = []
        try:
            for record in self._csv:
                # line_num counts physical lines consumed, so a record starts one after the previous one ended.
                start, end = end + 1, self._csv.line_num
                lines, self._lines.recent = self._lines.recent, []
                yield start, record
        except csv.Error as err:
            if "unexpected end of data" in str(err):
                raise DataError(
                    f"{self.source} line {end + 1}: a quoted field starting on this line is never closed; "
                    "expected a closing '\"' (an unbalanced quote?)"
                ) from None
            raise DataError(
                f"{self.source} line {end + 1}: malformed quoting ({one_line(str(err))}); "
                f"expected a quoted field to end with a quote followed by a {sep_name}"
            ) from None
        if end and not self._strict and not self.literal:
            check_last_record_closed("".join(lines), self.source, self.delimiter, start)

    def chunks(self) -> Iterator[_Chunk]:
        width = len(self.header)
        sep_name = "tab" if self.delimiter == "\t" else "comma"
        rows: list[list[str]] = []
        texts: list[str | None] = []
        positions: list[int] = []
        for start, record in self._records:
            if len(record) != width:
                if not any(cell.strip() for cell in record):
                    continue  # a blank line: layout, not a row
                end = self._csv.line_num
                runs_on = f"; the record runs on to line {end}: an unclosed quote?" if end > start else ""
                raise DataError(
                    f"{self.source} line {start}: expected {width} fields as in the header, found {len(record)} "
                    f"(an unquoted {sep_name} or quote?{runs_on})"
                )
            rows.append(record)
            texts.append(record[self._text_index])
            positions.append(start)
            if len(rows) == self._chunk_rows:
                yield _Chunk(rows, texts, positions)
                rows, texts, positions = [], [], []
        if rows:
            yield _Chunk(rows, texts, positions)


def _reads_literally(path: Path) -> bool:
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


class _JsonlReader:
    unit = "line"

    def __init__(self, stream: IO[bytes], source: str, text_col: str, chunk_rows: int, total: int | None) -> None:
        self.source = source
        self.total = total
        self.notes: list[str] = []
        self._text_col = text_col
        self._chunk_rows = chunk_rows
        self._lines = _Lines(stream, source)
        self._objects = self._parse()
        self._added: frozenset[str] = frozenset()
        # The columns are the keys of the first chunk's objects (JSON Lines has no header); the text column must be
        # among them, so a wrong --text-col fails at once rather than after the model loads.
        self._first = self._next_chunk()
        columns: dict[str, None] = {}
        for obj in self._first.rows if self._first else []:
            columns.update(dict.fromkeys(obj))
        if self._first is not None and text_col not in columns and stream.seekable():
            # No text in the first chunk: a file can be read twice, so look on for an object with one, as the training
            # loader (which reads every object) would find it; then start again from the top.
            for _, obj in self._objects:
                columns.update(dict.fromkeys(obj))
                if text_col in obj:
                    stream.seek(0)
                    self._lines = _Lines(stream, source)
                    self._objects = self._parse()
                    self._first = self._next_chunk()
                    break
        self.columns = list(columns)
        if self._first is not None:
            column_indices(source, self.columns, text_col, None)

    def done(self) -> int:
        return self._lines.bytes

    def forbid(self, added: Sequence[str]) -> None:
        """Refuse later objects that hold a column predict adds (the first chunk's keys were checked already)."""
        self._added = frozenset(added)

    def _parse(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for line in self._lines:
            self._lines.recent.clear()
            if not line.strip():
                continue
            try:
                obj = load_json(line)
            except json.JSONDecodeError as err:
                hint = (
                    "; the file looks like a JSON array: write one object per line" if line.lstrip()[:1] == "[" else ""
                )
                raise DataError(
                    f"{self.source} line {self._lines.number}: not valid JSON ({err.msg} at column {err.colno}); "
                    f"expected one JSON object per line{hint}"
                ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    f"{self.source} line {self._lines.number}: expected a JSON object such as "
                    f'{{"{self._text_col}": "..."}}, found {json_kind(obj)}'
                )
            if repeated_keys(obj, [self._text_col]):
                raise DataError(
                    f"{self.source} line {self._lines.number}: the object gives the key '{one_line(self._text_col)}' "
                    "more than once; expected each key once (JSON keeps only the last, silently)"
                )
            yield self._lines.number, obj

    def _next_chunk(self) -> _Chunk | None:
        rows: list[dict[str, Any]] = []
        texts: list[str | None] = []
        positions: list[int] = []
        for number, obj in self._objects:
            if self._added and not self._added.isdisjoint(obj):
                clash = ", ".join(f"'{one_line(k)}'" for k in obj if k in self._added)
                raise DataError(
                    f"{self.source} line {number}: the object already has {clash}, which predict adds; "
                    "expected objects without them"
                )
            rows.append(obj)
            value = obj.get(self._text_col)
            texts.append(cell_text(value, source=self.source, unit="line", position=number, column=self._text_col))
            positions.append(number)
            if len(rows) == self._chunk_rows:
                break
        return _Chunk(rows, texts, positions) if rows else None

    def chunks(self) -> Iterator[_Chunk]:
        chunk, self._first = self._first, None
        while chunk is not None:
            yield chunk
            chunk = self._next_chunk()


class _ParquetReader:
    unit = "row"

    def __init__(self, path: Path, source: str, text_col: str, chunk_rows: int) -> None:
        import pyarrow.parquet as pq  # deferred: pyarrow is slow to import and only Parquet needs it

        self.source = source
        self.notes: list[str] = []
        self._chunk_rows = chunk_rows
        self._done = 0
        if path.stat().st_size == 0:
            raise DataError(f"{source} is empty: expected a Parquet file")
        try:
            self.file = pq.ParquetFile(path)
            self.schema = self.file.schema_arrow
        except Exception as err:  # pyarrow raises several unrelated types (ArrowInvalid, OSError, ...)
            raise DataError(
                f"cannot read {source} as Parquet ({first_line(err)}); expected a Parquet file "
                "such as pandas' DataFrame.to_parquet writes"
            ) from None
        self.columns = list(self.schema.names)
        # pandas stores a non-default index as an extra column: kept in the output, but not one the user would name.
        named = [name for name in self.columns if not name.startswith("__index_level_")]
        column_indices(source, named, text_col, None)
        self._text_col = text_col
        self.total: int | None = self.file.metadata.num_rows
        self._check_nested()

    def _check_nested(self) -> None:
        """Refuse a list or struct text column before the model loads, naming its first row that has a value."""
        import pyarrow as pa

        if not pa.types.is_nested(self.schema.field(self._text_col).type):
            return
        done = 0
        try:
            for batch in self.file.iter_batches(batch_size=self._chunk_rows, columns=[self._text_col]):
                for row, value in enumerate(batch.column(0).to_pylist(), start=done + 1):
                    cell_text(value, source=self.source, unit="row", position=row, column=self._text_col)
                done += batch.num_rows
        except DataError:
            raise
        except Exception as err:
            raise DataError(f"cannot read {self.source} as Parquet after row {done} ({first_line(err)})") from None

    def done(self) -> int:
        return self._done

    def chunks(self) -> Iterator[_Chunk]:
        batches = self.file.iter_batches(batch_size=self._chunk_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as err:
                raise DataError(
                    f"cannot read {self.source} as Parquet after row {self._done} ({first_line(err)})"
                ) from None
            positions = list(range(self._done + 1, self._done + 1 + batch.num_rows))
            texts = [
                cell_text(value, source=self.source, unit="row", position=row, column=self._text_col)
                for row, value in zip(positions, batch.column(self._text_col).to_pylist(), strict=True)
            ]
            self._done += len(texts)
            yield _Chunk(batch, texts, positions)


# ----------------------------------------------------------------------------------------------------
# Writers


class _Writer(Protocol):
    def write(self, chunk: _Chunk, present: list[int], probabilities: np.ndarray) -> None: ...

    def close(self, complete: bool) -> None:
        """Let go of the stream; ``complete`` is False after an error (the output is then thrown away)."""


def _open_writer(
    fmt: Format, stream: IO[bytes], reader: _Reader, added: list[str], classes: list[Any], decimals: int | None
) -> _Writer:
    if fmt == "parquet":
        assert isinstance(reader, _ParquetReader)
        return _ParquetWriter(stream, reader, added, classes, decimals)
    if fmt == "jsonl":
        assert isinstance(reader, _JsonlReader)
        reader.forbid(added)
        return _JsonlWriter(stream, reader.source, added, classes, decimals)
    assert isinstance(reader, _DelimitedReader)
    return _DelimitedWriter(stream, reader, added, classes, decimals)


def _rounded(probabilities: np.ndarray, decimals: int | None) -> list[list[float]]:
    return (probabilities if decimals is None else np.round(probabilities, decimals)).tolist()


class _TextWriter:
    """Shared by the text formats: UTF-8 over the binary stream, flushed per chunk so a pipe sees rows as they come."""

    def __init__(self, stream: IO[bytes], classes: list[Any], decimals: int | None) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        self._classes = classes
        self._decimals = decimals

    def _labels(self, chunk: _Chunk, present: list[int], probabilities: np.ndarray) -> list[Any]:
        labels: list[Any] = [None] * len(chunk.texts)
        if present:
            best = probabilities[present].argmax(axis=1).tolist()
            for i, index in zip(present, best, strict=True):
                labels[i] = self._classes[index]
        return labels

    def close(self, complete: bool) -> None:
        # Detach (which flushes) rather than close: the binary stream, a temporary file or stdout, is the caller's.
        self._text.detach()


class _DelimitedWriter(_TextWriter):
    def __init__(
        self, stream: IO[bytes], reader: _DelimitedReader, added: list[str], classes: list[Any], decimals: int | None
    ) -> None:
        super().__init__(stream, classes, decimals)
        if reader.bom:
            self._text.write("\ufeff")  # kept for the spreadsheet programs that rely on it to detect UTF-8
        # A file read literally is written literally, so the texts' quote characters stay as they were.
        if reader.literal:
            self._csv = csv.writer(
                self._text,
                delimiter=reader.delimiter,
                lineterminator=reader.newline,
                quoting=csv.QUOTE_NONE,
                quotechar=None,
            )
        else:
            self._csv = csv.writer(self._text, delimiter=reader.delimiter, lineterminator=reader.newline)
        self._blank = [""] * len(added)
        self._write([[*reader.header, *added]])

    def _write(self, rows: Any) -> None:
        try:
            self._csv.writerows(rows)
        except csv.Error as err:
            raise DataError(f"cannot write a row without quoting ({err}); expected texts without tabs") from None

    def write(self, chunk: _Chunk, present: list[int], probabilities: np.ndarray) -> None:
        labels = self._labels(chunk, present, probabilities)
        values = _rounded(probabilities, self._decimals)
        self._write(
            [*record, "", *self._blank[1:]] if label is None else [*record, label, *row]
            for record, label, row in zip(chunk.rows, labels, values, strict=True)
        )
        self._text.flush()


class _JsonlWriter(_TextWriter):
    def __init__(
        self, stream: IO[bytes], source: str, added: list[str], classes: list[Any], decimals: int | None
    ) -> None:
        super().__init__(stream, classes, decimals)
        self._source = source
        self._proba_names = added[1:]

    def write(self, chunk: _Chunk, present: list[int], probabilities: np.ndarray) -> None:
        labels = self._labels(chunk, present, probabilities)
        values = _rounded(probabilities, self._decimals)
        lines = []
        for obj, label, row, position in zip(chunk.rows, labels, values, chunk.positions, strict=True):
            obj[LABEL_COLUMN] = label
            obj.update(zip(self._proba_names, [None] * len(row) if label is None else row, strict=True))
            try:
                line = json.dumps(obj, ensure_ascii=False)
            except RecursionError:
                raise DataError(
                    f"{self._source} line {position}: the object is nested too deep to write back; "
                    "expected values nested less deeply"
                ) from None
            # A lone surrogate read from an escape ("\ud800") cannot be written as UTF-8; escaped it is kept as read.
            lines.append(json.dumps(obj) if has_surrogate(line) else line)
        lines.append("")
        self._text.write("\n".join(lines))
        self._text.flush()


class _ParquetWriter:
    def __init__(
        self, stream: IO[bytes], reader: _ParquetReader, added: list[str], classes: list[Any], decimals: int | None
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._classes = classes
        self._decimals = decimals
        integral = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        self._label_type = pa.int64() if integral else pa.string()
        fields = [pa.field(added[0], self._label_type), *(pa.field(name, pa.float64()) for name in added[1:])]
        # The input's schema metadata (pandas' index and dtypes) is kept: pandas reads the extra columns all the same.
        self._schema = pa.schema([*reader.schema, *fields], metadata=reader.schema.metadata)
        self._writer = pq.ParquetWriter(stream, self._schema)
        self._pending: list[Any] = []
        self._pending_rows = self._pending_bytes = 0

    def write(self, chunk: _Chunk, present: list[int], probabilities: np.ndarray) -> None:
        pa = self._pa
        mask = np.ones(len(chunk.texts), dtype=bool)
        mask[present] = False  # True where the row has no prediction: a null, not a NaN
        best = np.where(mask, 0, np.nan_to_num(probabilities, nan=-1.0).argmax(axis=1))
        labels = [
            None if missing else self._classes[i] for missing, i in zip(mask.tolist(), best.tolist(), strict=True)
        ]
        values = probabilities if self._decimals is None else np.round(probabilities, self._decimals)
        arrays = [
            *chunk.rows.columns,
            pa.array(labels, type=self._label_type),
            *(pa.array(values[:, j], type=pa.float64(), mask=mask) for j in range(values.shape[1])),
        ]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        if self._pending_bytes >= ROW_GROUP_BYTES or self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        # Each write is one row group, and the writer keeps about 1 KB of metadata per column and row group until the
        # file is closed: row groups of one chunk each would make memory grow with the file after all (200,000 rows
        # x 79 columns in 2,048-row groups: +55 MB), so chunks are gathered into row groups of a few megabytes.
        if self._pending:
            table = self._pa.Table.from_batches(self._pending, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def close(self, complete: bool) -> None:
        if complete:
            self._flush()
        self._writer.close()
