"""``predict_file``: every row written in order, input columns unchanged, one prediction per text, bounded chunks.

A keyword model stands in for a saved one, so these tests run in milliseconds and check the file handling alone;
the last test runs a real model folder through ``bertwise.load`` once that loader exists.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bertwise.exceptions import ConfigError, DataError, DataFileNotFoundError, ModelError
from bertwise.inference.predict_file import LABEL_COLUMN, PredictSummary, output_columns, predict_file
from tests.conftest import TOY_TEXTS, toy_data
from tests.data.hostile import time_limit

KEYWORDS = {"cooking": ("bake", "soup", "onion"), "sports": ("team", "goal", "match"), "weather": ("rain", "snow")}


class KeywordModel:
    """Probabilities from keywords; records the size of every call to check that texts arrive in chunks."""

    def __init__(self, classes: list[object] | None = None) -> None:
        self.classes_ = np.array(classes or list(KEYWORDS), dtype=object)
        self.calls: list[int] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        assert all(isinstance(t, str) and t.strip() for t in texts)  # no empty texts reach the model
        self.calls.append(len(texts))
        keywords = list(KEYWORDS.values())
        scores = np.ones((len(texts), len(self.classes_)))
        for row, text in enumerate(texts):
            for column in range(len(self.classes_)):
                scores[row, column] += 4 * sum(word in text for word in keywords[column % len(keywords)])
        return scores / scores.sum(axis=1, keepdims=True)


def expected_label(text: str) -> str:
    return next((label for label, words in KEYWORDS.items() if any(w in text for w in words)), "cooking")


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def check_probabilities(rows: list[dict[str, str]]) -> None:
    for row in rows:
        probabilities = [float(row[f"proba_{label}"]) for label in KEYWORDS]
        assert sum(probabilities) == pytest.approx(1.0)
        assert row[LABEL_COLUMN] == list(KEYWORDS)[int(np.argmax(probabilities))]


@pytest.fixture()
def toy_rows() -> list[list[str]]:
    texts, labels = toy_data()
    # Cells a type-inferring reader would change: leading zeros, "NA", a quoted separator, a newline inside a text.
    return [[f"{i:03d}", text, "NA" if i % 2 else "a, b\nc"] for i, text in enumerate(texts)]


# ----------------------------------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize("chunk_rows", [1, 4, 2048])
def test_csv_keeps_every_row_and_cell_in_order(chunk_rows: int, toy_rows: list[list[str]], tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["id", "text", "note"], toy_rows)
    model = KeywordModel()
    summary = predict_file(model, source, tmp_path / "out.csv", chunk_rows=chunk_rows)
    rows = read_csv(tmp_path / "out.csv")
    assert list(rows[0]) == ["id", "text", "note", "predicted_label", "proba_cooking", "proba_sports", "proba_weather"]
    assert [[r["id"], r["text"], r["note"]] for r in rows] == toy_rows
    assert [r[LABEL_COLUMN] for r in rows] == [expected_label(r[1]) for r in toy_rows]
    check_probabilities(rows)
    assert summary.rows == len(toy_rows) and summary.empty_rows == 0 and summary.notes == ()
    assert summary.destination == str(tmp_path / "out.csv") and summary.format == "csv"
    # The model saw the texts chunk by chunk, never more than chunk_rows at once.
    assert sum(model.calls) == len(toy_rows) and max(model.calls) == min(chunk_rows, len(toy_rows))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]  # no temporary file left


def test_chunk_size_does_not_change_the_output(toy_rows: list[list[str]], tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["id", "text", "note"], toy_rows)
    predict_file(KeywordModel(), source, tmp_path / "one.csv", chunk_rows=1)
    predict_file(KeywordModel(), source, tmp_path / "all.csv")
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "all.csv").read_bytes()


def test_empty_texts_are_written_without_a_prediction(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "in.csv",
        ["text", "id"],
        [["bake the bread", "1"], ["", "2"], ["   ", "3"], ["heavy rain", "4"], ["", "5"]],
    )
    summary = predict_file(KeywordModel(), source, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r[LABEL_COLUMN] for r in rows] == ["cooking", "", "", "weather", ""]
    assert all(r["proba_sports"] == "" for r in rows if not r[LABEL_COLUMN])
    assert summary.rows == 5 and summary.empty_rows == 3
    assert "3 of 5 rows in" in summary.notes[0] and "(lines 3, 4, 6)" in summary.notes[0]
    assert "written without a prediction" in summary.notes[0]


def test_tsv_quoted_and_literal(tmp_path: Path) -> None:
    quoted = write_csv(tmp_path / "q.tsv", ["text", "n"], [["bake\tthe bread", "1"], ["the team", "2"]], "\t")
    predict_file(KeywordModel(), quoted, tmp_path / "q-out.tsv")
    rows = read_csv(tmp_path / "q-out.tsv", "\t")
    assert [r["text"] for r in rows] == ["bake\tthe bread", "the team"]
    assert [r[LABEL_COLUMN] for r in rows] == ["cooking", "sports"]

    # Written by a tool that never quotes: the quotes belong to the texts and must come back unchanged.
    literal = tmp_path / "l.tsv"
    literal.write_text('text\tn\n"Heavy rain" she said, all week\t1\nthe "team" won\t2\n', encoding="utf-8")
    summary = predict_file(KeywordModel(), literal, tmp_path / "l-out.tsv")
    assert "without CSV quoting" in summary.notes[0]
    lines = (tmp_path / "l-out.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["text", "n", *output_columns(list(KEYWORDS))]
    assert lines[1].startswith('"Heavy rain" she said, all week\t1\tweather\t')
    assert lines[2].startswith('the "team" won\t2\tsports\t')


def test_jsonl_keeps_objects_and_key_order(tmp_path: Path) -> None:
    objects: list[dict[str, object]] = [
        {"id": 1, "text": "bake the bread", "meta": {"a": [1, 2.5, None]}, "flag": True},
        {"text": "the team won", "id": 2, "only_here": "é ✓"},
        {"id": 3, "text": None},
        {"id": 4},
        {"id": 5, "text": 12345},  # a number is a text like any other
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in objects) + "\n\n", encoding="utf-8")
    summary = predict_file(KeywordModel(), source, tmp_path / "out.jsonl", chunk_rows=2)
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(written) == 5
    for before, after in zip(objects, written, strict=True):
        assert list(after)[: len(before)] == list(before) and {k: after[k] for k in before} == before
        assert list(after)[len(before) :] == output_columns(list(KEYWORDS))
    assert [o[LABEL_COLUMN] for o in written] == ["cooking", "sports", None, None, "cooking"]
    assert written[2]["proba_sports"] is None
    assert sum(written[0][f"proba_{label}"] for label in KEYWORDS) == pytest.approx(1.0)
    assert summary.empty_rows == 2 and "(lines 3, 4)" in summary.notes[0]


def test_integer_classes_stay_integers(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "the team won"}\n', encoding="utf-8")
    predict_file(KeywordModel([0, 1, 2]), source, tmp_path / "out.jsonl")
    written = json.loads((tmp_path / "out.jsonl").read_text())
    assert written[LABEL_COLUMN] == 1 and list(written)[1:] == ["predicted_label", "proba_0", "proba_1", "proba_2"]


def test_parquet_keeps_types_index_and_nulls(tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    frame = pd.DataFrame(
        {"text": ["bake the bread", None, "heavy rain", "the team won", "snow"], "score": [1.5, 2.0, 3.0, 4.0, 5.0]},
        index=pd.Index([10, 11, 12, 13, 14], name="row_id"),
    )
    frame["when"] = pd.to_datetime(["2024-01-01"] * 5)
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    summary = predict_file(KeywordModel([2, 0, 1]), source, tmp_path / "out.parquet", chunk_rows=2)
    back = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(back[frame.columns], frame)  # values, dtypes and the index
    assert list(back.columns[len(frame.columns) :]) == ["predicted_label", "proba_2", "proba_0", "proba_1"]
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert str(schema.field("predicted_label").type) == "int64"
    assert back["predicted_label"].isna().tolist() == [False, True, False, False, False]
    assert back["proba_0"].isna().tolist() == [False, True, False, False, False]
    present = back.dropna(subset=["predicted_label"])
    np.testing.assert_allclose(present[["proba_2", "proba_0", "proba_1"]].sum(axis=1), 1.0)
    assert summary.rows == 5 and summary.empty_rows == 1 and "(row 2)" in summary.notes[0]


def test_decimals_round_probabilities_but_not_the_choice(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["text"], [["bake the bread"], ["nothing known"]])
    predict_file(KeywordModel(), source, tmp_path / "out.csv", decimals=2)
    rows = read_csv(tmp_path / "out.csv")
    assert [r["proba_cooking"] for r in rows] == ["0.71", "0.33"]


def test_header_only_input_gives_header_only_output(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text,id\n", encoding="utf-8")
    summary = predict_file(KeywordModel(), source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text().splitlines() == ["text,id," + ",".join(output_columns(list(KEYWORDS)))]
    assert summary.rows == 0


def test_bom_and_crlf_are_kept(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes("\ufefftext,id\r\nbake it,1\r\n".encode())
    predict_file(KeywordModel(), source, tmp_path / "out.csv")
    raw = (tmp_path / "out.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbftext,id,predicted_label,") and raw.count(b"\r\n") == 2


def test_format_option_overrides_the_extension(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text('{"text": "the team won"}\n', encoding="utf-8")
    predict_file(KeywordModel(), source, tmp_path / "out.txt", input_format="jsonl")
    assert json.loads((tmp_path / "out.txt").read_text())[LABEL_COLUMN] == "sports"


# ----------------------------------------------------------------------------------------------------
# stdin and stdout


def with_stdio(monkeypatch: pytest.MonkeyPatch, data: bytes) -> io.BytesIO:
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding="utf-8"))
    return out


def test_stdin_csv_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = with_stdio(monkeypatch, b"text,id\nbake the bread,1\nthe team won,2\n")
    summary = predict_file(KeywordModel(), "-")
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert [(r["id"], r[LABEL_COLUMN]) for r in rows] == [("1", "cooking"), ("2", "sports")]
    assert summary.destination == "stdout"
    assert not sys.stdout.closed  # the stream belongs to the process


def test_stdin_jsonl_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = with_stdio(monkeypatch, b'{"text": "heavy rain"}\n{"text": "a goal"}\n')
    predict_file(KeywordModel(), "-", "-", input_format="jsonl")
    written = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert [o[LABEL_COLUMN] for o in written] == ["weather", "sports"]


def test_stdout_keeps_the_rows_before_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    out = with_stdio(monkeypatch, b"text,id\nbake,1\nrain,2\nsnow,3,extra\n")
    with pytest.raises(DataError, match=r"stdin line 4: expected 2 fields as in the header, found 3"):
        predict_file(KeywordModel(), "-", chunk_rows=2)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert [(r["id"], r[LABEL_COLUMN]) for r in rows] == [("1", "cooking"), ("2", "weather")]
    assert not sys.stdout.closed


# ----------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "error", "message"),
    [
        ("missing.csv", None, {}, DataFileNotFoundError, r"input file not found: '.*missing.csv'"),
        ("in.xlsx", b"x", {}, DataError, r"unknown format '.xlsx'; expected one of .csv, .tsv, .jsonl, .parquet"),
        ("in.json", b"[]", {}, DataError, r"a JSON array cannot be read in chunks: write one object per line"),
        ("in.csv", b"Text,id\nx,1\n", {}, DataError, r"no text column 'text' \(--text-col\).*did you mean 'Text'\?"),
        ("in.csv", b"body,id\nx,1\n", {"text_col": "bdy"}, DataError, r"no text column 'bdy'.*did you mean 'body'"),
        ("in.jsonl", b'{"body": "x"}\n', {}, DataError, r"no text column 'text'.*found columns: body"),
        ("in.csv", b"", {}, DataError, r"in.csv is empty: expected a header row"),
        (
            "in.csv",
            b"text\nx\n",
            {"input_format": "xml"},
            ConfigError,
            r"--format must be csv, tsv, jsonl, parquet or lines",
        ),
        ("in.csv", b"text\nx\n", {"out": "o.parquet"}, ConfigError, r"ends in .parquet but the input is CSV"),
        ("in.csv", b"text\nx\n", {"out": "in.csv"}, ConfigError, r"--out '.*in.csv' is the input file"),
        ("in.csv", b"text\nx\n", {"chunk_rows": 0}, ConfigError, r"chunk_rows must be at least 1"),
        ("in.csv", b"text\nx\n", {"decimals": 30}, ConfigError, r"--decimals must be between 0 and 17"),
        ("in.parquet", b"x", {"out": "o.parquet"}, DataError, r"cannot read .*in.parquet as Parquet"),
        (
            "in.csv",
            b"text,predicted_label\nx,a\n",
            {},
            DataError,
            r"already has column\(s\) 'predicted_label', which predict adds.*a file predict already wrote",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(
    name: str, content: bytes | None, kwargs: dict[str, object], error: type[Exception], message: str, tmp_path: Path
) -> None:
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    if isinstance(kwargs.get("out"), str):
        kwargs["out"] = tmp_path / str(kwargs["out"])
    kwargs.setdefault("out", tmp_path / f"out{source.suffix}")
    model = KeywordModel()
    with pytest.raises(error, match=message):
        predict_file(model, source, **kwargs)  # type: ignore[arg-type]
    assert model.calls == []


def test_parquet_cannot_go_to_stdout_nor_come_from_stdin(tmp_path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"text": ["x"]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ConfigError, match=r"Parquet output cannot go to stdout.*pass --out FILE.parquet"):
        predict_file(KeywordModel(), tmp_path / "in.parquet")
    with pytest.raises(ConfigError, match=r"--format parquet cannot be read from stdin"):
        predict_file(KeywordModel(), "-", input_format="parquet")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "in.csv",
            b"text,id\nbake,1\nrain,2\nsnow,3,4\nmore,5\n",
            r"in.csv line 4: expected 2 fields as in the header",
        ),
        ("in.csv", b'text,id\nbake,1\nrain,2\nsnow,"3\n', r"in.csv line 4: a quoted field starting on this line is n"),
        ("in.tsv", b"text\tid\nbake\t1\nrain\t2\nsnow\t3\t4\n", r"in.tsv line 4: expected 2 fields as in the header"),
        ("in.jsonl", b'{"text": "bake"}\n{"text": "rain"}\n{"text": "snow",\n', r"in.jsonl line 3: not valid JSON"),
        ("in.jsonl", b'{"text": "bake"}\n{"text": "rain"}\n["snow"]\n', r"line 3: expected a JSON object .*a list"),
        (
            "in.jsonl",
            b'{"text": "bake"}\n{"text": "rain"}\n{"text": "x", "proba_sports": 1}\n',
            r"in.jsonl line 3: the object already has 'proba_sports', which predict adds",
        ),
        ("in.csv", b"text,id\nbake,1\nrain,2\nsn\xffow,3\n", r"in.csv is not valid UTF-8: byte 0xff at line 4"),
    ],
)
def test_a_bad_row_midway_leaves_no_output_file(name: str, content: bytes, message: str, tmp_path: Path) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / f"out{source.suffix}"
    out.write_text("a previous result\n")
    model = KeywordModel()
    with pytest.raises(DataError, match=message):
        predict_file(model, source, out, chunk_rows=2)
    assert model.calls == [2]  # the first chunk was predicted before the bad row was reached
    assert out.read_text() == "a previous result\n"  # the destination is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, out.name])  # and no temporary file is left


# Hostile inputs (issue 12): the same refusals as the training loader's (tests/data/test_hostile_files.py checks the
# two side by side), and what only a stream reader must take care of.


def test_a_list_text_column_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = pa.array([None, None, ["bake", "bread"], ["rain"]], pa.list_(pa.string()))
    pq.write_table(pa.table({"text": texts, "id": [1, 2, 3, 4]}), tmp_path / "in.parquet", row_group_size=2)
    model = KeywordModel()
    message = (
        r"in.parquet row 3: the text in column 'text' is a list \(\['bake', 'bread'\]\); expected one string per row"
    )
    with pytest.raises(DataError, match=message):
        predict_file(model, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=1)
    assert model.calls == [] and not (tmp_path / "out.parquet").exists()


def test_a_nested_jsonl_text_midway_stops_the_run_naming_its_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "bake"}\n{"text": "rain"}\n{"text": {"a": "entity"}}\n')
    model = KeywordModel()
    with pytest.raises(
        DataError, match=r"in.jsonl line 3: the text in column 'text' is an object \(\{'a': 'entity'\}\)"
    ):
        predict_file(model, source, tmp_path / "out.jsonl", chunk_rows=2)
    assert model.calls == [2] and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_text_key_first_seen_after_the_first_chunk_is_found_as_the_training_loader_finds_it(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1}\n{"id": 2}\n{"id": 3}\n{"id": 4, "text": "bake"}\n')
    model = KeywordModel()
    summary = predict_file(model, source, tmp_path / "out.jsonl", chunk_rows=2)
    assert (summary.rows, summary.empty_rows, model.calls) == (4, 3, [1])
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row[LABEL_COLUMN] for row in written] == [None, None, None, "cooking"]
    source.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "body": "x"}\n')
    with pytest.raises(DataError, match=r"in.jsonl: no text column 'text' \(--text-col\); found columns: id, body"):
        predict_file(model, source, tmp_path / "out.jsonl", chunk_rows=2)
    assert model.calls == [1]  # refused before anything was predicted


def test_a_named_pipe_is_refused_instead_of_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "in.csv")  # no writer: opening it would wait forever
    with pytest.raises(DataError, match=r"it is a named pipe \(FIFO\), not a regular file; .* or - to read a stream"):
        with time_limit(30):  # a regression would wait forever: fail instead
            predict_file(KeywordModel(), tmp_path / "in.csv", tmp_path / "out.csv")


def test_a_second_text_column_or_json_key_is_refused_and_other_repeats_are_kept(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("text,id,text\nbake,1,rain\n")
    with pytest.raises(DataError, match=r"in.csv: 2 columns are named 'text' \(columns 1, 3 of 3\)"):
        predict_file(KeywordModel(), tmp_path / "in.csv", tmp_path / "out.csv")
    (tmp_path / "in.jsonl").write_text('{"text": "bake", "text": "rain"}\n')
    with pytest.raises(DataError, match=r"in.jsonl line 1: the object gives the key 'text' more than once"):
        predict_file(KeywordModel(), tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    (tmp_path / "ids.csv").write_text("id,text,id\n1,bake,2\n")
    predict_file(KeywordModel(), tmp_path / "ids.csv", tmp_path / "ids-out.csv")
    assert read_csv(tmp_path / "ids-out.csv")[0][LABEL_COLUMN] == "cooking"


def test_lines_ended_by_a_lone_cr_are_rows_and_keep_their_ending(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'text,id\r"bake\rbread",1\rrain,2\r')
    model = KeywordModel()
    assert predict_file(model, source, tmp_path / "out.csv").rows == 2
    written = (tmp_path / "out.csv").read_bytes()
    assert written.startswith(
        b'text,id,predicted_label,proba_cooking,proba_sports,proba_weather\r"bake\rbread",1,cooking,'
    )
    assert written.count(b"\n") == 0


def test_utf16_without_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes("text,id\nbake,1\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"in.csv is not UTF-8: it looks like UTF-16 without a byte-order mark"):
        predict_file(KeywordModel(), tmp_path / "in.csv", tmp_path / "out.csv")


def test_a_lone_surrogate_is_refused_in_the_text_and_written_back_escaped_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"text": "bake", "note": "\\ud800"}\n')
    predict_file(KeywordModel(), tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    line = (tmp_path / "out.jsonl").read_text()
    assert line.startswith('{"text": "bake", "note": "\\ud800", "predicted_label": "cooking"')  # as it was read
    (tmp_path / "bad.jsonl").write_text('{"text": "ba\\udc00ke"}\n')
    with pytest.raises(
        DataError, match=r"bad.jsonl line 1: the text in column 'text' holds a lone surrogate \(\\udc00"
    ):
        predict_file(KeywordModel(), tmp_path / "bad.jsonl", tmp_path / "bad-out.jsonl")


def test_an_object_too_deep_to_write_back_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in.jsonl").write_text('{"text": "bake", "extra": [[[1]]]}\n')

    def dumps(obj: object, **kwargs: object) -> str:
        raise RecursionError("maximum recursion depth exceeded")  # what a value read near the limit can give

    monkeypatch.setattr("bertwise.inference.writers.json.dumps", dumps)
    with pytest.raises(DataError, match=r"in.jsonl line 1: the object is nested too deep to write back"):
        predict_file(KeywordModel(), tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_an_interrupted_run_leaves_no_output_file(toy_rows: list[list[str]], tmp_path: Path) -> None:
    class Interrupted(KeywordModel):
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            if self.calls:
                raise KeyboardInterrupt
            return super().predict_proba(texts)

    source = write_csv(tmp_path / "in.csv", ["id", "text", "note"], toy_rows)
    with pytest.raises(KeyboardInterrupt):
        predict_file(Interrupted(), source, tmp_path / "out" / "preds.csv", chunk_rows=4)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_model_that_cannot_predict_is_refused(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["text"], [["x"]])
    with pytest.raises(
        ModelError, match=r"cannot predict: expected a fitted estimator with classes_ and predict_proba"
    ):
        predict_file(object(), source, tmp_path / "out.csv")  # type: ignore[arg-type]

    class Wrong(KeywordModel):
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2))

    with pytest.raises(ModelError, match=r"probabilities of shape \(1, 2\) for 1 texts; expected \(1, 3\)"):
        predict_file(Wrong(), source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_labels_that_clash_as_text_are_refused(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ["text"], [["x"]])
    with pytest.raises(ModelError, match=r"duplicate column names"):
        predict_file(KeywordModel([1, "1", "b"]), source, tmp_path / "out.csv")


def test_summary_line() -> None:
    summary = PredictSummary(20000, 3, 10.0, 2.5, "out.csv", "csv", ("predicted_label",))
    assert summary.line() == (
        "predicted 20,000 rows, 3 without text in 10.0 s (2,000 rows/s; model loaded in 2.5 s) -> out.csv"
    )


def test_progress_bar_goes_to_stderr(
    toy_rows: list[list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_csv(tmp_path / "in.csv", ["id", "text", "note"], toy_rows)
    predict_file(KeywordModel(), source, tmp_path / "out.csv", chunk_rows=4, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "predict: 100%" in captured.err and "B/" in captured.err  # counted in bytes of the input


# ----------------------------------------------------------------------------------------------------
# With a real model


def test_a_fitted_strategy_predicts_the_same_in_chunks(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    texts, labels = toy_data()
    model = ProbeClassifier(model=tiny_bert, device="cpu", precision="float32").fit(texts, labels)
    source = write_csv(tmp_path / "in.csv", ["text", "label"], [list(pair) for pair in zip(texts, labels, strict=True)])
    summary = predict_file(model, source, tmp_path / "out.csv", chunk_rows=5)
    rows = read_csv(tmp_path / "out.csv")
    assert summary.rows == len(texts) == len(rows)
    assert [r["label"] for r in rows] == labels
    assert [r[LABEL_COLUMN] for r in rows] == model.predict(texts).tolist()
    written = np.array([[float(r[f"proba_{label}"]) for label in model.classes_] for r in rows])
    # Chunks of 5 are batched differently from one call of all texts: equal to float noise, not bit for bit.
    np.testing.assert_allclose(written, model.predict_proba(texts), atol=1e-5)


# ----------------------------------------------------------------------------------------------------
# With a real model folder


def test_a_model_folder_predicts_like_the_loaded_model(tiny_bert: str, toy_csv: Path, tmp_path: Path) -> None:
    try:
        import bertwise.artifact.folder  # noqa: F401
    except ImportError:
        pytest.skip("bertwise.artifact.folder (model folders and bertwise.load) is not written yet")
    import bertwise

    folder = tmp_path / "model"
    trained = subprocess.run(
        [sys.executable, "-m", "bertwise", "train", str(toy_csv), "--strategy", "probe", "--out", str(folder)]
        + ["--model", tiny_bert, "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    texts = [text for examples in TOY_TEXTS.values() for text in examples] * 3
    source = write_csv(tmp_path / "in.csv", ["n", "text"], [[str(i), t] for i, t in enumerate(texts)])
    summary = predict_file(folder, source, tmp_path / "out.csv", chunk_rows=5)
    model = bertwise.load(folder)
    rows = read_csv(tmp_path / "out.csv")
    assert summary.rows == len(texts) == len(rows)
    assert [r[LABEL_COLUMN] for r in rows] == [str(label) for label in model.predict(texts)]
    expected = model.predict_proba(texts)
    written = np.array([[float(r[f"proba_{label}"]) for label in model.classes_] for r in rows])
    # Chunks of 5 are batched differently from one call of all texts: equal to float noise, not bit for bit.
    np.testing.assert_allclose(written, expected, atol=1e-5)

    # The command writes the same bytes to stdout, and its summary to stderr.
    command = subprocess.run(
        [sys.executable, "-m", "bertwise", "predict", str(folder), str(source), "--chunk-rows", "5"],
        capture_output=True,
        timeout=600,
    )
    assert command.returncode == 0, command.stderr.decode()
    assert command.stdout == (tmp_path / "out.csv").read_bytes()
    assert command.stderr.decode().startswith(f"predicted {len(texts)} rows in ")
