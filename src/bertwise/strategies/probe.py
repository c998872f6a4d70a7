"""Feature extraction (the article's third way): frozen backbone embeddings fed to a logistic regression."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bertwise.backbone.resolve import PoolingChoice
from bertwise.data.dataset import Label
from bertwise.exceptions import ConfigError, ModelError
from bertwise.strategies.base import FrozenBackboneMixin, SavedFiles, Strategy, StrategyTags
from bertwise.strategies.cost import Calibration, CalibrationSample, FitWork
from bertwise.strategies.logistic_head import HEAD_FILE, read_logistic_head, save_logistic_head
from bertwise.strategies.state import (
    BACKBONE_DIR,
    backbone_entries,
    check_frozen_backbone,
    classes_array,
    configured,
    copy_backbone,
    fitted_backbone,
    recorded_attributes,
    require_section,
    saved_backbone,
)

# Inverse regularisation strengths tried by cross-validation. Unit-norm sentence embeddings need far weaker
# regularisation than sklearn's default C=1 (which under-fits many-class sets), so the grid reaches high.
DEFAULT_CS = (0.1, 1.0, 10.0, 100.0, 1000.0)

if TYPE_CHECKING:
    from bertwise.config import CompareConfig


class ProbeClassifier(FrozenBackboneMixin, Strategy):
    """Frozen encoder + logistic regression whose ``C`` is chosen by stratified cross-validation on the training set.

    Cheap to train (one encoding pass, then seconds of CPU), fast to serve, and hard to beat when labeled data is
    scarce (tens of examples per class). Prefer ``finetune`` when there are hundreds of examples per class or the
    domain's vocabulary is far from the backbone's pre-training text.

    Parameters
    ----------
    model: local directory or hub id of the backbone; None uses the embedded all-MiniLM-L6-v2.
    pooling: "auto" (a sentence-transformers checkpoint's own modules; mean for a plain checkpoint) or a
        sentence-transformers pooling mode: "cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken".
    Cs: regularisation grid searched by cross-validation.
    cv: folds (reduced to the smallest class size when a class is smaller).
    max_iter: L-BFGS iterations; generous because high-C fits converge slowly.
    seed: seeds the cross-validation folds.
    device: "auto", "cpu", "cuda" or "mps" (for encoding).
    precision: "auto" encodes in bfloat16 where the hardware has bfloat16 units (every embedding within cosine
        0.9999 of float32, and faster on such a CPU: docs/speed.md), else float32; "float32" or "bfloat16" force one.
    """

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="probe",
        trains_backbone=False,
        uses_labels_for_training=True,
        seed_dependent=False,
        curve_repeats=5,
        fewest_curve_repeats=3,
        run_spread_points=2.0,
        spoken_name="the probe",
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        # Embeddings are cached: the training texts are encoded by the first fit only, and a curve point reuses the
        # test rows' embeddings of the main run. The regression is timed per row by measure_speed.
        encode = calibration.encode_texts_per_second
        regression = calibration.probe_seconds_per_row * work.train_rows
        test_rows = 0 if work.curve_point else work.test_rows
        return (work.train_rows / encode if work.encode_train else 0.0) + test_rows / encode + regression

    @classmethod
    def measure_speed(cls, sample: CalibrationSample) -> dict[str, float]:
        labels = sample.labels[: len(sample.embeddings)]
        return {"probe_seconds_per_row": _seconds_per_row(sample.embeddings, labels, sample.n_classes)}

    def __init__(
        self,
        *,
        model: str | None = None,
        pooling: PoolingChoice = "auto",
        Cs: tuple[float, ...] = DEFAULT_CS,  # noqa: N803 - scikit-learn's own name for this grid
        cv: int = 5,
        max_iter: int = 2000,
        seed: int = 0,
        device: str = "auto",
        precision: str = "auto",
        progress: bool = False,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.Cs = Cs
        self.cv = cv
        self.max_iter = max_iter
        self.seed = seed
        self.device = device
        self.precision = precision
        self.progress = progress

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> ProbeClassifier:
        return cls(
            model=config.model,
            pooling=config.pooling,  # type: ignore[arg-type]
            seed=config.seed,
            device=config.device,
            precision=config.precision,
            progress=progress,
        )

    def fit_details(self) -> dict[str, Any]:
        return recorded_attributes(self, {"C_": "chosen_C", "cv_scores_": "cv_macro_f1_by_C"})

    def save_state(self, folder: Path) -> dict[str, Any]:
        head = self.head_
        copy_backbone(Path(fitted_backbone(self).path), folder / BACKBONE_DIR)
        save_logistic_head(head, self.classes_, folder / HEAD_FILE)
        state = {"head_file": HEAD_FILE, "C": float(self.C_), "iterations": int(np.max(head.n_iter_))}
        return {**backbone_entries(self, BACKBONE_DIR), "probe": state}

    @classmethod
    def from_state(cls, folder: Path, manifest: Mapping[str, Any], *, device: str, precision: str) -> ProbeClassifier:
        from bertwise.backbone.encoder import Encoder

        backbone = saved_backbone(folder, manifest)
        estimator = configured(cls(), manifest, model=backbone.path, device=device, precision=precision, progress=False)
        encoder = Encoder(backbone, device=device, precision=precision, remember=False)
        params = {"max_iter": estimator.max_iter, "random_state": estimator.seed}
        estimator.head_ = read_probe_head(folder, manifest, encoder.dimension, **params)
        estimator.classes_ = classes_array(manifest)
        estimator.C_ = float(manifest["probe"]["C"])
        details = manifest.get("details")
        estimator.cv_scores_ = dict(details.get("cv_macro_f1_by_C") or {}) if isinstance(details, dict) else {}
        estimator.backbone_ = backbone
        estimator.encoder_ = encoder
        return estimator

    @classmethod
    def saved_files(cls) -> SavedFiles:
        return SavedFiles(required=(f"{BACKBONE_DIR}/config.json", HEAD_FILE), weights_dir=BACKBONE_DIR)

    @classmethod
    def check_state(cls, file: Path, manifest: Mapping[str, Any]) -> None:
        require_section(file, manifest, "backbone")
        state = require_section(file, manifest, "probe")
        check_frozen_backbone(file, manifest)
        if not isinstance(state.get("C"), int | float):
            raise ModelError(f"{file}: 'probe' is {state!r}; expected the chosen C")

    def check_params(self) -> None:
        # cv below 2 is allowed: it keeps the middle of the grid without cross-validating, as a tiny class does.
        rules = {
            "Cs": len(self.Cs) >= 1 and all(c > 0 for c in self.Cs),
            "max_iter": self.max_iter >= 1,
        }
        for name, ok in rules.items():
            if not ok:
                raise ConfigError(
                    f"the {name!r} parameter of ProbeClassifier is out of range: got {getattr(self, name)!r}"
                )

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        self.check_params()

        # A refit encodes with the (possibly changed) parameters, not with the encoder a saved model was loaded with.
        self.__dict__.pop("encoder_", None)
        encoder = self._encoder()
        features = encoder.encode(texts, progress=self.progress, description="probe: encoding train")
        index = {label: position for position, label in enumerate(self.classes_.tolist())}
        targets = np.array([index[label] for label in labels])
        # L-BFGS on a few hundred dimensions makes many small BLAS calls; multi-threaded OpenBLAS spends more time
        # waking threads than computing (an order of magnitude slower on 2 cores; docs/speed.md).
        with threadpool_limits(limits=1, user_api="blas"):
            self.C_, self.cv_scores_ = self._choose_c(features, targets)
            self.head_ = LogisticRegression(C=self.C_, max_iter=self.max_iter, random_state=self.seed)
            self.head_.fit(features, targets)
        self.backbone_ = encoder.backbone

    def _choose_c(self, features: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, float]]:
        """C with the best mean macro-F1 over stratified folds; ties go to the stronger regularisation."""
        from joblib import Parallel, delayed
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score
        from sklearn.model_selection import StratifiedKFold

        grid = sorted(self.Cs)
        folds = min(self.cv, int(np.bincount(targets).min()))
        if folds < 2 or len(grid) == 1:
            # A class with one example cannot be held out of any fold: keep the middle of the grid.
            return float(grid[len(grid) // 2]), {}
        all_classes = np.arange(len(self.classes_))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)

        def score_fold(train_rows: np.ndarray, held_rows: np.ndarray) -> list[float]:
            # Ascending C with warm starts, as LogisticRegressionCV does: each fit starts from the previous, more
            # regularised one's weights. (At the top of the grid the warm start often already meets the tolerance,
            # so a high C scores like the C below it and the tie goes to the stronger regularisation.)
            model = LogisticRegression(max_iter=self.max_iter, random_state=self.seed, warm_start=True)
            scores = []
            for c in grid:
                model.set_params(C=c).fit(features[train_rows], targets[train_rows])
                predicted = model.predict(features[held_rows])
                scores.append(
                    f1_score(targets[held_rows], predicted, average="macro", labels=all_classes, zero_division=0.0)
                )
            return scores

        # Folds run in threads: scikit-learn's loss and gradient release the GIL, so 2 cores fit two folds at once
        # (identical scores, a third less time on BANKING77; docs/speed.md).
        workers = max(1, min(folds, os.cpu_count() or 1))
        per_fold = Parallel(n_jobs=workers, backend="threading")(
            delayed(score_fold)(train_rows, held_rows) for train_rows, held_rows in splitter.split(features, targets)
        )
        totals = {c: sum(scores[position] for scores in per_fold) / folds for position, c in enumerate(grid)}
        best = max(grid, key=lambda c: (round(totals[c], 10), -c))
        return float(best), {f"{c:g}": round(score, 4) for c, score in totals.items()}

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        encoder = self._encoder()
        features = encoder.encode(texts, progress=self.progress, description="probe: encoding")
        probabilities = np.zeros((len(texts), len(self.classes_)))
        probabilities[:, self.head_.classes_] = self.head_.predict_proba(features)
        return probabilities


def _seconds_per_row(features: np.ndarray, labels: list[Any], n_classes: int) -> float:
    """Seconds per training row of the probe's whole fit: the C grid, warm-started, timed on the user's embeddings.

    The probe fits the grid once per fold (5 folds of 4/5 of the rows) and once more with the chosen C, about 4.3
    times one pass over the grid on all rows. Multinomial regression costs about linearly in rows and classes.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    codes = {label: code for code, label in enumerate(dict.fromkeys(labels))}
    targets = np.array([codes[label] for label in labels])
    if len(codes) < 2:
        return 1e-4
    model = LogisticRegression(max_iter=2000, warm_start=True)
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # as the probe fits
        for c in sorted(DEFAULT_CS):
            model.set_params(C=c).fit(features, targets)
    grid_seconds = time.perf_counter() - start
    return 4.3 * grid_seconds / len(targets) * max(1.0, n_classes / len(codes))


def read_probe_head(folder: Path, manifest: Mapping[str, Any], dimension: int, **params: Any) -> Any:
    """The probe's saved logistic regression (``params`` go to its constructor), its arrays checked against the
    manifest's classes and the encoder's ``dimension``: what ``bertwise.load`` and the ONNX runtime predict with."""
    state = manifest["probe"]
    return read_logistic_head(
        folder / HEAD_FILE,
        manifest,
        dimension,
        iterations=int(state.get("iterations") or 0),
        C=float(state["C"]),
        **params,
    )
