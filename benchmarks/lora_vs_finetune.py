"""LoRA against full fine-tuning: macro-F1 with the paired interval of the difference, trainable parameters, fit
seconds, peak RSS and saved size, on a folder or on the shared data sets.

Each fit runs in its own process (so peak RSS is its own: ``ru_maxrss``, imports and data included), scores the test
rows, then saves a model folder whose size is measured (docs/lora.md). On the shared data sets (``--datasets``) the
training and test files are cut to ``--max-train`` and ``--max-test`` rows, each stratified (every class keeps its
share; bertwise's ``stratified_test_rows``, seed 0), the same rows for both strategies. Both strategies fit the same
rows with the same seed, so LoRA minus fine-tuning is paired: bertwise's two-level bootstrap (test rows and seeds).

Every fit is one line of ``--records`` (JSON lines, with its predictions), written when it ends; a rerun skips what
is there, so the benchmark can be stopped and resumed. The summary (``--out``) is rebuilt from all records.

    PYTHONPATH=src python benchmarks/lora_vs_finetune.py --datasets trec6 sst2 banking77 gard_question_types \\
        medical_abstracts ohsumed_23 --records benchmarks/results/lora-vs-finetune-records.jsonl \\
        --out benchmarks/results/lora-vs-finetune-shared-cpu.json
    PYTHONPATH=src python benchmarks/lora_vs_finetune.py --folder examples/banking77_sample --epochs 8 \\
        --records /tmp/sample.jsonl --out benchmarks/results/lora-vs-finetune-8-epochs.json

``--epochs N`` trains exactly N epochs (min_steps 0, min_epochs = max_epochs = N; early stopping may end it sooner)
for both strategies; without it each trains its default schedule, as ``bertwise compare`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _corpus import DEFAULT_DATASETS, REPO, machine, use_checkout, write_json


def load(source: Path, max_train: int | None, max_test: int | None) -> tuple[Any, Any]:
    """The training and test parts of ``source`` (a folder with train.csv and test.csv), each cut to a stratified
    ``max_*`` rows when it has more."""
    from bertwise.data.io import read_labeled_file
    from bertwise.evaluation.budget import stratified_test_rows

    parts = []
    for name, limit in (("train.csv", max_train), ("test.csv", max_test)):
        data, _ = read_labeled_file(source / name)
        if limit is not None and limit < len(data):
            data = data.subset(sorted(stratified_test_rows(data.labels, limit, 0)))
        parts.append(data)
    return parts[0], parts[1]


def fit_one(source: Path, strategy: str, seed: int, cuts: tuple[int | None, int | None], epochs: int | None) -> dict:
    """Fit, score and save one strategy in this process."""
    from sklearn.metrics import accuracy_score, f1_score

    from bertwise.artifact.folder import folder_size, save_model
    from bertwise.strategies.registry import strategy_class

    train, test = load(source, *cuts)
    schedule = {} if epochs is None else {"min_steps": 0, "min_epochs": epochs, "max_epochs": epochs}
    estimator = strategy_class(strategy)(seed=seed, device="cpu", **schedule)
    started = time.perf_counter()
    estimator.fit(list(train.texts), list(train.labels))
    fit_seconds = time.perf_counter() - started
    predicted = [str(label) for label in estimator.predict(list(test.texts))]
    truth = [str(label) for label in test.labels]
    details = estimator.fit_details()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        save_model(estimator, folder, training=train)
        saved_bytes = folder_size(folder)
    trainable = details.get("trainable_parameters")
    if trainable is None:  # full fine-tuning trains every weight
        trainable = sum(p.numel() for p in estimator.network_.parameters())
    return {
        "macro_f1": round(100 * float(f1_score(truth, predicted, average="macro")), 2),
        "accuracy": round(100 * float(accuracy_score(truth, predicted)), 2),
        "fit_seconds": round(fit_seconds, 1),
        "optimizer_steps": details["optimizer_steps"],
        "planned_steps": details["planned_steps"],
        "best_step": details.get("best_step"),
        "learning_rate": details["learning_rate"],
        "trainable_parameters": int(trainable),
        "total_parameters": details.get("total_parameters"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "saved_folder_bytes": saved_bytes,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": {"train": len(train), "test": len(test), "classes": len(set(train.labels))},
        "predictions": predicted,
        "truth": truth,
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per data set: each strategy's means, and LoRA minus fine-tuning with the paired interval over shared seeds."""
    from bertwise.evaluation.statistics import bootstrap_metrics, paired_bootstrap

    summary: dict[str, Any] = {}
    for dataset in sorted({r["dataset"] for r in records}):
        mine = {(r["strategy"], r["seed"]): r for r in records if r["dataset"] == dataset}
        truth = next(iter(mine.values()))["truth"]
        classes = sorted(set(truth) | {p for r in mine.values() for p in r["predictions"]})
        code = {label: i for i, label in enumerate(classes)}
        y_true = np.array([code[t] for t in truth])

        def runs(strategy: str, seeds: list[int], table: dict = mine, codes: dict = code) -> np.ndarray:
            return np.array([[codes[p] for p in table[(strategy, s)]["predictions"]] for s in seeds])

        entry: dict[str, Any] = {"rows": next(iter(mine.values()))["rows"], "strategies": {}}
        for strategy in sorted({s for s, _ in mine}):
            seeds = sorted(seed for name, seed in mine if name == strategy)
            score = bootstrap_metrics(y_true, runs(strategy, seeds), len(classes))["macro_f1"]
            fits = [mine[(strategy, s)] for s in seeds]
            entry["strategies"][strategy] = {
                "macro_f1": round(100 * score.mean, 1),
                "interval": [round(100 * score.low, 1), round(100 * score.high, 1)],
                "seeds": seeds,
                **{
                    field: round(float(np.mean([fit[field] for fit in fits])), 1)
                    for field in ("fit_seconds", "peak_rss_mb", "optimizer_steps", "saved_folder_bytes")
                },
                "trainable_parameters": fits[0]["trainable_parameters"],
            }
        shared = sorted({s for n, s in mine if n == "lora"} & {s for n, s in mine if n == "finetune"})
        if shared:
            diff = paired_bootstrap(y_true, runs("lora", shared), runs("finetune", shared), len(classes))
            entry["lora_minus_finetune"] = {
                "difference": round(100 * diff.difference, 1),
                "interval": [round(100 * diff.low, 1), round(100 * diff.high, 1)],
                "seeds": shared,
            }
        summary[dataset] = entry
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    for dataset, entry in summary.items():
        print(f"\n{dataset} ({entry['rows']})")
        for name, s in entry["strategies"].items():
            print(
                f"  {name}: {s['macro_f1']} [{s['interval'][0]}, {s['interval'][1]}] over seeds {s['seeds']}; "
                f"{s['trainable_parameters']:,} trained, {s['fit_seconds']} s, {s['peak_rss_mb']} MB peak, "
                f"{s['saved_folder_bytes'] / 1e6:.2f} MB saved, {s['optimizer_steps']} steps"
            )
        if "lora_minus_finetune" in entry:
            d = entry["lora_minus_finetune"]
            print(f"  lora - finetune: {d['difference']:+} [{d['interval'][0]}, {d['interval'][1]}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=[], help="names under --datasets-dir")
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--folder", type=Path, default=None, help="a folder with train.csv and test.csv, uncut")
    parser.add_argument("--max-train", type=int, default=500)
    parser.add_argument("--max-test", type=int, default=500)
    parser.add_argument("--strategies", nargs="+", default=["lora", "finetune"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "source|strategy|seed"
    args = parser.parse_args()
    use_checkout()
    if args.one is not None:
        source, strategy, seed = args.one.split("|")
        cuts = (None, None) if args.folder is not None else (args.max_train, args.max_test)
        print(json.dumps(fit_one(Path(source), strategy, int(seed), cuts, args.epochs)))
        return
    sources = {name: args.datasets_dir / name for name in args.datasets}
    if args.folder is not None:
        sources[args.folder.name] = args.folder
    records = [json.loads(line) for line in args.records.read_text().splitlines()] if args.records.is_file() else []
    done = {(r["dataset"], r["strategy"], r["seed"]) for r in records}
    for dataset, source in sources.items():
        for seed in args.seeds:
            for strategy in args.strategies:
                if (dataset, strategy, seed) in done:
                    continue
                command = [
                    sys.executable,
                    __file__,
                    "--records",
                    str(args.records),
                    "--one",
                    f"{source}|{strategy}|{seed}",
                ]
                command += ["--max-train", str(args.max_train), "--max-test", str(args.max_test)]
                command += ["--epochs", str(args.epochs)] if args.epochs is not None else []
                command += ["--folder", str(args.folder)] if source == args.folder else []
                output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
                record = {"dataset": dataset, "strategy": strategy, "seed": seed, "epochs": args.epochs}
                record |= json.loads(output.strip().splitlines()[-1])
                with args.records.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                records.append(record)
                print(f"{dataset} {strategy} seed {seed}: {record['macro_f1']} macro-F1, {record['fit_seconds']} s")
    summary = summarise(records)
    if args.out is not None:
        options = {"max_train": args.max_train, "max_test": args.max_test, "epochs": args.epochs}
        write_json(
            args.out, {"benchmark": "lora-vs-finetune", "machine": machine(), "options": options, "datasets": summary}
        )
    print_summary(summary)


if __name__ == "__main__":
    main()
