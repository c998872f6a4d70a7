"""Feature extraction (the article's third way): frozen backbone embeddings fed to a logistic regression."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bertwise.backbone.encoder import load_encoder
from bertwise.backbone.resolve import PoolingChoice
from bertwise.data.dataset import Label
from bertwise.strategies.base import Strategy, StrategyTags

# Inverse regularisation strengths tried by cross-validation. Unit-norm sentence embeddings need far weaker
# regularisation than sklearn's default C=1 (which under-fits many-class sets), so the grid reaches high.
DEFAULT_CS = (0.1, 1.0, 10.0, 100.0, 1000.0)


class ProbeClassifier(Strategy):
    """Frozen encoder + logistic regression whose ``C`` is chosen by stratified cross-validation on the training set.

    Cheap to train (one encoding pass, then seconds of CPU), fast to serve, and hard to beat when labeled data is
    scarce (tens of examples per class). Prefer ``finetune`` when there are hundreds of examples per class or the
    domain's vocabulary is far from the backbone's pre-training text.

    Parameters
    ----------
    model: local directory or hub id of the backbone; None uses the embedded all-MiniLM-L6-v2.
    pooling: "auto" (the model's own: mean for sentence-transformers models), "mean" or "cls".
    Cs: regularisation grid searched by cross-validation.
    cv: folds (reduced to the smallest class size when a class is smaller).
    max_iter: L-BFGS iterations; generous because high-C fits converge slowly.
    seed: seeds the cross-validation folds.
    device: "auto", "cpu", "cuda" or "mps" (for encoding).
    """

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="probe", trains_backbone=False, uses_labels_for_training=True, seed_dependent=False
    )

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
        progress: bool = False,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.Cs = Cs
        self.cv = cv
        self.max_iter = max_iter
        self.seed = seed
        self.device = device
        self.progress = progress

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold

        encoder = load_encoder(self.model, self.pooling, self.device)
        features = encoder.encode(texts, progress=self.progress, description="probe: encoding train")
        targets = np.array([int(np.flatnonzero(self.classes_ == label)[0]) for label in labels])
        smallest_class = int(np.bincount(targets).min())
        folds = min(self.cv, smallest_class)
        if folds >= 2 and len(self.Cs) > 1:
            search = LogisticRegressionCV(
                Cs=list(self.Cs),
                cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed),
                scoring="f1_macro",
                max_iter=self.max_iter,
                random_state=self.seed,
                **_quiet_cv_options(),
            )
            # refit=True (the default) leaves the final model trained on all rows with the chosen C.
            self.head_ = search.fit(features, targets)
            self.C_ = float(np.atleast_1d(search.C_)[0])
        else:
            # One example in some class: no fold can hold it out, so keep the middle of the grid.
            self.C_ = float(sorted(self.Cs)[len(self.Cs) // 2])
            self.head_ = LogisticRegression(C=self.C_, max_iter=self.max_iter, random_state=self.seed)
            self.head_.fit(features, targets)
        self.backbone_ = encoder.backbone

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        encoder = load_encoder(self.model, self.pooling, self.device)
        features = encoder.encode(texts, progress=self.progress, description="probe: encoding")
        probabilities = np.zeros((len(texts), len(self.classes_)))
        probabilities[:, self.head_.classes_] = self.head_.predict_proba(features)
        return probabilities


def _quiet_cv_options() -> dict[str, object]:
    """Opt in to scikit-learn 1.8+'s future defaults where they exist, which also silences its FutureWarnings."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    accepted = inspect.signature(LogisticRegressionCV).parameters
    options: dict[str, object] = {}
    if "l1_ratios" in accepted:
        options["l1_ratios"] = (0.0,)
    if "use_legacy_attributes" in accepted:
        options["use_legacy_attributes"] = False
    return options
