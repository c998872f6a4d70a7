"""What a comparison records beside its numbers: the machine, the software versions, and each strategy's test
predictions file."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from bertwise.data.dataset import DataSplit
from bertwise.evaluation.runner import PREDICTED_LABEL_COLUMN, PROBABILITY_PREFIX, StrategyResult
from bertwise.util import atomic
from bertwise.util.version import __version__


def machine_description() -> dict[str, Any]:
    import os

    import psutil
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# Every library whose version can change a number in results.json; sentence-transformers only checks the encoder.
RECORDED_LIBRARIES = ("torch", "transformers", "tokenizers", "scikit-learn", "numpy", "scipy", "sentence-transformers")


def software_versions() -> dict[str, str | None]:
    """bertwise, Python and each of :data:`RECORDED_LIBRARIES` (None: not installed), for results.json."""
    return {"bertwise": __version__, "python": platform.python_version(), **library_versions(RECORDED_LIBRARIES)}


def library_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each distribution in ``names`` (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def write_predictions(path: Path, split: DataSplit, result: StrategyResult) -> None:
    """``predictions-<name>.csv``: the test texts and labels, the first run's predictions and probabilities."""
    import pandas as pd

    if result.predictions is None or result.probabilities is None:
        return
    frame = pd.DataFrame(
        {"text": split.test.texts, "label": split.test.labels, PREDICTED_LABEL_COLUMN: result.predictions}
    )
    for column, label in enumerate(split.classes):
        frame[f"{PROBABILITY_PREFIX}{label}"] = result.probabilities[:, column]
    atomic.write_text(path, frame.to_csv(index=False))  # whole or not at all, even if the process is killed
