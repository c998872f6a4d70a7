"""Any data file streamed in chunks of rows, each row with its line (text formats) or row number (Parquet).

Built on :mod:`bertwise.data.readers`, as the whole-file loader is, so both give the same messages and line numbers;
a chunk keeps each row in the format's own shape (CSV record, JSON object, Arrow batch) so a writer can give it back
unchanged. Memory depends on the chunk size, not the file's length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from bertwise.data.columns import column_indices
from bertwise.data.json_text import repeated_keys
from bertwise.data.readers import (
    LITERAL_NOTE,
    DelimitedRecords,
    Lines,
    StreamFormat,
    example_object,
    jsonl_objects,
    named_columns,
    open_parquet,
    reads_literally,
    repeated_key_error,
)
from bertwise.data.values import cell_text, first_line, one_line
from bertwise.exceptions import DataError


@dataclass
class Chunk:
    rows: Any  # the format's own rows: list of CSV records, list of JSON objects, a pyarrow RecordBatch
    texts: list[str | None]
    positions: list[int]  # each row's line (text formats) or row number (Parquet), for messages


class ChunkReader(Protocol):
    source: str
    unit: str  # "line" for the text formats, "row" for Parquet
    columns: list[str]
    total: int | None  # bytes (text formats) or rows (Parquet) in all, for a progress bar
    notes: list[str]

    def chunks(self) -> Iterator[Chunk]: ...

    def done(self) -> int: ...


def open_chunk_reader(
    fmt: StreamFormat, stream: IO[bytes], path: Path | None, source: str, text_col: str, chunk_rows: int
) -> ChunkReader:
    """A reader of ``stream`` (``path`` open, or stdin when ``path`` is None); its header or first chunk is read
    and the text column checked at once, so a wrong column name fails before anything costly starts."""
    total = path.stat().st_size if path is not None else None
    if fmt == "parquet":
        assert path is not None
        return ParquetChunks(path, source, text_col, chunk_rows)
    if fmt == "jsonl":
        return JsonlChunks(stream, source, text_col, chunk_rows, total)
    if fmt == "lines":
        return LinesChunks(stream, source, text_col, chunk_rows, total)
    # A stream cannot be read twice, so a TSV file is looked at once before to choose how to read it.
    literal = fmt == "tsv" and path is not None and reads_literally(path)
    reader = DelimitedChunks(stream, source, "," if fmt == "csv" else "\t", literal, text_col, chunk_rows, total)
    if literal:
        reader.notes.append(LITERAL_NOTE.format(source=source))
    return reader


class DelimitedChunks:
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
        self.source = source
        self.delimiter = delimiter
        self.literal = literal
        self.total = total
        self.notes: list[str] = []
        self._chunk_rows = chunk_rows
        self._lines = Lines(stream, source)
        sep_name = "tab" if delimiter == "\t" else "comma"
        self._records = DelimitedRecords(
            self._lines, source, delimiter, literal=literal, separator=sep_name, name_unclosed=True
        )
        if not self._records.read_header():
            raise DataError(f"{source} is empty: expected a header row, then one row per text")
        self.header = self._records.header
        self.columns = [cell.strip() for cell in self.header]
        self._text_index, _ = column_indices(source, self.columns, text_col, None)

    @property
    def bom(self) -> bool:
        return self._lines.bom

    @property
    def newline(self) -> str:
        return self._lines.newline

    def done(self) -> int:
        return self._lines.bytes

    def chunks(self) -> Iterator[Chunk]:
        rows: list[list[str]] = []
        texts: list[str | None] = []
        positions: list[int] = []
        for start, record in self._records.rows():
            rows.append(record)
            texts.append(record[self._text_index])
            positions.append(start)
            if len(rows) == self._chunk_rows:
                yield Chunk(rows, texts, positions)
                rows, texts, positions = [], [], []
        self._records.check_closed()
        if rows:
            yield Chunk(rows, texts, positions)


class LinesChunks(DelimitedChunks):
    """One text per line, no header: read as a CSV file of one column named ``text_col`` would be, and written back as
    one (a line cannot hold predict's added columns). An empty line is an empty text, as an empty CSV cell is."""

    def __init__(self, stream: IO[bytes], source: str, text_col: str, chunk_rows: int, total: int | None) -> None:
        self.source = source
        self.delimiter = ","
        self.literal = False
        self.total = total
        self.notes: list[str] = []
        self._chunk_rows = chunk_rows
        self._lines = Lines(stream, source)
        self.header = [text_col]
        self.columns = [text_col]

    def chunks(self) -> Iterator[Chunk]:
        rows: list[list[str]] = []
        texts: list[str | None] = []
        positions: list[int] = []
        for line in self._lines:
            text = line.removesuffix("\n").removesuffix("\r")
            rows.append([text])
            texts.append(text)
            positions.append(self._lines.number)
            if len(rows) == self._chunk_rows:
                yield Chunk(rows, texts, positions)
                rows, texts, positions = [], [], []
        if rows:
            yield Chunk(rows, texts, positions)


def read_all_texts(reader: ChunkReader) -> list[str]:
    """Every text of a chunk reader, in order; a row without one is an error naming its line (or row)."""
    texts: list[str] = []
    for chunk in reader.chunks():
        for text, position in zip(chunk.texts, chunk.positions, strict=True):
            if text is None:
                raise DataError(f"{reader.source} {reader.unit} {position} has no text; expected a text on every row")
            texts.append(text)
    if not texts:
        raise DataError(f"{reader.source} holds no texts; expected at least one")
    return texts


class JsonlChunks:
    unit = "line"

    def __init__(self, stream: IO[bytes], source: str, text_col: str, chunk_rows: int, total: int | None) -> None:
        self.source = source
        self.total = total
        self.notes: list[str] = []
        self._stream = stream
        self._text_col = text_col
        self._chunk_rows = chunk_rows
        self._added: frozenset[str] = frozenset()
        self._start()
        # The columns are the keys of the first chunk's objects (JSON Lines has no header); the text column must be
        # among them, so a wrong --text-col fails at once rather than after the model loads.
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
                    self._start()
                    break
        self.columns = list(columns)
        if self._first is not None:
            column_indices(source, self.columns, text_col, None)

    def _start(self) -> None:
        self._lines = Lines(self._stream, self.source)
        self._objects = self._parse()
        self._first = self._next_chunk()

    def done(self) -> int:
        return self._lines.bytes

    def forbid(self, added: Sequence[str]) -> None:
        """Refuse later objects that hold a column predict adds (the first chunk's keys were checked already)."""
        self._added = frozenset(added)

    def _parse(self) -> Iterator[tuple[int, dict[str, Any]]]:
        example = example_object(self._text_col, None)
        objects = jsonl_objects(self._lines, self.source, example=example, array_hint="write one object per line")
        for number, obj in objects:
            if repeated_keys(obj, [self._text_col]):
                raise repeated_key_error(self.source, "line", number, self._text_col)
            yield number, obj

    def _next_chunk(self) -> Chunk | None:
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
        return Chunk(rows, texts, positions) if rows else None

    def chunks(self) -> Iterator[Chunk]:
        chunk, self._first = self._first, None
        while chunk is not None:
            yield chunk
            chunk = self._next_chunk()


class ParquetChunks:
    unit = "row"

    def __init__(self, path: Path, source: str, text_col: str, chunk_rows: int) -> None:
        self.source = source
        self.notes: list[str] = []
        self._chunk_rows = chunk_rows
        self._done = 0
        self.file = open_parquet(path, source, empty="expected a Parquet file")
        self.schema = self.file.schema_arrow
        # An index pandas stored is kept in the output, but it is not a column the user would name.
        self.columns = list(self.schema.names)
        column_indices(source, named_columns(self.columns), text_col, None)
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

    def chunks(self) -> Iterator[Chunk]:
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
            yield Chunk(batch, texts, positions)
