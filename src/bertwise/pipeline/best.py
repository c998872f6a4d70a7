"""``compare --save-best``: the recommended strategy's model, saved so that it predicts what the comparison reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bertwise.evaluation.protocol import Protocol
    from bertwise.pipeline.comparison import Comparison


def save_recommended(
    comparison: Comparison,
    folder: Path,
    protocol: Protocol,
    finetune_overrides: dict[str, Any],
    *,
    say: Callable[[str], None] = lambda message: None,
) -> None:
    """Save the recommended strategy's model (see ``compare``'s ``save_best``) and drop every other kept model."""
    from bertwise.artifact.folder import save_model
    from bertwise.evaluation.runner import fit_predict

    kept = {result.name: result.estimator for result in comparison.results}
    for result in comparison.results:
        result.estimator = None
    name = comparison.recommendation.strategy if comparison.recommendation is not None else None
    if name is None:
        failed = "; ".join(f"{r.name}: {r.error}" for r in comparison.results if r.status != "ok")
        comparison.save_best_error = (
            f"no model saved to '{folder}': no strategy was recommended because none finished ({failed or 'none ran'})"
        )
        return
    result = comparison.result(name)
    split, config = comparison.split, comparison.config
    overrides = finetune_overrides if name == "finetune" else None
    seed = protocol.seeds[0]
    scheme = protocol.scheme
    reproduces: bool | None = None
    if scheme == "cross-validation":
        training = split.train
        say(f"--save-best: training {name} on all {len(training)} rows (cross-validation kept no single model)")
        fit = fit_predict(name, config, training, [], split.classes, seed=seed, overrides=overrides, keep=True)
        estimator = fit.estimator
        trained_on = (
            f"all {len(training)} rows of {training.source}, refit after the comparison: under {len(protocol.folds)}-"
            f"fold cross-validation each fold's model predicted only its own rows, so no single model made "
            f"predictions-{name}.csv; this one was trained the same way (seed {seed}) on every row"
        )
    else:
        fold = protocol.folds[0]
        training = split.train.subset(fold.train_rows)
        estimator = kept.get(name)
        reproduces = True if estimator is not None else None
        if estimator is None:
            # Resumed from the run cache, which keeps numbers, not models: train it again exactly as the first run was.
            test_texts = [split.test.texts[i] for i in fold.test_rows]
            say(f"--save-best: training {name} again as its first run was (its results came from the run cache)")
            fit = fit_predict(
                name, config, training, test_texts, split.classes, seed=seed, overrides=overrides, keep=True
            )
            estimator = fit.estimator
            if result.run_predictions is not None:
                reproduces = bool(np.array_equal(fit.probabilities.argmax(axis=1), result.run_predictions[0]))
                if not reproduces:
                    import warnings

                    warnings.warn(
                        f"bertwise: the {name} model saved to '{folder}' was trained again (its evaluation came from "
                        "the run cache) and does not predict exactly what predictions-"
                        f"{name}.csv reports: training is not bit-for-bit repeatable on this device",
                        stacklevel=3,
                    )
        trained_on = (
            f"the {len(training)} training rows of {training.source}, seed {seed}: the first run of the comparison "
            f"({scheme}), whose test predictions are predictions-{name}.csv"
        )
    metrics = {
        **result.metrics,
        "interval": result.metrics_interval,
        "runs": len(result.runs),
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
            "comparison": {
                "recommended": name,
                "scheme": scheme,
                "seed": seed,
                "refit": scheme == "cross-validation" or kept.get(name) is None,
                "reproduces_reported_predictions": reproduces,
                "reasons": list(comparison.recommendation.reasons) if comparison.recommendation else [],
            }
        },
    )
    comparison.saved_model = folder
