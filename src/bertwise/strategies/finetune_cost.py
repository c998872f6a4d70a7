"""Fine-tuning's cost model: the steps its schedule plans, its measured training speed, its seconds per fit.

:class:`~bertwise.strategies.finetune.FinetuneClassifier` delegates its ``fit_seconds``, ``measure_speed`` and
``shortened_schedule`` here, with the :class:`Schedule` of its own default parameters, so the estimate mirrors the
schedule a comparison trains with.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from bertwise.backbone.device import autocast_dtype, resolve_device
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.resolve import resolve_backbone
from bertwise.strategies.cost import LOAD_SECONDS, Calibration, CalibrationSample, FitWork

CALIBRATION_TRAIN_STEPS = 3


def planned_epochs(steps_per_epoch: int, min_epochs: int, max_epochs: int | None, min_steps: int) -> int:
    """Epochs to plan: enough for ``min_steps`` optimiser steps and ``min_epochs``, capped only by an explicit
    ``max_epochs``. No default cap: a cap of 20 epochs left 8-16 examples a class with 20-60 steps, and fine-tuning
    at 16 per class on TREC-6 scored 64 macro-F1 after 60 steps against 76 once it ran to 400 (docs/setfit.md)."""
    epochs = max(min_epochs, math.ceil(min_steps / max(1, steps_per_epoch)))
    return epochs if max_epochs is None else min(max_epochs, epochs)


@dataclass(frozen=True)
class Schedule:
    batch_size: int
    min_epochs: int
    max_epochs: int | None
    min_steps: int
    validation_fraction: float

    @classmethod
    def of(cls, params: dict[str, Any]) -> Schedule:
        """The schedule of a FinetuneClassifier's ``get_params()``."""
        return cls(
            batch_size=int(params["batch_size"]),
            min_epochs=int(params["min_epochs"]),
            max_epochs=None if params["max_epochs"] is None else int(params["max_epochs"]),
            min_steps=int(params["min_steps"]),
            validation_fraction=float(params["validation_fraction"]),
        )

    def shortened(self, scale: float) -> dict[str, Any]:
        """Parameters that train for ``scale`` of the planned steps; {} at full length."""
        if scale >= 1.0:
            return {}
        max_epochs, min_epochs, min_steps = self._scaled(scale)
        return {"min_steps": min_steps, "max_epochs": max_epochs, "min_epochs": min_epochs}

    def _scaled(self, scale: float) -> tuple[int | None, int, int]:
        """(max_epochs, min_epochs, min_steps) of a schedule cut to ``scale`` of its length."""
        if scale >= 1.0:
            return self.max_epochs, self.min_epochs, self.min_steps
        max_epochs = None if self.max_epochs is None else max(1, math.floor(self.max_epochs * scale))
        min_epochs = max(1, math.floor(self.min_epochs * scale))
        if max_epochs is not None:
            min_epochs = min(max_epochs, min_epochs)
        return max_epochs, min_epochs, int(self.min_steps * scale)

    def planned_steps(self, rows: int, scale: float = 1.0) -> int:
        """Optimiser steps planned for ``rows`` training texts (before early stopping)."""
        train_rows = max(1, round(rows * (1 - self.validation_fraction)))
        per_epoch = math.ceil(train_rows / self.batch_size)
        max_epochs, min_epochs, min_steps = self._scaled(scale)
        return planned_epochs(per_epoch, min_epochs, max_epochs, min_steps) * per_epoch

    def fit_seconds(self, work: FitWork, calibration: Calibration) -> float:
        """Loading, the planned training steps, a validation pass per epoch, and predicting the test rows."""
        encode = calibration.encode_texts_per_second
        steps = self.planned_steps(work.train_rows, work.schedule_scale)
        epochs = steps / max(1, math.ceil(work.train_rows * (1 - self.validation_fraction) / self.batch_size))
        validation = epochs * work.train_rows * self.validation_fraction / encode
        # A set smaller than one batch trains every step on all of it: fewer examples a step than batch_size.
        per_step = min(self.batch_size, max(1, round(work.train_rows * (1 - self.validation_fraction))))
        training = steps * per_step / calibration.train_examples_per_second
        return LOAD_SECONDS + training + validation + work.test_rows / encode


def train_examples_per_second(sample: CalibrationSample, batch: int) -> float:
    """A few real optimiser steps of the classifier on the user's texts (the first is a warm-up and not timed).

    Measured rather than derived from encoding speed: on short texts encoding is dominated by per-batch overhead, and
    training ran many times faster than a quarter of the encoding speed would say (docs/speed.md).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertwise.backbone.encoder import load_tokenizer, pad_batch, tokenize

    backbone = resolve_backbone(sample.model)
    target = resolve_device(sample.device)
    tokenizer = load_tokenizer(backbone.path)
    n_classes = sample.n_classes
    with quiet_loading():
        network = AutoModelForSequenceClassification.from_pretrained(
            backbone.path, num_labels=n_classes, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        ).to(target)
    # As FinetuneClassifier trains: fused AdamW, autocast in the same precision.
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-5, fused=target.type in ("cpu", "cuda"))
    amp = autocast_dtype(target, sample.precision)
    texts = sample.texts[: batch * CALIBRATION_TRAIN_STEPS]
    ids = sorted(tokenize(tokenizer, texts, backbone.max_length).input_ids, key=len)
    # Training groups texts of similar length into a batch, so time short, middle and long batches as an epoch has.
    # Each is run once untimed first: the first step at a new shape pays for kernel set-up (far slower; docs/speed.md),
    # and a real epoch meets the same few shapes again and again.
    batches = [ids[first : first + batch] for first in range(0, len(ids), batch)]
    generator = torch.Generator().manual_seed(sample.seed)
    network.train()
    timed = 0.0
    examples = 0
    for timing in (False, True):
        for chunk in batches:
            inputs = pad_batch(chunk, tokenizer.pad_token_id or 0, target)
            targets = torch.randint(0, n_classes, (len(chunk),), generator=generator).to(target)
            start = time.perf_counter()
            with torch.autocast(target.type, dtype=amp, enabled=amp is not None):
                logits = network(**inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if target.type == "cuda":
                torch.cuda.synchronize()
            if timing:
                timed += time.perf_counter() - start
                examples += len(chunk)
    del network, optimizer
    if examples == 0:
        return 1.0
    return examples / max(timed, 1e-6)
