"""The strategies, each a scikit-learn classifier over raw texts."""

from __future__ import annotations

from bertwise.strategies.base import NotFittedError, Strategy, StrategyTags
from bertwise.strategies.finetune import FinetuneClassifier
from bertwise.strategies.probe import ProbeClassifier
from bertwise.strategies.zero_shot import ZeroShotClassifier

__all__ = [
    "FinetuneClassifier",
    "NotFittedError",
    "ProbeClassifier",
    "Strategy",
    "StrategyTags",
    "ZeroShotClassifier",
]
