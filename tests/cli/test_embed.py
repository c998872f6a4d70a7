"""``bertwise embed``: files or stdin in, .npy or .parquet out, rows aligned with the input, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bertwise
from tests.cli.test_cli import bertwise as run_bertwise


def test_csv_to_npy_keeps_every_row_aligned(toy_csv: Path, tiny_bert: str, tmp_path: Path) -> None:
    lines = toy_csv.read_text().splitlines()
    lines.insert(3, ",sports")  # an empty text stays a row
    toy_csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "vectors" / "toy.npy"
    result = run_bertwise("embed", str(toy_csv), "--out", str(out), "--model", tiny_bert, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "1 of 19 rows" in result.stderr and "empty" in result.stderr
    assert "embedded 19 texts into 32 dimensions" in result.stderr
    vectors = np.load(out)
    assert vectors.shape == (19, 32) and vectors.dtype == np.float32
    texts = [line.rsplit(",", 1)[0] for line in lines[1:]]
    # Not bit-equal: the texts may have been batched differently here (padding moves float sums by ~1e-5).
    np.testing.assert_allclose(vectors, bertwise.embed(texts, tiny_bert, device="cpu"), atol=2e-4)
    assert [p.name for p in out.parent.iterdir()] == ["toy.npy"]  # no temporary file left behind


def test_stdin_to_parquet_then_again_from_the_cache(tiny_bert: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["bake the bread", "", "heavy rain is expected tomorrow", "bake the bread"]
    stdin = "".join(f"{t}\r\n" for t in texts)
    out = tmp_path / "v.parquet"
    args = ["embed", "-", "--format", "lines", "--out", str(out), "--model", tiny_bert, "--device", "cpu"]
    args.append("--no-progress")
    first = run_bertwise(*args, stdin=stdin)
    assert first.returncode == 0, first.stderr
    table = pq.read_table(out)
    assert table.column_names == ["text", "embedding"]
    assert table.column("text").to_pylist() == texts
    kind = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.list_size == 32 and kind.value_type == pa.float32()
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(vectors[0], vectors[3])
    second = run_bertwise(*args, stdin=stdin)
    assert second.returncode == 0, second.stderr
    assert "cache: 3 read, 0 computed" in second.stderr


@pytest.mark.parametrize(
    ("input_name", "out_name", "extra", "message"),
    [
        ("{toy}", "vectors.csv", [], "unknown format '.csv'; expected a file ending in .npy"),
        ("{toy}", "vectors.npy", ["--text-col", "sentence"], "no text column 'sentence'"),
        ("missing.jsonl", "vectors.npy", [], "data file not found: 'missing.jsonl'"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    input_name: str, out_name: str, extra: list[str], message: str, toy_csv: Path, tiny_bert: str, tmp_path: Path
) -> None:
    source = input_name.replace("{toy}", str(toy_csv))
    result = run_bertwise("embed", source, "--out", str(tmp_path / out_name), "--model", tiny_bert, *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("bertwise: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert not (tmp_path / out_name).exists()


def test_jsonl_without_labels_is_read(tiny_bert: str, tmp_path: Path) -> None:
    data = tmp_path / "t.jsonl"
    data.write_text("\n".join(json.dumps({"body": t}) for t in ["bake the bread", "the team won"]) + "\n")
    out = tmp_path / "t.npy"
    result = run_bertwise("embed", str(data), "--text-col", "body", "--out", str(out), "--model", tiny_bert)
    assert result.returncode == 0, result.stderr
    assert np.load(out).shape == (2, 32)


def test_text_files_need_no_label_and_keep_missing_texts(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bertwise.data.io import read_text_file

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"body": ["one", None, "three"]}), path)
    texts, notes = read_text_file(path, text_col="body")
    assert texts == ["one", "", "three"]
    assert len(notes) == 1 and "row 2" in notes[0]


@pytest.mark.parametrize(
    ("extra", "stdin"),
    [
        ([], "text,n\nbake the bread,1\nthe team won,2\n"),  # "-" is CSV with a header, as for predict
        (["--format", "tsv"], "n\ttext\n1\tbake the bread\n2\tthe team won\n"),
        (["--format", "jsonl"], '{"text": "bake the bread"}\n{"text": "the team won"}\n'),
        (["--format", "lines"], "bake the bread\nthe team won\n"),
    ],
)
def test_stdin_is_read_as_predict_reads_it(extra: list[str], stdin: str, tiny_bert: str, tmp_path: Path) -> None:
    out = tmp_path / "v.parquet"
    args = ["embed", "-", *extra, "--out", str(out), "--model", tiny_bert, "--device", "cpu", "--no-progress"]
    result = run_bertwise(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(out).column("text").to_pylist() == ["bake the bread", "the team won"]


def test_plain_lines_on_stdin_without_format_lines_are_refused_with_the_hint(tiny_bert: str, tmp_path: Path) -> None:
    out = tmp_path / "v.npy"
    result = run_bertwise("embed", "-", "--out", str(out), "--model", tiny_bert, stdin="bake the bread\nthe team\n")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "bertwise: error: stdin: no text column 'text' (--text-col); found columns: bake the bread; stdin is read as "
        "CSV with a header row: for one text per line pass --format lines"
    )
    assert not out.exists()
