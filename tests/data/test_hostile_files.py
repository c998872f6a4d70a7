"""Hostile files: whatever a data file holds, every reader ends in a loaded dataset or one clear bertwise error.

The property test draws cases from :mod:`tests.data.hostile` (random bytes, any encoding and line ending, quotes,
separators and NULs inside fields, unclosed quotes, very long fields, duplicated headers, NaN/float/empty labels,
one-example classes, hundreds of classes, nested, deep and duplicated JSON, Parquet columns of the wrong type, pipes
and devices) and reads each as ``compare``, ``train``, ``predict`` and ``embed`` do. CI tries ``CI_CASES`` of them
(derandomized: the same cases every run) and prints how many it tried and how they ended;
``benchmarks/fuzz_loaders.py`` runs the same strategies for 10,000 and more.

The table below pins what each defect the hostile-user probe found (issue 12) now gives, in the training loader and
in ``predict``'s streaming reader alike.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bertwise.data.io import read_labeled_file
from bertwise.exceptions import BertwiseError, DataError
from bertwise.inference.predict_file import predict_file
from tests.data.hostile import CLEAR, LOADED, OTHER, Case, FileSpec, KeywordModel, Tally, cases, describe_counts
from tests.data.hostile import run_case as run_hostile_case

# About 20 ms a case on 2 cores (four readers each): the whole file takes about 30 s.
CI_CASES = 1000
TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def print_the_tally(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: how many cases were tried and how each reader ended, on the terminal (not captured)."""
    yield
    if not TALLY.cases:
        return
    lines = describe_counts(TALLY)
    lines[0] = f"hostile files: {lines[0]}; longest clear message {TALLY.longest_message[0]:,} characters"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        if reporter is not None:
            reporter.write("\n")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line)


