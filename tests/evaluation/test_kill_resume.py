"""compare killed with SIGKILL at exact points, then run again: finished work is reused, no file is half written, and
the numbers and prediction files equal an uninterrupted run's (issue 12, point 5).

Each scenario runs ``compare`` in a real subprocess with ``BERTWISE_TEST_KILL_AT`` (:mod:`bertwise.util.kill_hook`) set,
so the process is killed at one exact place, inspects what the kill left on disk, then runs the same command again.
Scenarios run two at a time, each process on one thread (the same for the reference, so numbers stay comparable).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SAMPLE

# The driver: compare with fast settings (one fixed test set, two fine-tuning seeds, a short learning curve), under the
# full protocol so that every kill point below is reached in the order named.
DRIVER = """
import sys
from bertwise import compare
data, model, out = sys.argv[1:4]
compare(
    data, model=model, out=out, seeds=2, device="cpu", precision="float32",
    curve_repeats={"probe": 2, "finetune": 1}, bootstrap_resamples=100, protocol="full",
)
"""
EARLIER = ["calibration", "zero-shot", "probe"]


@dataclass(frozen=True)
class Scenario:
    kill_at: str  # BERTWISE_TEST_KILL_AT
    resumed: list[str]  # results.json's "resumed" after the rerun (a pattern for a checkpoint's step)


SCENARIOS = {
    "calibration": Scenario("calibration", []),
    "during zero-shot": Scenario("zero-shot fit", ["calibration", "zero-shot (1 of 1 fits)"]),
    "during the probe": Scenario("probe fit", ["calibration", "zero-shot", "probe (1 of 1 fits)"]),
    "mid fine-tuning, after its first checkpoint": Scenario(
        "finetune checkpoint:1", [*EARLIER, r"finetune (a fit from its step-(\d+) checkpoint)"]
    ),
    "between fine-tuning's two runs": Scenario("finetune fit", [*EARLIER, "finetune (1 of 2 fits)"]),
    "during the learning curve": Scenario("curve fit:5", [*EARLIER, "finetune", "learning curve (5 of 6 fits)"]),
    "while writing results.json": Scenario("write results.json:3", [*EARLIER, "finetune"]),
}


@dataclass
class Outcome:
    killed_returncode: int
    after_kill: list[str]  # files found half written (or unreadable) right after the kill
    leftovers_after_kill: list[str]  # temporary files the kill left
    half_results: bool  # a half-written temporary copy of results.json was left, and results.json was whole
    returncode: int
    stderr: str
    out: Path
    cache: Path
    results: dict[str, Any] = field(default_factory=dict)


def run_compare(
    data: Path, model: str, out: Path, cache: Path, kill_at: str | None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BERTWISE_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env.pop("BERTWISE_TEST_KILL_AT", None)
    if kill_at is not None:
        env["BERTWISE_TEST_KILL_AT"] = kill_at
    command = [sys.executable, "-c", DRIVER, str(data), model, str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def broken_files(out: Path, cache: Path, test_rows: int) -> list[str]:
    """Every output or cache file that is not whole: each must read back completely."""
    problems = []
    for path in sorted(out.glob("*")):
        if path.name.endswith(".tmp"):
            continue
        try:
            if path.name == "results.json":
                assert "strategies" in json.loads(path.read_text())
            elif path.suffix == ".csv":
                frame = pd.read_csv(path)
                assert len(frame) == test_rows and frame["predicted_label"].notna().all()
            elif path.suffix == ".html":
                assert path.read_text().rstrip().endswith("</html>")
            else:
                assert path.read_text().strip()
        except Exception as error:
            problems.append(f"{path.name}: {type(error).__name__} {error}")
    for path in sorted(cache.glob("runs/**/*")):
        if path.name.endswith(".tmp") or path.is_dir():
            continue
        try:
            if path.suffix == ".npz":
                with np.load(path) as arrays:
                    assert all(arrays[name].size for name in arrays.files)
            elif path.suffix == ".json":
                assert "sha256" in json.loads(path.read_text())
            elif path.suffix == ".checkpoint":
                record = json.loads(path.read_text())
                tensors = (path.parent / record["file"]).read_bytes()
                assert hashlib.sha256(tensors).hexdigest() == record["sha256"]
        except Exception as error:
            problems.append(f"cache {path.name}: {type(error).__name__} {error}")
    return problems


def temporaries(*folders: Path) -> list[str]:
    return sorted(str(path) for folder in folders for path in folder.rglob("*.tmp"))


def play(name: str, scenario: Scenario, data: Path, model: str, root: Path, test_rows: int) -> Outcome:
    folder = root / re.sub(r"\W+", "-", name)
    out, cache = folder / "out", folder / "cache"
    killed = run_compare(data, model, out, cache, scenario.kill_at)
    after_kill = broken_files(out, cache, test_rows)
    leftovers = temporaries(out, cache)
    half_results = False
    if scenario.kill_at.startswith("write results.json"):
        (copy,) = out.glob(".results.json.*.tmp")
        try:
            json.loads(copy.read_text())
        except ValueError:
            half_results = "strategies" in json.loads((out / "results.json").read_text())
    rerun = run_compare(data, model, out, cache, None)
    outcome = Outcome(
        killed.returncode, after_kill, leftovers, half_results, rerun.returncode, rerun.stderr, out, cache
    )
    if rerun.returncode == 0:
        outcome.results = json.loads((out / "results.json").read_text())
    return outcome


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The 4 most frequent classes of the bundled sample: 6 training texts and 8 test texts of each."""
    train, test = pd.read_csv(SAMPLE / "train.csv"), pd.read_csv(SAMPLE / "test.csv")
    counts = train["label"].value_counts()
    classes = sorted(counts.index, key=lambda label: (-counts[label], label))[:4]
    folder = tmp_path_factory.mktemp("sample")
    train[train["label"].isin(classes)].groupby("label").head(6).to_csv(folder / "train.csv", index=False)
    chosen = test[test["label"].isin(classes)].groupby("label").head(8)
    chosen.to_csv(folder / "test.csv", index=False)
    return folder, len(chosen)


