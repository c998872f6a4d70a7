"""Run the chosen strategies on one train/test split and collect what each scored and cost."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit
from bertwise.evaluation.cost import measure
from bertwise.evaluation.metrics import classification_metrics
from bertwise.exceptions import BertwiseError

SCHEMA_VERSION = 1


@dataclass
class StrategyResult:
    name: str
    status: str  # "ok" or "failed"
    params: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    predictions: np.ndarray | None = field(default=None, repr=False)
    probabilities: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "params": self.params,
            "details": self.details,
            "metrics": self.metrics,
            "cost": self.cost,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.status == "ok":
            data["predictions_file"] = f"predictions-{self.name}.csv"
        return data


def run_strategy(name: str, split: DataSplit, config: CompareConfig, *, progress: bool = False) -> StrategyResult:
    """Fit on the training part, predict the test part, and time and measure both."""
    from bertwise.backbone.encoder import forget_embeddings
    from bertwise.strategies.registry import build_strategy

    forget_embeddings()
    strategy = build_strategy(name, config, progress=progress)
    params = {key: _jsonable(value) for key, value in strategy.get_params().items() if key != "progress"}
    try:
        with measure() as fit_cost:
            strategy.fit(split.train.texts, split.train.labels)
        with measure() as predict_cost:
            probabilities = strategy.predict_proba(split.test.texts)
    except BertwiseError as error:
        return StrategyResult(name=name, status="failed", params=params, error=str(error))
    predictions = strategy.classes_[probabilities.argmax(axis=1)]
    cost: dict[str, Any] = {
        "fit_seconds": round(fit_cost.seconds, 3),
        "predict_seconds": round(predict_cost.seconds, 3),
        "predict_texts_per_second": round(len(split.test) / max(predict_cost.seconds, 1e-9), 1),
        "peak_memory_mb": round(max(fit_cost.peak_rss_mb, predict_cost.peak_rss_mb), 1),
    }
    if fit_cost.peak_gpu_mb is not None and predict_cost.peak_gpu_mb is not None:
        cost["peak_gpu_memory_mb"] = round(max(fit_cost.peak_gpu_mb, predict_cost.peak_gpu_mb), 1)
    return StrategyResult(
        name=name,
        status="ok",
        params=params,
        details=_details(strategy),
        metrics=classification_metrics(split.test.labels, predictions.tolist(), split.classes),
        cost=cost,
        predictions=predictions,
        probabilities=probabilities,
    )


def _details(strategy: Any) -> dict[str, Any]:
    """What the strategy decided while fitting, worth knowing when reading its score."""
    details: dict[str, Any] = {}
    for attribute, key in (
        ("mode_", "zero_shot_mode"),
        ("descriptions_", "label_descriptions"),
        ("C_", "chosen_C"),
        ("cv_scores_", "cv_macro_f1_by_C"),
        ("learning_rate_", "learning_rate"),
        ("steps_", "optimizer_steps"),
        ("planned_steps_", "planned_steps"),
        ("best_step_", "best_step"),
        ("stopped_early_", "stopped_early"),
        ("n_validation_", "validation_rows"),
        ("history_", "validation_history"),
    ):
        if hasattr(strategy, attribute):
            details[key] = _jsonable(getattr(strategy, attribute))
    return details


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def machine_description() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_predictions(path: Path, split: DataSplit, result: StrategyResult) -> None:
    import pandas as pd

    if result.predictions is None or result.probabilities is None:
        return
    frame = pd.DataFrame({"text": split.test.texts, "label": split.test.labels, "prediction": result.predictions})
    for column, label in enumerate(split.classes):
        frame[f"p({label})"] = result.probabilities[:, column]
    frame.to_csv(path, index=False)
