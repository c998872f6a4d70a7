"""Domain-adaptive pre-training: more masked-language-model training of a backbone on the user's own texts.

Gururangan et al. (2020, "Don't Stop Pretraining") found that continuing a model's masked-language-model (MLM)
training on unlabeled text of the task's domain helps the classifiers later built on it. :func:`adapt_backbone` does
that and writes the result as a model folder that bertwise loads as a backbone exactly like the original (same
config, tokenizer files, sentence-transformers modules), so any strategy can use it: ``--model <folder>``.

The MLM head
    Embedding checkpoints (the embedded all-MiniLM-L6-v2 and most sentence-transformers models) ship the encoder
    only. ``AutoModelForMaskedLM.from_pretrained`` then builds BERT's head anew: the transform (dense + LayerNorm)
    and the output bias are freshly initialised (normal(0, 0.02) weights, zero biases, under torch's seed set from
    ``seed``), and the decoder's weight is *tied* to the input word embeddings (transformers ties them because the
    config's ``tie_word_embeddings`` is true), so the head adds only 384*384 + 3*384 + vocabulary weights for MiniLM.
    The encoder's pooler is not part of the MLM model; its weights are kept unchanged in the adapted folder. A
    checkpoint that has an MLM head (bert-base-uncased) trains its own. The head is not saved: only the weights the
    original folder held are written, the trained ones replaced.

Caching
    The folder is named by a fingerprint: sha256 of the base model's fingerprint (weights, config and tokenizer files,
    torch and transformers versions, device kind, precision), the texts, the unlabeled texts, every training setting
    and the bertwise version. It lives under ``<cache dir>/adapted/<fingerprint>`` (``$BERTWISE_CACHE_DIR``, see
    :mod:`bertwise.backbone.cache`), and a second call with the same inputs returns it without training.

Written atomically
    The folder is built under a temporary name beside its target and renamed into place, so a killed run leaves no
    half-written model where a later run would find it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.backbone.adapt_files import publish_folder, save_adapted_weights
from bertwise.backbone.batching import length_grouped_batches
from bertwise.backbone.cache import cache_directory, model_fingerprint, text_key
from bertwise.backbone.device import autocast_dtype, precision_name, resolve_device
from bertwise.backbone.encoder import load_tokenizer, tokenize
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.resolve import Backbone, resolve_backbone, weights_sha256
from bertwise.exceptions import ConfigError, DataError, ModelError
from bertwise.util.version import __version__

# Bump when what a folder holds, or how it is trained from the same settings, changes: old folders are not found.
ADAPT_FORMAT = 1
RECORD = "adaptation.json"
# Texts held out to measure the MLM loss before and after: a tenth, at least 1, at most this many.
MAX_HELD_OUT = 256
HELD_OUT_FRACTION = 0.1
WARMUP_FRACTION = 0.06
WEIGHT_DECAY = 0.01
# The masks of the loss measurements come from their own generator, seeded apart from training's.
_EVALUATION_SEED_OFFSET = 7919

Progress = Callable[[int, int, float], None]  # (step, total steps, this step's loss)


@dataclass(frozen=True)
class AdaptSettings:
    """Every setting that changes the adapted weights (all part of the fingerprint)."""

    seed: int
    epochs: int
    steps: int | None  # a fixed number of optimiser steps instead of whole epochs
    learning_rate: float
    mlm_probability: float
    max_length: int
    batch_size: int
    weight_decay: float = WEIGHT_DECAY
    warmup_fraction: float = WARMUP_FRACTION
    held_out_fraction: float = HELD_OUT_FRACTION


@dataclass(frozen=True)
class AdaptedBackbone:
    """An adapted backbone: pass ``path`` wherever bertwise takes a model (``--model``, ``model=``)."""

    path: str
    fingerprint: str
    base_model: str
    base_sha256: str
    steps: int
    seconds: float
    peak_memory_mb: float  # process peak RSS on a CPU (its whole life so far); peak allocated on a GPU
    texts: int  # texts trained on
    held_out: int  # texts kept out of training to measure the loss
    loss_before: float | None  # mean MLM loss per masked token on the held-out texts, fixed masks
    loss_after: float | None
    train_loss_before: float | None  # the same on as many of the training texts
    train_loss_after: float | None
    fresh_head: bool  # the checkpoint had no MLM head: one was initialised (decoder tied to the word embeddings)
    settings: dict[str, Any]
    cached: bool = False  # found in the cache rather than trained by this call

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("cached")
        return {"format": ADAPT_FORMAT, "bertwise": __version__, **record}

    @classmethod
    def from_record(cls, record: dict[str, Any], path: Path) -> AdaptedBackbone:
        names = {field.name for field in fields(cls)} - {"path", "cached"}
        return cls(path=str(path), cached=True, **{name: record[name] for name in names})


def adapt_backbone(
    model: str | None,
    texts: Sequence[str],
    *,
    unlabeled: Sequence[str] = (),
    seed: int = 0,
    epochs: int = 1,
    steps: int | None = None,
    learning_rate: float = 5e-5,
    mlm_probability: float = 0.15,
    max_length: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    precision: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool | Progress = False,
) -> AdaptedBackbone:
    """Continue ``model``'s MLM training on ``texts`` and ``unlabeled`` and return the adapted folder.

    ``model``: None (the embedded model), a folder or a hub id. ``max_length`` defaults to the backbone's own
    truncation length. The folder goes to ``out`` if given, else to the cache (``cache_dir``, default bertwise's
    cache directory); with the same inputs a second call returns it without training.
    """
    base = resolve_backbone(model)
    corpus = _clean_texts(texts, "texts") + _clean_texts(unlabeled, "unlabeled")
    if len(corpus) < 2:
        raise DataError(f"adapting a backbone needs at least 2 non-empty texts; got {len(corpus)}")
    settings = _settings(base, seed, epochs, steps, learning_rate, mlm_probability, max_length, batch_size)
    torch_device = resolve_device(device)
    amp_name = precision_name(torch_device, precision)
    fingerprint = adaptation_fingerprint(base, texts, unlabeled, settings, torch_device.type, amp_name)
    target = _target(fingerprint, cache_dir, out)
    found = _cached(target, fingerprint)
    if found is not None:
        return found
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else cache_directory()
    cached_copy = _cached(cache_root / "adapted" / fingerprint, fingerprint) if out and cache_root else None
    if cached_copy is not None:

        def copy(staging: Path) -> None:
            shutil.copytree(cached_copy.path, staging, dirs_exist_ok=True)

        publish_folder(target, copy)
        return AdaptedBackbone(**{**asdict(cached_copy), "path": str(target), "cached": True})
    trained: list[AdaptedBackbone] = []

    def build(staging: Path) -> None:
        trained.append(
            _adapt_into(staging, base, corpus, settings, fingerprint, torch_device, precision, progress, target)
        )

    publish_folder(target, build)
    return trained[0]


def adaptation_fingerprint(
    base: Backbone,
    texts: Sequence[str],
    unlabeled: Sequence[str],
    settings: AdaptSettings,
    device_type: str,
    precision: str,
) -> str:
    """sha256 of everything that decides the adapted weights."""
    base_fingerprint, _ = model_fingerprint(base, precision=precision, device_type=device_type)
    digest = hashlib.sha256()
    for part in (texts, unlabeled):
        for text in part:
            digest.update(text_key(text))
        digest.update(b"|")  # the same texts split differently between the two are different inputs
    keyed = {
        "format": ADAPT_FORMAT,
        "base": base_fingerprint,
        "texts": digest.hexdigest(),
        "settings": asdict(settings),
        "bertwise": __version__,
    }
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()


def _clean_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise ConfigError(f"{name} must be a sequence of texts; got a single string")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{name}[{index}] is {type(text).__name__}; expected a text (str)")
    return [text for text in texts if text.strip()]


def _settings(
    base: Backbone,
    seed: int,
    epochs: int,
    steps: int | None,
    learning_rate: float,
    mlm_probability: float,
    max_length: int | None,
    batch_size: int,
) -> AdaptSettings:
    checks = [
        (epochs >= 1, f"epochs must be at least 1; got {epochs}"),
        (steps is None or steps >= 1, f"steps must be at least 1; got {steps}"),
        (learning_rate > 0, f"learning_rate must be positive; got {learning_rate}"),
        (0 < mlm_probability < 1, f"mlm_probability must be between 0 and 1; got {mlm_probability}"),
        (batch_size >= 1, f"batch_size must be at least 1; got {batch_size}"),
        (max_length is None or max_length >= 8, f"max_length must be at least 8 tokens; got {max_length}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if max_length is not None and max_length > base.max_length:
        raise ConfigError(
            f"max_length {max_length} is over what {base.model_id} encodes ({base.max_length} tokens); "
            f"expected at most {base.max_length}"
        )
    return AdaptSettings(
        seed=seed,
        epochs=epochs,
        steps=steps,
        learning_rate=float(learning_rate),
        mlm_probability=float(mlm_probability),
        max_length=max_length or base.max_length,
        batch_size=batch_size,
    )


def _target(fingerprint: str, cache_dir: str | os.PathLike[str] | None, out: str | os.PathLike[str] | None) -> Path:
    if out is not None:
        return Path(out).expanduser().absolute()
    directory = Path(cache_dir).expanduser().absolute() if cache_dir is not None else cache_directory()
    if directory is None:
        raise ConfigError(
            "the bertwise cache is off (BERTWISE_CACHE_DIR=off), so the adapted model has nowhere to go; "
            "pass out= (--out DIR) or a cache_dir"
        )
    return directory / "adapted" / fingerprint


def _cached(target: Path, fingerprint: str) -> AdaptedBackbone | None:
    """The adaptation in ``target`` if it is this one and whole (its weights' sha256 as recorded), else None."""
    record_file = target / RECORD
    if not record_file.is_file():
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ConfigError(
                f"'{target}' exists and is not an adapted model folder (no {RECORD}); expected a new or empty folder"
            )
        return None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if record.get("fingerprint") != fingerprint or record.get("format") != ADAPT_FORMAT:
            return None
        if weights_sha256(target) != record.get("weights_sha256"):
            return None
        return AdaptedBackbone.from_record(record, target)
    except (OSError, ValueError, KeyError, TypeError, ModelError):
        return None  # damaged or from another version: trained again and replaced


def _adapt_into(
    staging: Path,
    base: Backbone,
    corpus: list[str],
    settings: AdaptSettings,
    fingerprint: str,
    device: Any,
    precision: str,
    progress: bool | Progress,
    target: Path,
) -> AdaptedBackbone:
    import torch

    started = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tokenizer = load_tokenizer(base.path)
    if tokenizer.mask_token is None or tokenizer.pad_token is None:
        raise ModelError(f"{base.model_id}'s tokenizer has no mask or padding token; MLM training needs both")
    ids = tokenize(tokenizer, corpus, settings.max_length).input_ids
    order = np.random.default_rng(settings.seed).permutation(len(ids))
    held = min(MAX_HELD_OUT, max(1, round(len(ids) * settings.held_out_fraction)))
    held_ids = [ids[i] for i in order[:held]]
    train_ids = [ids[i] for i in order[held:]]
    network, fresh_head = _masked_lm(base, settings.seed, device)
    amp = autocast_dtype(device, precision)
    measure = _LossMeter(tokenizer, settings, device, amp)
    before = measure(network, held_ids), measure(network, train_ids[:held])
    done = _train(network, tokenizer, train_ids, settings, device, amp, progress)
    after = measure(network, held_ids), measure(network, train_ids[:held])
    digest = save_adapted_weights(network, Path(base.path), staging)
    seconds = time.perf_counter() - started
    result = AdaptedBackbone(
        path=str(target),
        fingerprint=fingerprint,
        base_model=base.model_id,
        base_sha256=base.sha256,
        steps=done,
        seconds=round(seconds, 3),
        peak_memory_mb=round(_peak_memory_mb(device), 1),
        texts=len(train_ids),
        held_out=held,
        loss_before=before[0],
        loss_after=after[0],
        train_loss_before=before[1],
        train_loss_after=after[1],
        fresh_head=fresh_head,
        settings=asdict(settings),
    )
    record = {**result.to_record(), "weights_sha256": digest}
    (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result


def _masked_lm(base: Backbone, seed: int, device: Any) -> tuple[Any, bool]:
    """The checkpoint as a masked LM, and whether its head was initialised here (the checkpoint had none)."""
    import torch
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(seed)  # the fresh head's initial weights
    try:
        with quiet_loading():
            network, info = AutoModelForMaskedLM.from_pretrained(
                base.path, output_loading_info=True, trust_remote_code=False
            )
    except (ValueError, KeyError) as error:
        raise ModelError(
            f"{base.model_id} cannot be loaded as a masked language model ({str(error).splitlines()[0][:200]}); "
            "domain adaptation needs a BERT-like encoder"
        ) from None
    prefix = f"{network.base_model_prefix}."
    missing = list(info.get("missing_keys", []))
    encoder_missing = [key for key in missing if key.startswith(prefix)]
    if encoder_missing:
        raise ModelError(
            f"{base.model_id}'s weights lack {len(encoder_missing)} encoder tensors (e.g. {encoder_missing[0]}) "
            "when loaded as a masked language model; expected a complete encoder checkpoint"
        )
    return network.to(device), bool(missing)


class _LossMeter:
    """Mean MLM loss per masked token, with the same masks on every call (its own freshly seeded generator)."""

    def __init__(self, tokenizer: Any, settings: AdaptSettings, device: Any, amp: Any) -> None:
        self.tokenizer, self.settings, self.device, self.amp = tokenizer, settings, device, amp

    def __call__(self, network: Any, ids: list[list[int]]) -> float | None:
        import torch

        if not ids:
            return None
        collator = _collator(self.tokenizer, self.settings, self.settings.seed + _EVALUATION_SEED_OFFSET)
        network.eval()
        total, count = 0.0, 0
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        size = self.settings.batch_size
        with torch.inference_mode():
            for start in range(0, len(order), size):
                batch = collator([{"input_ids": ids[i]} for i in order[start : start + size]])
                masked = int((batch["labels"] != -100).sum())
                if masked == 0:
                    continue
                with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                    loss = masked_lm_loss(network, batch, self.device)
                total += float(loss) * masked
                count += masked
        return round(total / count, 4) if count else None


def masked_lm_loss(network: Any, batch: dict[str, Any], device: Any) -> Any:
    """Mean cross-entropy over the masked tokens of a collated batch.

    For BERT's head (``network.cls``) the vocabulary logits are computed at the masked positions only: over every
    position they are the largest tensor of the step (16 x 256 x 30522 floats, 0.5 GB, and as much again for their
    gradient) and a third of its arithmetic, for tokens that carry no loss. Other heads run the model's own forward.
    """
    import torch

    moved = {key: value.to(device) for key, value in batch.items()}
    head = getattr(network, "cls", None)
    if head is None:
        return network(**moved).loss
    labels = moved.pop("labels")
    hidden = network.base_model(**moved).last_hidden_state
    picked = labels != -100
    logits = head(hidden[picked])
    return torch.nn.functional.cross_entropy(logits.float(), labels[picked])


def _collator(tokenizer: Any, settings: AdaptSettings, seed: int) -> Any:
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(
        tokenizer=tokenizer, mlm=True, mlm_probability=settings.mlm_probability, seed=seed, return_tensors="pt"
    )


def _train(
    network: Any,
    tokenizer: Any,
    ids: list[list[int]],
    settings: AdaptSettings,
    device: Any,
    amp: Any,
    progress: bool | Progress,
) -> int:
    """Run the optimiser over length-grouped batches; return the steps taken."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(settings.seed)  # dropout
    rng = np.random.default_rng(settings.seed)
    lengths = [len(row) for row in ids]
    per_epoch = -(-len(ids) // settings.batch_size)
    total = settings.steps or per_epoch * settings.epochs
    decay = [p for n, p in network.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    rest = [p for n, p in network.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, round(total * settings.warmup_fraction), total)
    collator = _collator(tokenizer, settings, settings.seed)
    report = _progress(progress, total)
    network.train()
    step = 0
    while step < total:
        for batch_rows in length_grouped_batches(lengths, settings.batch_size, rng):
            batch = collator([{"input_ids": ids[i]} for i in batch_rows])
            step += 1
            if int((batch["labels"] != -100).sum()) > 0:  # a batch with nothing masked has no loss
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    loss = masked_lm_loss(network, batch, device)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                report(step, total, loss.item())
            scheduler.step()
            if step >= total:
                break
    report(total, total, float("nan"))
    return step


def _progress(progress: bool | Progress, total: int) -> Progress:
    if callable(progress):
        return progress
    if not progress:
        return lambda step, total, loss: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="adapting", unit="step", leave=False)

    def report(step: int, _total: int, loss: float) -> None:
        bar.n = step
        if loss == loss:  # not NaN
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.refresh()
        if step >= _total:
            bar.close()

    return report


def _peak_memory_mb(device: Any) -> float:
    if device.type == "cuda":
        import torch

        return float(torch.cuda.max_memory_allocated(device)) / 2**20
    import resource  # Unix only, like the figure

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
