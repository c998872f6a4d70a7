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

import os
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar, cast, overload

import numpy as np

from bertwise.data.chunks import ChunkReader, open_chunk_reader, read_all_texts
from bertwise.data.frames import read_text_table, single_table, table_kind
from bertwise.data.readers import INPUT_FORMATS, STREAM_FORMATS, StreamFormat, check_regular_file, file_format
from bertwise.data.values import one_line
from bertwise.evaluation.runner import PREDICTED_LABEL_COLUMN, PROBABILITY_PREFIX
from bertwise.exceptions import ConfigError, DataError, DataFileNotFoundError, ModelError
from bertwise.inference import loading
from bertwise.inference.writers import Output, Writer, open_writer

Format = StreamFormat
FORMATS = STREAM_FORMATS
LABEL_COLUMN = PREDICTED_LABEL_COLUMN  # the same columns as compare's predictions-<name>.csv
PROBA_PREFIX = PROBABILITY_PREFIX
# Large enough that the encoder's length-sorted batches stay full and per-chunk overhead is noise; small enough that a
# chunk of long documents plus its probabilities stays a few megabytes.
DEFAULT_CHUNK_ROWS = 2048
_SHOWN_POSITIONS = 5
STDIO = "-"


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
        reader = _open_reader(fmt, stream, source_path, source, text_col, chunk_rows, input_format)
        # The input's header and text column are checked before the model loads: a typo costs no model load.
        started = time.perf_counter()
        estimator = _load_model(model, device, precision, runtime)
        load_seconds = time.perf_counter() - started
        classes = np.asarray(estimator.classes_).tolist()
        added = _check_added_columns(classes, reader.columns, source)
        started = time.perf_counter()
        rows, empty_rows, empty_positions = _write_all(
            estimator, reader, destination, fmt, classes, added, decimals, progress
        )
        seconds = time.perf_counter() - started
    notes = list(reader.notes)
    if empty_rows:
        notes.append(_empty_rows_note(rows, empty_rows, empty_positions, reader, text_col))
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


def _write_all(
    estimator: Predictor,
    reader: ChunkReader,
    destination: Path | None,
    fmt: Format,
    classes: list[Any],
    added: list[str],
    decimals: int | None,
    progress: bool,
) -> tuple[int, int, list[int]]:
    """Predict and write every chunk; return the rows written, those without text and where the first of them are."""
    with Output(destination) as handle:
        writer = open_writer(fmt, handle, reader, added, classes, decimals)
        try:
            counts = _run(estimator, reader, writer, len(classes), progress)
        except BaseException:
            # Also on a bad row or Ctrl-C the writers must let go of the stream: a text wrapper that is garbage
            # collected closes what it wraps, stdout included. The error that stopped the run is the one to report.
            with suppress(Exception):
                writer.close(complete=False)
            raise
        writer.close(complete=True)
    return counts


def _empty_rows_note(rows: int, empty_rows: int, empty_positions: list[int], reader: ChunkReader, text_col: str) -> str:
    shown = ", ".join(str(p) for p in empty_positions)
    more = ", ..." if empty_rows > len(empty_positions) else ""
    plural = "s" if empty_rows != 1 else ""
    return (
        f"{empty_rows} of {rows} rows in {reader.source} have an empty or missing text in column '{text_col}' "
        f"({reader.unit}{plural} {shown}{more}); written without a prediction (empty {LABEL_COLUMN} and "
        "probabilities)"
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
        if wanted not in INPUT_FORMATS:
            raise ConfigError(f"--format must be csv, tsv, jsonl, parquet or lines; got {input_format!r}")
        fmt = wanted
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
        fmt = cast(Format, file_format(path, source, streaming=True))  # streaming: never "json"
    return path, source, fmt


def read_input_texts(input: str | os.PathLike[str], input_format: str | None, text_col: str = "text") -> list[str]:
    """Every text of ``input`` (a file, or "-" for stdin) read as ``input_format`` says, as predict reads its input
    (stdin: CSV with a header unless told otherwise); a row without a text is an error naming it."""
    path, source, fmt = _resolve_input(input, input_format)
    with _open_binary_input(path, source) as stream:
        return read_all_texts(_open_reader(fmt, stream, path, source, text_col, DEFAULT_CHUNK_ROWS, input_format))


def _open_reader(
    fmt: Format,
    stream: IO[bytes],
    path: Path | None,
    source: str,
    text_col: str,
    chunk_rows: int,
    input_format: str | None,
) -> ChunkReader:
    try:
        return open_chunk_reader(fmt, stream, path, source, text_col, chunk_rows)
    except DataError as error:
        if path is None and input_format is None and "no text column" in str(error):
            # Likely plain lines piped in: the first one was taken for a header.
            raise DataError(
                f"{error}; stdin is read as CSV with a header row: for one text per line pass --format lines"
            ) from None
        raise


def output_format(fmt: Format) -> Format:
    """The format predict writes for input of ``fmt``: the input's own, except one text per line, written as CSV."""
    return "csv" if fmt == "lines" else fmt


def _resolve_output(out: str | os.PathLike[str] | None, fmt: Format, source_path: Path | None) -> Path | None:
    fmt = output_format(fmt)
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
        folder = os.fspath(model)
        estimator = loading.load(folder, device=device, precision=precision, runtime=runtime)
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


# ----------------------------------------------------------------------------------------------------
# The loop


def _run(
    model: Predictor, reader: ChunkReader, writer: Writer, n_classes: int, progress: bool
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
