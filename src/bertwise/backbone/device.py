"""Choosing the torch device and the precision that is fast and safe on it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from bertwise.exceptions import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("auto", "float32", "bfloat16")


def resolve_device(device: str = "auto") -> Any:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit choice that is not there is an error."""
    kind = device.split(":")[0]
    if kind not in DEVICE_CHOICES:  # before torch loads, so a mistyped --device costs nothing
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N); got {device!r}")
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
    return torch.device(device)


def resolve_precision(device: Any, precision: str = "auto") -> Any | None:
    """The reduced dtype to compute in on ``device``, or None for plain float32.

    ``auto`` takes bfloat16 where the hardware multiplies it natively (CUDA GPUs from Ampere on; CPUs with AVX512-BF16
    or AMX), because there it is faster (docs/speed.md) and keeps every embedding within cosine 0.9999 of float32
    (benchmarks/encode_speed.py); elsewhere bfloat16 is emulated and slower, so ``auto`` keeps float32.
    """
    import torch

    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}; got {precision!r}")
    if precision == "float32":
        return None
    native = native_bfloat16(device)
    if precision == "bfloat16" and not native and device.type != "cpu":
        raise ConfigError(f"precision 'bfloat16' was asked for, but {device} has no bfloat16 support; use float32")
    # An explicit bfloat16 on a CPU without native support is allowed: slower, but what was asked for.
    return torch.bfloat16 if precision == "bfloat16" or native else None


def precision_name(device: Any, precision: str = "auto") -> str:
    dtype = resolve_precision(device, precision)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def native_bfloat16(device: Any) -> bool:
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "cpu":
        return _cpu_has_bfloat16_units()
    return False


@lru_cache(maxsize=1)
def _cpu_has_bfloat16_units() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no portable way to ask, so stay with float32
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: Any, precision: str = "auto") -> Any | None:
    """The dtype for ``torch.autocast`` during training and inference with trained weights (None: float32)."""
    return resolve_precision(device, precision)