@pytest.fixture(scope="module")
def runs(sample: tuple[Path, int], tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted reference run, then every scenario (killed, inspected, rerun), two at a time."""
    data, test_rows = sample
    root = tmp_path_factory.mktemp("kill-resume")
    reference = run_compare(data, tiny_bert, root / "reference", root / "reference-cache", None)
    assert reference.returncode == 0, reference.stderr[-3000:]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(play, name, scenario, data, tiny_bert, root, test_rows)
            for name, scenario in SCENARIOS.items()
        }
        outcomes = {name: future.result() for name, future in futures.items()}
    return {"reference": root / "reference", "reference cache": root / "reference-cache", "outcomes": outcomes}


def numbers(saved: dict[str, Any]) -> dict[str, Any]:
    """results.json without what a clock measured (costs, calibration speeds, estimates) or what describes this run."""
    kept = {key: saved[key] for key in ("config", "dataset", "model", "protocol", "paired", "learning_curve")}
    kept["diagnostics"] = saved["diagnostics"]
    kept["strategies"] = [
        {key: value for key, value in strategy.items() if key != "cost"}
        | {"runs": [{k: v for k, v in run.items() if k != "fit_seconds"} for run in strategy["runs"]]}
        for strategy in saved["strategies"]
    ]
    kept["recommendation"] = saved["recommendation"]["strategy"]
    kept["budget"] = {key: saved["budget"][key] for key in ("limit_seconds", "cuts")}
    return kept


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_killed_compare_resumes_and_ends_as_an_uninterrupted_one(runs: dict[str, Any], name: str) -> None:
    outcome: Outcome = runs["outcomes"][name]
    scenario = SCENARIOS[name]
    assert outcome.killed_returncode == -9, f"the kill point {scenario.kill_at!r} was never reached"
    assert outcome.after_kill == [], "the kill left files that do not read back whole"
    assert outcome.returncode == 0, outcome.stderr[-3000:]

    resumed = outcome.results["resumed"]
    assert len(resumed) == len(scenario.resumed)
    for found, expected in zip(resumed, scenario.resumed, strict=True):
        assert re.fullmatch(re.escape(expected).replace(re.escape(r"(\d+)"), r"(\d+)"), found), (found, expected)

    reference = json.loads((runs["reference"] / "results.json").read_text())
    assert numbers(outcome.results) == numbers(reference)
    for predictions in sorted(runs["reference"].glob("predictions-*.csv")):
        assert (outcome.out / predictions.name).read_bytes() == predictions.read_bytes(), predictions.name
    assert temporaries(outcome.out, outcome.cache) == []
    assert list(outcome.cache.rglob("*.partial")) == [], "finished stages keep no fits nor checkpoints"


def test_the_mid_fine_tuning_kill_left_training_to_do(runs: dict[str, Any]) -> None:
    """Equal numbers prove the resume exact only if the killed fit trained on after its checkpoint: its validation
    history (compared with the rest of its details above) then comes from weights trained after the resume."""
    outcome: Outcome = runs["outcomes"]["mid fine-tuning, after its first checkpoint"]
    match = re.search(r"step-(\d+) checkpoint", outcome.results["resumed"][-1])
    assert match is not None
    (finetune,) = [strategy for strategy in outcome.results["strategies"] if strategy["name"] == "finetune"]
    later = [entry for entry in finetune["details"]["validation_history"] if entry["step"] > int(match[1])]
    assert len(later) >= 2


def test_a_kill_while_writing_leaves_the_previous_results_whole(runs: dict[str, Any]) -> None:
    outcome: Outcome = runs["outcomes"]["while writing results.json"]
    assert outcome.half_results, "the kill should leave half a temporary copy beside a whole results.json"
    assert any(".results.json." in leftover for leftover in outcome.leftovers_after_kill)


def test_an_edited_cache_entry_is_never_trusted(runs: dict[str, Any], sample: tuple[Path, int], tiny_bert: str) -> None:
    """A finished run's kept probe result with its macro-F1 edited to 0.99: recomputed, with a warning."""
    import shutil

    data, _ = sample
    cache = runs["reference cache"].parent / "edited-cache"
    shutil.copytree(runs["reference cache"], cache)
    (entry,) = cache.glob("runs/*/probe-*.json")
    kept = json.loads(entry.read_text())
    kept["result"]["metrics"]["macro_f1"] = 0.99
    entry.write_text(json.dumps(kept))  # valid JSON, only a number changed: as a hand edit would leave it
    out = cache.parent / "edited-out"
    rerun = run_compare(data, tiny_bert, out, cache, None)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    warning = " ".join(rerun.stderr.split())
    assert re.search(r"ignoring the run-cache entry .*probe-.*does not match the sha256", warning)
    results = json.loads((out / "results.json").read_text())
    assert results["resumed"] == ["calibration", "zero-shot", "finetune", "learning curve"]
    reference = json.loads((runs["reference"] / "results.json").read_text())
    assert numbers(results) == numbers(reference)
    assert json.loads(entry.read_text())["result"]["metrics"]["macro_f1"] != 0.99  # written again, from the data
