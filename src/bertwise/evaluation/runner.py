"""Run one strategy under the evaluation protocol: every seed over every fold, then its scores with intervals."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as Interface

import numpy as np

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, Label, LabeledTexts
from bertwise.evaluation.cost import measure
from bertwise.evaluation.protocol import Protocol
from bertwise.evaluation.race import Race
from bertwise.exceptions import BertwiseError
from bertwise.strategies.registry import build_strategy
from bertwise.strategies.state import jsonable
from bertwise.util.kill_hook import kill_point as test_hook

SCHEMA_VERSION = 2
# Column names of predictions-<name>.csv, shared with `bertwise predict`'s output so both files read the same way.
PREDICTED_LABEL_COLUMN = "predicted_label"
PROBABILITY_PREFIX = "proba_"
# A strategy's prediction time is measured on at most this many test texts (a spread of a larger test set), encoded
# afresh: enough batches for a steady rate, and seconds rather than minutes of extra encoding on a large test set.
PREDICT_TIMING_TEXTS = 256
_WARM_UP_TEXT = "warm-up"


@dataclass
class Fit:
    """One strategy fitted on one training set and applied to one test set."""

    probabilities: np.ndarray  # (test rows, classes), columns in the split's class order
    fit_seconds: float
    predict_seconds: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    params: dict[str, Any]
    details: dict[str, Any]
    # The fitted strategy itself, only when asked for (``keep``: ``compare --save-best`` saves the model that made the
    # reported predictions); otherwise None, so that no fitted network outlives its evaluation.
    estimator: Any = None
    # The training step a checkpoint let this fit resume from (a killed run's fine-tuning); None: from the start.
    resumed_from_step: int | None = None


class FitStore(Interface):
    """Where a stage keeps each fit it finished, so that a stage killed halfway resumes fit by fit (the run cache).

    ``fit_id`` names a fit within its stage (seed and fold, or curve point and repeat); ``checkpoint`` is where an
    unfinished fit may keep its training checkpoint (fine-tuning does).
    """

    def load(self, fit_id: str) -> Fit | None: ...

    def save(self, fit_id: str, fit: Fit) -> None: ...

    def checkpoint(self, fit_id: str) -> Path: ...


def stored_fit(store: FitStore | None, fit_id: str, *, kill_point: str, **fit_args: Any) -> Fit:
    """The fit ``fit_id`` taken back from ``store``, or ``fit_predict(**fit_args)`` kept there once it is done (and
    checkpointed there while it trains). ``kill_point`` names the place, just after the fit is kept, for
    :mod:`bertwise.util.kill_hook`."""
    kept = store.load(fit_id) if store is not None else None
    if kept is not None:
        return kept
    fit = fit_predict(**fit_args, checkpoint=store.checkpoint(fit_id) if store is not None else None)
    if store is not None:
        store.save(fit_id, fit)
        test_hook(kill_point)
    return fit


def fit_predict(
    name: str,
    config: CompareConfig,
    train: LabeledTexts,
    test_texts: Sequence[str],
    classes: Sequence[Label],
    *,
    seed: int,
    overrides: dict[str, Any] | None = None,
    fresh: bool = True,
    progress: bool = False,
    keep: bool = False,
    checkpoint: Path | None = None,
    monitor: Any = None,
) -> Fit:
    """Fit ``name`` on ``train`` and predict ``test_texts``, timing and measuring both.

    ``fresh`` drops remembered embeddings first, so the cost is what the strategy costs when run alone; the
    learning curve passes False so that every probe point reuses the embeddings computed once. ``keep`` returns the
    fitted strategy in ``Fit.estimator``. ``checkpoint``: where a strategy that checkpoints its training (fine-tuning)
    keeps it, and resumes from it. ``monitor``: called by a strategy that trains in steps at each validation, and may
    end its training early (the sequential protocol's early look, or the budget's deadline).
    """
    from bertwise.backbone.encoder import forget_embeddings, replayed_encoding_seconds

    if fresh:
        forget_embeddings()
    strategy = build_strategy(name, dataclasses.replace(config, seed=seed), progress=progress)
    if overrides:
        strategy.set_params(**overrides)
    if checkpoint is not None and hasattr(strategy, "checkpoint_path"):
        strategy.checkpoint_path = checkpoint
    if monitor is not None and hasattr(strategy, "monitor"):
        strategy.monitor = monitor
    params = {key: jsonable(value) for key, value in strategy.get_params().items() if key != "progress"}
    replayed_before = replayed_encoding_seconds()
    with measure() as fit_cost:
        strategy.fit(list(train.texts), list(train.labels))
    replayed_in_fit = replayed_encoding_seconds() - replayed_before
    # A fit resumed from a checkpoint cost its earlier part too: the cost is the whole fit's, as if never killed.
    fit_cost.seconds += getattr(strategy, "resumed_seconds_", 0.0)
    if fresh:
        # Embeddings served by the disk cache cost nothing now, but a user running this strategy alone pays for
        # them: their recorded encoding seconds are added back, so costs do not depend on what ran before.
        fit_cost.seconds += replayed_in_fit
        fitted, predict_cost = _timed_prediction(strategy, list(test_texts))
    else:
        with measure() as predict_cost:
            fitted = strategy.predict_proba(list(test_texts))
    # A training subset may lack a class; its column stays zero so every fit's columns line up.
    column = {label: position for position, label in enumerate(classes)}
    probabilities = np.zeros((len(test_texts), len(classes)))
    for source, label in enumerate(strategy.classes_.tolist()):
        probabilities[:, column[label]] = fitted[:, source]
    peak_gpu = None
    if fit_cost.peak_gpu_mb is not None and predict_cost.peak_gpu_mb is not None:
        peak_gpu = max(fit_cost.peak_gpu_mb, predict_cost.peak_gpu_mb)
    return Fit(
        probabilities=probabilities,
        fit_seconds=fit_cost.seconds,
        predict_seconds=predict_cost.seconds,
        peak_rss_mb=max(fit_cost.peak_rss_mb, predict_cost.peak_rss_mb),
        peak_gpu_mb=peak_gpu,
        params=params,
        details=strategy.fit_details(),
        estimator=strategy if keep else None,
        resumed_from_step=getattr(strategy, "resumed_from_step_", None),
    )


def _timed_prediction(strategy: Any, texts: list[str]) -> tuple[np.ndarray, Any]:
    """The strategy's probabilities for ``texts`` and the measured cost of predicting them (seconds for all of them).

    The time is this strategy's own work, measured now: the disk cache of embeddings is off while it is timed.
    Replaying the seconds that cached embeddings once cost would copy a measurement made by whichever strategy (or
    earlier run) encoded the texts first, so two strategies could report one and the same number. One text is
    predicted first, untimed, so that one-time work (encoding zero-shot's label descriptions, building a pipeline)
    is not counted per text. Up to ``PREDICT_TIMING_TEXTS`` texts are timed; of a larger set, a spread of that many
    is timed and the time scaled to all of them.
    """
    from bertwise.backbone.cache import use_cache_dir
    from bertwise.backbone.encoder import forget_embeddings

    if len(texts) <= PREDICT_TIMING_TEXTS:
        with use_cache_dir(None):
            strategy.predict_proba([_WARM_UP_TEXT])
            with measure() as cost:
                probabilities = strategy.predict_proba(texts)
        return probabilities, cost
    # The predictions first, batched as always (a saved model gives the same vectors); then the timing, on
    # embeddings no longer remembered.
    with measure() as cost:
        probabilities = strategy.predict_proba(texts)
    rows = np.linspace(0, len(texts) - 1, PREDICT_TIMING_TEXTS).round().astype(int)
    forget_embeddings()
    with use_cache_dir(None):
        strategy.predict_proba([_WARM_UP_TEXT])
        with measure() as timing:
            strategy.predict_proba([texts[row] for row in rows])
    cost.seconds = timing.seconds * len(texts) / PREDICT_TIMING_TEXTS
    return probabilities, cost


@dataclass
class StrategyResult:
    name: str
    status: str  # "ok" or "failed"
    params: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_interval: dict[str, list[float]] = field(default_factory=dict)
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_matrix: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # The first run's predicted labels and probabilities (written to predictions-<name>.csv).
    predictions: np.ndarray | None = field(default=None, repr=False)
    probabilities: np.ndarray | None = field(default=None, repr=False)
    # Every run's predicted class indices, (runs, test rows): what the paired comparisons resample.
    run_predictions: np.ndarray | None = field(default=None, repr=False)
    # The first run's first fitted model, when evaluate_strategy was asked to keep it; never in results.json.
    estimator: Any = field(default=None, repr=False)
    # The sequential protocol's record (evaluation.race.Race.to_dict): runs planned and done, looks, why it stopped.
    stopping: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "params": self.params,
            "details": self.details,
            "metrics": self.metrics,
            "metrics_interval": self.metrics_interval,
            "per_class": self.per_class,
            "confusion_matrix": self.confusion_matrix,
            "runs": self.runs,
            "cost": self.cost,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.stopping is not None:
            data["stopping"] = self.stopping
        if self.status == "ok":
            data["predictions_file"] = f"predictions-{self.name}.csv"
        return data

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        classes: Sequence[Label] | None = None,
        probabilities: np.ndarray | None = None,
        run_predictions: np.ndarray | None = None,
    ) -> StrategyResult:
        """The result whose :meth:`to_dict` is ``data``; raises ValueError when ``data`` is not one.

        ``to_dict`` leaves the arrays out: pass ``run_predictions`` (and the split's ``classes``, which turn the first
        run's indices back into labels) and ``probabilities`` for a result that pairs and writes predictions as the
        original did. ``predictions_file`` is derived from the name and status, so it is not read.
        """
        expected: dict[str, type] = {
            "name": str,
            "status": str,
            "params": dict,
            "details": dict,
            "metrics": dict,
            "metrics_interval": dict,
            "per_class": dict,
            "confusion_matrix": dict,
            "runs": list,
            "cost": dict,
        }
        for key, kind in expected.items():
            if not isinstance(data.get(key), kind):
                raise ValueError(f"not a strategy result: {key!r} should be a {kind.__name__}, found {data.get(key)!r}")
        error = data.get("error")
        if error is not None and not isinstance(error, str):
            raise ValueError(f"not a strategy result: 'error' should be a str, found {error!r}")
        stopping = data.get("stopping")
        if stopping is not None and not isinstance(stopping, dict):
            raise ValueError(f"not a strategy result: 'stopping' should be a dict, found {stopping!r}")
        predictions = None
        if run_predictions is not None and classes is not None:
            predictions = np.array(list(classes), dtype=object)[run_predictions[0]]
        return cls(
            name=data["name"],
            status=data["status"],
            params=copy.deepcopy(data["params"]),
            details=copy.deepcopy(data["details"]),
            metrics=copy.deepcopy(data["metrics"]),
            metrics_interval=copy.deepcopy(data["metrics_interval"]),
            per_class=copy.deepcopy(data["per_class"]),
            confusion_matrix=copy.deepcopy(data["confusion_matrix"]),
            runs=copy.deepcopy(data["runs"]),
            cost=copy.deepcopy(data["cost"]),
            error=error,
            stopping=copy.deepcopy(stopping),
            predictions=predictions,
            probabilities=probabilities,
            run_predictions=run_predictions,
        )


def evaluate_strategy(
    name: str,
    split: DataSplit,
    protocol: Protocol,
    config: CompareConfig,
    *,
    seed_dependent: bool,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
    on_fit: Callable[[str, int, int, float], None] | None = None,
    keep: bool = False,
    store: FitStore | None = None,
    race: Race | None = None,
) -> tuple[StrategyResult, list[list[np.ndarray]]]:
    """All runs of one strategy; also each run's per-fold probabilities (the learning curve reuses fold 0's).

    ``on_fit(name, seed, fold, seconds)`` is called after every fit, for progress reporting. ``keep`` keeps the
    first run's first fitted model (the one whose predictions fill ``predictions-<name>.csv`` on a single test set)
    in ``StrategyResult.estimator``; a fit taken back from ``store`` has none. ``store`` keeps every finished fit
    and gives back those an earlier, killed evaluation finished. ``race`` (the sequential protocol, or a budget's
    deadline) may end the runs before every seed has run; its record is the result's ``stopping``.
    """
    try:
        runs = _run_all(
            name,
            split,
            protocol,
            config,
            protocol.seeds_for(seed_dependent),
            overrides=overrides,
            progress=progress,
            on_fit=on_fit,
            keep=keep,
            store=store,
            race=race,
        )
    except BertwiseError as error:
        return StrategyResult(name=name, status="failed", error=str(error)), []

    classes = split.classes
    summary = summarize_runs(split.test.labels, runs.run_predictions, classes, config)
    for record, scores in zip(runs.records, summary.pop("per_run"), strict=True):
        record["metrics"] = scores
    first = runs.fits[0]
    class_array = np.array(classes, dtype=object)
    return (
        StrategyResult(
            name=name,
            status="ok",
            params=first.params,
            details=first.details,
            runs=runs.records,
            cost=_cost(runs.fits, n_predicted=len(protocol.folds[0].test_rows)),
            predictions=class_array[runs.run_predictions[0]],
            probabilities=runs.first_probabilities,
            run_predictions=runs.run_predictions,
            estimator=first.estimator,
            stopping=race.to_dict() if race is not None else None,
            **summary,
        ),
        runs.fold_probabilities,
    )


@dataclass
class _Runs:
    """Every fit of one strategy's evaluation, in order, and what its runs predicted."""

    fits: list[Fit]
    records: list[dict[str, Any]]  # one per seed: the seed and its fit seconds (results.json's "runs")
    run_predictions: np.ndarray  # (runs, test rows) predicted class indices
    first_probabilities: np.ndarray  # (test rows, classes) of the first run
    fold_probabilities: list[list[np.ndarray]]  # per run, per fold


def _run_all(
    name: str,
    split: DataSplit,
    protocol: Protocol,
    config: CompareConfig,
    seeds: Sequence[int],
    *,
    overrides: dict[str, Any] | None,
    progress: bool,
    on_fit: Callable[[str, int, int, float], None] | None,
    keep: bool,
    store: FitStore | None,
    race: Race | None = None,
) -> _Runs:
    """Fits ``name`` for every seed over every fold (fewer when ``race`` ends the runs); raises the first
    BertwiseError a fit raises."""
    n_test = len(split.test)
    runs = _Runs(
        fits=[],
        records=[],
        run_predictions=np.zeros((len(seeds), n_test), dtype=np.int64),
        first_probabilities=np.zeros((n_test, len(split.classes))),
        fold_probabilities=[],
    )
    for run, seed in enumerate(seeds):
        if race is not None and not race.before_run(run, protocol.folds):
            break
        per_fold: list[np.ndarray] = []
        fit_seconds = 0.0
        for fold_number, fold in enumerate(protocol.folds):
            # Each fold of a run gets its own seed, so cross-validation also samples seed variation.
            fold_seed = seed + 1000 * fold_number
            fit = stored_fit(
                store,
                f"seed-{seed}-fold-{fold_number}",
                kill_point=f"{name} fit",
                name=name,
                config=config,
                train=split.train.subset(fold.train_rows),
                test_texts=[split.test.texts[i] for i in fold.test_rows],
                classes=split.classes,
                seed=fold_seed,
                overrides=overrides,
                fresh=not runs.fits,  # only the first fit pays for encoding, and only it is reported as the cost
                progress=progress,
                keep=keep and not runs.fits,
                monitor=race.monitor(run, fold) if race is not None else None,
            )
            if race is not None:
                race.fit_done(
                    fold, first=not runs.fits, seconds=fit.fit_seconds + fit.predict_seconds, details=fit.details
                )
            runs.fits.append(fit)
            fit_seconds += fit.fit_seconds
            per_fold.append(fit.probabilities)
            rows = list(fold.test_rows)
            runs.run_predictions[run, rows] = fit.probabilities.argmax(axis=1)
            if run == 0:
                runs.first_probabilities[rows] = fit.probabilities
            if on_fit is not None:
                on_fit(name, seed, fold_number, fit.fit_seconds + fit.predict_seconds)
        runs.fold_probabilities.append(per_fold)
        runs.records.append({"seed": seed, "fit_seconds": round(fit_seconds, 3)})
        if race is not None and not race.after_run(runs.run_predictions[: run + 1]):
            break
    runs.run_predictions = runs.run_predictions[: len(runs.records)]
    return runs


def _cost(fits: list[Fit], *, n_predicted: int) -> dict[str, Any]:
    """results.json's "cost": the first fit's time and rate (it alone encoded afresh), peaks and totals over all fits.

    ``n_predicted`` is the number of test texts the first fit predicted.
    """
    first = fits[0]
    cost: dict[str, Any] = {
        "fit_seconds": round(first.fit_seconds, 3),
        "predict_seconds": round(first.predict_seconds, 3),
        "predict_texts_per_second": round(n_predicted / max(first.predict_seconds, 1e-9), 1),
        "predict_ms_per_text": round(1000 * first.predict_seconds / max(n_predicted, 1), 3),
        "peak_memory_mb": round(max(fit.peak_rss_mb for fit in fits), 1),
        "fits": len(fits),
        "total_seconds": round(sum(fit.fit_seconds + fit.predict_seconds for fit in fits), 3),
    }
    gpu = [fit.peak_gpu_mb for fit in fits if fit.peak_gpu_mb is not None]
    if gpu:
        cost["peak_gpu_memory_mb"] = round(max(gpu), 1)
    return cost


def summarize_runs(
    labels: Sequence[Label], run_predictions: np.ndarray, classes: Sequence[Label], config: CompareConfig
) -> dict[str, Any]:
    """Mean metrics with bootstrap intervals, per-class F1 with intervals, and the first run's confusion matrix."""
    from bertwise.evaluation.statistics import METRICS, bootstrap_metrics, confusion_counts

    index = {label: position for position, label in enumerate(classes)}
    y_true = np.array([index[label] for label in labels], dtype=np.int64)
    estimates: Any = bootstrap_metrics(
        y_true,
        run_predictions,
        len(classes),
        resamples=config.bootstrap_resamples,
        confidence=config.confidence,
        seed=config.seed,
    )
    metrics = {metric: _round(estimates[metric].mean) for metric in METRICS}
    intervals = {metric: [_round(estimates[metric].low), _round(estimates[metric].high)] for metric in METRICS}
    confusion = confusion_counts(y_true, run_predictions[0], len(classes))
    per_class_f1 = estimates["per_class_f1"]
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    diagonal = np.diag(confusion)
    per_class = {}
    for position, label in enumerate(classes):
        estimate = per_class_f1[position]
        per_class[str(label)] = {
            "precision": _round(diagonal[position] / predicted[position]) if predicted[position] else 0.0,
            "recall": _round(diagonal[position] / support[position]) if support[position] else 0.0,
            "f1": _round(estimate.mean),
            "f1_interval": [_round(estimate.low), _round(estimate.high)],
            "support": int(support[position]),
        }
    per_run = [
        {metric: _round(estimates[metric].per_run[run]) for metric in METRICS}
        for run in range(run_predictions.shape[0])
    ]
    return {
        "metrics": metrics,
        "metrics_interval": intervals,
        "per_class": per_class,
        "confusion_matrix": {"labels": [str(label) for label in classes], "matrix": confusion.astype(int).tolist()},
        "per_run": per_run,
    }


def _round(value: Any) -> float:
    return round(float(value), 4)
