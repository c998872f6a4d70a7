"""Hostile data files for the loaders: hypothesis strategies and the runner that feeds each case to every reader.

Shared by ``tests/data/test_hostile_files.py`` (a small number of cases in CI) and ``benchmarks/fuzz_loaders.py``
(10,000 and more). A case is a training file and perhaps a test file, built as a user's tools could build them or
break them: CSV/TSV in any encoding and line ending, quotes and separators inside fields, unclosed quotes, NUL bytes,
very long fields, duplicated headers, NaN/float/empty labels, one-example classes, hundreds of classes, JSON Lines
and JSON with nested, deep, duplicated or out-of-range values, Parquet with columns of the wrong type, random bytes,
and paths that are not regular files (a named pipe, a device, a folder).

:func:`run_case` reads the case as ``compare`` and ``train`` read their data, as ``predict`` reads its input and as
``embed`` reads texts. Each reader ends in one of three outcomes: it loaded, or it raised one clear bertwise error (a
:class:`BertwiseError` whose message is one printable line), or anything else: an "other failure", which is a bug.
"""

from __future__ import annotations

import ast
import codecs
import csv
import decimal
import hashlib
import io
import json
import os
import random
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st

from bertwise.exceptions import BertwiseError

LOADED, CLEAR, OTHER = "loaded", "clear error", "other failure"
KINDS = (LOADED, CLEAR, OTHER)
READERS = ("compare", "train", "predict", "embed")
# A reader that has not finished after this long is taken to hang (a pipe without a writer would wait forever).
HANG_SECONDS = 30.0

WORDS = ["the", "card", "has", "not", "arrived", "refund", "please", "why", "was", "charged", "twice", "rain", "goal"]
# Characters that break naive writers and readers: separators, quotes, line ends of every kind, NUL, BOMs, escapes.
AWKWARD = list(",\t\";|\\'\n\r\x00\x0b\x0c\x1c\x85\u2028\u2029\ufeff\ufffe") + ["é", "中", "😀", "\u200b", " "]
SPECIAL_LABELS = ["NaN", "nan", "-nan", "NAN", "", "  ", "None", "NA", "null", "1.0", "0.5", "-0", "007", "1e3", "inf"]


@dataclass(frozen=True)
class FileSpec:
    """One file of a case: its suffix and bytes, or a ``special`` path kind that holds no bytes."""

    suffix: str
    content: bytes = b""
    special: str | None = None  # "fifo", "device", "folder", "missing"
    label: str = ""  # how it was built, for reports

    def describe(self) -> str:
        return f"{self.label or self.special or 'file'}{self.suffix} ({len(self.content)} bytes)"


@dataclass(frozen=True)
class Case:
    train: FileSpec
    test: FileSpec | None = None
    text_col: str = "text"
    label_col: str = "label"
    chunk_rows: int = 2048

    def describe(self) -> str:
        test = f", test {self.test.describe()}" if self.test is not None else ""
        return f"train {self.train.describe()}{test}"


@dataclass
class Outcome:
    kind: str  # LOADED, CLEAR or OTHER
    detail: str = ""  # the error's type and message, or what was wrong with what loaded
    message_chars: int = 0  # the length of the error's message


@dataclass
class Tally:
    """Outcomes counted by reader and kind, with the first few other failures kept whole for the report."""

    cases: int = 0
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {r: {LOADED: 0, CLEAR: 0, OTHER: 0} for r in READERS}
    )
    failures: list[str] = field(default_factory=list)
    longest_message: tuple[int, str] = (0, "")  # the longest clear message: its length and its start
    kinds: Counter[str] = field(default_factory=Counter)  # training files by format and defects
    digests: set[str] = field(default_factory=set)  # sha256 of every distinct training file: no case counted twice

    def add(self, case: Case, outcomes: dict[str, Outcome]) -> None:
        self.cases += 1
        self.kinds[f"{case.train.suffix} {case.train.special or case.train.label.rsplit('/', 2)[0]}"] += 1
        self.digests.add(hashlib.sha256(case.train.content + repr(case.train.special).encode()).hexdigest())
        for reader, outcome in outcomes.items():
            self.counts[reader][outcome.kind] += 1
            if outcome.kind == CLEAR and outcome.message_chars > self.longest_message[0]:
                self.longest_message = (outcome.message_chars, f"{reader}: {outcome.detail[:300]}")
            if outcome.kind == OTHER and len(self.failures) < 20:
                self.failures.append(f"{reader}: {outcome.detail} [{case.describe()}] {case!r:.2000}")

    def total(self, kind: str) -> int:
        return sum(counts[kind] for counts in self.counts.values())


