"""The contract every strategy follows: a scikit-learn classifier over raw texts.

The constructor only stores hyperparameters (so ``sklearn.base.clone`` and ``get_params`` work); ``fit`` learns state
that ends in an underscore and returns ``self``; ``predict_proba`` columns follow ``classes_``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from bertwise.data.containers import check_labels, check_texts
from bertwise.data.dataset import Label
from bertwise.exceptions import BertwiseError, DataError
from bertwise.strategies.cost import LOAD_SECONDS, Calibration, CalibrationSample, FitWork

if TYPE_CHECKING:
    from bertwise.backbone.encoder import Encoder
    from bertwise.config import CompareConfig


class NotFittedError(BertwiseError, SklearnNotFittedError):
    """``predict`` was called before ``fit``."""


@dataclass(frozen=True)
class StrategyTags:
    """What the runner and the recommender need to know about a strategy without isinstance checks."""

    name: str
    trains_backbone: bool  # updates the encoder's weights (slow on CPU, benefits most from a GPU)
    uses_labels_for_training: bool  # False for zero-shot: fit only records the label set
    seed_dependent: bool  # repeated seeds give different results
    # Trains for a planned number of steps that a budget may shorten (``shortened_schedule``); a budget also thins,
    # then drops, such a strategy's learning curve before it cuts the main comparison.
    has_training_schedule: bool = False
    curve_repeats: int = 1  # learning-curve subsamples per point, unless the user sets them
    fewest_curve_repeats: int = 1  # a budget cuts the curve's repeats down to this, no further
    # The standard deviation of macro-F1 points between runs that differ only in seed or training subsample, assumed
    # by the sequential protocol until runs measure it (a prior; docs/sequential.md says where each value comes from).
    run_spread_points: float = 0.0
    spoken_name: str = ""  # how a sentence names it ("fine-tuning", "the probe"); empty: ``name``
    # Runs when a comparison names no strategies; False for strategies that are opt-in (slow, or answering a narrower
    # question), so adding one to the registry does not lengthen everyone's default comparison.
    compared_by_default: bool = True
    # The registered name a model folder records, when it is not ``name``: a (backbone, strategy) pair of a comparison
    # over several backbones (strategies/variants.py) saves as its strategy, its backbone in the folder.
    saved_as: str = ""

    @property
    def in_words(self) -> str:
        return self.spoken_name or self.name


@dataclass(frozen=True)
class SavedFiles:
    """What a strategy's model folder must hold, checked before anything in it is loaded."""

    required: tuple[str, ...] = ()  # files the manifest must list
    # Its network's folder: must hold *.safetensors weights and nothing the manifest does not list, since a file added
    # there by hand could change what loads. None: the strategy keeps no such folder.
    weights_dir: str | None = None


class Strategy(ClassifierMixin, BaseEstimator):
    """Base class: subclasses implement ``_fit`` and ``_predict_proba`` on lists of str."""

    tags: ClassVar[StrategyTags]

    # The budget's cost model. The default: load the backbone, encode the training and test texts once.

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        """Estimated seconds for one fit and prediction of ``work`` on a machine of ``calibration``'s speeds."""
        return LOAD_SECONDS + (work.train_rows + work.test_rows) / calibration.encode_texts_per_second

    @classmethod
    def measure_speed(cls, sample: CalibrationSample) -> dict[str, float]:
        """The :class:`Calibration` figures this strategy measures (on the user's texts) for its cost model."""
        return {}

    @classmethod
    def shortened_schedule(cls, scale: float) -> dict[str, Any]:
        """Parameters that train for ``scale`` of the planned steps (``tags.has_training_schedule``); {} at 1."""
        return {}

    def fit(self, texts: Sequence[str], labels: Sequence[Label]) -> Strategy:
        """Learn from ``texts`` and their ``labels``: lists, tuples, numpy arrays, pandas Series or one-column
        DataFrames (see :func:`check_texts` and :func:`check_labels`)."""
        texts, labels = check_texts(texts, "fit"), check_labels(labels, "fit")
        if len(texts) != len(labels):
            raise DataError(
                f"{type(self).__name__}.fit got {len(texts)} texts but {len(labels)} labels; "
                "expected one label per text"
            )
        classes = sorted(set(labels), key=lambda label: (isinstance(label, str), label))
        if len(classes) < 2:
            raise DataError(f"{type(self).__name__}.fit needs at least 2 classes; found only {classes!r}")
        self.classes_ = np.array(classes, dtype=object if isinstance(classes[0], str) else None)
        self._fit(texts, labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape (n_texts, n_classes), columns in ``classes_`` order."""
        self._check_fitted()
        texts = check_texts(texts, "predict")
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float64)
        return np.asarray(self._predict_proba(texts), dtype=np.float64)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        probabilities = self.predict_proba(texts)
        return self.classes_[probabilities.argmax(axis=1)] if len(probabilities) else self.classes_[:0]

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        raise NotImplementedError

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    # What a strategy owns besides fit/predict. The pipeline, the model folder, the budget and the runner call only
    # these; none of them names a strategy. Adding a strategy = one module defining them + one registry line.

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> Strategy:
        """A fresh, unfitted instance configured from a comparison's settings."""
        raise NotImplementedError(f"{cls.__name__} does not define from_config")

    def check_params(self) -> None:
        """Refuse hyperparameters out of their range with a ConfigError naming the parameter; ``compare`` calls it
        on the parameters a user sets before any work, and a strategy's ``fit`` before it trains."""

    def fit_details(self) -> dict[str, Any]:
        """What this fit decided that is worth knowing beside its score (JSON-able; results.json's ``details``)."""
        return {}

    def save_state(self, folder: Path) -> dict[str, Any]:
        """Write what a fitted instance needs to predict again into ``folder`` (a model folder being built).

        Returns the manifest's strategy-specific entries (by convention its state under its name, ``-`` made ``_``,
        and, for a strategy that runs a BERT, ``backbone``, ``precision`` and ``weights_dir``: see
        :mod:`bertwise.strategies.state`); :meth:`from_state` gets them back in the manifest."""
        raise NotImplementedError(f"{type(self).__name__} does not define save_state")

    @classmethod
    def from_state(cls, folder: Path, manifest: Mapping[str, Any], *, device: str, precision: str) -> Strategy:
        """The fitted instance :meth:`save_state` wrote into ``folder`` (its integrity already verified)."""
        raise NotImplementedError(f"{cls.__name__} does not define from_state")

    @classmethod
    def saved_files(cls) -> SavedFiles:
        """The files :meth:`save_state` always writes, and the folder of its network if it has one."""
        return SavedFiles()

    @classmethod
    def check_state(cls, file: Path, manifest: Mapping[str, Any]) -> None:
        """Refuse, with a ModelError naming ``file``, manifest entries that :meth:`save_state` could not have written
        (the manifest's common entries are already checked)."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.tags.seed_dependent
        return tags


class FrozenBackboneMixin:
    """For strategies that encode texts with the frozen backbone (the probe, zero-shot's embedding mode)."""

    model: str | None
    pooling: Any
    device: str
    precision: str

    def _encoder(self) -> Encoder:
        """The shared, remembering encoder; a model loaded from its folder brings its own (``encoder_``) that
        remembers nothing, so serving it keeps memory flat and writes no user text to the disk cache."""
        from bertwise.backbone.encoder import load_encoder

        own: Encoder | None = getattr(self, "encoder_", None)
        return own if own is not None else load_encoder(self.model, self.pooling, self.device, self.precision)
