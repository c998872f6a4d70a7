"""``bertwise predict``: through the real entry point, with a keyword model standing in for ``bertwise.load``.

The entry point runs in this process (``bertwise.inference.loading.load`` patched to return the keyword model), so
these tests check the options, stdin/stdout, the summary and the one-line errors without a model folder; one
subprocess test checks the installed command's errors, and the integration test in tests/inference runs a real folder.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from bertwise.inference import loading
from tests.cli.test_cli import bertwise as run_bertwise
from tests.inference.test_predict_file import KEYWORDS, KeywordModel


@pytest.fixture()
def loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Patch the model-folder loader to return the keyword model; the folders it was asked for are recorded."""
    asked: list[str] = []

    def load(
        folder: str, *, device: str = "auto", precision: str | None = None, runtime: str = "torch"
    ) -> KeywordModel:
        asked.append(f"{folder} {device} {precision}" + ("" if runtime == "torch" else f" {runtime}"))
        return KeywordModel()

    monkeypatch.setattr(loading, "load", load)
    (tmp_path / "model").mkdir()
    return asked


def main(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: bytes = b"") -> tuple[int, bytes]:
    """Run ``bertwise ARGS`` in this process; return the exit code and what went to stdout."""
    from bertwise.cli.main import main as cli

    out = io.BytesIO()
    monkeypatch.setattr(sys, "argv", ["bertwise", *args])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding="utf-8"))
    with pytest.raises(SystemExit) as exited:
        cli()
    sys.stdout.flush()
    return int(exited.value.code or 0), out.getvalue()


def test_file_to_file_prints_a_summary(
    loaded: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,bake the bread\n2,\n3,heavy rain\n", encoding="utf-8")
    out = tmp_path / "results" / "out.csv"
    code, stdout = main(monkeypatch, "predict", str(tmp_path / "model"), str(source), "--out", str(out))
    err = capsys.readouterr().err
    assert code == 0, err
    assert stdout == b"" and loaded == [f"{tmp_path / 'model'} auto None"]
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["predicted_label"]) for r in rows] == [("1", "cooking"), ("2", ""), ("3", "weather")]
    lines = err.splitlines()
    assert lines[0].startswith("note: 1 of 3 rows in") and "(line 3); written without a prediction" in lines[0]
    assert lines[1].startswith("predicted 3 rows, 1 without text in ") and lines[1].endswith(f"-> {out}")
    assert "rows/s; model loaded in" in lines[1]


def test_stdin_to_stdout_csv_and_jsonl(
    loaded: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = str(tmp_path / "model")
    code, stdout = main(monkeypatch, "predict", model, "-", "--decimals", "3", stdin=b"text\nthe team won\nsnow\n")
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(stdout.decode())))
    assert [r["predicted_label"] for r in rows] == ["sports", "weather"]
    assert rows[0]["proba_sports"] == "0.714"
    assert capsys.readouterr().err.strip().endswith("-> stdout")

    code, stdout = main(monkeypatch, "predict", model, "-", "--format", "jsonl", stdin=b'{"text": "a goal", "n": 1}\n')
    assert code == 0, capsys.readouterr().err
    written = json.loads(stdout)
    assert written["n"] == 1 and written["predicted_label"] == "sports"
    assert sum(written[f"proba_{label}"] for label in KEYWORDS) == pytest.approx(1.0)


def test_one_text_per_line_is_read_with_format_lines_and_written_as_csv(
    loaded: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = str(tmp_path / "model")
    stdin = b"the team won\r\nsnow, then rain\r\n\r\nbake\r\n"  # a comma is part of the text, not a separator
    code, stdout = main(monkeypatch, "predict", model, "-", "--format", "lines", stdin=stdin)
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(stdout.decode())))
    assert [(r["text"], r["predicted_label"]) for r in rows] == [
        ("the team won", "sports"),
        ("snow, then rain", "weather"),
        ("", ""),  # an empty line is an empty text, as an empty CSV cell: no prediction
        ("bake", "cooking"),
    ]
    source = tmp_path / "texts.txt"
    source.write_bytes(stdin)
    out = tmp_path / "out.txt"
    code, _ = main(monkeypatch, "predict", model, str(source), "--format", "lines", "--out", str(out))
    assert code == 0
    assert list(csv.DictReader(io.StringIO(out.read_text()))) == rows


def test_plain_lines_on_stdin_get_the_format_lines_hint(
    loaded: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, stdout = main(monkeypatch, "predict", str(tmp_path / "model"), "-", stdin=b"the team won\nsnow\n")
    assert code == 2 and stdout == b""
    assert capsys.readouterr().err.strip().endswith("for one text per line pass --format lines")


def test_options_reach_the_api(
    loaded: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.data"
    source.write_text("id\tbody\n1\tbake\n2\tthe team\n3\tsnow\n", encoding="utf-8")
    out = tmp_path / "out.data"
    args = ["predict", str(tmp_path / "model"), str(source), "--out", str(out), "--format", "tsv"]
    code, _ = main(monkeypatch, *args, "--text-col", "body", "--chunk-rows", "2", "--no-progress", "--device", "cpu")
    assert code == 0, capsys.readouterr().err
    assert loaded == [f"{tmp_path / 'model'} cpu None"]
    assert [line.split("\t")[2] for line in out.read_text().splitlines()] == [
        "predicted_label",
        "cooking",
        "sports",
        "weather",
    ]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["{model}", "missing.csv"], b"", "input file not found: 'missing.csv'"),
        (["{model}", "{dir}/in.xlsx"], b"", "unknown format '.xlsx'; expected one of .csv, .tsv, .jsonl, .parquet"),
        (["{model}", "{dir}/in.csv", "--text-col", "txt"], b"", "no text column 'txt' (--text-col)"),
        (["{model}", "{dir}/in.csv", "--out", "{dir}/in.csv"], b"", "is the input file"),
        (["{model}", "{dir}/in.parquet"], b"", "Parquet output cannot go to stdout"),
        (["{model}", "-"], b"text,predicted_label\nx,y\n", "stdin already has column(s) 'predicted_label'"),
        (["{model}", "-"], b"text\nok\nbad,row\n", "stdin line 3: expected 1 fields as in the header, found 2"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str],
    stdin: bytes,
    message: str,
    loaded: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import pandas as pd

    (tmp_path / "in.xlsx").write_bytes(b"x")
    (tmp_path / "in.csv").write_text("text\nx\n")
    pd.DataFrame({"text": ["x"]}).to_parquet(tmp_path / "in.parquet")
    filled = [a.replace("{model}", str(tmp_path / "model")).replace("{dir}", str(tmp_path)) for a in args]
    code, _ = main(monkeypatch, "predict", *filled, stdin=stdin)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("bertwise: error:")]
    assert len(errors) == 1 and message in errors[0], err


def test_the_installed_command_reports_a_bad_model_folder(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\nbake the bread\n")
    result = run_bertwise("predict", str(tmp_path / "no-such-model"), str(source))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("bertwise: error:")]
    assert len(errors) == 1 and "no-such-model" in errors[0], result.stderr
    assert result.stdout == ""


def test_help_lists_the_options() -> None:
    result = run_bertwise("predict", "--help")
    assert result.returncode == 0
    for option in (
        "--out",
        "--text-col",
        "--format",
        "--chunk-rows",
        "--decimals",
        "--device",
        "--precision",
        "--no-progress",
    ):
        assert option in result.stdout