# ----------------------------------------------------------------------------------------------------
# What goes wrong
#
# A case draws its format, one thing wrong with its rows and one with its bytes ("none" is drawn most often, so that
# about a third of the files are sound and the loaders' successes are checked too), the number of classes, the line
# ending and a seed for the bulk of the content: hypothesis chooses, a seeded Random fills in hundreds of cells cheaply.

FORMATS = [".csv", ".tsv", ".jsonl", ".json", ".parquet"]
ROW_DEFECTS = ["none"] * 8 + [
    "awkward texts",
    "awkward labels",
    "NaN labels",
    "float labels",
    "empty labels",
    "one-example classes",
    "one class",
    "long text",
    "empty texts",
    "no rows",
]
TEXT_DEFECTS = [
    "unquoted writer",
    "unclosed quote",
    "cut short",
    "stray byte",
    "NUL bytes",
    "duplicated text column",
    "duplicated label column",
    "padded header",
    "other column names",
    "utf-16",
    "utf-16 without BOM",
    "latin-1",
    "random bytes",
]
JSON_DEFECTS = [
    "nested text",
    "nested label",
    "deep nesting",
    "huge number",
    "repeated key",
    "NaN token",
    "not an object",
    "JSON array",
    "lone surrogate",
    "missing key",
    "cut short",
    "utf-16",
    "utf-16 without BOM",
    "random bytes",
]
PARQUET_TYPES = ["int", "float", "bool", "binary", "list", "struct", "map", "null", "timestamp", "decimal"]
PARQUET_TYPES += ["dictionary", "large_string", "string-with-nulls"]
PARQUET_DEFECTS = [f"text {kind}" for kind in PARQUET_TYPES] + [f"label {kind}" for kind in PARQUET_TYPES]
PARQUET_DEFECTS += ["duplicated text column", "duplicated label column", "index column", "corrupt", "random bytes"]
FILE_DEFECTS = {
    ".csv": TEXT_DEFECTS,
    ".tsv": TEXT_DEFECTS,
    ".jsonl": JSON_DEFECTS,
    ".json": [*JSON_DEFECTS, "top-level object"],
    ".parquet": PARQUET_DEFECTS,
}
SPECIAL = ["fifo", "device", "folder", "missing", "empty"]
NAME_STYLES = ["class_{}", "{}", "{}.0", "Ünïcode {} ✓", "Label With, Comma {}"]


def plain_text(rnd: random.Random) -> str:
    return " ".join(rnd.choices(WORDS, k=rnd.randint(1, 8)))


def awkward_text(rnd: random.Random) -> str:
    parts = []
    for _ in range(rnd.randint(0, 15)):
        roll = rnd.random()
        if roll < 0.4:
            parts.append(rnd.choice(WORDS) + " ")
        elif roll < 0.8:
            parts.append(rnd.choice(AWKWARD))
        else:  # any code point UTF-8 can write: no lone surrogates
            code = rnd.randint(0x20, 0x10FFFF)
            parts.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
    return "".join(parts)


def make_rows(rnd: random.Random, defect: str, names: list[str], drawn: str) -> list[list[str]]:
    """Rows of [text, label]: every class twice or more, then the row defect; ``drawn`` is a hypothesis string."""
    per_class = rnd.randint(2, 6) if len(names) < 40 else 2
    rows = [[plain_text(rnd), names[i % len(names)]] for i in range(len(names) * per_class)]
    rnd.shuffle(rows)
    some = rnd.sample(range(len(rows)), k=min(len(rows), rnd.randint(1, 3)))
    if defect == "awkward texts":
        for row in rows:
            row[0] = awkward_text(rnd) if rnd.random() < 0.5 else row[0]
        rows[some[0]][0] = drawn
    elif defect == "awkward labels":
        for i in some:
            rows[i][1] = rnd.choice([drawn, awkward_text(rnd), *SPECIAL_LABELS])
    elif defect in ("NaN labels", "empty labels"):
        for i in some:
            rows[i][1] = rnd.choice(["NaN", "nan", "-nan", "NAN"] if defect == "NaN labels" else ["", "  ", "\t"])
    elif defect == "float labels":
        for row in rows:
            row[1] = f"{names.index(row[1]) + rnd.choice([0.0, 0.5, 0.25])}"
    elif defect == "one-example classes":
        rows += [[plain_text(rnd), f"lonely {i}"] for i in range(rnd.randint(1, 3))]
    elif defect == "one class":
        rows = [[text, names[0]] for text, _ in rows]
    elif defect == "long text":
        rows[some[0]][0] = "long " * rnd.randint(30_000, 60_000)  # past csv's 128 KiB default field limit
    elif defect == "empty texts":
        for i in some:
            rows[i][0] = rnd.choice(["", " ", "\t", "\n"])
    elif defect == "no rows":
        rows = []
    return rows


