"""Token states to one vector per text: pooling, Dense layers and normalisation, as sentence-transformers runs them.

The arithmetic follows sentence-transformers 6.2's ``Pooling._forward_padded``, ``Dense.forward`` and
``Normalize.forward`` operation for operation (padding may be on either side), so a checkpoint's vectors match its own
library's (cosine >= 0.9999 in float32, tests/backbone/test_sentence_transformers_parity.py). The same module is traced
into the ONNX encoder graph (:mod:`bertwise.onnx.export`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from bertwise.backbone.modules import DENSE_WEIGHTS, DenseLayer, PoolingMode, pooling_modes
from bertwise.backbone.resolve import Backbone, weights_file_sha256
from bertwise.exceptions import ModelError


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, modes: tuple[PoolingMode, ...]) -> torch.Tensor:
    """Each mode's vector over the real tokens (``attention_mask`` 1), concatenated in the order given."""
    # int32 for argmax and max: ONNX Runtime has no int64 ArgMax on CPU (sentence-transformers does the same when
    # tracing); it changes no value.
    mask_int = attention_mask.to(torch.int32)
    batch, length, width = hidden.shape
    outputs: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":  # the first real token, wherever padding is
            first = mask_int.argmax(dim=1)
            outputs.append(torch.gather(hidden, 1, first.view(-1, 1, 1).expand(-1, 1, width)).squeeze(1))
        elif mode == "max":
            mask = attention_mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
            outputs.append(hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            total = (hidden * mask).sum(dim=1)
            count = torch.clamp(mask.sum(dim=1), min=1e-9)
            outputs.append(total / (count if mode == "mean" else torch.sqrt(count)))
        elif mode == "weightedmean":  # weights 1, 2, 3... from the first real token
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            weights = torch.arange(1, length + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
            weights = weights - mask_int.argmax(dim=1).to(hidden.dtype).view(-1, 1, 1)
            weighted = mask * weights
            total = (hidden * weighted).sum(dim=1)
            outputs.append(total / torch.clamp(weighted.sum(dim=1), min=1e-9))
        elif mode == "lasttoken":
            values, indices = mask_int.flip(1).max(1)
            indices = torch.where(values == 0, length - 1, indices)
            last = (length - indices - 1).view(-1, 1, 1).expand(-1, 1, width)
            mask = attention_mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
            outputs.append(torch.gather(hidden * mask, 1, last).squeeze(1))
        else:
            raise ModelError(f"unknown pooling mode {mode!r}")
    return torch.cat(outputs, dim=-1)


class Dense(torch.nn.Module):
    """sentence-transformers' ``Dense`` with the same parameter names, so its safetensors load as they are."""

    def __init__(self, layer: DenseLayer, activation: torch.nn.Module) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
        self.activation_function = activation
        self.use_residual = layer.residual
        self.project = layer.residual and layer.in_features != layer.out_features
        if self.project:
            self.residual = torch.nn.Linear(layer.in_features, layer.out_features, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] > 1 and not torch.onnx.is_in_onnx_export():
            # One row at a time: a matrix product's last bits depend on how many rows it multiplies, and a text's
            # vector must not depend on the batch it fell in (a saved model predicts what the live one did).
            return torch.cat([self._forward(row) for row in features.split(1)])
        return self._forward(features)

    def _forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(features))
        if self.use_residual:
            out = out + (self.residual(features) if self.project else features)
        return out


class SentenceHead(torch.nn.Module):
    """Token states and attention mask -> sentence vectors: pooling, then Dense layers, then L2 normalisation."""

    def __init__(self, modes: tuple[PoolingMode, ...], dense: list[Dense], normalize: bool, width: int) -> None:
        super().__init__()
        self.modes = modes
        self.dense = torch.nn.ModuleList(dense)
        self.normalize = normalize
        self.dimension = width

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        vectors = pool(hidden, attention_mask, self.modes)
        for layer in self.dense:
            vectors = layer(vectors)
        return torch.nn.functional.normalize(vectors, p=2, dim=-1) if self.normalize else vectors


def build_head(backbone: Backbone, hidden_size: int) -> SentenceHead:
    """The backbone's head in float32, its Dense weights loaded from safetensors and checked against their sha256."""
    modes = pooling_modes(backbone.pooling)
    width = hidden_size * len(modes)
    layers = []
    for layer in backbone.dense:
        if layer.in_features != width:
            raise ModelError(
                f"the Dense layer in '{layer.path}' takes {layer.in_features} features but {backbone.pooling} pooling "
                f"of this model gives {width}"
            )
        layers.append(_load_dense(Path(backbone.path), layer))
        width = layer.out_features
    return SentenceHead(modes, layers, backbone.normalize, width).eval()


def _load_dense(directory: Path, layer: DenseLayer) -> Dense:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = directory / layer.path / DENSE_WEIGHTS
    digest = weights_file_sha256(path)
    if digest != layer.sha256:
        raise ModelError(f"'{path}' has sha256 {digest}; expected {layer.sha256}, the weights it was described with")
    module = Dense(layer, _activation(layer.activation, path.parent / "config.json"))
    try:
        module.load_state_dict(load_file(str(path)), strict=True)
    except (SafetensorError, OSError, RuntimeError) as error:
        first = str(error).replace("\n", " ")[:300]
        raise ModelError(f"'{path}' does not fit its Dense layer ({type(error).__name__}: {first})") from None
    return module.float().eval()


def _activation(name: str, where: Path) -> torch.nn.Module:
    """An instance of the ``torch.nn`` module class named by import path, as sentence-transformers builds it."""
    module_name, _, class_name = name.rpartition(".")
    try:
        found: Any = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        found = None
    if not (name.startswith("torch.") and isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise ModelError(
            f"'{where}' names the activation {name!r}; expected a torch.nn module class such as "
            "torch.nn.modules.activation.Tanh"
        )
    try:
        return found()
    except TypeError as error:
        raise ModelError(
            f"'{where}' names the activation {name!r}, which cannot be built without arguments ({error})"
        ) from None
