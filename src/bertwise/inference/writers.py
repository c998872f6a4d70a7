"""Writing predict's output: the input's rows in its own format with the added columns, to a file or stdout.

A file is written beside its destination under a temporary name and renamed into place once complete (:class:`Output`),
so an interrupted run leaves no half file. Each writer gives every input row back as read, then ``predicted_label``
and one probability column per class; a row without text gets empty values.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from bertwise.data.chunks import Chunk, ChunkReader, DelimitedChunks, JsonlChunks, ParquetChunks
from bertwise.data.values import has_surrogate
from bertwise.evaluation.runner import PREDICTED_LABEL_COLUMN
from bertwise.exceptions import ConfigError, DataError
from bertwise.util import atomic

# Parquet output is gathered into row groups of this size (see ParquetWriter._flush).
ROW_GROUP_BYTES = 8 * 2**20
ROW_GROUP_ROWS = 65_536


class Output:
    """The destination stream: a temporary file beside ``path`` renamed over it on success (util.atomic), or stdout."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stream: IO[bytes] | None = None
        self._atomic: contextlib.AbstractContextManager[Path] | None = None

    def __enter__(self) -> IO[bytes]:
        if self.path is None:
            sys.stdout.flush()  # text already printed through sys.stdout comes before the rows
            return sys.stdout.buffer
        try:
            self._atomic = atomic.atomic_path(self.path)
            self.stream = self._atomic.__enter__().open("wb")
        except OSError as err:
            raise ConfigError(f"cannot write --out '{self.path}': {err.strerror or err}") from None
        return self.stream

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        if self.path is None or self._atomic is None:
            sys.stdout.flush()
            return
        assert self.stream is not None
        try:
            self.stream.close()
        except OSError as err:  # the last bytes could not be written (a full disk): the temporary file goes
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise ConfigError(f"cannot write --out '{self.path}': {err.strerror or err}") from None
        try:
            # Renamed into place on success; whatever stopped the run (a bad row, Ctrl-C) removes the temporary file.
            self._atomic.__exit__(kind, error, trace)
        except OSError as err:
            raise ConfigError(f"cannot write --out '{self.path}': {err.strerror or err}") from None


class Writer(Protocol):
    def write(self, chunk: Chunk, present: list[int], probabilities: np.ndarray) -> None: ...

    def close(self, complete: bool) -> None:
        """Let go of the stream; ``complete`` is False after an error (the output is then thrown away)."""


def open_writer(
    fmt: str, stream: IO[bytes], reader: ChunkReader, added: list[str], classes: list[Any], decimals: int | None
) -> Writer:
    if fmt == "parquet":
        assert isinstance(reader, ParquetChunks)
        return ParquetWriter(stream, reader, added, classes, decimals)
    if fmt == "jsonl":
        assert isinstance(reader, JsonlChunks)
        reader.forbid(added)
        return JsonlWriter(stream, reader.source, added, classes, decimals)
    assert isinstance(reader, DelimitedChunks)
    return DelimitedWriter(stream, reader, added, classes, decimals)


def _rounded(probabilities: np.ndarray, decimals: int | None) -> list[list[float]]:
    return (probabilities if decimals is None else np.round(probabilities, decimals)).tolist()


class TextWriter:
    """Shared by the text formats: UTF-8 over the binary stream, flushed per chunk so a pipe sees rows as they come."""

    def __init__(self, stream: IO[bytes], classes: list[Any], decimals: int | None) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        self._classes = classes
        self._decimals = decimals

    def _labels(self, chunk: Chunk, present: list[int], probabilities: np.ndarray) -> list[Any]:
        labels: list[Any] = [None] * len(chunk.texts)
        if present:
            best = probabilities[present].argmax(axis=1).tolist()
            for i, index in zip(present, best, strict=True):
                labels[i] = self._classes[index]
        return labels

    def close(self, complete: bool) -> None:
        # Detach (which flushes) rather than close: the binary stream, a temporary file or stdout, is the caller's.
        self._text.detach()


class DelimitedWriter(TextWriter):
    def __init__(
        self, stream: IO[bytes], reader: DelimitedChunks, added: list[str], classes: list[Any], decimals: int | None
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

    def write(self, chunk: Chunk, present: list[int], probabilities: np.ndarray) -> None:
        labels = self._labels(chunk, present, probabilities)
        values = _rounded(probabilities, self._decimals)
        self._write(
            [*record, "", *self._blank[1:]] if label is None else [*record, label, *row]
            for record, label, row in zip(chunk.rows, labels, values, strict=True)
        )
        self._text.flush()


class JsonlWriter(TextWriter):
    def __init__(
        self, stream: IO[bytes], source: str, added: list[str], classes: list[Any], decimals: int | None
    ) -> None:
        super().__init__(stream, classes, decimals)
        self._source = source
        self._proba_names = added[1:]

    def write(self, chunk: Chunk, present: list[int], probabilities: np.ndarray) -> None:
        labels = self._labels(chunk, present, probabilities)
        values = _rounded(probabilities, self._decimals)
        lines = []
        for obj, label, row, position in zip(chunk.rows, labels, values, chunk.positions, strict=True):
            obj[PREDICTED_LABEL_COLUMN] = label
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


class ParquetWriter:
    def __init__(
        self, stream: IO[bytes], reader: ParquetChunks, added: list[str], classes: list[Any], decimals: int | None
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

    def write(self, chunk: Chunk, present: list[int], probabilities: np.ndarray) -> None:
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
        # file is closed: row groups of one chunk each would make memory grow with the file after all (docs/predict.md
        # has the measured growth), so chunks are gathered into row groups of a few megabytes.
        if self._pending:
            table = self._pa.Table.from_batches(self._pending, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def close(self, complete: bool) -> None:
        if complete:
            self._flush()
        self._writer.close()
