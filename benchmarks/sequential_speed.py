"""Time to the recommendation: the sequential protocol against the full one, on real data, in one run.

For each data set, ``bertwise compare`` runs twice, as a user would run it (a subprocess, ``--no-cache``, the embedded
model): ``--protocol full`` and ``--protocol sequential``. Reported per data set: the wall time of each, the time to
the recommendation (results.json's ``stopping.seconds_to_recommendation``: the strategies stage is over and the
choice is final; curves and diagnostics only add reasons), the recommended strategy of each and whether they agree,
the fine-tuning runs each made, what the sequential protocol stopped and why, and the time of the three standard
recipes run once each (the article's zero-shot, probe and fine-tuning, one seed: the sum of the first fit's fit and
predict seconds of each strategy in the full run). Ratios: sequential / full, and sequential / recipes-once.

Shared data sets are cut to ``--max-train`` and ``--max-test`` rows (a seeded class-balanced sample of each file)
so that the full protocol finishes on 2 CPU cores; ``--learning-curve`` adds the
curves to both runs (the README's sample is always run with them, as the README runs it).

Where the full protocol would take hours on 2 cores (medical_abstracts, ohsumed_23: their long texts),
``--sequential-only`` runs the sequential protocol alone and holds its time to the recommendation against the full
plan's own uncut estimate (results.json ``budget.estimated_seconds_uncut``: the same plan, calibrated on the same
machine in the same run), as the issue allows. That estimate's own error is measured where both ran: the full run's
wall time over its estimate is printed beside every data set that ran both.

    .venv/bin/python benchmarks/sequential_speed.py --out benchmarks/results/sequential-speed-cpu.json
    .venv/bin/python benchmarks/sequential_speed.py --datasets sample trec6 --out /tmp/quick.json
    .venv/bin/python benchmarks/sequential_speed.py --datasets medical_abstracts ohsumed_23 --max-train 300 \
        --max-test 300 --sequential-only --out benchmarks/results/sequential-speed-long-cpu.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _corpus import DEFAULT_DATASETS, REPO, machine, write_json

SAMPLE = REPO / "examples" / "banking77_sample"
SHARED = ("sst2", "trec6", "banking77", "gard_question_types", "medical_abstracts", "ohsumed_23")


def cut(source: Path, target: Path, rows: int, seed: int) -> int:
    """A seeded, class-balanced ``rows`` of ``source`` (a text,label CSV) written to ``target``: the classes take turns,
    each giving its next row in a shuffled order, so every class keeps as many rows as it can (a plain random sample
    of 77 classes leaves some with one row, too few to train on). Returns the rows written."""
    with source.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    rng = random.Random(seed)
    rng.shuffle(records)
    by_class: dict[str, list[dict[str, str]]] = {}
    for record in records:
        by_class.setdefault(record["label"], []).append(record)
    kept: list[dict[str, str]] = []
    turn = 0
    while len(kept) < rows and any(turn < len(group) for group in by_class.values()):
        kept += [group[turn] for group in by_class.values() if turn < len(group)][: rows - len(kept)]
        turn += 1
    rng.shuffle(kept)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in kept)
    return len(kept)


def run_compare(data: Path, out: Path, protocol: str, curves: bool) -> dict[str, Any]:
    """One ``bertwise compare`` as a subprocess: its wall time and results.json."""
    command = [
        sys.executable,
        "-m",
        "bertwise",
        "compare",
        str(data),
        "--protocol",
        protocol,
        "--no-cache",
        "--no-progress",
        "--no-report",
        "--out",
        str(out),
    ]
    if not curves:
        command.append("--no-learning-curve")
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({finished.returncode}): {finished.stderr[-2000:]}")
    return {"seconds": seconds, "results": json.loads((out / "results.json").read_text())}


def summary(run: dict[str, Any]) -> dict[str, Any]:
    results = run["results"]
    by_name = {s["name"]: s for s in results["strategies"]}
    return {
        "wall_seconds": round(run["seconds"], 1),
        "seconds_to_recommendation": results["stopping"]["seconds_to_recommendation"],
        "recommended": results["recommendation"]["strategy"],
        "macro_f1": {name: s["metrics"].get("macro_f1") for name, s in by_name.items()},
        "finetune_runs": len(by_name["finetune"]["runs"]) if "finetune" in by_name else None,
        "stopped": results["stopping"]["stopped"],
        "skipped_for_budget": results["stopping"]["skipped_for_budget"],
        "estimated_seconds_uncut": results["budget"]["estimated_seconds_uncut"],
    }


def recipes_once(full: dict[str, Any]) -> float:
    """Seconds of the three recipes run once: each strategy's first fit and prediction, as the full run timed them."""
    return sum(s["cost"]["fit_seconds"] + s["cost"]["predict_seconds"] for s in full["results"]["strategies"])


