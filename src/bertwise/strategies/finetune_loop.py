"""Fine-tuning's machinery, apart from the classifier: the training state, checkpoints of it, length-grouped batches,
logits in batches, validation scores, the best weights' predictions, and reading a saved network back (refusing
weights transformers would fill at random)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.backbone.batching import length_grouped_batches as grouped_batches
from bertwise.backbone.batching import run_inference
from bertwise.backbone.encoder import Tokenized, load_tokenizer, pad_batch, tokenize
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.resolve import Backbone
from bertwise.exceptions import ModelError
from bertwise.strategies.checkpoint import CheckpointWarning, CheckpointWriter, LoopState, load_checkpoint


@dataclass
class Training:
    """What one fit trains with, set up before the loop; its optimiser, schedule and generator are checkpointed."""

    backbone: Backbone
    tokenizer: Any
    max_length: int
    device: Any
    amp: Any
    network: Any
    optimizer: Any
    scheduler: Any
    rng: np.random.Generator
    train_ids: Tokenized
    train_targets: np.ndarray
    validation_ids: Tokenized
    validation_targets: np.ndarray
    pad_id: int
    epochs: int
    total_steps: int
    evaluate_every: int
    n_validation: int


def submit_checkpoint(writer: CheckpointWriter, training: Training, state: LoopState, seconds: float) -> None:
    """Hand a snapshot of the training to ``writer``, unless the last one is too recent (``writer.due``)."""

    import torch

    if not writer.due():
        return  # the last checkpoint is too recent to be worth another's cost
    started = time.perf_counter()
    # Copies: training goes on changing the weights and the optimiser's moments in place while they are written.
    optimizer = training.optimizer.state_dict()
    tensors: dict[str, Any] = {
        "model": {k: v.detach().to("cpu", copy=True) for k, v in training.network.state_dict().items()},
        "optimizer": {
            "state": {
                index: {k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else v for k, v in kept.items()}
                for index, kept in optimizer["state"].items()
            },
            "param_groups": copy.deepcopy(optimizer["param_groups"]),
        },
        "scheduler": copy.deepcopy(training.scheduler.state_dict()),
        "torch_rng": torch.get_rng_state(),
    }
    if training.device.type == "cuda":
        tensors["cuda_rng"] = torch.cuda.get_rng_state(training.device)
    best_is_current = state.best_step == state.step
    if state.best_state is not None and not best_is_current:
        tensors["best"] = state.best_state  # only when it differs from the weights saved anyway
    saved = {
        **state.to_json(),
        "seconds": state.seconds + seconds,
        "best_is_current": best_is_current,
        "numpy_rng": training.rng.bit_generator.state,
    }
    writer.submit(state.step, tensors, saved, started=started)


def restore_checkpoint(path: Path, fit: str, training: Training, state: LoopState) -> str:
    """Load the checkpoint at ``path`` into ``training`` and ``state``: "resumed", "none" (nothing to resume) or
    "broken" (it did not fit this training, and ``training`` may be partly overwritten)."""
    import torch

    kept = load_checkpoint(path, fit=fit)
    if kept is None:
        return "none"
    tensors, saved = kept
    try:
        training.network.load_state_dict(tensors["model"])
        training.optimizer.load_state_dict(tensors["optimizer"])
        training.scheduler.load_state_dict(tensors["scheduler"])
        training.rng.bit_generator.state = saved["numpy_rng"]
        state.load_json(saved)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        warnings.warn(
            f"bertwise: ignoring the training checkpoint {path}, which does not fit this training "
            f"({type(error).__name__}: {error}); training this fit from the start",
            CheckpointWarning,
            stacklevel=2,
        )
        return "broken"
    if saved.get("best_is_current"):
        state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in training.network.state_dict().items()}
    elif "best" in tensors:
        state.best_state = tensors["best"]
    torch.set_rng_state(tensors["torch_rng"])
    if training.device.type == "cuda" and "cuda_rng" in tensors:
        torch.cuda.set_rng_state(tensors["cuda_rng"], training.device)
    return "resumed"


def length_grouped_batches(tokenized: Tokenized, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of similar-length texts (:func:`bertwise.backbone.batching.length_grouped_batches`)."""
    return grouped_batches([len(ids) for ids in tokenized.input_ids], batch_size, rng)


