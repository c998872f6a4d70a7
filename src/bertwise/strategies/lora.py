"""LoRA: low-rank adapters inside the backbone's attention plus a fully trained head; the backbone's weights stay as
they are, and a model folder keeps only the adapters and the head (docs/lora.md).

Training is fine-tuning's own loop (:class:`~bertwise.strategies.finetune.FinetuneClassifier`: length-grouped
batches, validation early stopping, best weights, checkpoints, the monitor); this module changes what is trained
(``_build_network``), its default learning rate, what a model folder keeps, and the cost model.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bertwise.backbone.device import autocast_dtype, resolve_device
from bertwise.backbone.encoder import load_tokenizer
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.resolve import Backbone, resolve_backbone, weights_sha256
from bertwise.exceptions import ConfigError, ModelError
from bertwise.strategies.base import SavedFiles, StrategyTags
from bertwise.strategies.cost import Calibration, CalibrationSample, FitWork
from bertwise.strategies.finetune import FinetuneClassifier
from bertwise.strategies.state import backbone_entries, classes_array, configured, recorded_attributes, require_section

if TYPE_CHECKING:
    from bertwise.config import CompareConfig

# In a model folder: peft's adapter_config.json and adapter_model.safetensors (adapters and the head).
ADAPTER_DIR = "adapter"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# The head, trained in full and saved whole: BERT's pooler (dense + tanh over [CLS]) and the classifier after it. The
# pooler is part of it because a checkpoint without pooler weights gets a random one, which the adapters alone could
# not reproduce at load; with it saved, a model folder predicts the same whatever the base checkpoint holds there.
HEAD_MODULES = ("classifier", "pooler")
# Seconds per LoRA training example over fine-tuning's on a CPU: 0.81 and 1.05 in two runs of benchmarks/lora_speed.py
# on the 2-core development machine, 0.74 over whole fits (docs/lora.md). The backward pass still runs through every
# layer, skipping only the frozen weights' gradients and their AdamW update; the budget takes the cautious end.
TRAIN_TIME_FACTOR = 1.0
_DETAILS = {
    "trainable_parameters_": "trainable_parameters",
    "total_parameters_": "total_parameters",
    "adapter_bytes_": "adapter_bytes",
}


class LoraClassifier(FinetuneClassifier):
    """Fine-tuning's classifier trained through LoRA adapters (peft): about 1 % of the weights, on a frozen backbone.

    Low-rank updates (rank ``lora_r``, scaled by ``lora_alpha / lora_r``, dropout ``lora_dropout`` on their input) are
    added to the attention projections named in ``target_modules`` (peft's default for BERT: query and value); the
    head (pooler and classifier) trains in full. Everything else is fine-tuning's: schedule, early stopping on
    validation macro-F1, best weights, checkpoints and the ``monitor``; its parameters mean the same, except that
    ``learning_rate`` None means 5e-4 (adapters start at zero and want larger steps; docs/lora.md).

    A model folder keeps the adapters and the head only (0.9 MB for all-MiniLM-L6-v2, against 92 MB for
    fine-tuning) and loads them onto the base model named by ``model``, refused unless its weights have the sha256
    recorded at training. Needs the ``peft`` package: ``pip install 'bertwise[lora]'``.
    """

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="lora",
        trains_backbone=True,  # its adapters sit inside the encoder and change what it computes
        uses_labels_for_training=True,
        seed_dependent=True,
        has_training_schedule=True,
        curve_repeats=3,
        fewest_curve_repeats=1,
        run_spread_points=3.0,  # fine-tuning's prior (docs/sequential.md): same loop, same sources of seed noise
        spoken_name="LoRA",
        compared_by_default=False,
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        # Fine-tuning's schedule and figures, with each training example TRAIN_TIME_FACTOR times as long.
        slower = dataclasses.replace(
            calibration, train_examples_per_second=calibration.train_examples_per_second / TRAIN_TIME_FACTOR
        )
        return cls.schedule().fit_seconds(work, slower)

    @classmethod
    def measure_speed(cls, sample: CalibrationSample) -> dict[str, float]:
        return {}  # fine-tuning, always registered, measures train_examples_per_second; the factor scales it

    def __init__(
        self,
        *,
        model: str | None = None,
        learning_rate: float | None = None,
        lora_r: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.1,
        target_modules: tuple[str, ...] = ("query", "value"),
        batch_size: int = 32,
        min_epochs: int = 5,
        max_epochs: int | None = None,
        min_steps: int = 400,
        patience: int = 3,
        evaluations_per_epoch: int = 1,
        warmup_ratio: float = 0.1,
        weight_decay: float = 0.01,
        validation_fraction: float = 0.1,
        max_length: int | None = None,
        seed: int = 0,
        device: str = "auto",
        precision: str = "auto",
        progress: bool = False,
    ) -> None:
        super().__init__(
            model=model,
            learning_rate=learning_rate,
            batch_size=batch_size,
            min_epochs=min_epochs,
            max_epochs=max_epochs,
            min_steps=min_steps,
            patience=patience,
            evaluations_per_epoch=evaluations_per_epoch,
            warmup_ratio=warmup_ratio,
            weight_decay=weight_decay,
            validation_fraction=validation_fraction,
            max_length=max_length,
            seed=seed,
            device=device,
            precision=precision,
            progress=progress,
        )
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.target_modules = target_modules

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> LoraClassifier:
        return cls(
            model=config.model, seed=config.seed, device=config.device, precision=config.precision, progress=progress
        )

    def check_params(self) -> None:
        super().check_params()
        rules = {
            "lora_r": isinstance(self.lora_r, int) and self.lora_r >= 1,
            "lora_alpha": self.lora_alpha > 0,
            "lora_dropout": 0 <= self.lora_dropout < 1,
            "target_modules": bool(self.target_modules) and all(isinstance(n, str) for n in self.target_modules),
        }
        for name, ok in rules.items():
            if not ok:
                raise ConfigError(
                    f"the {name!r} parameter of LoraClassifier is out of range: got {getattr(self, name)!r}"
                )

    def fit_details(self) -> dict[str, Any]:
        return {**super().fit_details(), **recorded_attributes(self, _DETAILS)}

    # Training ---------------------------------------------------------------------------------------------------------

    def _build_network(self, backbone: Backbone) -> Any:
        peft = _import_peft()
        network = super()._build_network(backbone)
        config = peft.LoraConfig(
            task_type=peft.TaskType.SEQ_CLS,
            r=int(self.lora_r),
            lora_alpha=float(self.lora_alpha),
            lora_dropout=float(self.lora_dropout),
            target_modules=list(self.target_modules),
            modules_to_save=_head_modules(network),
            bias="none",
        )
        try:
            with _quiet_peft():
                adapted = peft.get_peft_model(network, config)
        except ValueError as error:  # peft's words for target modules the network lacks
            raise ConfigError(
                f"LoRA target_modules {list(self.target_modules)} do not fit {backbone.model_id} "
                f"({str(error).splitlines()[0][:200]}); expected names of its linear layers, such as query and value"
            ) from None
        # peft keeps the head's original weights beside the trained copy; only the copy computes, so only it counts.
        parameters = [p for name, p in adapted.named_parameters() if ".original_module." not in name]
        self.trainable_parameters_ = sum(p.numel() for p in parameters if p.requires_grad)
        self.total_parameters_ = sum(p.numel() for p in parameters)
        self.adapter_bytes_ = _adapter_bytes(adapted)
        return adapted

    def _default_learning_rate(self, hidden_size: int) -> float:
        return 5e-4  # the LoRA paper's rate for RoBERTa-base on GLUE (4e-4 to 5e-4); not swept here (docs/lora.md)

    def _load_adapters(self, backbone: Backbone, directory: Path) -> Any:
        """The base network with the saved adapters and head on it, refused if any adapter weight is missing."""
        peft = _import_peft()
        network = super()._build_network(backbone)
        with _quiet_peft():
            # peft only warns of adapter weights missing from the file (they would keep their initial values).
            warnings.filterwarnings("error", message=".*missing adapter keys.*")
            return peft.PeftModel.from_pretrained(network, str(directory), is_trainable=False)

    # The model folder -------------------------------------------------------------------------------------------------

    def save_state(self, folder: Path) -> dict[str, Any]:
        directory = folder / ADAPTER_DIR
        with _quiet_peft():
            self.network_.save_pretrained(directory, safe_serialization=True)
        (directory / "README.md").unlink(missing_ok=True)  # peft's model card template: nothing bertwise says
        written = sorted(p.name for p in directory.iterdir())
        if written != sorted((ADAPTER_CONFIG, ADAPTER_WEIGHTS)):
            raise ModelError(
                f"saving the LoRA adapters wrote {', '.join(written)}; expected {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}"
            )
        state = {"max_length": int(self.max_length_), "num_labels": len(self.classes_)}
        return {**backbone_entries(self, ADAPTER_DIR), "lora": state}

    @classmethod
    def from_state(cls, folder: Path, manifest: Mapping[str, Any], *, device: str, precision: str) -> LoraClassifier:
        estimator = configured(cls(), manifest, device=device, precision=precision, progress=False)
        backbone = _recorded_base(folder, estimator.model, manifest)
        classes = classes_array(manifest)
        target = resolve_device(device)
        estimator.classes_ = classes
        network = estimator._load_adapters(backbone, folder / ADAPTER_DIR)
        network.to(target).eval()
        estimator.network_ = network
        estimator.tokenizer_ = load_tokenizer(backbone.path)
        estimator.backbone_ = backbone
        estimator.max_length_ = int(manifest["lora"]["max_length"])
        estimator.device_ = target
        estimator.amp_ = autocast_dtype(target, precision)
        return estimator

    @classmethod
    def recorded_base(cls, folder: Path, manifest: Mapping[str, Any]) -> Backbone:
        """The base model a saved folder's adapters were trained on, resolved and checked against its weights hash
        (its tokenizer is the folder's: the adapters' directory holds none)."""
        return _recorded_base(folder, configured(cls(), manifest, progress=False).model, manifest)

    def merged_network(self) -> Any:
        """A float32 CPU copy of the network with the adapters merged into the base weights (peft's
        ``merge_and_unload``): a plain transformers sequence classifier computing what this one computes."""
        import copy

        import torch

        network = copy.deepcopy(self.network_).to("cpu", dtype=torch.float32)
        with _quiet_peft():
            merged = network.merge_and_unload()
        return merged.eval()

    @classmethod
    def saved_files(cls) -> SavedFiles:
        return SavedFiles(
            required=(f"{ADAPTER_DIR}/{ADAPTER_CONFIG}", f"{ADAPTER_DIR}/{ADAPTER_WEIGHTS}"), weights_dir=ADAPTER_DIR
        )

    @classmethod
    def check_state(cls, file: Path, manifest: Mapping[str, Any]) -> None:
        backbone = require_section(file, manifest, "backbone")
        if not isinstance(backbone.get("sha256"), str):
            raise ModelError(f"{file}: 'backbone' has no sha256; expected the base model's weights hash to check")
        state = require_section(file, manifest, "lora")
        if not isinstance(state.get("max_length"), int):
            raise ModelError(f"{file}: 'lora' is {state!r}; expected its max_length")


def _import_peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError("the lora strategy needs the peft package: pip install 'bertwise[lora]'") from None
    return peft


@contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft's calls into transformers 5 raise a FutureWarning (is_gradient_checkpointing) that no user can act on."""
    with warnings.catch_warnings(), quiet_loading():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _head_modules(network: Any) -> list[str]:
    names = {name.rsplit(".", 1)[-1] for name, _ in network.named_modules()}
    return [name for name in HEAD_MODULES if name in names]


def _adapter_bytes(network: Any) -> int:
    """Bytes of the tensors a save writes (the adapters and the head), before safetensors' small header."""
    from peft import get_peft_model_state_dict

    return int(sum(t.numel() * t.element_size() for t in get_peft_model_state_dict(network).values()))


def _recorded_base(folder: Path, model: str | None, manifest: Mapping[str, Any]) -> Backbone:
    """The base model the adapters were trained on, resolved again and refused unless its weights are the same."""
    record = manifest["backbone"]
    backbone = resolve_backbone(model)
    # Hashed again (cached by modification time): resolve_backbone remembers a folder's hash for the process, and its
    # weights may have been replaced since.
    found = weights_sha256(Path(backbone.path))
    if found != record["sha256"]:
        raise ModelError(
            f"'{folder}' holds LoRA adapters trained on {record.get('id')} with weights sha256 "
            f"{str(record['sha256'])[:12]}..., but {backbone.path} now has weights sha256 {found[:12]}...; "
            "expected the same base model: restore it, or train the adapters again on this one"
        )
    return backbone
