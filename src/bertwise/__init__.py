"""bertwise: measure which BERT strategy (zero-shot, frozen probe, fine-tuning) wins on your own labeled texts.

Heavy libraries (torch, transformers, scikit-learn) load only when a function that needs them runs, so importing
bertwise and ``bertwise --help`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

__all__ = [
    "Comparison",
    "CompareConfig",
    "FinetuneClassifier",
    "ProbeClassifier",
    "ZeroShotClassifier",
    "compare",
    "embed",
    "export_onnx",
    "load",
    "load_split",
    "predict_file",
    "train",
    "__version__",
]

_LAZY = {
    "Comparison": "bertwise.comparison",
    "compare": "bertwise.comparison",
    "CompareConfig": "bertwise.config",
    "embed": "bertwise.embedding",
    "load": "bertwise.export.folder",
    "predict_file": "bertwise.export.predict_file",
    "export_onnx": "bertwise.export.onnx",
    "train": "bertwise.export.training",
    "FinetuneClassifier": "bertwise.strategies.finetune",
    "ProbeClassifier": "bertwise.strategies.probe",
    "ZeroShotClassifier": "bertwise.strategies.zero_shot",
    "load_split": "bertwise.data.split",
}

if TYPE_CHECKING:
    from bertwise.comparison import Comparison, compare
    from bertwise.config import CompareConfig
    from bertwise.data.split import load_split
    from bertwise.embedding import embed
    from bertwise.export.folder import load
    from bertwise.export.onnx import export_onnx
    from bertwise.export.predict_file import predict_file
    from bertwise.export.training import train
    from bertwise.strategies.finetune import FinetuneClassifier
    from bertwise.strategies.probe import ProbeClassifier
    from bertwise.strategies.zero_shot import ZeroShotClassifier


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "serve":
        # A subpackage (bertwise.serve.serve, create_app): once imported it is this attribute anyway, so
        # ``bertwise.serve`` is the module whether or not something imported it first.
        import importlib

        return importlib.import_module("bertwise.serve")
    raise AttributeError(f"module 'bertwise' has no attribute {name!r}")
