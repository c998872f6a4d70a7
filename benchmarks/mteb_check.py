"""bertwise's probe beside MTEB's published Banking77Classification point for all-MiniLM-L6-v2.

MTEB (mteb 1.12.75) scores an embedding model on Banking77 by fitting ``LogisticRegression(max_iter=100)`` (C=1) on
8 examples per label x 77 labels = 616 training texts, drawn 10 times by class-balanced undersampling, and scoring
each fit on the whole test split (3,080 texts). For sentence-transformers/all-MiniLM-L6-v2 it reports accuracy 80.04
(mean of the 10 draws, range 78.90-81.30) and macro-F1 79.38.

This script embeds every train and test text once with bertwise's encoder (the embedded all-MiniLM-L6-v2) and, on
the same 10 draws, runs

- MTEB's recipe, reproduced: ``LogisticRegression(max_iter=100, random_state=seed)`` on the embeddings;
- bertwise's probe: ``ProbeClassifier(device="cpu")`` (C chosen by cross-validation), which reuses the memoised
  embeddings, then ``bootstrap_metrics`` over the 10 runs' test predictions for a mean and a 95 % interval.

It prints the three rows side by side and PASS/FAIL for "bertwise's 8-per-class probe accuracy mean >= 78.9" (the
lowest single draw MTEB published), and writes benchmarks/results/mteb_check.json. See benchmarks/README.md.

    .venv/bin/python benchmarks/mteb_check.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

# A benchmark must measure the local weights it was pointed at, never fetch anything.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
# The working tree's bertwise is what is being measured, whether or not some version is installed in the venv.
sys.path.insert(0, str(REPO_ROOT / "src"))

import accuracy  # noqa: E402 - lives next to this script; reused for the machine description and JSON writing

DEFAULT_DATASET = "banking77"
# mteb 1.12.75's published Banking77Classification test scores for sentence-transformers/all-MiniLM-L6-v2, in %.
PUBLISHED = {
    "source": "mteb 1.12.75 results, sentence-transformers/all-MiniLM-L6-v2, Banking77Classification, test split",
    "accuracy": 80.04,
    "accuracy_min": 78.90,
    "accuracy_max": 81.30,
    "macro_f1": 79.38,
}
# The lowest of MTEB's own 10 draws: a probe that cross-validates C should not average below MTEB's worst draw.
PASS_ACCURACY = 78.9
# MTEB seeds its tasks with 42 (numpy's legacy global generator, which np.random.RandomState(42) reproduces).
MTEB_SEED = 42
MTEB_MAX_ITER = 100
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Embedded:
    """A dataset with integer class codes and one embedding row per text, train and test."""

    classes: list[Any]
    train_texts: list[str]
    train_labels: list[Any]
    train_y: np.ndarray
    train_x: np.ndarray
    test_texts: list[str]
    test_labels: list[Any]
    test_y: np.ndarray
    test_x: np.ndarray
    notes: tuple[str, ...]
    encode_seconds: float


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else REPO_ROOT / "benchmarks" / "results" / "mteb_check.json"
    folder = Path(args.datasets_dir) / args.dataset
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "mteb_check",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": False,
        "machine": accuracy.describe_machine("cpu"),
        "options": {
            "dataset": str(folder.resolve()),
            "draws": args.draws,
            "per_class": args.per_class,
            "seed": args.seed,
            "resamples": args.resamples,
            "bootstrap_seed": BOOTSTRAP_SEED,
            "confidence": 0.95,
            "mteb_recipe": f"LogisticRegression(max_iter={MTEB_MAX_ITER}, random_state=seed), C=1",
            "bertwise_probe": 'ProbeClassifier(device="cpu"), every other setting at its default',
            "blas_threads": args.blas_threads or "library default",
            "argv": sys.argv[1:] if argv is None else list(argv),
        },
        "published": PUBLISHED,
    }
    print(f"loading and embedding {folder} (every train and test text, once) ...", flush=True)
    data = embed_dataset(folder)
    report["data"] = {
        "train_rows": len(data.train_texts),
        "test_rows": len(data.test_texts),
        "classes": len(data.classes),
        "notes": list(data.notes),
        "encode_seconds": round(data.encode_seconds, 1),
        "embedding_dimension": int(data.train_x.shape[1]),
        "sentence_transformers_check": sentence_transformers_agreement(data.test_texts[:64]),
    }
    print(f"embedded {len(data.train_texts)} + {len(data.test_texts)} texts in {data.encode_seconds:.0f}s", flush=True)

    draws = mteb_undersample(data.train_labels, args.per_class, args.draws, args.seed)
    mteb_runs, probe_runs, per_draw = [], [], []
    with blas_threads(args.blas_threads):
        for number, rows in enumerate(draws):
            mteb_pred, mteb_details = fit_mteb_recipe(data, rows, args.seed)
            probe_pred, probe_details = fit_bertwise_probe(data, rows)
            mteb_runs.append(mteb_pred)
            probe_runs.append(probe_pred)
            entry: dict[str, Any] = {
                "draw": number,
                "train_rows": len(rows),
                "per_class_counts": sorted(set(Counter(data.train_labels[i] for i in rows).values())),
                "mteb_recipe": {**single_run_scores(data.test_y, mteb_pred), **mteb_details},
                "bertwise_probe": {**single_run_scores(data.test_y, probe_pred), **probe_details},
            }
            per_draw.append(entry)
            print(
                f"draw {number}: MTEB recipe acc {100 * entry['mteb_recipe']['accuracy']:.2f} "
                f"F1 {100 * entry['mteb_recipe']['macro_f1']:.2f} | bertwise probe acc "
                f"{100 * entry['bertwise_probe']['accuracy']:.2f} F1 {100 * entry['bertwise_probe']['macro_f1']:.2f} "
                f"(C={probe_details['C_']:g}, fit {probe_details['fit_seconds']:.1f}s)",
                flush=True,
            )
    report["draws"] = per_draw
    report["summary"] = {
        "mteb_recipe": summarise(data, np.stack(mteb_runs), args.resamples),
        "bertwise_probe": summarise(data, np.stack(probe_runs), args.resamples),
    }
    probe_accuracy = 100 * report["summary"]["bertwise_probe"]["accuracy"]["mean"]
    report["check"] = {
        "criterion": f"bertwise's {args.per_class}-per-class probe accuracy mean >= {PASS_ACCURACY}",
        "value": round(probe_accuracy, 2),
        "passed": bool(probe_accuracy >= PASS_ACCURACY),
    }
    report["complete"] = True
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    accuracy.write_json(out, report)
    print()
    print(markdown_table(report))
    print(f"\nresults: {out} (total {report['total_seconds']:.0f}s)")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets-dir",
        default=str(REPO_ROOT.parent / "shared" / "datasets"),
        help="folder of dataset folders (default: ../shared/datasets from the repository root)",
    )
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset folder name (default {DEFAULT_DATASET})")
    parser.add_argument("--draws", type=int, default=10, help="class-balanced training draws (default 10, as MTEB)")
    parser.add_argument("--per-class", type=int, default=8, help="training examples per label (default 8, as MTEB)")
    parser.add_argument("--seed", type=int, default=MTEB_SEED, help=f"seeds the draws (default {MTEB_SEED}, MTEB's)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads while fitting logistic regressions (default 1; 0 leaves the library default). "
        "Multi-threaded OpenBLAS on a busy 2-core machine made each probe fit ~50x slower",
    )
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/mteb_check.json)")
    args = parser.parse_args(argv)
    if args.draws < 2 or args.per_class < 2:
        parser.error("--draws and --per-class must be at least 2")
    return args


# --------------------------------------------------------------------------------------------------------------------
# Helpers shared with interval_coverage.py


def embed_dataset(folder: Path) -> Embedded:
    """Read train.csv/test.csv through bertwise and embed every text once with the shared, memoised encoder.

    Later ``ProbeClassifier(device="cpu")`` fits ask the same encoder (same model/pooling/device key) and hit the
    memo, so no draw pays for encoding again.
    """
    from bertwise.backbone.encoder import load_encoder
    from bertwise.data.split import load_split

    split = load_split(folder)
    classes = list(split.classes)
    index = {label: code for code, label in enumerate(classes)}
    encoder = load_encoder(None, "auto", "cpu")
    start = time.perf_counter()
    train_x = encoder.encode(list(split.train.texts))
    test_x = encoder.encode(list(split.test.texts))
    seconds = time.perf_counter() - start
    return Embedded(
        classes=classes,
        train_texts=list(split.train.texts),
        train_labels=list(split.train.labels),
        train_y=np.array([index[label] for label in split.train.labels]),
        train_x=train_x,
        test_texts=list(split.test.texts),
        test_labels=list(split.test.labels),
        test_y=np.array([index[label] for label in split.test.labels]),
        test_x=test_x,
        notes=tuple(split.notes),
        encode_seconds=seconds,
    )


@contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """Cap BLAS threads for the scikit-learn fits (0 = leave them alone); torch's encoder is not affected."""
    if threads <= 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def fit_bertwise_probe(data: Embedded, rows: Sequence[int]) -> tuple[np.ndarray, dict[str, Any]]:
    """bertwise's probe as a user gets it, on the given training rows; predicted class codes on the whole test set."""
    from bertwise.strategies.probe import ProbeClassifier

    index = {label: code for code, label in enumerate(data.classes)}
    probe = ProbeClassifier(device="cpu")
    start = time.perf_counter()
    probe.fit([data.train_texts[i] for i in rows], [data.train_labels[i] for i in rows])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = probe.predict(data.test_texts)
    predict_seconds = time.perf_counter() - start
    codes = np.array([index[label] for label in predicted.tolist()])
    details = {
        "C_": float(probe.C_),
        "cv_scores_": dict(probe.cv_scores_),
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
    }
    return codes, details


