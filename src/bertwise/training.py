"""``train``: fit one strategy on all the rows given and save it as a model folder (:mod:`bertwise.artifact.folder`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertwise.artifact.folder import check_output_folder, save_model
from bertwise.config import CompareConfig
from bertwise.data.dataset import LabeledTexts
from bertwise.data.split import load_split, read_part, resolve_parts
from bertwise.evaluation.cost import measure
from bertwise.exceptions import ConfigError
from bertwise.strategies.registry import build_strategy, check_strategy_name
from bertwise.strategies.state import set_recorded_params

if TYPE_CHECKING:
    from bertwise.data.split import DataSource

# Settings that belong to the machine a model runs on, not to the model: never taken from another run's results.
_MACHINE_PARAMS = ("device", "precision", "progress")


def train(
    data: DataSource,
    *,
    strategy: str,
    out: str | Path,
    test: DataSource | None = None,
    model: str | None = None,
    seed: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    text_col: str = "text",
    label_col: str = "label",
    params_from: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Any:
    """Fit ``strategy`` on every row of ``data`` and save it as a model folder at ``out``.

    ``data`` is a CSV/TSV/JSONL/Parquet file or a folder with ``train.*``, a pandas DataFrame, a ``datasets.Dataset``
    or a ``DatasetDict`` (its "train" split); its training part is what is trained on. With a test set (``test``,
    ``test.*`` in the folder, or the DatasetDict's "test", else "validation", split) the model is scored on it and
    macro-F1 and accuracy go into the manifest. ``params_from`` names a ``compare`` results.json whose recorded
    parameters for this strategy are applied (a budget may have shortened fine-tuning there), so the model is the
    one compare evaluated; its recorded model and seed are used unless ``model`` or ``seed`` is given. ``params``
    sets any other parameter of the strategy (such as ``{"max_epochs": 3}``) last. ``seed`` defaults to 0.

    Returns the fitted classifier, with the saved manifest in ``manifest_`` and the folder in ``folder_``.
    """
    check_strategy_name(strategy)
    target = Path(out)
    check_output_folder(target)  # before any work: a refused folder should not cost a training run
    recorded = read_recorded_params(params_from, strategy) if params_from is not None else {}
    if model is None:
        model = recorded.get("model")
    if seed is None:
        seed = int(recorded.get("seed", 0))
    train_part, test_part, notes = read_training_data(data, test, text_col=text_col, label_col=label_col, seed=seed)
    config = CompareConfig(
        strategies=(strategy,),
        model=model,
        seed=seed,
        device=device,
        precision=precision,
        text_col=text_col,
        label_col=label_col,
    )
    estimator = build_strategy(strategy, config, progress=progress)
    chosen = {key: value for key, value in recorded.items() if key not in (*_MACHINE_PARAMS, "model", "seed")}
    _set_params(estimator, chosen, f"{params_from} records for {strategy}")
    _set_params(estimator, dict(params or {}), "params")

    with measure() as cost:
        estimator.fit(list(train_part.texts), list(train_part.labels))
    metrics = evaluate(estimator, test_part, config) if test_part is not None else _validation_metrics(estimator)
    if params_from is not None:
        notes.extend(_data_notes(params_from, train_part))
    manifest = save_model(
        estimator,
        target,
        training=train_part,
        metrics=metrics,
        trained_on=f"all {len(train_part)} rows of {train_part.source}",
        notes=notes,
        extra={
            "fit_seconds": round(cost.seconds, 3),
            "cost": _cost_record(cost),
            "params_from": str(params_from) if params_from is not None else None,
        },
    )
    estimator.manifest_ = manifest
    estimator.folder_ = target.resolve()
    return estimator


def read_training_data(
    data: DataSource, test: DataSource | None, *, text_col: str, label_col: str, seed: int
) -> tuple[LabeledTexts, LabeledTexts | None, list[str]]:
    """The rows to train on, the test set if there is one (``test``, ``test.*`` in a data folder, a DatasetDict's
    test split), and notes."""
    train_source, test_source, notes = resolve_parts(data, test)
    if test_source is None:
        part, read_notes = read_part(train_source, text_col=text_col, label_col=label_col)
        return part, None, notes + read_notes
    # The split's own checks apply (test labels never seen in training, the same file given twice), but a class with
    # a single training row is as welcome as it is without a test set: every strategy can train on it.
    split = load_split(data, test=test, text_col=text_col, label_col=label_col, seed=seed, min_train_per_class=1)
    return split.train, split.test, list(split.notes)


def evaluate(estimator: Any, test: LabeledTexts, config: CompareConfig | None = None) -> dict[str, Any]:
    """Macro-F1 and accuracy on ``test``, defined as in ``bertwise compare`` (a class counts in macro-F1 when it
    occurs in the test labels or the predictions), with bootstrap intervals over the test rows as compare draws them
    (``config``'s resamples, confidence and seed)."""
    from bertwise.evaluation.metrics import classification_metrics

    config = config or CompareConfig()
    predicted = estimator.predict(list(test.texts)).tolist()
    classes = estimator.classes_.tolist()
    scores = classification_metrics(list(test.labels), predicted, classes)
    interval, per_class_interval = _intervals(list(test.labels), predicted, classes, config)
    return {
        "macro_f1": round(scores["macro_f1"], 4),
        "accuracy": round(scores["accuracy"], 4),
        "interval": interval,
        "confidence": config.confidence,
        "per_class_f1": {label: round(value, 4) for label, value in scores["per_class_f1"].items()},
        "per_class_f1_interval": per_class_interval,
        "test_rows": len(test),
        "test_source": test.source,
        "evaluated_by": "bertwise train",
    }


def _intervals(
    labels: list[Any], predicted: list[Any], classes: list[Any], config: CompareConfig
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The bootstrap intervals of macro-F1, accuracy and each class's F1: compare's, for one run (test rows only)."""
    import numpy as np

    from bertwise.evaluation.statistics import bootstrap_metrics

    codes = {label: code for code, label in enumerate(classes)}
    for label in [*labels, *predicted]:  # as classification_metrics counts a label outside the classes
        codes.setdefault(label, len(codes))
    true = np.array([codes[label] for label in labels], dtype=np.int64)
    runs = np.array([[codes[label] for label in predicted]], dtype=np.int64)
    estimates: Any = bootstrap_metrics(
        true, runs, len(codes), resamples=config.bootstrap_resamples, confidence=config.confidence, seed=config.seed
    )
    interval = {key: [round(estimates[key].low, 4), round(estimates[key].high, 4)] for key in ("macro_f1", "accuracy")}
    per_class = {
        str(label): [round(estimate.low, 4), round(estimate.high, 4)]
        for label, estimate in zip(classes, estimates["per_class_f1"], strict=False)
    }
    return interval, per_class


def _cost_record(cost: Any) -> dict[str, Any]:
    """What training cost, as compare's results record it: seconds, and the peak memory of the whole process."""
    record = {"fit_seconds": round(cost.seconds, 3), "peak_memory_mb": round(cost.peak_rss_mb, 1)}
    if cost.peak_gpu_mb is not None:
        record["peak_gpu_memory_mb"] = round(cost.peak_gpu_mb, 1)
    return record


def read_recorded_params(path: str | Path, strategy: str) -> dict[str, Any]:
    """The parameters ``compare`` recorded for ``strategy`` in results.json ``path``."""
    file = Path(path)
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--params-from '{file}' not found; expected the results.json written by compare") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"--params-from '{file}' cannot be read as JSON ({error}); expected the results.json written by compare"
        ) from None
    entries = results.get("strategies") if isinstance(results, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"--params-from '{file}' has no 'strategies' list; expected the results.json of compare")
    by_name = {entry.get("name"): entry for entry in entries if isinstance(entry, dict)}
    entry = by_name.get(strategy)
    if entry is None:
        ran = ", ".join(str(name) for name in by_name) or "none"
        raise ConfigError(f"--params-from '{file}' has no result for {strategy!r}; it ran: {ran}")
    if entry.get("status") != "ok" or not isinstance(entry.get("params"), dict):
        raise ConfigError(
            f"--params-from '{file}': {strategy} has status {entry.get('status')!r} and no usable params; "
            "expected a strategy that finished"
        )
    return dict(entry["params"])


def _set_params(estimator: Any, values: Mapping[str, Any], where: str) -> None:
    name = type(estimator).__name__
    set_recorded_params(
        estimator,
        values,
        lambda unknown, valid: ConfigError(
            f"{where}: {unknown} is not a parameter of {name}; expected some of {valid}"
        ),
    )


def _validation_metrics(estimator: Any) -> dict[str, Any] | None:
    """Fine-tuning scores its own validation split while it trains; the others are unscored without a test set."""
    history = getattr(estimator, "history_", None)
    best_step = getattr(estimator, "best_step_", None)
    best = next((entry for entry in history or [] if entry.get("step") == best_step), None)
    if best is None:
        return None
    return {
        "validation_macro_f1": round(float(best["val_macro_f1"]), 4),
        "validation_rows": int(estimator.n_validation_),
        "evaluated_by": (
            "the validation split fine-tuning carved from the training rows to choose its best step; "
            "an optimistic estimate, not a test score"
        ),
    }


def _data_notes(params_from: str | Path, train_part: LabeledTexts) -> list[str]:
    try:
        recorded = json.loads(Path(params_from).read_text(encoding="utf-8"))["dataset"]["train"]["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if recorded == len(train_part):
        return []
    return [
        f"{params_from} was computed on {recorded} training rows; this model trains on {len(train_part)}, so its "
        "predictions will not match that comparison's"
    ]
