"""SetFit: contrastive fine-tuning of the sentence encoder on pairs of labeled texts, then a logistic-regression head.

The body is a ``sentence_transformers.SentenceTransformer`` built from the backbone bertwise resolved and checked
(:func:`~bertwise.backbone.resolve.resolve_backbone`), trained with sentence-transformers' own
``CosineSimilarityLoss`` on pairs drawn here: per text and iteration one partner of its class (target cosine 1) and
one of another class (target 0), as setfit's ``num_iterations`` does, so the pairs grow linearly with the texts
rather than with their square. docs/setfit.md says why the pairs are drawn here rather than by the setfit library.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bertwise.backbone.device import resolve_device
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.modules import pooling_modes
from bertwise.backbone.resolve import Backbone, PoolingChoice, resolve_backbone
from bertwise.data.dataset import Label
from bertwise.exceptions import ConfigError, ModelError
from bertwise.strategies.base import SavedFiles, Strategy, StrategyTags
from bertwise.strategies.cost import LOAD_SECONDS, Calibration, FitWork
from bertwise.strategies.logistic_head import HEAD_FILE, read_logistic_head, save_logistic_head
from bertwise.strategies.state import (
    BACKBONE_DIR,
    backbone_entries,
    check_frozen_backbone,
    classes_array,
    configured,
    recorded_attributes,
    require_section,
)

if TYPE_CHECKING:
    from bertwise.config import CompareConfig

# In a model folder: the contrastively trained body as sentence-transformers saves it, and the head's arrays.
BODY_DIR = BACKBONE_DIR
INSTALL_HINT = "pip install 'bertwise[setfit]'"
# Seconds of one SetFit training pair (two texts forward and backward at batch 16, float32) over one of finetune's
# calibrated training examples (one text at batch 32, under bfloat16 autocast where the CPU has it), and of one text
# encoded by the trained body (sentence-transformers' encode, float32) over one encoded by bertwise's frozen encoder:
# medians of 3 back-to-back rounds on this project's 2-core CPU with all-MiniLM-L6-v2 on examples/banking77_sample
# (pairs 2.25-5.13, encoding 5.65-5.89; benchmarks/setfit_speed.py, docs/setfit.md).
SECONDS_PER_PAIR_OVER_EXAMPLE = 4.4
SECONDS_PER_ENCODED_TEXT_OVER_FROZEN = 5.9
# The head is one logistic regression at one C; the probe's measured seconds per row cover about 21 such fits (its
# 5-value C grid over 5 folds of 4/5 of the rows, warm-started, plus the final fit: probe._seconds_per_row).
HEAD_FITS_IN_PROBE_SECONDS = 21.0
_DETAILS = {
    "pairs_": "training_pairs",
    "steps_": "optimizer_steps",
    "planned_steps_": "planned_steps",
    "train_seconds_": "train_seconds",
    "stopped_by_": "stopped_by",
    "stopped_at_step_": "stopped_at_step",
}


def require_sentence_transformers() -> None:
    """A one-line ConfigError, not an ImportError traceback, when the optional packages are missing."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise ConfigError(f"the setfit strategy needs the setfit package: {INSTALL_HINT}") from None


def pair_count(rows: int, num_iterations: int, max_pairs: int | None) -> int:
    """Training pairs for ``rows`` texts: one positive and one negative per text and iteration, at most
    ``max_pairs``; linear in the texts (setfit's default oversampling makes every pair: quadratic)."""
    pairs = 2 * max(0, num_iterations) * rows
    return pairs if max_pairs is None else min(pairs, max(0, max_pairs))


def draw_pairs(codes: np.ndarray, num_iterations: int, max_pairs: int | None, seed: int) -> np.ndarray:
    """Rows ``(first, second, same class)`` of :func:`pair_count` pairs, in a seeded random order.

    Each text is paired, per iteration, with a uniformly drawn other text of its class (itself when it is alone in its
    class) and with a uniformly drawn text of another class. Memory and time are linear in the pairs: nothing builds
    the n² candidate pairs that setfit's sampler enumerates (its issues #472, #628).
    """
    rng = np.random.default_rng(seed)
    n = len(codes)
    order = np.argsort(codes, kind="stable")  # texts grouped by class: class c holds order[start[c]:start[c]+size[c]]
    sizes = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[codes[order]]  # each text's place within its class
    anchors = np.tile(np.arange(n), max(0, num_iterations))
    own, size = codes[anchors], sizes[codes[anchors]]
    # Another member of the class: a draw among size-1 places, shifted past the anchor's own place.
    draw = np.floor(rng.random(len(anchors)) * np.maximum(size - 1, 1)).astype(np.int64)
    draw = np.where(size > 1, draw + (draw >= rank[anchors]), 0)
    positives = order[starts[own] + draw]
    # A text of another class: a draw among the n-size places outside the class's block.
    outside = np.floor(rng.random(len(anchors)) * (n - size)).astype(np.int64)
    negatives = order[np.where(outside < starts[own], outside, outside + size)]
    pairs = np.concatenate(
        [
            np.stack([anchors, positives, np.ones_like(anchors)], axis=1),
            np.stack([anchors, negatives, np.zeros_like(anchors)], axis=1),
        ]
    )
    pairs = pairs[rng.permutation(len(pairs))]
    return pairs[: pair_count(n, num_iterations, max_pairs)]


