"""``Comparison``: what :func:`~bertwise.pipeline.comparison.compare` found, as results.json holds it."""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertwise.backbone.device import precision_name, resolve_device
from bertwise.backbone.resolve import Backbone
from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, LabeledTexts
from bertwise.evaluation.protocol import Protocol
from bertwise.evaluation.run_cache import data_fingerprint as fingerprint_of
from bertwise.evaluation.runner import SCHEMA_VERSION, StrategyResult
from bertwise.pipeline.save import ResultsWriter
from bertwise.pipeline.tracked import Tracked
from bertwise.recommendation import Recommendation
from bertwise.report.notebook import render_notebook_html, results_frame
from bertwise.util.version import __version__

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SavedBest:
    """What ``compare(save_best=...)`` did: the model folder written, or why none was (nothing recommended)."""

    folder: Path | None
    error: str | None = None


class Tracker(typing.Protocol):
    """Records a finished comparison somewhere else (an experiment tracker: :class:`bertwise.tracking.MlflowTracking`).

    Called once, after results.json and any saved model are written, with the folder holding them (None without
    ``out``). It reads the results only and reports a failure in the :class:`Tracked` it returns, never by raising:
    the comparison is done and saved by then.
    """

    def track_comparison(self, comparison: Comparison, folder: Path | None) -> Tracked: ...


# The generated repr would print every field: tens of kilobytes for a small comparison.
@dataclass(repr=False)
class Comparison:
    """The outcome of :func:`compare`; ``to_dict()`` is exactly what results.json holds."""

    config: CompareConfig
    split: DataSplit
    backbone: Backbone
    truncated: dict[str, int]
    machine: dict[str, Any]
    protocol: Protocol
    results: list[StrategyResult] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    learning_curve: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    # Stages taken from the run cache rather than computed: "calibration", strategy names, "learning curve".
    resumed: list[str] = field(default_factory=list)
    # What the sequential protocol stopped and the budget skipped, and why (pipeline.stages.stopping_record).
    stopping: dict[str, Any] = field(default_factory=dict)
    # The software that computed the numbers (bertwise, python and library versions) and the command that ran.
    versions: dict[str, str | None] = field(default_factory=dict)
    command: list[str] | None = None
    # With --adapt-domain: the adapted backbone that joined the comparison, and what adapting it cost.
    domain_adaptation: dict[str, Any] | None = None
    # The settings the run used after precedence, in a config file's form (pipeline.settings): a rerun's config.
    effective_config: dict[str, Any] | None = None
    # ``save_best``'s outcome; never in results.json.
    best: SavedBest | None = None
    # ``track``'s outcome; never in results.json.
    tracked: Tracked | None = None

    @property
    def saved_model(self) -> Path | None:
        """The model folder ``save_best`` wrote, or None."""
        return self.best.folder if self.best is not None else None

    @property
    def save_best_error(self) -> str | None:
        """Why ``save_best`` wrote no model (nothing was recommended), or None."""
        return self.best.error if self.best is not None else None

    def __repr__(self) -> str:
        chosen = self.recommendation.strategy if self.recommendation is not None else None
        names = ", ".join(result.name for result in self.results) or "none"
        return (
            f"<Comparison of {names} on {len(self.split.train)} training and {len(self.split.test)} test rows; "
            f"recommended: {chosen or 'none'}>"
        )

    def _repr_html_(self) -> str:
        """Jupyter's display: the recommendation, the results with intervals and the learning curve."""
        return render_notebook_html(self.to_dict())

    def to_frame(self) -> pd.DataFrame:
        """The results as a pandas DataFrame, one row per strategy (scores in points, with interval bounds)."""
        return results_frame(self.to_dict())

    def result(self, name: str) -> StrategyResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result for strategy {name!r}; ran: {', '.join(r.name for r in self.results)}")

    @functools.cached_property
    def data_fingerprint(self) -> str:
        """The run cache's sha256 of the train and test texts and labels in order (and how the test set was made)."""
        return fingerprint_of(self.split)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "bertwise_version": __version__,
            "versions": self.versions,
            "command": self.command,
            "config": self.config.to_dict(),
            "effective_config": self.effective_config,
            "machine": self.machine,
            "dataset": self._dataset(),
            "model": self._model(),
            "protocol": self.protocol.to_dict(
                test_rows=len(self.split.test),
                resamples=self.config.bootstrap_resamples,
                confidence=self.config.confidence,
            ),
            "strategies": [result.to_dict() for result in self.results],
            "paired": self.paired,
            "learning_curve": self.learning_curve,
            "diagnostics": self.diagnostics,
            "budget": self.budget,
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "resumed": list(self.resumed),
            "stopping": self.stopping,
        }

    def save(self, out: str | Path, *, report: bool = True) -> Path:
        """Write results.json, each finished strategy's test predictions, report.html and summary.md into ``out``."""
        return ResultsWriter(self.split).save(out, self.to_dict(), self.results, report=report)

    def _dataset(self) -> dict[str, Any]:
        return {
            "train": _describe_part(self.split.train),
            "test": {**_describe_part(self.split.test), "origin": self.split.test_origin},
            "fingerprint": self.data_fingerprint,
            "classes": [_plain(label) for label in self.split.classes],
            "notes": list(self.split.notes),
            "max_length": self.backbone.max_length,
            "truncated": self.truncated,
        }

    def _model(self) -> dict[str, Any]:
        return {
            "id": self.backbone.model_id,
            "path": self.backbone.path,
            "sha256": self.backbone.sha256,
            "embedded": self.backbone.embedded,
            "pooling": self.backbone.pooling,
            # A sentence-transformers checkpoint's Dense layers (their weights' sha256 included) and Normalize.
            "dense": [layer.to_record() for layer in self.backbone.dense],
            "normalize": self.backbone.normalize,
            "max_length": self.backbone.max_length,
            "precision": _precision_used(self.config),
            "domain_adaptation": self.domain_adaptation,
        }


def _precision_used(config: CompareConfig) -> str:
    return precision_name(resolve_device(config.device), config.precision)


def _describe_part(part: LabeledTexts) -> dict[str, Any]:
    return {
        "source": part.source,
        "rows": len(part),
        "class_counts": {str(label): count for label, count in part.class_counts().items()},
    }


def _plain(label: Any) -> Any:
    return label.item() if hasattr(label, "item") else label
