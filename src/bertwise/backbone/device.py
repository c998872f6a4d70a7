"""Choosing the torch device and the precision that is fast and safe on it."""

from __future__ import annotations

from typing import Any

from bertwise.exceptions import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str = "auto") -> Any:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit choice that is not there is an error."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = device.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N); got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
    return torch.device(device)


def autocast_dtype(device: Any) -> Any | None:
    """bf16 autocast on GPUs that support it; None (plain float32) elsewhere, where bf16 is slow or inexact."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