class SetFitClassifier(Strategy):
    """SetFit (Tunstall et al., 2022): the sentence encoder fine-tuned contrastively on text pairs, then a logistic
    regression on its embeddings.

    Made for few labels per class, where it often beats the probe: the pairs multiply the few texts. It trains the
    whole encoder, so on a CPU it costs minutes where the probe costs seconds; prefer ``finetune`` with hundreds of
    examples per class.

    Parameters
    ----------
    model: local directory or hub id of the backbone; None uses the embedded all-MiniLM-L6-v2.
    pooling: "auto" (a sentence-transformers checkpoint's own modules; mean for a plain checkpoint) or a pooling mode.
    num_iterations: pairs per text: one of its class and one of another, per iteration (setfit's parameter, whose
        documented value is 20); training pairs = 2 x num_iterations x texts.
    max_pairs: an upper bound on the training pairs (None: none beyond num_iterations).
    batch_size: pairs per optimiser step.
    learning_rate, warmup_ratio: AdamW's peak rate for the body, reached after a linear warm-up, then linear decay.
    epochs: passes over the drawn pairs.
    C: the head's inverse regularisation (scikit-learn's default, as setfit's head): the training texts cannot choose
        it by cross-validation, since the body has already been trained to separate exactly those texts.
    max_iter: L-BFGS iterations of the head.
    seed: seeds the pairs, their order, dropout and the head.
    device: "auto", "cpu", "cuda" or "mps". Training and encoding run in float32.
    """

    # Trains and encodes in float32 whatever the comparison's precision: what its manifest records (backbone_entries).
    precision: ClassVar[str] = "float32"
    # Set by a comparison (runner.stored_fit): its ``step_stop(step, total_steps)``, asked after every step, ends the
    # body's training when the budget's time is spent; the head is then fitted on the body as it is. The early look at
    # a clearly losing run is fine-tuning's only: it needs a validation curve, and SetFit carves no validation split.
    monitor: Any = None

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="setfit",
        trains_backbone=True,
        uses_labels_for_training=True,
        seed_dependent=True,
        has_training_schedule=True,
        curve_repeats=1,
        fewest_curve_repeats=1,
        # Fine-tuning's prior (3.0 points): both train the whole encoder with seeded pair or batch order and dropout;
        # SetFit's paper reports run-to-run spreads of a few points at 8-64 examples per class. Replaced by measured
        # spread once runs exist (docs/sequential.md).
        run_spread_points=3.0,
        spoken_name="SetFit",
        compared_by_default=False,
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        defaults = cls().get_params()
        iterations = max(1, math.floor(defaults["num_iterations"] * work.schedule_scale))
        pairs = pair_count(work.train_rows, iterations, defaults["max_pairs"])
        training = SECONDS_PER_PAIR_OVER_EXAMPLE * pairs * defaults["epochs"] / calibration.train_examples_per_second
        # A trained body encodes with nothing cached: the training texts for the head, then the test texts.
        encoding = SECONDS_PER_ENCODED_TEXT_OVER_FROZEN * (work.train_rows + work.test_rows)
        head = calibration.probe_seconds_per_row * work.train_rows / HEAD_FITS_IN_PROBE_SECONDS
        return LOAD_SECONDS + training + encoding / calibration.encode_texts_per_second + head

    @classmethod
    def shortened_schedule(cls, scale: float) -> dict[str, Any]:
        if scale >= 1.0:
            return {}
        return {"num_iterations": max(1, math.floor(cls().get_params()["num_iterations"] * scale))}

    def __init__(
        self,
        *,
        model: str | None = None,
        pooling: PoolingChoice = "auto",
        num_iterations: int = 20,
        max_pairs: int | None = None,
        batch_size: int = 16,
        learning_rate: float = 2e-5,
        warmup_ratio: float = 0.1,
        epochs: int = 1,
        C: float = 1.0,  # noqa: N803 - scikit-learn's own name
        max_iter: int = 1000,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.num_iterations = num_iterations
        self.max_pairs = max_pairs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.warmup_ratio = warmup_ratio
        self.epochs = epochs
        self.C = C
        self.max_iter = max_iter
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> SetFitClassifier:
        return cls(
            model=config.model,
            pooling=config.pooling,  # type: ignore[arg-type]
            seed=config.seed,
            device=config.device,
            progress=progress,
        )

    def check_params(self) -> None:
        rules = {
            "num_iterations": self.num_iterations >= 1,
            "max_pairs": self.max_pairs is None or self.max_pairs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "epochs": self.epochs >= 1,
            "C": self.C > 0,
        }
        for name, ok in rules.items():
            if not ok:
                raise ConfigError(
                    f"the {name!r} parameter of SetFitClassifier is out of range: got {getattr(self, name)!r}"
                )

    def fit_details(self) -> dict[str, Any]:
        return recorded_attributes(self, _DETAILS)

    # Fitting and predicting -----------------------------------------------------------------------------------------

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        import torch
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        self.check_params()
        require_sentence_transformers()
        backbone = resolve_backbone(self.model, pooling=self.pooling)
        device = resolve_device(self.device)
        torch.manual_seed(self.seed)  # dropout while training
        body = load_body(backbone, device)
        index = {label: position for position, label in enumerate(self.classes_.tolist())}
        codes = np.array([index[label] for label in labels], dtype=np.int64)
        pairs = draw_pairs(codes, self.num_iterations, self.max_pairs, self.seed)
        started = time.perf_counter()
        schedule = {
            key: getattr(self, key) for key in ("batch_size", "learning_rate", "warmup_ratio", "epochs", "seed")
        }
        step_stop = getattr(self.monitor, "step_stop", None)
        trained = train_body(body, texts, pairs, device=device, progress=self.progress, step_stop=step_stop, **schedule)
        self.steps_, self.planned_steps_ = trained.steps, trained.planned
        for attribute in ("stopped_by_", "stopped_at_step_"):
            self.__dict__.pop(attribute, None)  # a refit that ran its whole schedule keeps no earlier stop
        if trained.stopped_by is not None:
            self.stopped_by_, self.stopped_at_step_ = trained.stopped_by, trained.steps
        self.train_seconds_ = round(time.perf_counter() - started, 2)
        self.pairs_ = len(pairs)
        features = encode(body, texts, self.batch_size * 2, self.progress)
        # As the probe fits: one BLAS thread (L-BFGS makes many small calls; docs/speed.md).
        with threadpool_limits(limits=1, user_api="blas"):
            self.head_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
            self.head_.fit(features, codes)
        self.body_ = body
        self.backbone_ = backbone
        self.device_ = device

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        features = encode(self.body_, texts, self.batch_size * 2, self.progress)
        probabilities = np.zeros((len(texts), len(self.classes_)))
        probabilities[:, self.head_.classes_] = self.head_.predict_proba(features)
        return probabilities

    # The model folder -----------------------------------------------------------------------------------------------

    def save_state(self, folder: Path) -> dict[str, Any]:

        directory = folder / BODY_DIR
        with quiet_loading():  # its "Writing model shards" bar
            # No model card: sentence-transformers would write the training texts' statistics into it.
            self.body_.save(str(directory), create_model_card=False, safe_serialization=True)
        pickled = sorted(p.name for p in directory.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
        if pickled or not any(directory.glob("*.safetensors")):
            raise ModelError(
                f"saving the SetFit body wrote {', '.join(pickled) or 'no *.safetensors file'}; expected "
                "safetensors weights only"
            )
        save_logistic_head(self.head_, self.classes_, folder / HEAD_FILE)
        state = {"head_file": HEAD_FILE, "iterations": int(np.max(self.head_.n_iter_))}
        return {**backbone_entries(self, BODY_DIR), "setfit": state}

    @classmethod
    def from_state(cls, folder: Path, manifest: Mapping[str, Any], *, device: str, precision: str) -> SetFitClassifier:

        require_sentence_transformers()
        estimator = configured(cls(), manifest, device=device, progress=False)
        # Resolved like any backbone folder: safetensors only, and only modules bertwise can run.
        body_backbone = resolve_backbone(str(folder / BODY_DIR))
        target = resolve_device(device)
        estimator.body_ = load_body(body_backbone, target)
        estimator.classes_ = classes_array(manifest)
        estimator.head_ = read_setfit_head(folder, manifest, int(estimator.body_.get_embedding_dimension()))
        estimator.device_ = target
        return estimator

    @classmethod
    def saved_files(cls) -> SavedFiles:
        return SavedFiles(
            required=(f"{BODY_DIR}/config.json", f"{BODY_DIR}/modules.json", HEAD_FILE), weights_dir=BODY_DIR
        )

    @classmethod
    def check_state(cls, file: Path, manifest: Mapping[str, Any]) -> None:
        require_section(file, manifest, "backbone")
        require_section(file, manifest, "setfit")
        check_frozen_backbone(file, manifest)


def read_setfit_head(folder: Path, manifest: Mapping[str, Any], dimension: int) -> Any:
    """The saved logistic-regression head of a SetFit folder, its arrays checked against the manifest's classes and
    the body's embedding ``dimension``: what ``bertwise.load`` and the ONNX runtime apply after the body."""
    estimator = configured(SetFitClassifier(), manifest, progress=False)
    return read_logistic_head(
        folder / HEAD_FILE,
        manifest,
        dimension,
        iterations=int(manifest["setfit"].get("iterations") or 0),
        C=estimator.C,
        max_iter=estimator.max_iter,
        random_state=estimator.seed,
    )


def train_body(
    body: Any,
    texts: list[str],
    pairs: np.ndarray,
    *,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    epochs: int,
    seed: int,
    device: Any,
    progress: bool = False,
    step_stop: Callable[[int, int], str | None] | None = None,
) -> BodyTraining:
    """Contrastive training on :func:`draw_pairs`' rows: the cosine of each pair's embeddings pulled towards 1 (same
    class) or 0 by mean squared error (sentence-transformers' CosineSimilarityLoss, setfit's default loss), AdamW
    with linear warm-up and decay as setfit trains. ``step_stop(step, total)``, asked after every step, may end it
    (a deadline) with a reason."""
    import torch
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    from sentence_transformers.util import batch_to_device
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    loss_function = CosineSimilarityLoss(body)
    total = math.ceil(len(pairs) / batch_size) * epochs
    optimizer = torch.optim.AdamW(body.parameters(), lr=learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(warmup_ratio * total), total)
    rng = np.random.default_rng(seed + 1)
    body.train()
    step, stopped_by = 0, None
    with tqdm(total=total, desc="setfit: training", unit="step", disable=not progress) as bar:
        for epoch in range(epochs):
            if stopped_by is not None:
                break
            # The first epoch keeps draw_pairs' seeded order; later ones reshuffle it.
            order = pairs if epoch == 0 else pairs[rng.permutation(len(pairs))]
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                columns = [
                    batch_to_device(body.preprocess([texts[row] for row in batch[:, side]]), device) for side in (0, 1)
                ]
                targets = torch.as_tensor(batch[:, 2], dtype=torch.float32, device=device)
                loss = loss_function(columns, targets)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(body.parameters(), 1.0)  # as the transformers Trainer does
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
                step += 1
                stopped_by = step_stop(step, total) if step_stop is not None and step < total else None
                if stopped_by is not None:
                    break
    body.eval()
    return BodyTraining(steps=step, planned=total, stopped_by=stopped_by)


@dataclass(frozen=True)
class BodyTraining:
    """How the body's training went: steps taken of those planned, and why it stopped early (None: it did not)."""

    steps: int
    planned: int
    stopped_by: str | None


def load_body(backbone: Backbone, device: Any) -> Any:
    """``backbone`` as a SentenceTransformer that embeds as bertwise's encoder does: the checkpoint's own modules
    (or mean pooling for a plain checkpoint), the pooling the backbone was resolved with, its token limit."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    with quiet_loading():
        body: Any = SentenceTransformer(
            backbone.path,
            device=str(device),
            trust_remote_code=False,
            local_files_only=True,
            model_kwargs={"dtype": torch.float32, "use_safetensors": True},
        )
    # bertwise refuses any module before Pooling but the Transformer (backbone.modules), so Pooling is second.
    own: Any = body[1].pooling_mode  # one mode's name, or a tuple of them
    if (own if isinstance(own, str) else "+".join(own)) != backbone.pooling:  # --pooling chose another
        modes = pooling_modes(backbone.pooling)
        body[1] = Pooling(body[0].get_embedding_dimension(), pooling_mode=modes)
    body.max_seq_length = backbone.max_length
    return body.eval()


def encode(body: Any, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    """float32 embeddings of ``texts`` by the body's own modules (its Normalize, if any, already applied)."""
    vectors = body.encode(texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)
