"""Does domain-adaptive pre-training help? Each strategy with and without it, paired, on cuts of the shared data sets.

For each data set: a stratified cut of train.csv (``--max-train`` labeled rows) and of test.csv (``--max-test``), both
bertwise's ``stratified_test_rows`` with seed 0, and up to ``--unlabeled-rows`` further train.csv texts, never in the
labeled cut or the test rows, as the unlabeled in-domain corpus (their labels are dropped). Then one
``bertwise compare CUT --adapt-domain --unlabeled FILE --protocol full --no-learning-curve``: the backbone is adapted
(masked-LM training on the labeled cut's texts and the unlabeled ones; test texts are never read), and every strategy
runs on the base and the adapted backbone with the same seeds and test rows, so ``X@<base>`` against
``X@<base>+domain`` is results.json's paired difference with its interval. The adaptation's cost is results.json's
``model.domain_adaptation``.

    PYTHONPATH=src python benchmarks/adapt_effect.py --datasets medical_abstracts ohsumed_23 trec6 \\
        --strategies probe finetune --work /tmp/adapt-effect --out benchmarks/results/adapt-effect-cpu.json

A data set whose results.json is already in ``--work`` is not run again; the summary is rebuilt from all of them.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _corpus import DEFAULT_DATASETS, REPO, machine, use_checkout, write_json


def prepare(source: Path, cut: Path, max_train: int, max_test: int, unlabeled_rows: int) -> dict[str, int]:
    """Write the labeled cut (train.csv, test.csv) and the unlabeled texts (unlabeled.txt) under ``cut``."""
    import numpy as np

    from bertwise.data.io import read_labeled_file
    from bertwise.evaluation.budget import stratified_test_rows

    train, _ = read_labeled_file(source / "train.csv")
    test, _ = read_labeled_file(source / "test.csv")
    labeled = sorted(stratified_test_rows(train.labels, min(max_train, len(train)), 0))
    tested = sorted(stratified_test_rows(test.labels, min(max_test, len(test)), 0))
    rest = np.setdiff1d(np.arange(len(train)), labeled)
    rng = np.random.default_rng(0)
    extra = sorted(rng.choice(rest, size=min(unlabeled_rows, len(rest)), replace=False).tolist())
    cut.mkdir(parents=True, exist_ok=True)
    for name, data, rows in (("train.csv", train, labeled), ("test.csv", test, tested)):
        with (cut / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows((data.texts[r], data.labels[r]) for r in rows)
    # One text per line: a newline inside an abstract would split it in two.
    lines = (" ".join(train.texts[r].split()) for r in extra)
    (cut / "unlabeled.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"labeled": len(labeled), "test": len(tested), "unlabeled": len(extra)}


def run(dataset: str, args: argparse.Namespace) -> None:
    """Cut, adapt and compare one data set (skipped when its results.json exists)."""
    cut, out = args.work / dataset / "data", args.work / dataset / "results"
    if (out / "results.json").is_file():
        return
    rows = prepare(args.datasets_dir / dataset, cut, args.max_train, args.max_test, args.unlabeled_rows)
    command = [sys.executable, "-m", "bertwise", "compare", str(cut), "--adapt-domain"]
    command += ["--unlabeled", str(cut / "unlabeled.txt"), "--strategies", ",".join(args.strategies)]
    command += ["--protocol", "full", "--no-learning-curve", "--device", "cpu", "--out", str(out)]
    command += ["--seeds", str(args.seeds)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    (args.work / dataset / "run.json").write_text(
        json.dumps({"rows": rows, "wall_seconds": time.perf_counter() - started})
    )


def summarise(work: Path) -> dict[str, Any]:
    """Per data set: each (backbone, strategy) score, the paired adapted-vs-base difference, the adaptation cost."""
    summary: dict[str, Any] = {}
    for folder in sorted(p for p in work.iterdir() if (p / "results" / "results.json").is_file()):
        results = json.loads((folder / "results" / "results.json").read_text())
        scores = {s["name"]: s for s in results["strategies"]}
        differences = []
        for pair in results.get("paired", []):
            a, b = pair["a"], pair["b"]
            if a.split("@")[0] == b.split("@")[0] and a.endswith("+domain") != b.endswith("+domain"):
                differences.append(pair)
        run_record = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
        summary[folder.name] = {
            "rows": run_record.get("rows"),
            "wall_seconds": round(run_record.get("wall_seconds", 0.0), 1),
            "adaptation": results.get("model", {}).get("domain_adaptation"),
            "scores": {
                name: {k: s.get(k) for k in ("metrics", "metrics_interval", "runs", "cost")}
                for name, s in scores.items()
            },
            "adapted_vs_base": differences,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["medical_abstracts", "ohsumed_23", "trec6"])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--strategies", nargs="+", default=["probe", "finetune"])
    parser.add_argument("--max-train", type=int, default=300)
    parser.add_argument("--max-test", type=int, default=300)
    parser.add_argument("--unlabeled-rows", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    use_checkout()
    for dataset in args.datasets:
        run(dataset, args)
    summary = summarise(args.work)
    options = {k: getattr(args, k) for k in ("max_train", "max_test", "unlabeled_rows", "seeds", "strategies")}
    if args.out is not None:
        write_json(
            args.out, {"benchmark": "adapt-effect", "machine": machine(), "options": options, "datasets": summary}
        )
    print(json.dumps({name: entry["adapted_vs_base"] for name, entry in summary.items()}, indent=1))


if __name__ == "__main__":
    main()
