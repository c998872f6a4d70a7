"""The one list of strategy names: each name (as on the command line and in results.json) to its class.

Built-in strategies are imported only when asked for, so listing names costs nothing; :func:`register` adds one
(a plugin, or a test's own strategy) without touching any other module. Everything else about a strategy (its
tags, settings, saved state, cost model) is read from its class.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bertwise.exceptions import ConfigError

if TYPE_CHECKING:
    from bertwise.config import CompareConfig
    from bertwise.strategies.base import Strategy, StrategyTags

_BUILT_IN = {
    "zero-shot": "bertwise.strategies.zero_shot:ZeroShotClassifier",
    "probe": "bertwise.strategies.probe:ProbeClassifier",
    "finetune": "bertwise.strategies.finetune:FinetuneClassifier",
    "lora": "bertwise.strategies.lora:LoraClassifier",
    "setfit": "bertwise.strategies.setfit:SetFitClassifier",
}
_registered: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Make ``cls`` available under ``cls.tags.name`` (usable as a class decorator)."""
    _registered[cls.tags.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a strategy :func:`register` added (built-in strategies stay)."""
    _registered.pop(name, None)


def strategy_names() -> tuple[str, ...]:
    """Every known strategy name: the built-in ones in their usual order, then registered ones."""
    return tuple(dict.fromkeys([*_BUILT_IN, *_registered]))


def default_strategy_names() -> tuple[str, ...]:
    """The strategies a comparison runs when it names none: those whose tags say ``compared_by_default``."""
    return tuple(name for name in strategy_names() if strategy_tags(name).compared_by_default)


def check_strategy_name(name: str) -> None:
    """A ConfigError naming the known strategies when ``name`` is not one (imports no strategy module)."""
    if name not in strategy_names():
        raise ConfigError(f"unknown strategy {name!r}; expected one of {', '.join(strategy_names())}")


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name``; a ConfigError naming the known ones otherwise."""
    if name in _registered:
        return _registered[name]
    check_strategy_name(name)
    module, _, attribute = _BUILT_IN[name].partition(":")
    cls: type[Strategy] = getattr(importlib.import_module(module), attribute)
    return cls


def build_strategy(name: str, config: CompareConfig, *, progress: bool = False) -> Strategy:
    """A fresh, unfitted strategy configured from ``config``, with ``config.params`` for its strategy set last (a
    (backbone, strategy) pair takes its strategy's)."""
    cls = strategy_class(name)
    strategy = cls.from_config(config, progress=progress)
    params = config.params.get(cls.tags.saved_as or cls.tags.name)
    if params:
        from bertwise.strategies.state import set_recorded_params  # numpy: loaded with the strategy anyway

        set_recorded_params(
            strategy,
            params,
            lambda unknown, valid: ConfigError(
                f"params for {name}: {unknown} is not a parameter; expected some of {valid}"
            ),
        )
    return strategy


def strategy_tags(name: str) -> StrategyTags:
    """What kind of strategy ``name`` is (trained? seed-dependent?), read from its class."""
    return strategy_class(name).tags


def check_strategy_names(names: Sequence[str]) -> None:
    """A ConfigError when ``names`` (a comparison's choice) is empty or names an unknown strategy."""
    known = strategy_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"unknown strategy {', '.join(map(repr, unknown))}; expected some of {', '.join(known)}")
    if not names:
        raise ConfigError(f"no strategy selected; expected some of {', '.join(known)}")


def default_curve_repeats() -> dict[str, int]:
    """Learning-curve repeats per strategy that learns from labels, as each strategy's tags set them."""
    return {
        name: tags.curve_repeats for name in strategy_names() if (tags := strategy_tags(name)).uses_labels_for_training
    }