def encode(text: str, defect: str, bom: bool) -> bytes:
    if defect == "utf-16":
        return text.encode("utf-16")
    if defect == "utf-16 without BOM":
        return text.encode("utf-16-le")
    if defect == "latin-1":
        return text.encode("latin-1", errors="replace")
    return (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8")


def damage(rnd: random.Random, content: bytes, defect: str) -> bytes:
    """Byte-level damage, any format: cut short (an unclosed quote or object), a stray byte, NULs, random bytes."""
    at = rnd.randint(0, len(content)) if content else 0
    if defect == "cut short":
        return content[:at]
    if defect == "stray byte":
        return content[:at] + bytes([rnd.randint(0, 255)]) + content[at:]
    if defect == "NUL bytes":
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randint(0, len(content))
            content = content[:at] + b"\x00" + content[at:]
        return content
    if defect == "unclosed quote":
        return content[:at] + b'"' + content[at:]
    if defect in ("random bytes", "corrupt"):
        if defect == "corrupt" and len(content) > 8:
            return content[:at] + rnd.randbytes(rnd.randint(1, 16)) + content[at + 4 :]
        return rnd.randbytes(rnd.randint(0, 3000))
    return content


def delimited_bytes(rnd: random.Random, rows: list[list[str]], suffix: str, defect: str, ending: str) -> bytes:
    delimiter = "," if suffix == ".csv" else "\t"
    header = {
        "duplicated text column": ["text", "label", "text"],
        "duplicated label column": ["text", "label", "label"],
        "padded header": [" text ", "label "],
        "other column names": ["Text", "Label"],
    }.get(defect, rnd.choice([["text", "label"], ["label", "text"], ["id", "text", "label"]]))
    records = [header]
    for number, (text, label) in enumerate(rows):
        cells = {"text": text, "label": label, "id": str(number)}
        records.append([cells[name.strip().lower()] for name in header])
    buffer = io.StringIO(newline="")
    if defect == "unquoted writer":  # separators, quotes and newlines inside fields break the rows
        buffer.write("".join(delimiter.join(record) + ending for record in records))
    else:
        quoting: Literal[0, 1] = csv.QUOTE_ALL if rnd.random() < 0.3 else csv.QUOTE_MINIMAL
        csv.writer(buffer, delimiter=delimiter, lineterminator=ending, quoting=quoting).writerows(records)
    text = buffer.getvalue()
    if rnd.random() < 0.3:
        text = text.rstrip("\r\n")  # no line end after the last row
    return damage(rnd, encode(text, defect, rnd.random() < 0.2), defect)


def json_value(rnd: random.Random, value: str) -> str:
    """A cell as JSON: integer-looking labels sometimes as numbers, the rest as strings."""
    if value.lstrip("-").isdigit() and len(value) < 18 and rnd.random() < 0.5:
        return value
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)


JSON_BAD = {
    "nested text": ["text", ['["What state is this?"]', '[["a"], {"b": null}]', '{"a": "b"}']],
    "nested label": ["label", ['{"a": "entity"}', '["x", "y"]', "[]", "{}"]],
    "huge number": ["label", ["7" * 4301, "7" * 6000, "1e400", "-1e400"]],
    "NaN token": ["label", ["NaN", "Infinity", "-Infinity", "null"]],
    "lone surrogate": ["text", ['"\\ud800"', '"a\\udfffb"', '"ok \\ud83d"']],
}


