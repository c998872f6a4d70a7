"""What a strategy costs: wall time and peak memory, measured around a block of work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# RSS is sampled, so a spike shorter than this can be missed; 20 ms keeps the sampler's own cost negligible.
SAMPLE_SECONDS = 0.02


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    _start: float = field(default=0.0, repr=False)


@contextmanager
def measure() -> Iterator[Measurement]:
    """Time a block and record the process's peak resident memory (and peak CUDA memory when a GPU is in use)."""
    import psutil

    process = psutil.Process()
    result = Measurement(peak_rss_mb=process.memory_info().rss / 2**20)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            result.peak_rss_mb = max(result.peak_rss_mb, process.memory_info().rss / 2**20)

    cuda = _cuda_in_use()
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    sampler = threading.Thread(target=sample, name="bertwise-memory-sampler", daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        result.peak_rss_mb = max(result.peak_rss_mb, process.memory_info().rss / 2**20)
        if cuda is not None:
            result.peak_gpu_mb = cuda.max_memory_allocated() / 2**20


def _cuda_in_use() -> Any:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda
    return None
