"""The files of an adapted backbone: its weights written over a copy of the base folder, the folder published whole.

A folder is built under a temporary name beside its target and renamed into place, so a killed run never leaves a
half-written model where a later run would find it; the temporary folders of dead processes are removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bertwise.backbone.resolve import weights_sha256
from bertwise.exceptions import ModelError

WEIGHTS = "model.safetensors"


def publish_folder(target: Path, build: Callable[[Path], None]) -> None:
    """Build the folder under a temporary name beside ``target``, then rename it into place (replacing an old one)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_staging(target.parent)
    staging = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    staging.mkdir()
    old = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.old.tmp")
    try:
        build(staging)
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove_dead_staging(folder: Path) -> None:
    # Temporary folders named with a process id that no longer runs: what a killed adaptation left.
    for candidate in folder.glob(".*.tmp"):
        pid = candidate.name.rsplit(".", 2)[-2].split("-")[0] if candidate.is_dir() else ""
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(candidate, ignore_errors=True)
        except OSError:
            continue


def save_adapted_weights(network: Any, base_dir: Path, staging: Path) -> str:
    """Copy the base folder's files, its weights replaced by the trained ones; return the weights' sha256.

    Only the tensors the base's safetensors held are written, under their own names and dtypes: a tensor the MLM
    model does not have (the pooler) keeps its base value, and a fresh MLM head is not written.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    for source in base_dir.rglob("*"):
        relative = source.relative_to(base_dir)
        top_weights = len(relative.parts) == 1 and (
            source.suffix == ".safetensors" or source.name.endswith(".index.json")
        )
        if source.is_file() and not top_weights:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staging / relative)
    trained = network.state_dict()
    prefix = f"{network.base_model_prefix}."
    tensors: dict[str, Any] = {}
    replaced = 0
    for weights in sorted(base_dir.glob("*.safetensors")):
        with safe_open(str(weights), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118
                original = handle.get_tensor(key)
                value = trained.get(key, trained.get(prefix + key))
                if value is not None and tuple(value.shape) == tuple(original.shape):
                    original = value.detach().to("cpu", dtype=original.dtype)
                    replaced += 1
                tensors[key] = original.contiguous().clone()  # tied tensors share memory, which safetensors refuses
    if replaced == 0:
        raise ModelError(f"none of the weights in {base_dir} match the trained model's names; cannot save them")
    save_file(tensors, str(staging / WEIGHTS), metadata={"format": "pt"})
    return weights_sha256(staging)