def json_lines(rnd: random.Random, rows: list[list[str]], defect: str) -> list[str]:
    """One JSON object text per row, with the JSON defect in one to three of them."""
    objects = [[["text", json_value(rnd, text)], ["label", json_value(rnd, label)]] for text, label in rows]
    some = rnd.sample(range(len(objects)), k=min(len(objects), rnd.randint(1, 3)))
    for i in some:
        pairs = objects[i]
        if defect in JSON_BAD:
            key, values = JSON_BAD[defect]
            pairs[0 if key == "text" else 1][1] = rnd.choice(values)
        elif defect == "deep nesting":
            depth = rnd.choice([900, 5_000, 100_000])
            pairs[rnd.randint(0, 1)][1] = "[" * depth + "]" * depth
        elif defect == "repeated key":
            pairs.append([rnd.choice(["text", "label"]), json.dumps(plain_text(rnd))])
        elif defect == "missing key":
            del pairs[rnd.randint(0, 1)]
    lines = ["{" + ", ".join(f'"{key}": {value}' for key, value in pairs) + "}" for pairs in objects]
    if defect == "not an object" and lines:
        lines[some[0]] = rnd.choice(["[1, 2]", '"text"', "42", "null", "{"])
    return lines


def jsonl_bytes(rnd: random.Random, rows: list[list[str]], defect: str, ending: str) -> bytes:
    lines = json_lines(rnd, rows, defect)
    if defect == "JSON array":
        lines = ["[", *(line + "," for line in lines), "]"]
    text = ending.join(lines) + (ending if rnd.random() < 0.7 else "")
    return damage(rnd, encode(text, defect, rnd.random() < 0.2), defect)


def json_bytes(rnd: random.Random, rows: list[list[str]], defect: str, ending: str) -> bytes:
    lines = json_lines(rnd, rows, defect)
    text = "[" + ending + ("," + ending).join(lines) + ending + "]"
    if defect == "top-level object":
        text = lines[0] if lines else "{}"
    elif defect == "deep nesting" and rnd.random() < 0.5:
        depth = rnd.choice([1_000, 100_000])
        text = "[" * depth + text + "]" * depth
    return damage(rnd, encode(text, defect, rnd.random() < 0.2), defect)


def arrow_column(kind: str, values: list[str], pa: Any) -> Any:
    """A pyarrow array of ``len(values)`` rows of type ``kind``, built from the rows' values."""
    n = len(values)
    built: dict[str, Callable[[], Any]] = {
        "string": lambda: pa.array(values, pa.string()),
        "large_string": lambda: pa.array(values, pa.large_string()),
        "string-with-nulls": lambda: pa.array([None if i % 3 == 0 else v for i, v in enumerate(values)], pa.string()),
        "dictionary": lambda: pa.array(values, pa.string()).dictionary_encode(),
        "int": lambda: pa.array([i % 7 for i in range(n)], pa.int64()),
        "float": lambda: pa.array([float("nan") if i % 5 == 4 else i % 3 + 0.5 * (i % 2) for i in range(n)]),
        "bool": lambda: pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
        # Not UTF-8 in the second row: what a text read from bytes must survive.
        "binary": lambda: pa.array(
            [v.encode("utf-8", "replace") + (b"\xff" if i == 1 else b"") for i, v in enumerate(values)]
        ),
        "list": lambda: pa.array([[v] for v in values], pa.list_(pa.string())),
        "struct": lambda: pa.array([{"a": v} for v in values], pa.struct([("a", pa.string())])),
        "map": lambda: pa.array([[("k", v)] for v in values], pa.map_(pa.string(), pa.string())),
        "null": lambda: pa.nulls(n),
        "timestamp": lambda: pa.array(np.arange(n).astype("datetime64[s]")),
        "decimal": lambda: pa.array([decimal.Decimal(i % 4) / 2 for i in range(n)], pa.decimal128(6, 2)),
    }
    return built[kind]()


def parquet_bytes(rnd: random.Random, rows: list[list[str]], defect: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {"text": "string", "label": "string"}
    if defect.startswith(("text ", "label ")):
        column, kind = defect.split(" ", 1)
        kinds[column] = kind
    columns = [arrow_column(kinds[name], [row[i] for row in rows], pa) for i, name in enumerate(["text", "label"])]
    names = ["text", "label"]
    if defect in ("duplicated text column", "duplicated label column"):
        columns.append(columns[0] if "text" in defect else columns[1])
        names.append("text" if "text" in defect else "label")
    elif defect == "index column":  # what pandas writes for a DataFrame with a non-default index
        columns.append(pa.array(range(len(rows)), pa.int64()))
        names.append("__index_level_0__")
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(columns, names=names), buffer, row_group_size=rnd.choice([7, 1000]))
    return damage(rnd, buffer.getvalue(), defect)