def single_run_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
    }


# --------------------------------------------------------------------------------------------------------------------
# MTEB's protocol


def mteb_undersample(labels: Sequence[Any], per_class: int, draws: int, seed: int) -> list[list[int]]:
    """MTEB's class-balanced undersampling: shuffle the row order, keep the first ``per_class`` rows of each label.

    As in mteb 1.12, the same index array is shuffled again for every draw, by numpy's legacy generator seeded once
    (MTEB calls ``np.random.seed(42)`` then ``np.random.shuffle``). The draws equal MTEB's exactly only if the rows
    are in the Hugging Face dataset's order and nothing else consumed random numbers first; either way they are
    draws of the same kind.
    """
    generator = np.random.RandomState(seed)
    order = np.arange(len(labels))
    result = []
    for _ in range(draws):
        generator.shuffle(order)
        taken: Counter[Any] = Counter()
        rows = []
        for row in order.tolist():
            if taken[labels[row]] < per_class:
                rows.append(row)
                taken[labels[row]] += 1
        result.append(rows)
    return result


def fit_mteb_recipe(data: Embedded, rows: Sequence[int], seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """MTEB's classifier on precomputed embeddings. Its ``n_jobs=-1`` is left out: it has no effect on lbfgs."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=MTEB_MAX_ITER, random_state=seed)
    start = time.perf_counter()
    model.fit(data.train_x[list(rows)], data.train_y[list(rows)])
    fit_seconds = time.perf_counter() - start
    iterations = int(np.max(model.n_iter_))
    details = {
        "iterations": iterations,
        "hit_max_iter": iterations >= MTEB_MAX_ITER,
        "fit_seconds": round(fit_seconds, 3),
    }
    return model.predict(data.test_x), details


def sentence_transformers_agreement(texts: Sequence[str]) -> dict[str, Any]:
    """How far bertwise's embeddings are from sentence-transformers' (what MTEB encodes with) on a few texts."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        # The check is a nicety; without the package the comparison still stands on the published numbers.
        return {"texts": 0, "note": "sentence-transformers not installed"}
    from bertwise.backbone.encoder import load_encoder

    encoder = load_encoder(None, "auto", "cpu")
    model = SentenceTransformer(encoder.backbone.path, device="cpu", model_kwargs={"dtype": torch.float32})
    theirs = model.encode(list(texts), batch_size=32, convert_to_numpy=True)
    ours = encoder.encode(list(texts))
    cosine = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    return {
        "texts": len(texts),
        "max_abs_difference": float(np.max(np.abs(ours - theirs))),
        "min_cosine": float(np.min(cosine)),
    }


# --------------------------------------------------------------------------------------------------------------------
# Summaries


def summarise(data: Embedded, runs: np.ndarray, resamples: int) -> dict[str, Any]:
    """Per metric: mean/min/max over draws and bootstrap_metrics' two-level 95 % interval over the draws' runs."""
    from bertwise.evaluation.statistics import bootstrap_metrics

    estimates = bootstrap_metrics(
        data.test_y, runs, len(data.classes), resamples=resamples, confidence=0.95, seed=BOOTSTRAP_SEED
    )
    summary: dict[str, Any] = {}
    for name in ("accuracy", "macro_f1"):
        estimate = estimates[name]
        per_run = np.asarray(estimate.per_run)  # type: ignore[union-attr]
        summary[name] = {
            "mean": float(per_run.mean()),
            "min": float(per_run.min()),
            "max": float(per_run.max()),
            "sd_over_draws": float(per_run.std(ddof=1)),
            "low": estimate.low,  # type: ignore[union-attr]
            "high": estimate.high,  # type: ignore[union-attr]
            "per_run": [float(value) for value in per_run],
        }
    return summary


def markdown_table(report: dict[str, Any]) -> str:
    published = report["published"]
    options = report["options"]
    lines = [
        f"Banking77, {options['per_class']} per label x {report['data']['classes']} labels, {options['draws']} draws, "
        f"test {report['data']['test_rows']} texts; % (interval: bootstrap_metrics 95 %, {options['resamples']} "
        "resamples over test items and draws)",
        "",
        "| | accuracy mean | accuracy 95 % interval | accuracy min-max | macro-F1 mean | macro-F1 95 % interval |",
        "|---|---|---|---|---|---|",
        f"| MTEB published (mteb 1.12.75) | {published['accuracy']:.2f} | - | "
        f"{published['accuracy_min']:.2f}-{published['accuracy_max']:.2f} | {published['macro_f1']:.2f} | - |",
    ]
    titles = {"mteb_recipe": "MTEB recipe reproduced here", "bertwise_probe": "bertwise probe"}
    for key, title in titles.items():
        acc, f1 = report["summary"][key]["accuracy"], report["summary"][key]["macro_f1"]
        lines.append(
            f"| {title} | {100 * acc['mean']:.2f} | [{100 * acc['low']:.2f}, {100 * acc['high']:.2f}] | "
            f"{100 * acc['min']:.2f}-{100 * acc['max']:.2f} | {100 * f1['mean']:.2f} | "
            f"[{100 * f1['low']:.2f}, {100 * f1['high']:.2f}] |"
        )
    check = report["check"]
    chosen = Counter(f"{draw['bertwise_probe']['C_']:g}" for draw in report["draws"])
    lines += [
        "",
        f"bertwise probe's chosen C over the draws: {dict(sorted(chosen.items(), key=lambda item: float(item[0])))}",
        f"{'PASS' if check['passed'] else 'FAIL'}: {check['criterion']} (got {check['value']:.2f})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
