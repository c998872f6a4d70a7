"""How a comparison is evaluated: which rows train which model, which rows test it, and with which seeds.

Every scheme reduces to the same shape: a list of folds, each a (training rows, test rows) pair over the split, whose
test rows together cover the evaluation set exactly once. A "run" of a strategy is one pass over all folds with one
seed, so every run predicts every evaluation row once and runs of different strategies can be compared item by item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit


@dataclass(frozen=True)
class Fold:
    train_rows: tuple[int, ...]  # rows of split.train
    test_rows: tuple[int, ...]  # rows of split.test


@dataclass(frozen=True)
class Protocol:
    scheme: str  # "fixed-test", "holdout" or "cross-validation"
    folds: tuple[Fold, ...]
    seeds: tuple[int, ...]  # one run per seed for seed-dependent strategies; seed-free ones use seeds[0] only
    why: str

    def seeds_for(self, seed_dependent: bool) -> tuple[int, ...]:
        return self.seeds if seed_dependent else self.seeds[:1]

    def fits_per_run(self) -> int:
        return len(self.folds)

    def to_dict(self, *, test_rows: int, resamples: int, confidence: float) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "folds": len(self.folds) if self.scheme == "cross-validation" else None,
            "seeds": list(self.seeds),
            "test_rows": test_rows,
            "why": self.why,
            "interval": INTERVAL_METHOD,
            "paired": PAIRED_METHOD,
            "confidence": confidence,
            "bootstrap_resamples": resamples,
        }


INTERVAL_METHOD = (
    "two-level percentile bootstrap: each resample draws the test items with replacement and one of the strategy's "
    "runs (seeds) at random, so the interval covers both which test items happened to be chosen and seed-to-seed "
    "variation; the reported value is the plain mean over runs"
)
PAIRED_METHOD = (
    "paired bootstrap: both strategies are scored on the same resampled test items in every resample, so the "
    "difference's interval excludes the item-to-item variation they share"
)


def choose_protocol(split: DataSplit, config: CompareConfig, *, folds: int | None = None) -> Protocol:
    """Fixed test set when there is one; stratified k-fold cross-validation when the split says so."""
    everything = tuple(range(len(split.train)))
    cross_validate = split.test_origin == "cross-validation"
    runs = config.seeds if config.seeds is not None else (1 if cross_validate else 3)
    seeds = tuple(config.seed + offset for offset in range(runs))
    if cross_validate:
        k = _fold_count(split, folds or config.folds)
        return Protocol(
            scheme="cross-validation",
            folds=stratified_folds(split, k, config.seed),
            seeds=seeds,
            why=(
                f"{len(split.train)} rows and no test file: {k}-fold stratified cross-validation tests every row "
                f"once, where a single {config.test_size:g} hold-out would test only "
                f"{round(config.test_size * len(split.train))} rows and leave wide intervals"
            ),
        )
    test_rows = tuple(range(len(split.test)))
    if split.test_origin == "held-out":
        why = (
            f"no test file, but {len(split.train) + len(split.test)} rows: one stratified hold-out of "
            f"{len(split.test)} rows is large enough for narrow intervals, at a fraction of k-fold's training cost"
        )
        scheme = "holdout"
    else:
        why = "the test file is used as given, so scores speak of the data you will meet"
        scheme = "fixed-test"
    return Protocol(scheme=scheme, folds=(Fold(everything, test_rows),), seeds=seeds, why=why)


def _fold_count(split: DataSplit, wanted: int) -> int:
    smallest = min(split.train.class_counts().values())
    return max(2, min(wanted, smallest))


def stratified_folds(split: DataSplit, k: int, seed: int) -> tuple[Fold, ...]:
    """``k`` stratified folds of the training rows, shuffled with ``seed`` (a budget re-folds with fewer)."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.array([str(label) for label in split.train.labels])
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return tuple(
        Fold(tuple(int(i) for i in train), tuple(int(i) for i in test))
        for train, test in splitter.split(np.zeros(len(labels)), labels)
    )