@st.composite
def data_files(draw: st.DrawFn, names: list[str], defects: bool = True) -> FileSpec:
    """One data file of the classes ``names`` (a test file shares the training file's)."""
    fmt = draw(st.sampled_from([*FORMATS, *FORMATS, "special"]))
    if fmt == "special":
        return FileSpec(draw(st.sampled_from(FORMATS)), special=draw(st.sampled_from(SPECIAL)))
    row_defect = draw(st.sampled_from(ROW_DEFECTS)) if defects else "none"
    file_defect = draw(st.sampled_from(["none"] * len(FILE_DEFECTS[fmt]) + FILE_DEFECTS[fmt])) if defects else "none"
    rnd = draw(st.randoms(use_true_random=True))
    rows = make_rows(rnd, row_defect, names, draw(st.text(max_size=20)))
    ending = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    if fmt in (".csv", ".tsv"):
        content = delimited_bytes(rnd, rows, fmt, file_defect, ending)
    elif fmt == ".jsonl":
        content = jsonl_bytes(rnd, rows, file_defect, ending)
    elif fmt == ".json":
        content = json_bytes(rnd, rows, file_defect, ending)
    else:
        content = parquet_bytes(rnd, rows, file_defect)
    return FileSpec(fmt, content, label=f"{row_defect}/{file_defect}/{len(names)} classes/{ending!r}")


@st.composite
def cases(draw: st.DrawFn) -> Case:
    style = draw(st.sampled_from(NAME_STYLES))
    names = [style.format(i) for i in range(draw(st.sampled_from([2, 2, 3, 5, 40, 300])))]
    train = draw(data_files(names))
    which = draw(st.sampled_from(["none"] * 6 + ["same classes", "same classes", "any", "train itself"]))
    test = None
    if which == "same classes" and train.special is None:
        test = draw(data_files(names, defects=draw(st.booleans())))
        test = FileSpec(train.suffix, test.content, label="test " + test.label) if test.special is None else test
    elif which == "any":
        test = draw(data_files(names))
    elif which == "train itself":
        test = FileSpec(train.suffix, special="train itself")
    pairs = [("text", "label")] * 12 + [("sentence", "intent"), ("text", "text"), ("label", "text")]
    text_col, label_col = draw(st.sampled_from(pairs))
    return Case(train, test, text_col, label_col, chunk_rows=draw(st.sampled_from([2048, 2048, 2048, 3, 1])))


# ----------------------------------------------------------------------------------------------------
# Running a case


class KeywordModel:
    """A stand-in for a saved model: probabilities from word counts; records the texts it was given."""

    classes_ = np.array(["card", "refund", "weather"], dtype=object)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict_proba(self, batch: list[str]) -> np.ndarray:
        assert all(isinstance(text, str) and text.strip() for text in batch), "an empty text reached the model"
        self.seen += batch
        scores = np.array([[1 + text.count(word) for word in ("card", "refund", "rain")] for text in batch], float)
        return np.asarray(scores / scores.sum(axis=1, keepdims=True))


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the reader after ``seconds`` (also out of a blocking open() or read(): PEP 475)."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def place(spec: FileSpec, folder: Path, stem: str, train_path: Path | None = None) -> Path:
    path = folder / f"{stem}{spec.suffix}"
    if spec.special == "fifo":
        os.mkfifo(path)
    elif spec.special == "device":
        # /dev/null, not /dev/zero: the same refusal, and a regression reads an empty file, not all the memory.
        os.symlink("/dev/null", path)
    elif spec.special == "folder":
        path.mkdir()
    elif spec.special == "missing":
        pass
    elif spec.special == "train itself":
        assert train_path is not None
        return train_path
    else:
        path.write_bytes(spec.content)
    return path


def classify(error: BaseException) -> Outcome:
    message = str(error)
    clear = isinstance(error, BertwiseError) and message.strip() != "" and message.isprintable()
    detail = f"{type(error).__module__}.{type(error).__name__}: {message[:3000]!r}"
    return Outcome(CLEAR if clear else OTHER, detail, len(message))


def attempt(check: Callable[[], str | None]) -> Outcome:
    """Run one reader; ``check`` returns None when what it loaded is right, else what is wrong."""
    try:
        with time_limit(HANG_SECONDS):
            problem = check()
    except Exception as error:  # every exception is sorted here: clear bertwise error or bug
        return classify(error)
    return Outcome(LOADED) if problem is None else Outcome(OTHER, f"loaded, but {problem}")