def batched_logits(
    network: Any, input_ids: list[list[int]], pad_id: int, device: Any, batch_size: int, amp: Any
) -> np.ndarray:
    import torch

    network.eval()
    output = np.empty((len(input_ids), network.config.num_labels), dtype=np.float32)

    def run_batch(batch: list[int]) -> None:
        # Both contexts are per thread, and batches may run in stream threads.
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            inputs = pad_batch([input_ids[i] for i in batch], pad_id, device)
            output[batch] = network(**inputs).logits.float().cpu().numpy()

    lengths = [len(ids) for ids in input_ids]
    run_inference(lengths, batch_size, run_batch, device=device, hidden_size=int(network.config.hidden_size))
    return output


def validation_scores(training: Training, batch_size: int) -> tuple[float, float]:
    """The network's macro-F1 and mean cross-entropy on the validation part."""
    from sklearn.metrics import f1_score

    targets = training.validation_targets
    logits = batched_logits(
        training.network, training.validation_ids.input_ids, training.pad_id, training.device, batch_size, training.amp
    )
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probabilities[np.arange(len(targets)), targets].mean())
    f1 = float(
        f1_score(targets, logits.argmax(axis=1), average="macro", labels=np.arange(logits.shape[1]), zero_division=0.0)
    )
    return f1, loss


def best_probabilities(training: Training, state: LoopState, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """The class probabilities of the weights kept if training stopped now; the network's weights are left as they
    were (swapped back exactly, so watching changes no later step)."""
    network = training.network
    current = None
    if state.best_state is not None and state.best_step != state.step:
        current = {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}
        network.load_state_dict(state.best_state)
    try:
        tokenized = tokenize(training.tokenizer, list(texts), training.max_length)
        ids = tokenized.input_ids
        logits = batched_logits(network, ids, training.pad_id, training.device, batch_size, training.amp)
    finally:
        if current is not None:
            network.load_state_dict(current)
    return probabilities(logits)


def probabilities(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def load_network(directory: Path, manifest: Mapping[str, Any]) -> tuple[Any, Any]:
    """The saved network and tokenizer, refused with one line unless they are the network the manifest describes."""
    import torch
    from transformers import AutoModelForSequenceClassification

    classes = manifest["classes"]
    try:
        with quiet_loading():
            network, info = AutoModelForSequenceClassification.from_pretrained(
                str(directory),
                use_safetensors=True,
                trust_remote_code=False,
                dtype=torch.float32,
                output_loading_info=True,
                # Reported in ``info`` instead of raised as "look at the above report", which quiet_loading hides.
                ignore_mismatched_sizes=True,
            )
        tokenizer = load_tokenizer(str(directory))
    except (OSError, ValueError) as error:
        raise ModelError(
            f"'{directory}' cannot be loaded as a fine-tuned network ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}); save the model again"
        ) from None
    check_loading_info(directory, info)
    if int(network.config.num_labels) != len(classes):
        raise ModelError(
            f"'{directory / 'config.json'}' has {network.config.num_labels} labels; expected {len(classes)}, one per "
            "class in manifest.json"
        )
    trained_for = [str(network.config.id2label.get(i, "")) for i in range(len(classes))]
    if trained_for != [str(label) for label in classes]:
        raise ModelError(
            f"'{directory / 'config.json'}' was trained for the classes {trained_for}, but manifest.json lists "
            f"{classes}; was the manifest edited? Save the model again"
        )
    return network, tokenizer


def check_loading_info(directory: Path, info: Mapping[str, Any]) -> None:
    """Refuse weights that transformers would fill with random values, saying so only in a log line we silence."""
    mismatched = sorted(info.get("mismatched_keys") or (), key=str)
    if mismatched:
        name, saved, expected = (list(mismatched[0]) + ["?", "?"])[:3]
        raise ModelError(
            f"'{directory / 'model.safetensors'}' holds '{name}' of shape {list(saved)} but config.json makes it "
            f"{list(expected)}{f' (and {len(mismatched) - 1} more)' if len(mismatched) > 1 else ''}; expected the "
            "weights of the network its config.json describes: save the model again"
        )
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ModelError(
            f"'{directory}' lacks {len(missing)} of the network's weights ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); expected every weight of the fine-tuned network: save the model "
            "again"
        )


def fit_digest(
    params: Mapping[str, Any], training: Training, texts: list[str], labels: list[Any], classes: list[Any]
) -> str:
    """sha256 of a fit's settings (``params``, device, precision) and its texts, labels and classes: a checkpoint is
    resumed only by the fit of the same digest."""
    described = {
        "params": dict(params),
        "device": training.device.type,
        "precision": str(training.amp),
        "texts": texts,
        "labels": labels,
        "classes": classes,
    }
    canonical = json.dumps(described, sort_keys=True, default=_plain)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)  # numpy labels; anything else by its text
