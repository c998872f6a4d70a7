"""What a strategy's cost model is given: this machine's measured speeds, and the work one fit will do.

The budget (:mod:`bertwise.evaluation.budget`) measures a :class:`Calibration` once per comparison and asks each
strategy class, through ``fit_seconds(work, calibration)``, what one fit of a :class:`FitWork` will take. The figures
a calibration holds are measured by the strategies that need them (``measure_speed``), so a strategy's timing code
lives beside the strategy it times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOAD_SECONDS = 2.0  # loading weights and the tokenizer, per fit


@dataclass(frozen=True)
class Calibration:
    encode_texts_per_second: float
    train_examples_per_second: float
    probe_seconds_per_row: float  # the probe's regression (C search and final fit), per training row

    def to_dict(self) -> dict[str, float]:
        return {
            "encode_texts_per_second": round(self.encode_texts_per_second, 1),
            "train_examples_per_second": round(self.train_examples_per_second, 1),
            "probe_seconds_per_row": round(self.probe_seconds_per_row, 7),
        }


@dataclass(frozen=True)
class CalibrationSample:
    """What a strategy may time itself on: a sample of the user's own training texts (length matters)."""

    texts: list[str]
    labels: list[Any]
    embeddings: np.ndarray  # the frozen backbone's embeddings of the first len(embeddings) texts
    n_classes: int
    model: str | None
    device: str
    seed: int
    precision: str = "auto"


@dataclass(frozen=True)
class FitWork:
    """One fit and prediction the plan will run."""

    train_rows: int
    test_rows: int
    n_classes: int
    encode_train: bool  # the training texts' embeddings are not cached yet (the first fit of a comparison)
    curve_point: bool = False  # a learning-curve point: the test rows were scored (and encoded) by the main run
    schedule_scale: float = 1.0  # share of a training schedule's planned steps a budget left (see Strategy.tags)