def run_case(case: Case, folder: Path) -> dict[str, Outcome]:
    """Feed the case to every reader; return each reader's outcome."""
    from bertwise.data.io import read_text_file
    from bertwise.data.split import load_split
    from bertwise.inference.predict_file import predict_file
    from bertwise.training import read_training_data

    train = place(case.train, folder, "train")
    test = place(case.test, folder, "test", train) if case.test is not None else None
    text_col, label_col = case.text_col, case.label_col
    outcomes: dict[str, Outcome] = {}

    def compare() -> str | None:
        split = load_split(train, test=test, text_col=text_col, label_col=label_col, cross_validation_below=5000)
        return check_labeled(split.train) or check_labeled(split.test)

    def train_() -> str | None:
        data, test_data, _ = read_training_data(train, test, text_col=text_col, label_col=label_col, seed=0)
        return check_labeled(data) or (check_labeled(test_data) if test_data is not None else None)

    outcomes["compare"] = attempt(compare)
    outcomes["train"] = attempt(train_)
    embedded: list[str] | None = None

    def embed() -> str | None:
        nonlocal embedded
        embedded, _ = read_text_file(train, text_col=case.text_col)
        return check_texts(embedded, allow_empty=True)

    outcomes["embed"] = attempt(embed)
    model = KeywordModel()
    out = folder / f"out{case.train.suffix}"

    rows: list[int] = []

    def predict() -> str | None:
        summary = predict_file(model, train, out, text_col=case.text_col, chunk_rows=case.chunk_rows)
        rows.append(summary.rows)
        if not out.is_file():
            return "no output file was written"
        if any(p.name.endswith(".tmp") for p in folder.iterdir()):
            return "a temporary file was left behind"
        if embedded is not None and [t for t in embedded if t.strip()] != model.seen:
            return "predict saw other texts than embed (read_text_file) read from the same file"
        return check_texts(model.seen, allow_empty=False) or (None if summary.rows >= len(model.seen) else "rows")

    outcomes["predict"] = attempt(predict)
    embed_, predict_ = outcomes["embed"], outcomes["predict"]
    # predict streams what embed reads whole: they must agree on every file both read (predict takes no .json), but
    # for two documented differences: a file without data rows (a header alone) is predicted as such, an output
    # without rows, where the loaders, which need rows, refuse it;
    agree = embed_.kind == predict_.kind or rows == [0]
    # and another: predict reads every Parquet column (it writes them all back), embed only the text column.
    agree = agree or (case.train.suffix == ".parquet" and " as Parquet after row " in predict_.detail)
    if case.train.suffix != ".json" and OTHER not in (embed_.kind, predict_.kind) and not agree:
        outcomes["predict"] = Outcome(
            OTHER, f"predict {predict_.kind} {predict_.detail} but embed {embed_.kind} {embed_.detail}"
        )
    return outcomes


def check_labeled(data: Any) -> str | None:
    problem = check_texts(list(data.texts), allow_empty=False)
    if problem:
        return problem
    for label in data.labels:
        if isinstance(label, bool) or not isinstance(label, int | str):
            return f"a label of type {type(label).__name__}: {label!r:.80}"
        if isinstance(label, str) and (not label.strip() or label.strip().lower().lstrip("+-") == "nan"):
            return f"the label {label!r} is a missing value made a class"
        if isinstance(label, str) and stringified(label):
            return f"the label {label!r:.80} is a stringified nested value"
    if len(set(map(type, data.labels))) > 1:
        return "labels of mixed types"
    return None


def check_texts(values: list[str], *, allow_empty: bool) -> str | None:
    for text in values:
        if not isinstance(text, str):
            return f"a text of type {type(text).__name__}"
        if not allow_empty and not text.strip():
            return "an empty text was kept"
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return "a text holds a lone surrogate"
        if stringified(text):
            return f"the text {text!r:.80} is a stringified nested value"
    return None


def stringified(value: str) -> bool:
    """Whether ``value`` is the Python form of a list, tuple or dict (what str() makes of a nested cell)."""
    if not value.startswith(("['", "[[", "[(", "{'", "[]", "{}")):
        return False
    try:
        return isinstance(ast.literal_eval(value), list | tuple | dict)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False


def describe_counts(tally: Tally) -> list[str]:
    lines = [
        f"{tally.cases:,} cases ({len(tally.digests):,} distinct training files of {len(tally.kinds)} kinds), each "
        f"through {len(READERS)} readers ({', '.join(READERS)})"
    ]
    for reader, counts in tally.counts.items():
        lines.append(f"  {reader:<8} " + ", ".join(f"{kind} {count:,}" for kind, count in counts.items()))
    return lines
