"""Several backbones in one comparison: every strategy on every backbone, each (backbone, strategy) pair a candidate.

A pair is a strategy class made for the run, named ``<strategy>@<backbone label>`` ("probe@all-MiniLM-L6-v2"), that
is its strategy in every respect but the backbone its ``from_config`` hands it; it is registered for the length of
the comparison (:func:`backbone_grid`), so the protocol, the stopping rule, the budget, the paired differences, the
curves, the report and the recommendation treat pairs exactly as they treat strategies, with no module of theirs
naming backbones. A model folder saved from a pair records the strategy's own name and the pair's backbone, so it
loads in any later process.

The budget's calibration times the first backbone; a pair on another backbone scales its strategy's estimate by the
ratio of the two backbones' weight sizes (time per text of an encoder grows about linearly with its parameters at a
given length), and the deadline corrects that by measured times as the run goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertwise.backbone.resolve import resolve_backbone
from bertwise.exceptions import ConfigError
from bertwise.strategies.registry import register, strategy_class, unregister

if TYPE_CHECKING:
    from bertwise.config import CompareConfig
    from bertwise.strategies.base import Strategy, StrategyTags
    from bertwise.strategies.cost import Calibration, CalibrationSample, FitWork

SEPARATOR = "@"


def backbone_label(model: str | None) -> str:
    """How a backbone is named in a pair: the default's hub id tail, a folder's name, or a hub id's last part."""
    if model is None or model == "default":
        return "all-MiniLM-L6-v2"
    return Path(model.rstrip("/\\")).name or model


def labels_for(models: Sequence[str | None]) -> list[str]:
    """One distinct label per backbone, in order; two backbones that would share a label are numbered."""
    labels = [backbone_label(model) for model in models]
    seen: dict[str, int] = {}
    distinct = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        distinct.append(label if labels.count(label) == 1 else f"{label}-{seen[label]}")
    return distinct


def pair_name(strategy: str, label: str) -> str:
    return f"{strategy}{SEPARATOR}{label}"


def on_backbone(strategy: str, model: str | None, label: str, weight_ratio: float) -> type[Strategy]:
    """A class that is ``strategy`` on ``model``, named ``<strategy>@<label>``; its cost estimates are the strategy's
    times ``weight_ratio`` (the backbone's weights over the calibrated backbone's)."""
    base = strategy_class(strategy)
    tags: StrategyTags = replace(
        base.tags,
        name=pair_name(strategy, label),
        spoken_name=f"{base.tags.in_words} on {label}",
        compared_by_default=False,
        saved_as=strategy,
    )

    class OnBackbone(base):  # type: ignore[valid-type,misc]
        __doc__ = base.__doc__

        @classmethod
        def from_config(cls, config: CompareConfig, *, progress: bool = False) -> Strategy:
            instance: Strategy = super().from_config(replace(config, model=model), progress=progress)
            return instance

        @classmethod
        def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
            return float(base.fit_seconds(work, calibration)) * weight_ratio

        @classmethod
        def measure_speed(cls, sample: CalibrationSample) -> dict[str, float]:
            return {}  # the strategy itself is measured once, on the first backbone

    OnBackbone.tags = tags
    OnBackbone.__name__ = OnBackbone.__qualname__ = f"{base.__name__}On{_identifier(label)}"
    return OnBackbone


@contextmanager
def backbone_grid(
    strategies: Sequence[str], models: Sequence[str | None], labels: Sequence[str] | None = None
) -> Iterator[tuple[str, ...]]:
    """Every strategy on every backbone registered as pairs for the duration of the block, which gets their names
    (backbone by backbone, the strategies in the order given); they are unregistered afterwards. ``labels`` name the
    backbones in the pairs (default: :func:`labels_for`)."""
    twice = sorted({str(model) for model in models if models.count(model) > 1})
    if twice:
        raise ConfigError(f"a model is listed twice: {', '.join(twice)}; expected each backbone once")
    labels = list(labels) if labels is not None else labels_for(models)
    sizes = [_weights_bytes(model) for model in models]
    registered: list[str] = []
    try:
        for model, label, size in zip(models, labels, sizes, strict=True):
            for strategy in strategies:
                cls = on_backbone(strategy, model, label, size / sizes[0] if sizes[0] else 1.0)
                register(cls)
                registered.append(cls.tags.name)
        yield tuple(registered)
    finally:
        for name in registered:
            unregister(name)


def _weights_bytes(model: str | None) -> float:
    """The size of a backbone's safetensors weights (resolving, and checking, it as every strategy will)."""
    path = Path(resolve_backbone(model).path)
    return float(sum(file.stat().st_size for file in path.glob("*.safetensors")))


def _identifier(label: str) -> str:
    return "".join(part.capitalize() for part in "".join(c if c.isalnum() else " " for c in label).split()) or "X"


def strategy_of(name: str) -> str:
    """The strategy a candidate is: itself, or the strategy of a (backbone, strategy) pair."""
    return name.split(SEPARATOR, 1)[0]


def describe(names: Sequence[str]) -> dict[str, Any]:
    """results.json's ``backbones`` record for a grid: each pair's strategy and backbone label."""
    return {name: {"strategy": strategy_of(name), "backbone": name.split(SEPARATOR, 1)[1]} for name in names}