def measure_sequential_only(name: str, data: Path, work: Path, curves: bool) -> dict[str, Any]:
    """The sequential protocol alone, against the full plan's uncut estimate made in the same run."""
    run = run_compare(data, work / f"{name}-sequential", "sequential", curves)
    two = summary(run)
    once = recipes_once(run)
    estimate = two["estimated_seconds_uncut"]
    return {
        "learning_curve": curves,
        "full": None,
        "full_estimated_seconds": estimate,
        "sequential": two,
        "recipes_once_seconds": round(once, 1),
        "ratio_to_full_estimate": round(two["seconds_to_recommendation"] / estimate, 3),
        "sequential_over_recipes_once": round(two["seconds_to_recommendation"] / once, 2),
    }


def measure(name: str, data: Path, work: Path, curves: bool) -> dict[str, Any]:
    full = run_compare(data, work / f"{name}-full", "full", curves)
    sequential = run_compare(data, work / f"{name}-sequential", "sequential", curves)
    one, two = summary(full), summary(sequential)
    once = recipes_once(full)
    return {
        "learning_curve": curves,
        "full": one,
        "sequential": two,
        "recipes_once_seconds": round(once, 1),
        "same_recommendation": one["recommended"] == two["recommended"],
        "ratio_wall": round(two["wall_seconds"] / one["wall_seconds"], 3),
        "ratio_to_recommendation": round(two["seconds_to_recommendation"] / one["seconds_to_recommendation"], 3),
        "sequential_over_recipes_once": round(two["seconds_to_recommendation"] / once, 2),
        "full_wall_over_estimate": round(one["wall_seconds"] / one["estimated_seconds_uncut"], 3),
    }


def describe(name: str, entry: dict[str, Any]) -> str:
    """One line of a data set's figures."""
    two = entry["sequential"]
    if entry["full"] is None:
        return (
            f"{name}: sequential {two['wall_seconds']} s ({two['recommended']}), {two['seconds_to_recommendation']} s "
            f"to the recommendation; the full plan's estimate {entry['full_estimated_seconds']} s: "
            f"{entry['ratio_to_full_estimate']}x; {entry['sequential_over_recipes_once']}x the recipes once; "
            f"fine-tuning runs {two['finetune_runs']}"
        )
    one = entry["full"]
    return (
        f"{name}: full {one['wall_seconds']} s ({one['recommended']}), sequential {two['wall_seconds']} s "
        f"({two['recommended']}); to the recommendation {entry['ratio_to_recommendation']}x, wall "
        f"{entry['ratio_wall']}x, {entry['sequential_over_recipes_once']}x the recipes once; fine-tuning runs "
        f"{one['finetune_runs']} -> {two['finetune_runs']}; the full run's wall over its estimate "
        f"{entry['full_wall_over_estimate']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sample", *SHARED])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--max-train", type=int, default=500)
    parser.add_argument("--max-test", type=int, default=500)
    parser.add_argument("--learning-curve", action="store_true", help="curves on the shared data sets too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sequential-only",
        action="store_true",
        help="no full run: hold the sequential protocol against the full plan's uncut estimate",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sequential-speed-cpu.json")
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "sequential-speed", "machine": machine(), "options": vars(args) | {}}
    report["options"] = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    report["datasets"] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name in args.datasets:
            if name == "sample":
                data, curves, rows = SAMPLE, True, None
            else:
                data = work / name
                data.mkdir()
                rows = {
                    "train": cut(args.datasets_dir / name / "train.csv", data / "train.csv", args.max_train, args.seed),
                    "test": cut(args.datasets_dir / name / "test.csv", data / "test.csv", args.max_test, args.seed),
                }
                curves = args.learning_curve
            measured = measure_sequential_only if args.sequential_only else measure
            entry = measured(name, data, work, curves) | {"rows": rows}
            report["datasets"][name] = entry
            write_json(args.out, report)  # after each data set: a long run interrupted keeps what it measured
            print(describe(name, entry), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
