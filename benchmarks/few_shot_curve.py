"""Few labels: SetFit against the probe, fine-tuning and LoRA at 8, 16, 32 and 64 training examples per class.

For each data set, a fixed test set (``--max-test`` rows of test.csv, stratified: every class keeps its share, seeded)
and, for every point and seed, a training subsample of that many examples of every class drawn from train.csv by
bertwise's own learning-curve sampler (``balanced_subsample``; a class with fewer rows gives all it has). Every
strategy is fitted on the same subsample with the same seed and scored on the same test rows, so the differences are
paired: SetFit minus each other strategy, with bertwise's paired two-level bootstrap (test rows and seeds resampled,
95 %), and each strategy's macro-F1 with its own interval. Strategies run with their defaults, as ``bertwise compare``
runs them; the embedded all-MiniLM-L6-v2 is every strategy's backbone.

Every fit is one line of ``--records`` (JSON lines: its predictions, seconds and macro-F1), written as soon as it ends;
a rerun with the same file skips what is there, so a long benchmark can be stopped and resumed, and data sets or
seeds added later. The summary (``--out``) is rebuilt from all records each time.

    PYTHONPATH=src .venv/bin/python benchmarks/few_shot_curve.py --datasets sst2 trec6 \\
        --records benchmarks/results/few-shot-curve-records.jsonl --out benchmarks/results/few-shot-curve-cpu.json
    PYTHONPATH=src .venv/bin/python benchmarks/few_shot_curve.py --summary-only  # tables from the records alone
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from _corpus import DEFAULT_DATASETS, REPO, machine, use_checkout, write_json

RESULTS = REPO / "benchmarks" / "results"
STRATEGIES = ("setfit", "probe", "finetune", "lora")
# Not a bertwise strategy: the setfit library's own default run (its Trainer, default TrainingArguments but our seed),
# on the embedded backbone, for the "SetFit against its own library" check (docs/setfit.md).
SETFIT_LIBRARY = "setfit-library"


def load(datasets: Path, name: str, max_test: int, seed: int) -> dict[str, Any]:
    from bertwise.data.io import read_labeled_file
    from bertwise.evaluation.budget import stratified_test_rows

    train, _ = read_labeled_file(datasets / name / "train.csv")
    test, _ = read_labeled_file(datasets / name / "test.csv")
    rows = range(len(test)) if max_test >= len(test) else stratified_test_rows(test.labels, max_test, seed)
    return {"train": train, "test_texts": [test.texts[r] for r in rows], "test_labels": [test.labels[r] for r in rows]}


def fit_one(
    data: dict[str, Any],
    strategy: str,
    per_class: int,
    seed: int,
    device: str = "cpu",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit ``strategy`` on ``per_class`` examples of every class (subsample ``seed``), predict the test rows.

    ``strategy`` may carry a variant's tag (``finetune:no-stop``): the strategy before the colon, with ``params``."""
    from sklearn.metrics import f1_score

    from bertwise.evaluation.learning_curve import balanced_subsample
    from bertwise.strategies.registry import strategy_class

    train = data["train"]
    truth = [str(label) for label in data["test_labels"]]
    rows = balanced_subsample(train, per_class, seed)
    texts, labels = [train.texts[r] for r in rows], [train.labels[r] for r in rows]
    if strategy == SETFIT_LIBRARY:
        estimator = LibrarySetFit(seed)
    else:
        estimator = strategy_class(strategy.split(":")[0])(seed=seed, device=device)
        estimator.set_params(**(params or {}))
    started = time.perf_counter()
    estimator.fit(texts, labels)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = [str(label) for label in estimator.predict(data["test_texts"])]
    predict_seconds = time.perf_counter() - started
    record = {
        "train_rows": len(rows),
        "test_rows": len(truth),
        "fit_seconds": round(fit_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "macro_f1": round(100 * f1_score(truth, predicted, average="macro", zero_division=0), 2),
        "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "predictions": predicted,
    }
    # What the schedule did (steps run, best step, why it stopped); the validation curve itself is left out.
    if hasattr(estimator, "fit_details"):
        record["fit_details"] = {k: v for k, v in estimator.fit_details().items() if k != "validation_history"}
    del estimator
    gc.collect()
    return record


class LibrarySetFit:
    """The setfit library's default run: ``SetFitModel.from_pretrained`` on the embedded backbone's folder, its
    ``Trainer`` with default ``TrainingArguments`` (body 1 epoch at batch 16, "oversampling" pairs, the
    LogisticRegression head) but our seed, its checkpoints in a temporary folder."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, texts: list[str], labels: list[Any]) -> None:
        import tempfile

        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        from bertwise.backbone.resolve import resolve_backbone

        self.model = SetFitModel.from_pretrained(resolve_backbone(None).path, local_files_only=True)
        with tempfile.TemporaryDirectory() as folder:
            arguments = TrainingArguments(output_dir=folder, seed=self.seed, show_progress_bar=False)
            train = Dataset.from_dict({"text": texts, "label": [str(label) for label in labels]})
            Trainer(model=self.model, args=arguments, train_dataset=train).train()

    def predict(self, texts: list[str]) -> list[Any]:
        return list(self.model.predict(texts))


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key(record: dict[str, Any]) -> tuple[str, int, int, str]:
    return record["dataset"], record["per_class"], record["seed"], record["strategy"]


def summarise(records: list[dict[str, Any]], truths: dict[str, list[str]]) -> dict[str, Any]:
    """Per data set and point: each strategy's macro-F1 over its seeds with an interval, and SetFit minus each other
    strategy with the paired interval, over the seeds every strategy has."""
    from bertwise.evaluation.statistics import bootstrap_metrics

    summary: dict[str, Any] = {}
    for dataset in sorted({r["dataset"] for r in records}):
        truth = truths[dataset]
        classes = sorted(set(truth) | {p for r in records if r["dataset"] == dataset for p in r["predictions"]})
        code = {label: i for i, label in enumerate(classes)}
        y_true = np.array([code[t] for t in truth])
        points: dict[str, Any] = {}
        for per_class in sorted({r["per_class"] for r in records if r["dataset"] == dataset}):
            mine = [r for r in records if r["dataset"] == dataset and r["per_class"] == per_class]
            by_strategy: dict[str, dict[int, dict[str, Any]]] = {}
            for record in mine:
                by_strategy.setdefault(record["strategy"], {})[record["seed"]] = record
            runs = {
                name: np.array([[code[p] for p in by_seed[s]["predictions"]] for s in sorted(by_seed)])
                for name, by_seed in by_strategy.items()
            }
            entry: dict[str, Any] = {"strategies": {}, "setfit_minus": {}}
            for name, array in runs.items():
                estimate = bootstrap_metrics(y_true, array, len(classes))["macro_f1"]
                seconds = [r["fit_seconds"] for r in by_strategy[name].values()]
                entry["strategies"][name] = {
                    "macro_f1": round(100 * estimate.mean, 1),
                    "interval": [round(100 * estimate.low, 1), round(100 * estimate.high, 1)],
                    "seeds": sorted(by_strategy[name]),
                    "fit_seconds_mean": round(float(np.mean(seconds)), 1),
                    "train_rows": next(iter(by_strategy[name].values()))["train_rows"],
                }
            paired = functools.partial(_paired, by_strategy, code, y_true, len(classes))
            if "setfit" in by_strategy:
                for name in runs:
                    difference = paired("setfit", name) if name != "setfit" else None
                    if difference is not None:
                        low, high = difference["interval"]
                        verdict = "wins" if low > 0 else "loses" if high < 0 else "no clear difference"
                        entry["setfit_minus"][name] = {**difference, "setfit": verdict}
            # Each tagged variant (finetune:no-stop) minus its strategy run with defaults.
            variants = {name: paired(name, name.split(":")[0]) for name in runs if ":" in name}
            entry["variant_minus_base"] = {name: d for name, d in variants.items() if d is not None}
            points[str(per_class)] = entry
        summary[dataset] = {"test_rows": len(truth), "classes": len(set(truth)), "points": points}
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    for dataset, entry in summary.items():
        print(f"\n{dataset} ({entry['classes']} classes, {entry['test_rows']} test rows)")
        for per_class, point in entry["points"].items():
            scores = ", ".join(
                f"{name} {s['macro_f1']} [{s['interval'][0]}, {s['interval'][1]}] ({len(s['seeds'])} seeds, "
                f"{s['fit_seconds_mean']} s)"
                for name, s in point["strategies"].items()
            )
            print(f"  {per_class}/class: {scores}")
            for name, d in point["setfit_minus"].items():
                print(
                    f"    setfit - {name}: {d['difference']:+} [{d['interval'][0]}, {d['interval'][1]}]: {d['setfit']}"
                )
            for name, d in point.get("variant_minus_base", {}).items():
                base = name.split(":")[0]
                print(f"    {name} - {base}: {d['difference']:+} [{d['interval'][0]}, {d['interval'][1]}]")


def _paired(
    by_strategy: dict[str, dict[int, dict[str, Any]]],
    code: dict[str, int],
    y_true: np.ndarray,
    n_classes: int,
    a: str,
    b: str,
) -> dict[str, Any] | None:
    """``a`` minus ``b`` with the paired interval (points), over the seeds both ran; None when they share none."""
    from bertwise.evaluation.statistics import paired_bootstrap

    shared = sorted(set(by_strategy.get(a, {})) & set(by_strategy.get(b, {})))
    if not shared:
        return None
    first = np.array([[code[p] for p in by_strategy[a][s]["predictions"]] for s in shared])
    second = np.array([[code[p] for p in by_strategy[b][s]["predictions"]] for s in shared])
    diff = paired_bootstrap(y_true, first, second, n_classes)
    return {
        "difference": round(100 * diff.difference, 1),
        "interval": [round(100 * diff.low, 1), round(100 * diff.high, 1)],
        "seeds": shared,
    }


def parse_params(values: list[str], strategies: list[str]) -> dict[str, Any]:
    """``--params finetune.patience=1000000`` as {"patience": 1000000}: TOML scalars, for the one strategy named."""
    import tomllib

    params: dict[str, Any] = {}
    for value in values:
        key, _, raw = value.partition("=")
        strategy, _, name = key.partition(".")
        if not raw or not name or strategy not in strategies:
            raise SystemExit(f"--params {value!r}: expected STRATEGY.NAME=VALUE for one of {strategies}")
        try:
            params[name] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            message = f"--params {value!r}: {raw!r} is not a TOML value (a number, true/false, a quoted string)"
            raise SystemExit(message) from None
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "trec6"])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--per-class", nargs="+", type=int, default=[8, 16, 32, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--max-test", type=int, default=500)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps; give a GPU run its own --records and --out")
    parser.add_argument("--records", type=Path, default=RESULTS / "few-shot-curve-records.jsonl")
    parser.add_argument("--out", type=Path, default=RESULTS / "few-shot-curve-cpu.json")
    parser.add_argument("--params", nargs="*", default=[], help="STRATEGY.NAME=VALUE, with --tag")
    parser.add_argument("--tag", default=None, help="name of the variant --params make, e.g. no-stop")
    parser.add_argument("--summary-only", action="store_true", help="rebuild the summary from the records; fit nothing")
    args = parser.parse_args()
    use_checkout()
    params = parse_params(args.params, args.strategies)
    if bool(params) != bool(args.tag):
        raise SystemExit("--params and --tag go together: a variant is named by its tag")
    records = read_records(args.records)
    done = {key(r) for r in records}
    names = sorted({r["dataset"] for r in records} | set(args.datasets))
    data = {name: load(args.datasets_dir, name, args.max_test, seed=0) for name in names}
    if not args.summary_only:
        # Smallest point first, every strategy and seed of it before the next: an interrupted run keeps whole points.
        for name in args.datasets:
            for per_class in args.per_class:
                for seed in args.seeds:
                    for base in args.strategies:
                        strategy = f"{base}:{args.tag}" if args.tag else base
                        if (name, per_class, seed, strategy) in done:
                            continue
                        record = {"dataset": name, "per_class": per_class, "seed": seed, "strategy": strategy}
                        record |= fit_one(data[name], strategy, per_class, seed, args.device, params)
                        if params:
                            record["params"] = params
                        with args.records.open("a") as handle:
                            handle.write(json.dumps(record) + "\n")
                        records.append(record)
                        print(
                            f"{name} {per_class}/class seed {seed} {strategy}: {record['macro_f1']} macro-F1, "
                            f"{record['fit_seconds']} s fit",
                            flush=True,
                        )
    truths = {name: [str(label) for label in data[name]["test_labels"]] for name in names}
    summary = summarise(records, truths)
    report = {"benchmark": "few-shot-curve", "machine": machine(), "options": {"max_test": args.max_test}}
    write_json(args.out, report | {"datasets": summary})
    print_summary(summary)


if __name__ == "__main__":
    main()