@settings(
    max_examples=CI_CASES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(case=cases())
def test_every_hostile_file_loads_or_ends_in_one_clear_error(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        outcomes = run_hostile_case(case, Path(folder))
    TALLY.add(case, outcomes)
    failures = {reader: outcome.detail for reader, outcome in outcomes.items() if outcome.kind == OTHER}
    assert not failures, f"{case.describe()}: {failures}"


def test_the_property_test_reaches_both_outcomes() -> None:
    """A strategy that only ever made broken files (or only sound ones) would test half the property."""
    tally = Tally()
    run = settings(
        max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )

    @run
    @given(case=cases())
    def sample(case: Case) -> None:
        with tempfile.TemporaryDirectory() as folder:
            tally.add(case, run_hostile_case(case, Path(folder)))

    sample()
    assert tally.cases >= 40
    assert tally.counts["compare"][LOADED] > 0 and tally.counts["compare"][CLEAR] > 0
    assert tally.counts["predict"][LOADED] > 0 and tally.counts["predict"][CLEAR] > 0
    assert tally.total(OTHER) == 0, tally.failures


# ----------------------------------------------------------------------------------------------------
# Each defect the probe found, in the training loader and in predict's reader


def parquet(columns: dict[str, object]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


ROWS = "text,label\nmy card has not arrived,card\nrefund please,refund\n"
DEFECTS = [
    # (name, file, the training loader's message, predict's message; None: it loads)
    (
        "list text column",
        ("x.parquet", parquet({"text": [["What state"], ["b"]], "label": ["a", "b"]})),
        "x.parquet row 1: the text in column 'text' is a list (['What state']); expected one string per row",
        "x.parquet row 1: the text in column 'text' is a list (['What state'])",
    ),
    (
        "struct label",
        ("x.parquet", parquet({"text": ["a", "b"], "label": [{"a": "entity"}, {"a": "b"}]})),
        "x.parquet row 1: the label in column 'label' is an object ({'a': 'entity'}); expected one string or number",
        None,  # predict reads no label
    ),
    (
        "JSON object label",
        ("x.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "label": {"a": "entity"}}\n'),
        "x.jsonl line 2: the label in column 'label' is an object ({'a': 'entity'})",
        None,
    ),
    (
        "JSON list text",
        ("x.jsonl", b'{"text": "a", "label": "x"}\n{"text": ["a", "list"], "label": "y"}\n'),
        "x.jsonl line 2: the text in column 'text' is a list (['a', 'list'])",
        "x.jsonl line 2: the text in column 'text' is a list (['a', 'list'])",
    ),
    (
        "JSON nested 100,000 deep",
        ("x.jsonl", b'{"text": "a", "label": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),
        "x.jsonl line 1: not valid JSON (arrays or objects nested too deep to read, 100001 levels, at column 100023)",
        "x.jsonl line 1: not valid JSON (arrays or objects nested too deep to read, 100001 levels, at column 100023)",
    ),
    (
        "NaN label",
        ("x.csv", ROWS.encode() + b"bake bread,NaN\n"),
        "x.csv: 1 row has no label in column 'label' (line 4); expected every row to be labeled; a label spelled "
        "NaN counts as none, as pandas reads it",
        None,
    ),
    (
        "second text column",
        ("x.csv", b"text,label,text\na,x,b\nc,y,d\n"),
        "x.csv: 2 columns are named 'text' (columns 1, 3 of 3); expected one text column (rename or drop the others)",
        "x.csv: 2 columns are named 'text' (columns 1, 3 of 3); expected one text column (rename or drop the others)",
    ),
    (
        "second label column",
        ("x.tsv", b"text\tlabel\tlabel\na\tx\ty\n"),
        "x.tsv: 2 columns are named 'label' (columns 2, 3 of 3); expected one label column",
        None,  # predict reads no label: its output keeps both columns as they were
    ),
    (
        "repeated JSON key",
        ("x.jsonl", b'{"text": "a", "label": "x", "text": "b"}\n'),
        "x.jsonl line 1: the object gives the key 'text' more than once; expected each key once",
        "x.jsonl line 1: the object gives the key 'text' more than once; expected each key once",
    ),
    (
        "UTF-16 without a byte-order mark",
        ("x.csv", ROWS.encode("utf-16-le")),
        "x.csv is not UTF-8: it looks like UTF-16 without a byte-order mark; save the file as UTF-8",
        "x.csv is not UTF-8: it looks like UTF-16 without a byte-order mark; save the file as UTF-8",
    ),
    (
        "lone surrogate",
        ("x.jsonl", b'{"text": "ok", "label": "x"}\n{"text": "a\\ud800", "label": "y"}\n'),
        "x.jsonl line 2: the text in column 'text' holds a lone surrogate (\\ud800, at character 2)",
        "x.jsonl line 2: the text in column 'text' holds a lone surrogate (\\ud800, at character 2)",
    ),
    (
        "integer past int()'s digit limit",
        ("x.jsonl", b'{"text": "a", "label": ' + b"7" * 5000 + b"}\n"),
        "x.jsonl line 1: not valid JSON (a number of more than 4300 digits, too long to read, at column 24)",
        "x.jsonl line 1: not valid JSON (a number of more than 4300 digits, too long to read, at column 24)",
    ),
]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # relative paths: the messages read as a user sees them
    return tmp_path


def predict_error(name: str) -> str | None:
    model = KeywordModel()
    try:
        predict_file(model, name, f"out{Path(name).suffix}")
    except BertwiseError as error:
        assert model.seen == []  # refused before anything was predicted
        return str(error)
    return None


@pytest.mark.parametrize(("defect", "file", "loader", "predict"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_each_defect_is_refused_with_its_column_and_row(
    here: Path, defect: str, file: tuple[str, bytes], loader: str, predict: str | None
) -> None:
    name, content = file
    Path(name).write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_labeled_file(name)
    assert str(caught.value).startswith(loader)
    assert str(caught.value).isprintable()
    got = predict_error(name)
    if predict is None:
        assert got is None and (here / f"out{Path(name).suffix}").is_file()
    else:
        assert got is not None and got.startswith(predict)


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_pipe_or_a_device_is_refused_and_never_waited_on(here: Path, kind: str, suffix: str) -> None:
    path = Path(f"x{suffix}")
    if kind == "fifo":
        os.mkfifo(path)  # no writer: opening it would wait forever
    else:
        os.symlink("/dev/null", path)  # a device (not /dev/zero, which a regression would read until out of memory)
    # run_case's time limit turns a hang into a failure instead of a stuck test run.
    outcomes = run_hostile_case(Case(FileSpec(suffix, special=kind)), here)
    assert {outcome.kind for outcome in outcomes.values()} == {CLEAR}, outcomes
    what = "a named pipe (FIFO)" if kind == "fifo" else "a device"
    assert f"it is {what}, not a regular file" in outcomes["compare"].detail
    assert f"it is {what}, not a regular file; expected a .csv" in outcomes["predict"].detail
    assert "or - to read a stream on stdin" in outcomes["predict"].detail


@pytest.mark.parametrize("last", ["ended", "unended"])
@pytest.mark.parametrize("ending", ["\r", "\r\n"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_old_mac_and_windows_line_ends_read_alike_everywhere(here: Path, ending: str, suffix: str, last: str) -> None:
    if suffix == ".csv":
        lines = ["text,label", '"card, not arrived",card', '"two\rlines",refund', "refund please,refund"]
    else:
        lines = ['{"text": "card, not arrived", "label": "card"}', '{"text": "two\\rlines", "label": "refund"}']
        lines.append('{"text": "refund please", "label": "refund"}')
    Path(f"x{suffix}").write_bytes(ending.join(lines).encode() + (ending.encode() if last == "ended" else b""))
    data, _ = read_labeled_file(f"x{suffix}")
    assert data.texts == ("card, not arrived", "two\rlines", "refund please")
    model = KeywordModel()
    summary = predict_file(model, f"x{suffix}", f"out{suffix}")
    assert model.seen == list(data.texts) and summary.rows == 3
