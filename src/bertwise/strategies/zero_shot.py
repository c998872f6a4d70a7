"""Zero-shot: rank the label set for each text with no training.

Two modes. ``nli`` runs the transformers zero-shot-classification scoring (each label phrased as a hypothesis, the
entailment logit softmaxed across labels) and needs a checkpoint trained on NLI. ``embedding`` compares the text's
embedding with the embedding of a short description of each label. ``auto`` picks ``nli`` when the model's config
has an entailment label and ``embedding`` otherwise, so a plain BERT never ranks labels with a random NLI head (the
trap in the article's snippet).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from bertwise.backbone.device import resolve_device
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.resolve import PoolingChoice, resolve_backbone
from bertwise.data.dataset import Label
from bertwise.exceptions import ConfigError, ModelError
from bertwise.strategies.base import FrozenBackboneMixin, SavedFiles, Strategy, StrategyTags
from bertwise.strategies.cost import LOAD_SECONDS, Calibration, FitWork
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

DEFAULT_TEMPLATE = "This text is about {label}."
# Cosine similarities of sentence embeddings differ by a few hundredths between labels; this temperature spreads
# them into usable probabilities. It never changes which label ranks first.
EMBEDDING_TEMPERATURE = 0.05

ZeroShotMode = Literal["auto", "nli", "embedding"]

if TYPE_CHECKING:
    from bertwise.config import CompareConfig


def humanize_label(label: Label) -> str:
    """``card_arrival`` -> ``card arrival``, ``OtherEffect`` -> ``other effect``: how a label reads in a sentence."""
    text = str(label)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    text = re.sub(r"[_\-.]+", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower() if text != text.upper() else text.strip()


def entailment_index(config: Any) -> int | None:
    """Index of the entailment label in an NLI checkpoint's config, the way the transformers pipeline finds it."""
    for label, index in (getattr(config, "label2id", None) or {}).items():
        if str(label).lower().startswith("entail"):
            return int(index)
    return None


