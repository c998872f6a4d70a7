"""Uncertainty for every number bertwise reports: bootstrap intervals and paired comparisons (learning-curve
forecasts, built on these, are in :mod:`bertwise.evaluation.curve_fit`).

Everything here is a pure function of integer-encoded label arrays (classes 0..K-1), so it can be tested against
scikit-learn and against simulations with a known truth.

Terms used throughout:

* a *run* is one fit's predictions on the ``n`` test items; a strategy evaluated with several seeds (or on several
  training subsamples) has ``R`` runs, stored as an ``(R, n)`` array;
* the reported value of a metric is the plain mean over runs of the metric computed on all ``n`` test items;
* the interval around it comes from a two-level (hierarchical) percentile bootstrap, so it reflects both the luck of
  which test items were drawn and the luck of the seed (or training subsample).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall")

# Upper bound on the elements of one bootstrap chunk's (chunk, n) index matrix and (chunk, K, K) confusion stack: large
# enough that numpy's per-call overhead vanishes, small enough that n=20k or K=100 never needs hundreds of megabytes.
_CHUNK_ELEMENTS = 2_000_000


# --------------------------------------------------------------------------------------------------------------------
# Metrics from confusion matrices


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Count (true class, predicted class) pairs into a K x K matrix: rows are true classes, columns predictions.

    ``weights`` gives each test item a multiplicity, which is how a bootstrap resample (where an item may be drawn
    zero, one or several times) is expressed without copying predictions. Integer weights give integer counts.
    """
    true = _labels(y_true, n_classes, "y_true")
    pred = _labels(y_pred, n_classes, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.shape[0]} items but y_pred has {pred.shape[0]}")
    codes = true * n_classes + pred
    if weights is None:
        return np.bincount(codes, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    weight = np.asarray(weights)
    if weight.shape != true.shape:
        raise ValueError(f"weights must have one entry per item ({true.shape[0]}), got shape {weight.shape}")
    counts = np.bincount(codes, weights=weight, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    # bincount always sums weights in float64; integer multiplicities should stay integer counts.
    if np.issubdtype(weight.dtype, np.integer):
        return np.rint(counts).astype(np.int64)
    return counts


def metrics_from_confusion(confusion: np.ndarray) -> dict[str, np.ndarray | float]:
    """Accuracy, macro/weighted F1, macro precision and macro recall from one confusion matrix or a stack of them.

    The definitions are scikit-learn's defaults: a class takes part in the macro averages when it occurs among the
    true labels or among the predictions (a class that never appears in either is ignored rather than counted as a
    zero), a ratio with a zero denominator counts as 0 (``zero_division=0``), and weighted F1 weights each class's F1
    by its number of true items. ``per_class_f1`` has one entry for every one of the K classes, 0 for a class that
    never appears.

    A ``(K, K)`` input gives floats (and a ``(K,)`` per-class array); a ``(B, K, K)`` stack gives arrays of shape
    ``(B,)`` (and ``(B, K)``), which is how all bootstrap replicates are scored in one pass.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    if matrix.ndim not in (2, 3) or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"confusion must have shape (K, K) or (B, K, K), got {matrix.shape}")
    single = matrix.ndim == 2
    batch = matrix[np.newaxis] if single else matrix

    true_positive = np.diagonal(batch, axis1=1, axis2=2)
    support = batch.sum(axis=2)  # items whose true label is the class
    predicted = batch.sum(axis=1)  # items predicted as the class
    total = support.sum(axis=1)
    present = (support + predicted) > 0
    n_present = present.sum(axis=1)

    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    # 2TP / (2TP + FP + FN) equals the harmonic mean of precision and recall without dividing twice.
    f1 = _safe_divide(2.0 * true_positive, support + predicted)

    values: dict[str, np.ndarray] = {
        "accuracy": _safe_divide(true_positive.sum(axis=1), total),
        "macro_f1": _safe_divide((f1 * present).sum(axis=1), n_present),
        "weighted_f1": _safe_divide((f1 * support).sum(axis=1), total),
        "macro_precision": _safe_divide((precision * present).sum(axis=1), n_present),
        "macro_recall": _safe_divide((recall * present).sum(axis=1), n_present),
    }
    result: dict[str, np.ndarray | float] = {}
    for name, value in values.items():
        result[name] = float(value[0]) if single else value
    result["per_class_f1"] = f1[0] if single else f1
    return result


# --------------------------------------------------------------------------------------------------------------------
# Bootstrap intervals for one strategy and for the difference between two


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its interval: ``mean`` over runs on all items, ``low``/``high`` the bootstrap bounds."""

    mean: float
    low: float
    high: float
    per_run: tuple[float, ...]


@dataclass(frozen=True)
class PairedDifference:
    """Strategy a minus strategy b on one metric, with its paired-bootstrap interval and p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    significant: bool


def bootstrap_metrics(
    y_true: np.ndarray,
    runs: np.ndarray,
    n_classes: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate | list[Estimate]]:
    """Every metric in METRICS, and the F1 of each class, with a two-level percentile bootstrap interval.

    Method, in plain words. The reported value is the average over the runs of the metric computed on all test
    items. For the interval we build ``resamples`` imaginary replays of the experiment. Each replay (1) draws n test
    items with replacement from the n we have, i.e. gives every item a multinomial count of how often it was drawn,
    and (2) when there are several runs, picks one of them at random, standing in for "a different seed" (or "a
    different training subsample"). The metric is computed on that run's predictions for the drawn items. The middle
    ``confidence`` share of the replayed values is the interval. It therefore says how much the number could move with
    another test set of the same size *and* another seed, not just the former; with a single run it covers test-set
    sampling only.

    The interval keeps the replays' width but is re-centred on the estimate: macro F1 computed on a resample with
    repeated items comes out low (rare classes lose distinct items), which left plain percentile intervals about 0.4
    points below the estimate on BANKING77 and made later runs miss them upward (benchmarks/interval_coverage.py).
    Results are deterministic for a given ``seed``.
    """
    true, predictions = _check_runs(y_true, runs, n_classes, "runs")
    check_resampling(resamples, confidence)
    full = metrics_from_confusion(_run_confusions(true, predictions, n_classes))
    replicates = _bootstrap_replicates(true, [predictions], n_classes, resamples, seed)[0]

    result: dict[str, Estimate | list[Estimate]] = {}
    for name in METRICS:
        per_run = np.asarray(full[name])
        low, high = _recentred_interval(replicates[name], float(per_run.mean()), confidence)
        result[name] = Estimate(
            mean=float(per_run.mean()), low=low, high=high, per_run=tuple(float(v) for v in per_run)
        )
    per_class_runs = np.asarray(full["per_class_f1"])  # (R, K)
    per_class_low, per_class_high = _recentred_bounds(
        replicates["per_class_f1"], per_class_runs.mean(axis=0), confidence
    )
    result["per_class_f1"] = [
        Estimate(
            mean=float(per_class_runs[:, k].mean()),
            low=float(per_class_low[k]),
            high=float(per_class_high[k]),
            per_run=tuple(float(v) for v in per_class_runs[:, k]),
        )
        for k in range(n_classes)
    ]
    return result


def paired_bootstrap(
    y_true: np.ndarray,
    runs_a: np.ndarray,
    runs_b: np.ndarray,
    n_classes: int,
    *,
    metric: str = "macro_f1",
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Is strategy a better than strategy b on this test set? A paired, two-level bootstrap of the difference a - b.

    Method, in plain words. The reported difference is (mean over a's runs of the metric) minus (mean over b's runs),
    both on all test items. Each bootstrap replay draws one set of test items with replacement and scores *both*
    strategies on that same set; this pairing cancels out the shared luck of easy or hard items, so a real but small
    difference is not drowned by item-sampling noise that affects both equally. Within the replay each strategy
    independently picks one of its own runs at random, so seed-to-seed variation of either strategy widens the
    interval. The interval is the middle ``confidence`` share of the replayed differences (re-centred on the observed
    difference as in ``bootstrap_metrics``) and the result is ``significant`` when that interval excludes zero.

    The two-sided p-value for "no difference" is twice the smaller of the shares of replayed differences at or below
    zero and at or above zero, capped at 1. A bootstrap with B replays cannot resolve probabilities below 1/(B+1), so
    that is the smallest p-value reported.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    true, predictions_a = _check_runs(y_true, runs_a, n_classes, "runs_a")
    _, predictions_b = _check_runs(y_true, runs_b, n_classes, "runs_b")
    check_resampling(resamples, confidence)

    mean_a = float(np.mean(metrics_from_confusion(_run_confusions(true, predictions_a, n_classes))[metric]))
    mean_b = float(np.mean(metrics_from_confusion(_run_confusions(true, predictions_b, n_classes))[metric]))
    replicates_a, replicates_b = _bootstrap_replicates(true, [predictions_a, predictions_b], n_classes, resamples, seed)
    differences = replicates_a[metric] - replicates_b[metric]
    # Re-centred like the interval, so that "significant" and the p-value always agree.
    differences = differences + (mean_a - mean_b) - float(np.median(differences))

    low, high = _recentred_interval(differences, mean_a - mean_b, confidence, floor=-1.0)
    at_or_below = float(np.mean(differences <= 0.0))
    at_or_above = float(np.mean(differences >= 0.0))
    p_value = min(1.0, max(2.0 * min(at_or_below, at_or_above), 1.0 / (resamples + 1)))
    return PairedDifference(
        difference=mean_a - mean_b, low=low, high=high, p_value=p_value, significant=bool(low > 0.0 or high < 0.0)
    )


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Exact two-sided McNemar p-value for one run of each strategy on the same test items.

    Only the items where exactly one of the two strategies is right carry information about which is better. If the
    strategies were equally good, each such item would be equally likely to favour either, so the count favouring a
    follows a Binomial(discordant, 1/2); the p-value is that binomial test's. With no discordant items there is no
    evidence either way and the p-value is 1. This looks at accuracy of single runs only, so it is a secondary check
    next to ``paired_bootstrap``.
    """
    true = np.asarray(y_true).ravel()
    a = np.asarray(pred_a).ravel()
    b = np.asarray(pred_b).ravel()
    if not (true.shape == a.shape == b.shape):
        raise ValueError("y_true, pred_a and pred_b must have the same number of items")
    correct_a = a == true
    correct_b = b == true
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)


# --------------------------------------------------------------------------------------------------------------------
# Private helpers


def _labels(values: np.ndarray, n_classes: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return _check_codes(array, n_classes, name)


def _check_codes(array: np.ndarray, n_classes: int, name: str) -> np.ndarray:
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class codes, got dtype {array.dtype}")
    codes = array.astype(np.int64, copy=False)
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(f"{name} holds class codes outside 0..{n_classes - 1}")
    return codes


def _check_runs(y_true: np.ndarray, runs: np.ndarray, n_classes: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    true = _labels(y_true, n_classes, "y_true")
    if true.size == 0:
        raise ValueError("y_true is empty")
    predictions = np.asarray(runs)
    # A single run passed as a flat array is the common case for deterministic strategies such as zero-shot.
    if predictions.ndim == 1:
        predictions = predictions[np.newaxis]
    if predictions.ndim != 2 or predictions.shape[0] == 0 or predictions.shape[1] != true.size:
        raise ValueError(f"{name} must have shape (R, {true.size}) with R >= 1, got {np.asarray(runs).shape}")
    return true, _check_codes(predictions, n_classes, name)


def check_resampling(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with 0 wherever the denominator is 0 (scikit-learn's zero_division=0)."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _run_confusions(y_true: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """One confusion matrix per run, shape (R, K, K), on all test items."""
    return np.stack([confusion_counts(y_true, run, n_classes) for run in predictions])


def _replicate_chunks(rng: np.random.Generator, n: int, n_classes: int, resamples: int) -> Iterator[np.ndarray]:
    """Item draws for all replicates, in chunks that keep the index matrix and confusion stack memory-bounded.

    Drawing n indices with replacement is the same as giving each item a Multinomial(n, 1/n) count, but it lets the
    weighted confusion matrices of a whole chunk be built by a single bincount.
    """
    chunk = max(1, _CHUNK_ELEMENTS // max(n, n_classes * n_classes))
    for start in range(0, resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, resamples - start), n))


def _bootstrap_replicates(
    y_true: np.ndarray, run_sets: Sequence[np.ndarray], n_classes: int, resamples: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Metrics of every bootstrap replicate for each of the given strategies, all sharing the same item draws."""
    rng = np.random.default_rng(seed)
    cells = n_classes * n_classes
    codes = [y_true[np.newaxis, :] * n_classes + runs for runs in run_sets]  # (R, n) pair codes per strategy
    # Each strategy picks its run per replicate independently; a single run needs no draw.
    choices = [
        rng.integers(0, runs.shape[0], size=resamples) if runs.shape[0] > 1 else np.zeros(resamples, dtype=np.int64)
        for runs in run_sets
    ]
    collected: list[dict[str, list[np.ndarray]]] = [{} for _ in run_sets]
    start = 0
    for items in _replicate_chunks(rng, y_true.size, n_classes, resamples):
        size = items.shape[0]
        offsets = (np.arange(size, dtype=np.int64) * cells)[:, np.newaxis]
        for strategy, (pair_codes, choice) in enumerate(zip(codes, choices, strict=True)):
            drawn = pair_codes[choice[start : start + size, np.newaxis], items] + offsets
            confusions = np.bincount(drawn.ravel(), minlength=size * cells).reshape(size, n_classes, n_classes)
            for name, value in metrics_from_confusion(confusions).items():
                collected[strategy].setdefault(name, []).append(np.asarray(value))
        start += size
    return [{name: np.concatenate(parts) for name, parts in per_strategy.items()} for per_strategy in collected]


def percentile_bounds(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail], axis=0)
    return low, high


def _recentred_bounds(
    values: np.ndarray, estimate: np.ndarray | float, confidence: float, *, floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds of ``values`` (B,) or (B, K), shifted so that the replays' median sits on ``estimate``.

    A resample repeats some items and drops others, so a metric like macro F1 comes out lower on resamples than on
    the real test set (a rare class keeps fewer distinct items). That bias belongs to the resampling, not to another
    real test set, so the interval keeps the replays' width and moves their centre back to the estimate. (Efron's
    bias-corrected percentiles would move it further, reading the artefact as a bias of the estimate itself.)
    """
    values = np.asarray(values, dtype=float)
    shift = np.asarray(estimate, dtype=float) - np.median(values, axis=0)
    low, high = percentile_bounds(values, confidence)
    return np.clip(low + shift, floor, 1.0), np.clip(high + shift, floor, 1.0)


def _recentred_interval(
    values: np.ndarray, estimate: float, confidence: float, *, floor: float = 0.0
) -> tuple[float, float]:
    low, high = _recentred_bounds(values, estimate, confidence, floor=floor)
    return float(low), float(high)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    low, high = percentile_bounds(values, confidence)
    return float(low), float(high)
