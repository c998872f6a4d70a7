"""Every usage mistake of every command ends in one line on stderr and exit code 2, never a traceback.

Each case runs the real command in its own process (``python -m bertwise``, the entry point the installed
``bertwise`` script calls), as a user would. ``-X importtime`` makes Python list every module it imports on stderr,
so the same run also shows that the mistake was refused before torch loaded: a typo costs a fraction of a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import bertwise

COMMANDS = ["compare", "train", "predict", "serve", "export", "embed", "zero-shot"]
HEAVY = {"torch", "transformers"}
DATA_ROWS = "text,label\nthe match was won,sports\nrain tomorrow,weather\n"

# (arguments, a fragment the error line must contain). The working folder holds data.csv (two rows) and nothing
# else: no case needs a model, each is refused while parsing or by the checks that run before anything loads.
USAGE_ERRORS = [
    (["--bogus"], "No such option: --bogus"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["compare"], "no data given: expected DATA, or data in the --config file's [compare] table"),
    (["compare", "data.csv", "--set", "finetune.learnin_rate=1e-4"], "finetune has no parameter 'learnin_rate'"),
    (["compare", "data.csv", "--set", "probe.cv=two"], '--set probe.cv: expected an integer, found "two"'),
    (["compare", "data.csv", "--set", "probe"], "--set probe: expected strategy.parameter=value"),
    (["compare", "--config", "missing.toml"], "config file 'missing.toml' not found"),
    (["compare", "data.csv", "--seeds", "abc"], "got 'abc'"),
    (["compare", "data.csv", "--seeds=abc"], "got 'abc'"),
    (["compare", "data.csv", "--seeds", "0"], "seeds must be at least 1; got 0"),
    (["compare", "data.csv", "--folds", "2.5"], "--folds"),
    (["compare", "data.csv", "--budget"], "'--budget' requires an argument"),
    (["compare", "data.csv", "--budget", "soon"], "could not read the budget 'soon'"),
    (["compare", "data.csv", "--budget", "-5m"], "budget"),
    (["compare", "data.csv", "--learning-curve=yes"], "does not take a value"),
    (["compare", "data.csv", "more.csv"], "unexpected extra argument"),
    (["compare", "--bogus", "data.csv"], "No such option: --bogus"),
    (["compare", "data.csv", "--priority", "fast"], "priority must be one of accuracy, balanced, cost; got 'fast'"),
    (["compare", "data.csv", "--pooling", "max2"], "pooling must be one of"),
    (["compare", "data.csv", "--precision", "fp8"], "got 'fp8'"),
    (["compare", "data.csv", "--strategies", "probe,magic"], "unknown strategy 'magic'"),
    (["compare", "data.csv", "--zero-shot-mode", "magic"], "got 'magic'"),
    (["compare", "data.csv", "--test-size", "1.5"], "test size must be a fraction between 0 and 1"),
    (["compare", "missing.csv"], "data file not found: 'missing.csv'"),
    (["compare", "data.csv", "--test", "missing.csv"], "data file not found: 'missing.csv'"),
    (["compare", "data.csv", "--label-descriptions", "missing.json"], "label descriptions file not found"),
    (["compare", "data.csv", "--out", "data.csv"], "the output folder 'data.csv' is a file; expected a folder"),
    (["compare", "data.csv", "--device", "tpu"], "device must be one of"),
    (["compare", "data.csv", "--track", "wandb"], "--track must be one of mlflow; got 'wandb'"),
    (["compare", "data.csv", "--experiment", "x"], "--experiment needs --track mlflow; add it or drop --experiment"),
    (["train", "data.csv"], "Missing option '--strategy'"),
    (["train", "data.csv", "--strategy", "probe"], "Missing option '--out'"),
    (["train", "data.csv", "--strategy", "probe", "--out", "m", "--seed", "one"], "got 'one'"),
    (["train", "data.csv", "--strategy", "magic", "--out", "m"], "unknown strategy 'magic'"),
    (["train", "missing.csv", "--strategy", "probe", "--out", "m"], "data file not found: 'missing.csv'"),
    (["train", "data.csv", "--strategy", "probe", "--out", "data.csv"], "'data.csv' is a file"),
    (["train", "data.csv", "--strategy", "probe", "--out", "m", "--tracking-uri", "x"], "--tracking-uri needs --track"),
    (["predict"], "Missing argument 'DIR'"),
    (["predict", "model"], "Missing argument 'INPUT'"),
    (["predict", "model", "data.csv", "--chunk-rows", "many"], "got 'many'"),
    (["predict", "model", "data.csv", "--decimals"], "'--decimals' requires an argument"),
    (
        ["predict", "model", "data.csv", "--format", "xml"],
        "--format must be csv, tsv, jsonl, parquet or lines; got 'xml'",
    ),
    (["predict", "model", "missing.csv"], "input file not found: 'missing.csv'"),
    (["predict", "model", "data.csv"], "model folder not found: 'model'"),
    (["predict", "model", "data.csv", "--out", "data.csv/p.csv"], "'data.csv' is a file, not a folder"),
    (["serve"], "Missing argument 'DIR'"),
    (["serve", "model", "--port", "http"], "got 'http'"),
    (["serve", "model", "--log-level", "loud"], "got 'loud'"),
    (["serve", "model"], "model folder 'model' does not exist"),
    (["export"], "Missing argument 'DIR'"),
    (["export", "model", "--min-agreement", "most"], "got 'most'"),
    (["export", "model", "--onnx=yes"], "does not take a value"),
    (["export", "model"], "pass --onnx"),
    (["export", "model", "--onnx"], "model folder not found: 'model'"),
    (["embed"], "Missing argument 'INPUT'"),
    (["embed", "data.csv"], "Missing option '--out'"),
    (["embed", "data.csv", "--out", "e.npy", "--batch-size", "big"], "got 'big'"),
    (["embed", "data.csv", "--out", "e.txt"], "unknown format '.txt'"),
    (["embed", "missing.csv", "--out", "e.npy"], "data file not found: 'missing.csv'"),
    (["embed", "data.csv", "--out", "data.csv/e.npy"], "'data.csv' is a file, not a folder"),
    (["zero-shot"], "Missing argument"),
    (["zero-shot", "hello"], "Missing option '--labels'"),
    (["zero-shot", "hello", "--labels"], "'--labels' requires an argument"),
]
# -h on every command (the app passes its help option names down), --help where click puts it by itself.
HELP = [["-h"], ["--help"], *([name, "-h"] for name in COMMANDS)]
OTHER = [["--version"], []]


@dataclass
class Run:
    code: int
    out: str
    err: str  # stderr without the import timings
    imported: set[str]  # top-level packages the process imported


def run_cli(args: list[str], cwd: Path) -> Run:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bertwise", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120"},
    )
    err, imported = [], set()
    for line in result.stderr.splitlines(keepends=True):
        if line.startswith("import time:"):
            imported.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
        else:
            err.append(line)
    return Run(result.returncode, result.stdout, "".join(err), imported)


def key(args: list[str]) -> tuple[str, ...]:
    return tuple(args)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], tuple[Run, Path]]:
    """Every case, run once, a few at a time (each is a fresh Python), each in its own folder holding data.csv."""
    cases = [args for args, _ in USAGE_ERRORS] + HELP + OTHER
    folders = []
    for _ in cases:
        folder = tmp_path_factory.mktemp("cwd")
        (folder / "data.csv").write_text(DATA_ROWS)
        folders.append(folder)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(run_cli, cases, folders))
    return {key(args): (run, folder) for args, run, folder in zip(cases, results, folders, strict=True)}


@pytest.mark.parametrize(("args", "fragment"), USAGE_ERRORS, ids=[" ".join(args) for args, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_line_and_exit_code_2(
    args: list[str], fragment: str, runs: dict[tuple[str, ...], tuple[Run, Path]]
) -> None:
    run, folder = runs[key(args)]
    assert run.code == 2, run.err
    assert "Traceback" not in run.out + run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertwise: error: "), run.err
    assert fragment in lines[0]
    assert run.out == ""
    assert sorted(path.name for path in folder.iterdir()) == ["data.csv"]  # nothing written, not even a folder
    # Refused before torch loads (only a device that may exist, such as cuda, needs torch to tell).
    assert not run.imported & HEAVY, f"refused only after importing {sorted(run.imported & HEAVY)}"


def test_every_command_is_covered() -> None:
    assert {args[0] for args, _ in USAGE_ERRORS if args[0] in COMMANDS} == set(COMMANDS)


@pytest.mark.parametrize("args", HELP, ids=[" ".join(args) for args in HELP])
def test_h_and_help_print_the_help_and_exit_0_without_loading_torch(
    args: list[str], runs: dict[tuple[str, ...], tuple[Run, Path]]
) -> None:
    run, _ = runs[key(args)]
    assert run.code == 0, run.err
    shown = " ".join(run.out.split())
    # click names the program as it was started: "python -m bertwise" here, "bertwise" through the script.
    assert "Usage: " in shown and " ".join(["bertwise", *args[:-1], "[OPTIONS]"]) in shown
    assert run.err == ""
    assert not run.imported & (HEAVY | {"sklearn", "pandas"})  # --help stays instant


def test_version_prints_the_package_s_version(runs: dict[tuple[str, ...], tuple[Run, Path]]) -> None:
    from importlib.metadata import version

    run, _ = runs[("--version",)]
    assert (run.code, run.out, run.err) == (0, f"bertwise {bertwise.__version__}\n", "")
    assert version("bertwise") == bertwise.__version__  # pyproject reads it from bertwise.__version__


def test_a_bare_command_prints_the_help_with_click_s_exit_code(
    runs: dict[tuple[str, ...], tuple[Run, Path]],
) -> None:
    run, _ = runs[()]
    assert run.code == 2
    shown = " ".join(run.out.split())
    assert "Usage: " in shown and "bertwise [OPTIONS] COMMAND" in shown and "compare" in shown
    assert "Traceback" not in run.out + run.err


def test_the_installed_script_answers_like_the_module(tmp_path: Path) -> None:
    """The console script pip wrote calls the same entry point: one mistake and --version through it."""
    script = Path(sys.executable).parent / "bertwise"
    if not script.exists():
        pytest.skip("no bertwise script beside this Python (not installed with pip install -e .)")
    wrong = subprocess.run([str(script), "compare"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.splitlines() == [
        "bertwise: error: no data given: expected DATA, or data in the --config file's [compare] table"
    ], wrong.stderr
    shown = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (shown.returncode, shown.stdout) == (0, f"bertwise {bertwise.__version__}\n")
