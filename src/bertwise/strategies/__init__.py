"""The strategies, each a scikit-learn classifier over raw texts; :mod:`bertwise.strategies.registry` lists them.

The classes load on first use (they import scikit-learn), so importing the registry or the package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "FinetuneClassifier",
    "LoraClassifier",
    "NotFittedError",
    "ProbeClassifier",
    "SetFitClassifier",
    "Strategy",
    "StrategyTags",
    "ZeroShotClassifier",
]

_LAZY = {
    "FinetuneClassifier": "bertwise.strategies.finetune",
    "LoraClassifier": "bertwise.strategies.lora",
    "NotFittedError": "bertwise.strategies.base",
    "ProbeClassifier": "bertwise.strategies.probe",
    "SetFitClassifier": "bertwise.strategies.setfit",
    "Strategy": "bertwise.strategies.base",
    "StrategyTags": "bertwise.strategies.base",
    "ZeroShotClassifier": "bertwise.strategies.zero_shot",
}

if TYPE_CHECKING:
    from bertwise.strategies.base import NotFittedError, Strategy, StrategyTags
    from bertwise.strategies.finetune import FinetuneClassifier
    from bertwise.strategies.lora import LoraClassifier
    from bertwise.strategies.probe import ProbeClassifier
    from bertwise.strategies.setfit import SetFitClassifier
    from bertwise.strategies.zero_shot import ZeroShotClassifier


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bertwise.strategies' has no attribute {name!r}")
