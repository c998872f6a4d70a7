"""bertwise: measure which BERT strategy (zero-shot, frozen probe, fine-tuning) wins on your own labeled texts.

Heavy libraries (torch, transformers, scikit-learn) load only when a function that needs them runs, so importing
bertwise and ``bertwise --help`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertwise.util.version import __version__

__all__ = [
    "Comparison",
    "CompareConfig",
    "FinetuneClassifier",
    "MlflowTracking",
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
    "Comparison": "bertwise.pipeline.comparison",
    "compare": "bertwise.pipeline.comparison",
    "CompareConfig": "bertwise.config",
    "embed": "bertwise.inference.embedding",
    "load": "bertwise.inference.loading",
    "predict_file": "bertwise.inference.predict_file",
    "export_onnx": "bertwise.onnx.export",
    "train": "bertwise.training",
    "FinetuneClassifier": "bertwise.strategies.finetune",
    "MlflowTracking": "bertwise.tracking.mlflow_tracking",
    "ProbeClassifier": "bertwise.strategies.probe",
    "ZeroShotClassifier": "bertwise.strategies.zero_shot",
    "load_split": "bertwise.data.split",
}

if TYPE_CHECKING:
    from bertwise.config import CompareConfig
    from bertwise.data.split import load_split
    from bertwise.inference.embedding import embed
    from bertwise.inference.loading import load
    from bertwise.inference.predict_file import predict_file
    from bertwise.onnx.export import export_onnx
    from bertwise.pipeline.comparison import Comparison, compare
    from bertwise.strategies.finetune import FinetuneClassifier
    from bertwise.strategies.probe import ProbeClassifier
    from bertwise.strategies.zero_shot import ZeroShotClassifier
    from bertwise.tracking.mlflow_tracking import MlflowTracking
    from bertwise.training import train


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
