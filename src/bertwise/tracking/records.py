"""What a comparison's results.json becomes in an experiment tracker: one parent run for the comparison and one child
run per (backbone, strategy) result, each a name, parameters, metrics (with steps) and tags.

Plain data built from the saved results only, so the numbers a tracker shows are the ones results.json holds; the
store that receives them (:mod:`bertwise.tracking.mlflow_store`) knows nothing of bertwise's schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The headline metrics, whose intervals results.json keeps beside them; both go to every child run.
CURVE_METRICS = ("macro_f1", "accuracy")
# results.json's cost fields worth a metric: what a strategy costs to train and to run.
COST_METRICS = (
    "fit_seconds",
    "total_seconds",
    "predict_seconds",
    "predict_ms_per_text",
    "predict_texts_per_second",
    "peak_memory_mb",
)


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int = 0


@dataclass
class RunRecord:
    """One run to log: its name, string parameters, metric points and tags."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricPoint] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def metric(self, key: str, value: Any, step: int = 0) -> None:
        """Add a point when ``value`` is a number (results.json holds None where nothing was measured)."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.metrics.append(MetricPoint(key, float(value), step))


def comparison_runs(results: Mapping[str, Any]) -> tuple[RunRecord, list[RunRecord]]:
    """The parent run of a comparison and one child per strategy result, from results.json's content."""
    return parent_run(results), [strategy_run(results, strategy) for strategy in results.get("strategies", [])]


def parent_run(results: Mapping[str, Any]) -> RunRecord:
    """The comparison: its settings (CompareConfig), the data and protocol, the recommendation and its scores."""
    dataset = results.get("dataset") or {}
    train = dataset.get("train") or {}
    test = dataset.get("test") or {}
    protocol = results.get("protocol") or {}
    recommendation = results.get("recommendation") or {}
    record = RunRecord(name=f"compare {Path(str(train.get('source', 'data'))).name}")
    record.params = {key: param_value(value) for key, value in (results.get("config") or {}).items()}
    record.params.update(
        {
            "data.train_source": param_value(train.get("source")),
            "data.train_rows": param_value(train.get("rows")),
            "data.test_rows": param_value(test.get("rows")),
            "data.test_origin": param_value(test.get("origin")),
            "data.classes": param_value(len(dataset.get("classes") or [])),
            "protocol.scheme": param_value(protocol.get("scheme")),
            "backbone.id": param_value((results.get("model") or {}).get("id")),
        }
    )
    chosen = recommendation.get("strategy")
    record.tags = {
        "bertwise.kind": "compare",
        "bertwise.version": str(results.get("bertwise_version", "")),
        "bertwise.data_fingerprint": str(dataset.get("fingerprint", "")),
        "bertwise.recommended": str(chosen) if chosen else "none",
    }
    for strategy in results.get("strategies", []):
        if strategy.get("name") == chosen and strategy.get("status") == "ok":
            # The parent's own scores are the recommended strategy's, so a list of comparisons sorts by them.
            for key in CURVE_METRICS:
                record.metric(f"recommended_{key}", (strategy.get("metrics") or {}).get(key))
                bounds = (strategy.get("metrics_interval") or {}).get(key) or []
                if len(bounds) == 2:
                    record.metric(f"recommended_{key}_low", bounds[0])
                    record.metric(f"recommended_{key}_high", bounds[1])
    return record


def strategy_run(results: Mapping[str, Any], strategy: Mapping[str, Any]) -> RunRecord:
    """One (backbone, strategy) result: its parameters, scores with their interval bounds, each run's scores (step:
    the run), its costs, and its learning curve (step: training examples)."""
    name = str(strategy.get("name"))
    params = strategy.get("params") or {}
    record = RunRecord(name=name)
    record.params = {key: param_value(value) for key, value in params.items()}
    record.params["strategy"] = name.split("@", 1)[0]
    record.params["backbone"] = param_value(backbone_of(results, strategy))
    chosen = (results.get("recommendation") or {}).get("strategy")
    record.tags = {
        "bertwise.kind": "strategy",
        "bertwise.status": str(strategy.get("status")),
        "bertwise.recommended": "true" if chosen == name else "false",
    }
    if strategy.get("error"):
        record.tags["bertwise.error"] = str(strategy["error"])
    for key, value in (strategy.get("metrics") or {}).items():
        record.metric(key, value)
    for key, bounds in (strategy.get("metrics_interval") or {}).items():
        if isinstance(bounds, list | tuple) and len(bounds) == 2:
            record.metric(f"{key}_low", bounds[0])
            record.metric(f"{key}_high", bounds[1])
    for step, run in enumerate(strategy.get("runs") or []):
        for key in CURVE_METRICS:
            record.metric(f"run_{key}", (run.get("metrics") or {}).get(key), step)
    cost = strategy.get("cost") or {}
    for key in COST_METRICS:
        record.metric(key, cost.get(key))
    _curve(record, results.get("learning_curve") or {}, name)
    return record


def _curve(record: RunRecord, curve: Mapping[str, Any], name: str) -> None:
    """The learning curve's points as metric steps, x = training examples (rows), with their interval bounds."""
    points = (curve.get("strategies") or {}).get(name) or []
    for point in points:
        step = int(point["train_rows"])
        for key in CURVE_METRICS:
            interval = point.get("interval" if key == "macro_f1" else f"{key}_interval") or []
            record.metric(f"curve_{key}", point.get(key), step)
            if len(interval) == 2:
                record.metric(f"curve_{key}_low", interval[0], step)
                record.metric(f"curve_{key}_high", interval[1], step)
    reference = (curve.get("reference") or {}).get(name)
    if reference is not None:
        # A strategy that learns nothing from labels scores the same at every size: the report draws it as a flat
        # line beside the curves, and so does the tracker, at the curves' sizes.
        sizes = sorted({int(p["train_rows"]) for others in (curve.get("strategies") or {}).values() for p in others})
        for step in sizes:
            record.metric("curve_macro_f1", reference.get("macro_f1"), step)


def backbone_of(results: Mapping[str, Any], strategy: Mapping[str, Any]) -> Any:
    """The backbone a result ran on: its own ``model`` parameter (each pair of a several-backbone comparison has
    one), else the comparison's backbone."""
    return (strategy.get("params") or {}).get("model") or (results.get("model") or {}).get("id")


def param_value(value: Any) -> str:
    """A parameter as the tracker stores it (text): strings as they are, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