def load_label_descriptions(path: str | Path) -> dict[str, str]:
    """A JSON object mapping each label to the sentence that describes it."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"label descriptions file not found: {str(path)!r}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: expected a JSON object mapping each label to its description; {error}") from error
    if not isinstance(content, dict) or not all(isinstance(v, str) and v.strip() for v in content.values()):
        raise ConfigError(f"{path}: expected a JSON object mapping each label to a non-empty description string")
    return {str(key): value for key, value in content.items()}


class ZeroShotClassifier(FrozenBackboneMixin, Strategy):
    """Ranks labels with no training: ``fit`` only records the label set (and builds the label descriptions).

    Use it as a baseline, when there are no labels yet, or when labels change often. It needs labels that mean
    something in words (``card_arrival``, not ``7``); give ``label_descriptions`` when the names are terse.

    Parameters
    ----------
    model: backbone; None uses the embedded all-MiniLM-L6-v2 (no NLI head: embedding mode).
    mode: "auto", "nli" or "embedding" (see the module docstring).
    template: sentence with ``{label}``, used for labels without a description (the NLI hypothesis too).
    label_descriptions: label -> description; keys are matched to labels as strings.
    pooling: embedding mode's pooling: "auto" (the checkpoint's own) or a mode, as the probe's.
    batch_size: texts (embedding mode) or text-label pairs (NLI mode) per forward pass.
    device: "auto", "cpu", "cuda" or "mps".
    precision: embedding mode's precision: "auto" (bfloat16 where the hardware has bfloat16 units), "float32" or
        "bfloat16". NLI mode runs in float32.
    """

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="zero-shot", trains_backbone=False, uses_labels_for_training=False, seed_dependent=False
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        # Nothing to train: encode the label descriptions and the test texts.
        return LOAD_SECONDS + (work.test_rows + work.n_classes) / calibration.encode_texts_per_second

    def __init__(
        self,
        *,
        model: str | None = None,
        mode: ZeroShotMode = "auto",
        template: str = DEFAULT_TEMPLATE,
        label_descriptions: Mapping[str, str] | None = None,
        pooling: PoolingChoice = "auto",
        batch_size: int = 32,
        device: str = "auto",
        precision: str = "auto",
        progress: bool = False,
    ) -> None:
        self.model = model
        self.mode = mode
        self.template = template
        self.label_descriptions = label_descriptions
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.progress = progress

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> ZeroShotClassifier:
        return cls(
            model=config.model,
            mode=config.zero_shot_mode,  # type: ignore[arg-type]
            template=config.zero_shot_template,
            label_descriptions=dict(config.label_descriptions) or None,
            pooling=config.pooling,  # type: ignore[arg-type]
            device=config.device,
            precision=config.precision,
            progress=progress,
        )

    def fit_details(self) -> dict[str, Any]:
        return recorded_attributes(self, {"mode_": "zero_shot_mode", "descriptions_": "label_descriptions"})

    def save_state(self, folder: Path) -> dict[str, Any]:
        copy_backbone(Path(fitted_backbone(self).path), folder / BACKBONE_DIR)
        state = {
            "mode": self.mode_,
            "template": self.template,
            "descriptions": list(self.descriptions_),
            "temperature": EMBEDDING_TEMPERATURE if self.mode_ == "embedding" else None,
        }
        return {**backbone_entries(self, BACKBONE_DIR), "zero_shot": state}

    @classmethod
    def from_state(
        cls, folder: Path, manifest: Mapping[str, Any], *, device: str, precision: str
    ) -> ZeroShotClassifier:
        from bertwise.backbone.encoder import Encoder

        backbone = saved_backbone(folder, manifest)
        estimator = configured(cls(), manifest, model=backbone.path, device=device, precision=precision, progress=False)
        state = manifest["zero_shot"]
        estimator.classes_ = classes_array(manifest)
        estimator.mode_ = state["mode"]
        estimator.descriptions_ = list(state["descriptions"])
        estimator.backbone_ = backbone
        if state["mode"] == "embedding":
            estimator.encoder_ = Encoder(backbone, device=device, precision=precision, remember=False)
        else:
            _check_nli_labels(folder / BACKBONE_DIR)
            # The NLI network loads on first use: one text now, so a damaged network is refused here, with one line,
            # rather than with a library's traceback in the middle of a prediction.
            estimator.predict_proba(["a"])
        return estimator

    @classmethod
    def saved_files(cls) -> SavedFiles:
        return SavedFiles(required=(f"{BACKBONE_DIR}/config.json",), weights_dir=BACKBONE_DIR)

    @classmethod
    def check_state(cls, file: Path, manifest: Mapping[str, Any]) -> None:
        require_section(file, manifest, "backbone")
        state = require_section(file, manifest, "zero_shot")
        check_frozen_backbone(file, manifest)
        descriptions = state.get("descriptions")
        if state.get("mode") not in ("nli", "embedding") or not (
            isinstance(descriptions, list)
            and len(descriptions) == len(manifest["classes"])
            and all(isinstance(d, str) for d in descriptions)
        ):
            raise ModelError(
                f"{file}: 'zero_shot' is {state!r}; expected its mode ('nli' or 'embedding') and one description "
                "per class"
            )

    def check_params(self) -> None:
        if self.mode not in ("auto", "nli", "embedding"):
            raise ConfigError(f"zero-shot mode must be 'auto', 'nli' or 'embedding'; got {self.mode!r}")
        if "{label}" not in self.template:
            raise ConfigError(f"the zero-shot 'template' must contain '{{label}}'; got {self.template!r}")
        if self.batch_size < 1:
            raise ConfigError(f"the zero-shot 'batch_size' must be at least 1; got {self.batch_size!r}")

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        self.check_params()
        # A refit must not keep the encoder, label vectors or pipeline of an earlier fit or of a loaded model.
        for attribute in ("encoder_", "label_vectors_", "pipeline_"):
            self.__dict__.pop(attribute, None)
        self.mode_ = self._choose_mode()
        given = {str(key): value for key, value in (self.label_descriptions or {}).items()}
        unknown = sorted(set(given) - {str(label) for label in self.classes_.tolist()})
        if unknown:
            raise ConfigError(
                f"label descriptions name labels that are not in the data: {', '.join(map(repr, unknown))}; "
                f"labels are {', '.join(repr(str(c)) for c in self.classes_.tolist())}"
            )
        self.descriptions_ = [
            given.get(str(label), self.template.format(label=humanize_label(label))) for label in self.classes_.tolist()
        ]
        if len(set(self.descriptions_)) < len(self.descriptions_):
            raise ConfigError(f"two labels share one description, so they cannot be told apart: {self.descriptions_}")

    def _choose_mode(self) -> str:
        from transformers import AutoConfig

        backbone = resolve_backbone(self.model, pooling=self.pooling)
        config = AutoConfig.from_pretrained(backbone.path, trust_remote_code=False)
        has_entailment = entailment_index(config) is not None
        if self.mode == "nli" and not has_entailment:
            labels = ", ".join(map(str, (getattr(config, "label2id", None) or {}).keys())) or "none"
            raise ModelError(
                f"zero-shot NLI mode needs a model trained on natural language inference, whose config names an "
                f"'entailment' label; {backbone.model_id} has labels: {labels}. Without one, the transformers pipeline "
                "ranks labels with a randomly initialised head (chance accuracy). Use --zero-shot-mode embedding, or "
                "an NLI checkpoint such as a *-mnli model"
            )
        if self.mode == "auto":
            return "nli" if has_entailment else "embedding"
        return self.mode

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.mode_ == "nli":
            return self._nli_scores(texts)
        encoder = self._encoder()
        label_vectors = getattr(self, "label_vectors_", None)
        if label_vectors is None:
            label_vectors = _unit(encoder.encode(self.descriptions_))
            if not encoder.remember:
                # A loaded model's encoder remembers nothing: keep the descriptions' vectors rather than encode them
                # again for every chunk of a long file.
                self.label_vectors_ = label_vectors
        text_vectors = _unit(encoder.encode(texts, progress=self.progress, description="zero-shot: encoding"))
        logits = text_vectors @ label_vectors.T / EMBEDDING_TEMPERATURE
        return _softmax(logits)

    def _nli_scores(self, texts: list[str]) -> np.ndarray:
        from bertwise.backbone.encoder import bounded_texts

        pipeline = self._nli_pipeline()
        # The pipeline truncates the premise to the tokenizer's own limit: cut long texts where that cannot matter.
        limit = int(getattr(pipeline.tokenizer, "model_max_length", 0) or 0)
        results = pipeline(
            bounded_texts(pipeline.tokenizer, texts, limit) if 0 < limit < 100_000 else texts,
            # Each description is already a whole hypothesis sentence.
            candidate_labels=self.descriptions_,
            hypothesis_template="{}",
            multi_label=False,
            batch_size=self.batch_size,
        )
        if isinstance(results, dict):
            results = [results]
        column = {hypothesis: i for i, hypothesis in enumerate(self.descriptions_)}
        scores = np.zeros((len(texts), len(self.descriptions_)))
        for row, result in enumerate(results):
            for hypothesis, score in zip(result["labels"], result["scores"], strict=True):
                scores[row, column[hypothesis]] = score
        return scores

    def _nli_pipeline(self) -> Any:
        if getattr(self, "pipeline_", None) is None:
            import torch
            from transformers import AutoModelForSequenceClassification, pipeline

            from bertwise.backbone.encoder import load_tokenizer

            backbone = resolve_backbone(self.model, pooling=self.pooling)
            with quiet_loading():
                network = AutoModelForSequenceClassification.from_pretrained(
                    backbone.path, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
                )
            self.pipeline_ = pipeline(
                "zero-shot-classification",
                model=network,
                tokenizer=load_tokenizer(backbone.path),
                device=resolve_device(self.device),
            )
        return self.pipeline_


def _check_nli_labels(directory: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=False)
    if entailment_index(config) is None:
        # The zero-shot pipeline would warn in a log line and score with the last label: predictions without meaning.
        raise ModelError(
            f"'{directory / 'config.json'}' names no 'entailment' label (it has {sorted(config.label2id)}); a "
            "zero-shot NLI model needs one: save the model again"
        )


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def rank_labels(text: str, labels: Sequence[str], **params: Any) -> dict[str, Any]:
    """Labels ranked for one text, shaped like the transformers pipeline's output: sequence, labels, scores."""
    labels = [label.strip() for label in labels if label.strip()]
    if len(labels) < 2:
        raise ConfigError(f"zero-shot needs at least 2 candidate labels; got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"candidate labels must be distinct; got {labels!r}")
    # Zero-shot's fit reads only the label set; the texts it is given are not used.
    classifier = ZeroShotClassifier(**params).fit(labels, labels)
    scores = classifier.predict_proba([text])[0]
    order = np.argsort(-scores, kind="stable")
    return {
        "sequence": text,
        "labels": [str(classifier.classes_[i]) for i in order],
        "scores": [round(float(scores[i]), 6) for i in order],
        "mode": classifier.mode_,
    }
