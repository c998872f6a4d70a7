"""Are bertwise's 95 % intervals honest? Later runs against earlier intervals, on disjoint halves of one test set.

``bootstrap_metrics`` gives every reported metric a two-level percentile bootstrap interval: each replay resamples the
test items and picks one of the runs, so the interval claims to show where *one new run on a new test sample of the
same size* lands. This script puts that claim to the test with bertwise's probe on one shared dataset (default
banking77, whose 3,080-text test split halves into two sets of 1,540).

Protocol, repeated for E experiments (default 30), each with its own seeds:

1. Split the test set at random into two disjoint halves A and B (seeded by the experiment number).
2. Earlier run: the probe (``ProbeClassifier(device="cpu")``) at P examples per class (default 8), fitted on R=3
   independent class-balanced training draws (``balanced_subsample``) and evaluated on half A; ``bootstrap_metrics``
   over those R runs (1,000 resamples) gives macro-F1 and accuracy, each a mean and a 95 % interval.
3. Independent later run: one new training draw (another seed), evaluated on half B: one macro-F1 and one accuracy.
4. Record whether the later value falls inside the earlier interval.

Reported per metric: the share of experiments covered beside the nominal 95 %, with a Wilson 95 % interval for that
share (``scipy.stats.binomtest(...).proportion_ci``), and the mean interval width.

How to read the share. Two things move the later value away from the earlier interval's centre: the later run's own
luck (its training draw and half B's items; that is what the interval's width describes) *and* the earlier estimate's
luck (half A's items are shared by all R earlier runs, so averaging runs does not remove it). The bootstrap interval
is centred on the earlier estimate and sized for the first part only, so even a perfectly honest interval covers an
independent later run less often than 95 %: about 83 % when test-item noise dominates (the distance has twice the
variance, and 1.96/sqrt(2) = 1.39 standard deviations cover 83 %), up to about 91 % when run-to-run noise dominates.
A share at or above the honest-design expectation says the intervals are not too narrow; a share well below it says
they are. Two further figures read the width directly, without that offset:

- ``expected if honest``: the share this design gives with an interval exactly as wide as the spread of single runs
  actually observed here (normal approximation: 2 Phi(1.96 x single-run sd / distance sd) - 1). The single-run
  spread comes from different fits on opposite halves: for complementary halves of a random split, the difference of
  two independent runs behaves like that of two runs on independent test samples of half size, so
  var(run i on A - run j on B) / 2, i != j, is the variance of one run on a new test sample, with no bootstrap
  involved. The distance spread (later run - mean of R earlier runs) is measured with every one of the R+1 fits
  playing the later run in turn and both halves playing A, which uses all fits rather than one value per experiment.
- ``sqrt(2)-widened check``: whether the later run lies within sqrt(2) x the interval's half-width of one *single*
  earlier run on A. Two independent single runs differ by sqrt(2) times one run's spread, so if the interval's width
  is honest this covers 95 %: a share well below 95 % means the intervals are too narrow.
- ``bootstrap sd / observed sd``: the interval's half-width / 1.96 over the observed single-run standard deviation;
  1 is honest, below 1 too narrow. With R=3 runs the bootstrap sees the run-to-run variance with divisor R, so a ratio
  a little below 1 is expected.

The embeddings of every train and test text are computed once; each fit reuses them. ``--also-per-class 32`` repeats
everything at 32 examples per class. Results go to benchmarks/results/interval_coverage.json; see
benchmarks/README.md.

    .venv/bin/python benchmarks/interval_coverage.py --also-per-class 32
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

# Both live next to this script; importing either puts the checkout's src/ first on sys.path and sets offline mode.
import accuracy
import mteb_check

REPO_ROOT = mteb_check.REPO_ROOT
METRICS = ("macro_f1", "accuracy")
CONFIDENCE = 0.95


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else REPO_ROOT / "benchmarks" / "results" / "interval_coverage.json"
    folder = Path(args.datasets_dir) / args.dataset
    started = time.perf_counter()
    levels = list(dict.fromkeys([args.per_class, *args.also_per_class]))
    report: dict[str, Any] = {
        "benchmark": "interval_coverage",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": False,
        "machine": accuracy.describe_machine("cpu"),
        "options": {
            "dataset": str(folder.resolve()),
            "experiments": args.experiments,
            "per_class": levels,
            "runs": args.runs,
            "resamples": args.resamples,
            "confidence": CONFIDENCE,
            "seed": args.seed,
            "probe": 'ProbeClassifier(device="cpu"), every other setting at its default',
            "blas_threads": args.blas_threads or "library default",
            "argv": sys.argv[1:] if argv is None else list(argv),
        },
        "levels": {},
    }
    print(f"loading and embedding {folder} (every train and test text, once) ...", flush=True)
    data = mteb_check.embed_dataset(folder)
    report["data"] = {
        "train_rows": len(data.train_texts),
        "test_rows": len(data.test_texts),
        "half_size": len(data.test_texts) // 2,
        "classes": len(data.classes),
        "notes": list(data.notes),
        "encode_seconds": round(data.encode_seconds, 1),
    }
    print(f"embedded {len(data.train_texts)} + {len(data.test_texts)} texts in {data.encode_seconds:.0f}s", flush=True)
    for per_class in levels:
        with mteb_check.blas_threads(args.blas_threads):
            report["levels"][str(per_class)] = run_level(data, per_class, args)
        # Written after every level so a run stopped by a time limit keeps what it measured.
        accuracy.write_json(out, report)
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
    parser.add_argument("--dataset", default="banking77", help="dataset folder name (default banking77)")
    parser.add_argument("--experiments", type=int, default=30, help="independent experiments (default 30)")
    parser.add_argument("--per-class", type=int, default=8, help="training examples per class (default 8)")
    parser.add_argument(
        "--also-per-class", type=int, nargs="*", default=[], metavar="N", help="repeat at these sizes too (e.g. 32)"
    )
    parser.add_argument("--runs", type=int, default=3, help="earlier runs behind each interval (default 3)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the splits and training draws")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads while fitting (default 1; 0 leaves the library default). Multi-threaded OpenBLAS on a "
        "busy 2-core machine made each probe fit ~50x slower",
    )
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/interval_coverage.json)")
    args = parser.parse_args(argv)
    if args.experiments < 1 or args.runs < 2:
        parser.error("--experiments must be >= 1 and --runs >= 2 (one run has no run-to-run spread to resample)")
    if args.per_class < 2 or any(size < 2 for size in args.also_per_class):
        parser.error("examples per class must be at least 2 (the probe cross-validates its C)")
    return args


def run_level(data: mteb_check.Embedded, per_class: int, args: argparse.Namespace) -> dict[str, Any]:
    from bertwise.data.dataset import LabeledTexts
    from bertwise.evaluation.learning_curve import balanced_subsample
    from bertwise.evaluation.statistics import bootstrap_metrics

    pool = LabeledTexts(texts=tuple(data.train_texts), labels=tuple(data.train_labels))
    n_classes = len(data.classes)
    n_test = len(data.test_y)
    half = n_test // 2
    experiments = []
    start = time.perf_counter()
    for number in range(args.experiments):
        # Equal halves (one item left out when n is odd), so A's interval and B's value speak of the same test size.
        order = np.random.default_rng([args.seed, number]).permutation(n_test)
        half_a, half_b = np.sort(order[:half]), np.sort(order[half : 2 * half])
        # R earlier draws and one later draw, all distinct; the size is in the seed so levels draw independently.
        draw_seeds = [
            int(s) for s in np.random.SeedSequence([args.seed, per_class, number]).generate_state(args.runs + 1)
        ]
        predictions = []
        fit_seconds = 0.0
        for draw_seed in draw_seeds:
            rows = balanced_subsample(pool, per_class, draw_seed)
            predicted, details = mteb_check.fit_bertwise_probe(data, rows)
            predictions.append(predicted)
            fit_seconds += details["fit_seconds"]
        runs = np.stack(predictions)
        y_a, y_b = data.test_y[half_a], data.test_y[half_b]
        earlier = bootstrap_metrics(
            y_a, runs[: args.runs][:, half_a], n_classes, resamples=args.resamples, confidence=CONFIDENCE, seed=number
        )
        # Every fit scored on both halves: the raw material of the observed single-run spread.
        on_a = [scores(y_a, run[half_a], n_classes) for run in runs]
        on_b = [scores(y_b, run[half_b], n_classes) for run in runs]
        entry: dict[str, Any] = {"experiment": number, "draw_seeds": draw_seeds, "fit_seconds": round(fit_seconds, 1)}
        for metric in METRICS:
            estimate = earlier[metric]
            later = on_b[args.runs][metric]
            single_earlier = on_a[0][metric]
            low, high = estimate.low, estimate.high  # type: ignore[union-attr]
            entry[metric] = {
                "earlier_mean": estimate.mean,  # type: ignore[union-attr]
                "earlier_low": low,
                "earlier_high": high,
                "later": later,
                "covered": bool(low <= later <= high),
                "miss": "below" if later < low else "above" if later > high else None,
                "widened_covered": bool(abs(later - single_earlier) <= math.sqrt(2) * (high - low) / 2),
                "runs_on_a": [values[metric] for values in on_a],
                "runs_on_b": [values[metric] for values in on_b],
            }
        experiments.append(entry)
        print(
            f"[{per_class}/class] experiment {number + 1}/{args.experiments}: "
            + "; ".join(
                f"{metric} earlier {100 * entry[metric]['earlier_mean']:.2f} "
                f"[{100 * entry[metric]['earlier_low']:.2f}, {100 * entry[metric]['earlier_high']:.2f}] later "
                f"{100 * entry[metric]['later']:.2f} {'in' if entry[metric]['covered'] else 'OUT'}"
                for metric in METRICS
            )
            + f" ({fit_seconds:.0f}s fitting, {time.perf_counter() - start:.0f}s so far)",
            flush=True,
        )
    summary = {metric: summarise(experiments, metric, args.runs) for metric in METRICS}
    return {
        "per_class": per_class,
        "experiments": experiments,
        "summary": summary,
        "seconds": round(time.perf_counter() - start, 1),
    }


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """One run's metrics by bertwise's own definitions, so they match what bootstrap_metrics resamples."""
    from bertwise.evaluation.statistics import confusion_counts, metrics_from_confusion

    values = metrics_from_confusion(confusion_counts(y_true, y_pred, n_classes))
    return {metric: float(values[metric]) for metric in METRICS}


def summarise(experiments: list[dict[str, Any]], metric: str, runs: int) -> dict[str, Any]:
    from scipy import stats

    rows = [entry[metric] for entry in experiments]
    total = len(rows)
    covered = sum(row["covered"] for row in rows)
    widened = sum(row["widened_covered"] for row in rows)
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    widths = np.array([row["earlier_high"] - row["earlier_low"] for row in rows])
    # Observed single-run variance: every pair of distinct fits on opposite halves of the same split (see docstring).
    pair_squares = [
        (row["runs_on_a"][i] - row["runs_on_b"][j]) ** 2
        for row in rows
        for i in range(runs + 1)
        for j in range(runs + 1)
        if i != j
    ]
    single_run_sd = math.sqrt(float(np.mean(pair_squares)) / 2)
    # The distance the check measures (later run - mean of R earlier runs), with every fit of an experiment playing
    # the later run in turn and both halves playing A: 2(R+1) values per experiment instead of one, no model needed.
    rotated_squares = [
        (later_side[k] - (sum(earlier_side) - earlier_side[k]) / runs) ** 2
        for row in rows
        for earlier_side, later_side in ((row["runs_on_a"], row["runs_on_b"]), (row["runs_on_b"], row["runs_on_a"]))
        for k in range(runs + 1)
    ]
    distance_sd = math.sqrt(float(np.mean(rotated_squares)))
    primary_distance_sd = math.sqrt(float(np.mean([(row["later"] - row["earlier_mean"]) ** 2 for row in rows])))
    bootstrap_sd = float(widths.mean()) / (2 * z)
    return {
        "experiments": total,
        "covered": int(covered),
        "share": covered / total,
        "share_wilson_95": wilson(covered, total),
        "share_exact_95": exact(covered, total),
        "misses_below": sum(row["miss"] == "below" for row in rows),
        "misses_above": sum(row["miss"] == "above" for row in rows),
        "nominal": CONFIDENCE,
        "expected_share_if_honest": float(2 * stats.norm.cdf(z * single_run_sd / distance_sd) - 1),
        "widened_covered": int(widened),
        "widened_share": widened / total,
        "widened_share_wilson_95": wilson(widened, total),
        "mean_width": float(widths.mean()),
        # Percentile intervals need not be centred on the estimate; a skew shows up as misses on one side.
        "mean_centre_offset": float(
            np.mean([(row["earlier_low"] + row["earlier_high"]) / 2 - row["earlier_mean"] for row in rows])
        ),
        "bootstrap_sd": bootstrap_sd,
        "observed_single_run_sd": single_run_sd,
        "bootstrap_sd_over_observed_sd": bootstrap_sd / single_run_sd,
        "observed_distance_sd": distance_sd,
        "primary_distance_sd": primary_distance_sd,
        "mean_earlier": float(np.mean([row["earlier_mean"] for row in rows])),
        "mean_later": float(np.mean([row["later"] for row in rows])),
    }


def wilson(successes: int, trials: int) -> list[float]:
    from scipy import stats

    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def exact(successes: int, trials: int) -> list[float]:
    from scipy import stats

    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="exact")
    return [float(interval.low), float(interval.high)]


def markdown_table(report: dict[str, Any]) -> str:
    options, data = report["options"], report["data"]
    lines = [
        f"{Path(options['dataset']).name}: {options['experiments']} experiments per size; earlier = {options['runs']} "
        f"runs on half A ({data['half_size']} texts), 95 % interval from bootstrap_metrics ({options['resamples']} "
        "resamples); later = 1 new run on half B",
        "",
        "| per class | metric | later inside earlier 95 % interval | share [Wilson 95 %] | expected if honest "
        "| sqrt(2)-widened check (target 95 %) | mean width (pts) | interval centre - estimate (pts) "
        "| bootstrap sd / observed sd |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for per_class, level in report["levels"].items():
        for metric in METRICS:
            s = level["summary"][metric]
            low, high = s["share_wilson_95"]
            wlow, whigh = s["widened_share_wilson_95"]
            lines.append(
                f"| {per_class} | {metric} | {s['covered']}/{s['experiments']} "
                f"({s['misses_below']} below, {s['misses_above']} above) | {100 * s['share']:.0f} % "
                f"[{100 * low:.0f}, {100 * high:.0f}] | {100 * s['expected_share_if_honest']:.0f} % | "
                f"{100 * s['widened_share']:.0f} % [{100 * wlow:.0f}, {100 * whigh:.0f}] | "
                f"{100 * s['mean_width']:.2f} | {100 * s['mean_centre_offset']:+.2f} | "
                f"{s['bootstrap_sd_over_observed_sd']:.2f} |"
            )
    lines += [
        "",
        "Nominal 95 %. 'expected if honest': the share this design gives when the interval is exactly as wide as the",
        "observed spread of single runs (the later run and the earlier estimate both carry test-item noise, so it is",
        "below 95 %, about 83 % when item noise dominates). The widened check compares the later run with one earlier",
        "run within sqrt(2) x the half-width; an honest width covers 95 % there. sd ratio 1 = honest, < 1 = too",
        "narrow.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
