"""Shared helpers of the speed benchmarks: locating the checkout and datasets, building corpora, measuring peaks."""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
SHORT_SOURCES = ("banking77", "trec6", "gard_question_types")  # questions of a few words
LONG_SOURCES = ("medical_abstracts", "ohsumed_23")  # abstracts of a few hundred tokens


def use_checkout() -> None:
    """Measure the working tree's bertwise, offline, whatever is installed."""
    sys.path.insert(0, str(REPO / "src"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def read_column(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def mixed_corpus(datasets: Path, short: int, long: int, seed: int = 0) -> list[str]:
    """``short`` questions and ``long`` abstracts from the test splits, drawn evenly from each source, shuffled."""
    rng = random.Random(seed)
    texts: list[str] = []
    for sources, total in ((SHORT_SOURCES, short), (LONG_SOURCES, long)):
        present = [name for name in sources if (datasets / name / "test.csv").is_file()]
        if not present:
            raise SystemExit(f"no dataset of {', '.join(sources)} under {datasets}; pass --datasets-dir")
        for position, name in enumerate(present):
            pool = read_column(datasets / name / "test.csv", "text")
            share = total // len(present) + (1 if position < total % len(present) else 0)
            texts += rng.sample(pool, min(share, len(pool)))
    rng.shuffle(texts)
    return texts


def matmul_peak_gflops(dtype_name: str = "float32", size: int = 1024, seconds: float = 2.0) -> float:
    """The best float matrix-product rate of a few seconds of ``size``-square products: the machine's ceiling."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b  # first call pays for kernel selection
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


def encoder_flops(token_counts: list[int], hidden: int, layers: int, intermediate: int) -> float:
    """Useful forward FLOPs of a BERT encoder on unpadded texts: projections, feed-forward and attention."""
    total = 0.0
    for length in token_counts:
        per_token_linear = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
        attention = 2 * 2 * length * length * hidden  # scores and weighted sum
        total += layers * (length * per_token_linear + attention)
    return total


def peak_rss_mb() -> float:
    import resource

    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
