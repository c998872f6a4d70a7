"""The save-best stage: the recommended strategy's model, saved so that it predicts what the comparison reported."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.artifact.folder import save_model
from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit
from bertwise.evaluation.protocol import Protocol
from bertwise.evaluation.runner import StrategyResult, fit_predict
from bertwise.pipeline.results import SavedBest
from bertwise.recommendation import Recommendation

# The warning below names the line in compare, as it did before the stages were split out: _recommended_model <
# save_recommended < _Run._save_best < _Run._stage < _Run.run < compare.
WARNING_STACKLEVEL = 6
_COST_KEYS = ("fit_seconds", "peak_memory_mb", "peak_gpu_memory_mb", "predict_ms_per_text")


def release_models(results: Sequence[StrategyResult]) -> dict[str, Any]:
    """Take the models the evaluation kept (``keep``) out of ``results``, so that only the one saved stays alive."""
    kept = {result.name: result.estimator for result in results}
    for result in results:
        result.estimator = None
    return kept


def save_recommended(
    folder: Path,
    recommendation: Recommendation | None,
    results: Sequence[StrategyResult],
    kept: dict[str, Any],
    *,
    split: DataSplit,
    config: CompareConfig,
    protocol: Protocol,
    overrides: Callable[[str], dict[str, Any] | None],
    say: Callable[[str], None] = lambda message: None,
    truncated: Mapping[str, Any] | None = None,
) -> SavedBest:
    """Save the recommended strategy's model (see ``compare``'s ``save_best``): its first run's model from ``kept``,
    else one trained again; ``overrides`` gives a strategy's training overrides under the budget; ``truncated``: how
    many train and test texts the comparison's backbone (``max_length``, ``backbone_sha256``) cut short."""
    if recommendation is None or recommendation.strategy is None:
        failed = "; ".join(f"{r.name}: {r.error}" for r in results if r.status != "ok")
        return SavedBest(
            None,
            f"no model saved to '{folder}': no strategy was recommended because none finished ({failed or 'none ran'})",
        )
    name = recommendation.strategy
    (result,) = [r for r in results if r.name == name]
    estimator, training, trained_on, reproduces = _recommended_model(
        name, result, kept.get(name), split, config, protocol, overrides(name), folder, say
    )
    seed, scheme = protocol.seeds[0], protocol.scheme
    metrics = {
        **result.metrics,
        "interval": result.metrics_interval,
        "confidence": config.confidence,
        "per_class_f1": {label: scores["f1"] for label, scores in result.per_class.items()},
        "per_class_f1_interval": {label: scores["f1_interval"] for label, scores in result.per_class.items()},
        "runs": len(result.runs),
        # Each seed's scores: how far the model depends on its seed (the model card's seed-to-seed spread).
        "per_run": [_run_scores(run) for run in result.runs],
        "scheme": scheme,
        "test_rows": len(split.test),
        "test_source": split.test.source,
        "evaluated_by": "bertwise compare",
    }
    save_model(
        estimator,
        folder,
        training=training,
        metrics=metrics,
        trained_on=trained_on,
        notes=list(split.notes),
        extra={
            # What the comparison measured of its first fit (the model card's training cost).
            "cost": {key: result.cost[key] for key in _COST_KEYS if key in result.cost},
            "comparison": {
                "recommended": name,
                "scheme": scheme,
                "seed": seed,
                "refit": scheme == "cross-validation" or kept.get(name) is None,
                "reproduces_reported_predictions": reproduces,
                "reasons": list(recommendation.reasons),
                "truncated": dict(truncated) if truncated is not None else None,
            },
        },
    )
    return SavedBest(folder)


def _run_scores(run: dict[str, Any]) -> dict[str, Any]:
    scores = run.get("metrics") or {}
    return {"seed": run.get("seed"), **{key: scores[key] for key in ("macro_f1", "accuracy") if key in scores}}


def _recommended_model(
    name: str,
    result: StrategyResult,
    kept: Any,
    split: DataSplit,
    config: CompareConfig,
    protocol: Protocol,
    overrides: dict[str, Any] | None,
    folder: Path,
    say: Callable[[str], None],
) -> tuple[Any, Any, str, bool | None]:
    """The model to save, the rows it was trained on, the manifest's words for them, and whether it reproduces
    the reported predictions (None where nothing can tell)."""
    seed, scheme = protocol.seeds[0], protocol.scheme
    if scheme == "cross-validation":
        training = split.train
        say(f"--save-best: training {name} on all {len(training)} rows (cross-validation kept no single model)")
        fit = fit_predict(name, config, training, [], split.classes, seed=seed, overrides=overrides, keep=True)
        trained_on = (
            f"all {len(training)} rows of {training.source}, refit after the comparison: under {len(protocol.folds)}-"
            f"fold cross-validation each fold's model predicted only its own rows, so no single model made "
            f"predictions-{name}.csv; this one was trained the same way (seed {seed}) on every row"
        )
        return fit.estimator, training, trained_on, None
    fold = protocol.folds[0]
    training = split.train.subset(fold.train_rows)
    estimator, reproduces = kept, (True if kept is not None else None)
    if estimator is None:
        # Resumed from the run cache, which keeps numbers, not models: train it again exactly as the first run was.
        test_texts = [split.test.texts[i] for i in fold.test_rows]
        say(f"--save-best: training {name} again as its first run was (its results came from the run cache)")
        fit = fit_predict(name, config, training, test_texts, split.classes, seed=seed, overrides=overrides, keep=True)
        estimator = fit.estimator
        if result.run_predictions is not None:
            reproduces = bool(np.array_equal(fit.probabilities.argmax(axis=1), result.run_predictions[0]))
            if not reproduces:
                warnings.warn(
                    f"bertwise: the {name} model saved to '{folder}' was trained again (its evaluation came from "
                    "the run cache) and does not predict exactly what predictions-"
                    f"{name}.csv reports: training is not bit-for-bit repeatable on this device",
                    stacklevel=WARNING_STACKLEVEL,
                )
    trained_on = (
        f"the {len(training)} training rows of {training.source}, seed {seed}: the first run of the comparison "
        f"({scheme}), whose test predictions are predictions-{name}.csv"
    )
    return estimator, training, trained_on, reproduces
