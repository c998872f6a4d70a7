"""``compare``: the whole pipeline, data -> backbone -> strategies -> evaluation -> recommendation -> results.json."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertwise import __version__
from bertwise.backbone.resolve import Backbone
from bertwise.config import STRATEGY_NAMES, CompareConfig
from bertwise.data.dataset import DataSplit, LabeledTexts
from bertwise.evaluation.runner import SCHEMA_VERSION, StrategyResult
from bertwise.recommendation import Recommendation


@dataclass
class Comparison:
    """The outcome of :func:`compare`; ``to_dict()`` is exactly what results.json holds."""

    config: CompareConfig
    split: DataSplit
    backbone: Backbone
    truncated: dict[str, int]
    machine: dict[str, Any]
    results: list[StrategyResult] = field(default_factory=list)
    recommendation: Recommendation | None = None
    _written: set[tuple[str, str]] = field(default_factory=set, repr=False)  # (folder, strategy) predictions saved

    def result(self, name: str) -> StrategyResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result for strategy {name!r}; ran: {', '.join(r.name for r in self.results)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "bertwise_version": __version__,
            "config": self.config.to_dict(),
            "machine": self.machine,
            "dataset": {
                "train": _describe_part(self.split.train),
                "test": {**_describe_part(self.split.test), "origin": self.split.test_origin},
                "classes": [_plain(label) for label in self.split.classes],
                "notes": list(self.split.notes),
                "max_length": self.backbone.max_length,
                "truncated": self.truncated,
            },
            "model": {
                "id": self.backbone.model_id,
                "path": self.backbone.path,
                "sha256": self.backbone.sha256,
                "embedded": self.backbone.embedded,
                "pooling": self.backbone.pooling,
                "max_length": self.backbone.max_length,
            },
            "strategies": [result.to_dict() for result in self.results],
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
        }

    def save(self, out: str | Path) -> Path:
        """Write results.json and each finished strategy's test predictions into ``out``."""
        from bertwise.evaluation.runner import write_predictions

        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        for result in self.results:
            # results.json is rewritten after every strategy; each predictions file needs writing only once.
            key = (str(directory.resolve()), result.name)
            if result.status == "ok" and key not in self._written:
                write_predictions(directory / f"predictions-{result.name}.csv", self.split, result)
                self._written.add(key)
        path = directory / "results.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        temporary.replace(path)  # never leave a half-written results.json behind
        return path


def compare(
    data: str | Path,
    *,
    test: str | Path | None = None,
    strategies: Sequence[str] = STRATEGY_NAMES,
    model: str | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    text_col: str = "text",
    label_col: str = "label",
    test_size: float = 0.2,
    pooling: str = "auto",
    zero_shot_mode: str = "auto",
    zero_shot_template: str = "This text is about {label}.",
    label_descriptions: Mapping[str, str] | None = None,
    progress: bool = False,
    on_result: Callable[[StrategyResult], None] | None = None,
) -> Comparison:
    """Run the strategies on the same split of ``data`` and recommend one.

    ``data`` is a CSV/TSV/JSONL/Parquet file or a folder with ``train.*`` (and ``test.*``); without a test set a
    seeded stratified share (``test_size``) is held out. With ``out``, results.json and the test predictions are
    written there, and rewritten after every strategy so that an interruption loses nothing already computed.
    """
    from bertwise.backbone.device import resolve_device
    from bertwise.backbone.encoder import load_tokenizer, tokenize
    from bertwise.backbone.resolve import resolve_backbone
    from bertwise.data.split import load_split
    from bertwise.evaluation.runner import machine_description, run_strategy
    from bertwise.recommendation import recommend

    config = CompareConfig(
        strategies=tuple(strategies),
        model=model,
        seed=seed,
        device=device,
        text_col=text_col,
        label_col=label_col,
        test_size=test_size,
        pooling=pooling,
        zero_shot_mode=zero_shot_mode,
        zero_shot_template=zero_shot_template,
        label_descriptions=dict(label_descriptions or {}),
    )
    resolve_device(device)  # an unusable device is an error before any work, not a failure per strategy
    split = load_split(data, test=test, text_col=text_col, label_col=label_col, test_size=test_size, seed=seed)
    backbone = resolve_backbone(model, pooling=pooling)  # type: ignore[arg-type]
    tokenizer = load_tokenizer(backbone.path)
    truncated = {
        "train": tokenize(tokenizer, split.train.texts, backbone.max_length).truncated,
        "test": tokenize(tokenizer, split.test.texts, backbone.max_length).truncated,
    }
    comparison = Comparison(
        config=config, split=split, backbone=backbone, truncated=truncated, machine=machine_description()
    )
    for name in config.strategies:
        result = run_strategy(name, split, config, progress=progress)
        comparison.results.append(result)
        comparison.recommendation = recommend(comparison.results, tie_tolerance_points=config.tie_tolerance_points)
        if out is not None:
            comparison.save(out)
        if on_result is not None:
            on_result(result)
    return comparison


def _describe_part(part: LabeledTexts) -> dict[str, Any]:
    return {
        "source": part.source,
        "rows": len(part),
        "class_counts": {str(label): count for label, count in part.class_counts().items()},
    }


def _plain(label: Any) -> Any:
    return label.item() if hasattr(label, "item") else label
