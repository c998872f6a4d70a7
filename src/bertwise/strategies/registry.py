"""Strategy names (as used on the command line and in results.json) mapped to configured instances."""

from __future__ import annotations

from bertwise.config import CompareConfig
from bertwise.strategies.base import Strategy, StrategyTags


def build_strategy(name: str, config: CompareConfig, *, progress: bool = False) -> Strategy:
    """A fresh, unfitted strategy configured from ``config``; imports only what that strategy needs."""
    if name == "zero-shot":
        from bertwise.strategies.zero_shot import ZeroShotClassifier

        return ZeroShotClassifier(
            model=config.model,
            mode=config.zero_shot_mode,  # type: ignore[arg-type]
            template=config.zero_shot_template,
            label_descriptions=dict(config.label_descriptions) or None,
            pooling=config.pooling,  # type: ignore[arg-type]
            device=config.device,
            precision=config.precision,
            progress=progress,
        )
    if name == "probe":
        from bertwise.strategies.probe import ProbeClassifier

        return ProbeClassifier(
            model=config.model,
            pooling=config.pooling,  # type: ignore[arg-type]
            seed=config.seed,
            device=config.device,
            precision=config.precision,
            progress=progress,
        )
    if name == "finetune":
        from bertwise.strategies.finetune import FinetuneClassifier

        return FinetuneClassifier(
            model=config.model,
            seed=config.seed,
            device=config.device,
            precision=config.precision,
            progress=progress,
        )
    raise KeyError(name)


def strategy_tags(name: str) -> StrategyTags:
    """What kind of strategy ``name`` is (trained? seed-dependent?) without building or importing its model code."""
    known = {
        "zero-shot": StrategyTags(
            name="zero-shot", trains_backbone=False, uses_labels_for_training=False, seed_dependent=False
        ),
        "probe": StrategyTags(name="probe", trains_backbone=False, uses_labels_for_training=True, seed_dependent=False),
        "finetune": StrategyTags(
            name="finetune", trains_backbone=True, uses_labels_for_training=True, seed_dependent=True
        ),
    }
    return known[name]
