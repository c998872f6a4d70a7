"""How inference groups texts into forward passes, and how it runs those passes on the CPU's cores.

Two measured costs shape it (2-core AVX2 CPU, MiniLM, float32; ``benchmarks/encode_speed.py`` and docs/speed.md):

- A forward pass costs a fixed part, about as much as 64 tokens (mostly reading every weight from memory once),
  plus a part per padded token. Cutting a length-sorted list every ``batch_size`` texts pads a whole batch to one
  long outlier; :func:`padding_aware_batches` instead places the cuts where they minimise that cost model, which
  speeds up random short calls most. On long sorted runs the cuts change little, since texts of
  equal length already share batches there.
- On a CPU, two batches side by side, each on half the cores (:func:`run_batches`), got more texts per second than
  one batch at a time on all cores: per-operation thread hand-offs no longer wait for the slower core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from bertwise.exceptions import ConfigError

# The fixed cost of one forward pass, in padded tokens' worth of work, measured on a CPU; on a GPU launching the
# kernels costs far more than a token, so batches stay wide there unless one text is much longer than the rest. The
# optimum is flat around it (docs/speed.md, "Inference batching", has the measured costs and the flatness).
CPU_PASS_OVERHEAD_TOKENS = 64
GPU_PASS_OVERHEAD_TOKENS = 4096
STREAMS_ENV = "BERTWISE_INFERENCE_STREAMS"
# Batches drawn into one pool before sorting by length (training): large enough that batches are nearly uniform in
# length (little padding), small enough that batch order stays random across the epoch.
LENGTH_GROUP_BATCHES = 50


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Training batches of similar-length texts: shuffle, sort within pools of 50 batches, shuffle the batches."""
    order = rng.permutation(len(lengths))
    pool_size = batch_size * LENGTH_GROUP_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool_size):
        pool = order[start : start + pool_size]
        pool = pool[np.argsort([-lengths[i] for i in pool], kind="stable")]
        batches.extend(pool[i : i + batch_size].tolist() for i in range(0, len(pool), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_aware_batches(
    lengths: Sequence[int], max_batch: int, *, overhead_tokens: int = CPU_PASS_OVERHEAD_TOKENS, hidden_size: int = 768
) -> list[list[int]]:
    """Indices grouped into batches of at most ``max_batch``, longest first, cut where padding costs most.

    Texts are sorted by length (longest first, ties in input order) and split into consecutive runs so that the sum
    over batches of ``overhead_tokens + texts * padded_width * (1 + padded_width / (3 * hidden_size))`` is smallest
    (the last factor is attention's share, which grows with width). Exact dynamic programming, O(texts * max_batch).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1; got {max_batch}")
    count = len(lengths)
    if count == 0:
        return []
    order = sorted(range(count), key=lambda i: -lengths[i])
    width = np.array([lengths[i] for i in order], dtype=np.float64)
    # Cost of one padded row in a batch whose longest (first) text has this width.
    row_cost = width * (1.0 + width / (3.0 * hidden_size))
    best = np.zeros(count + 1)
    cut = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        starts = np.arange(max(0, end - max_batch), end)
        costs = best[starts] + overhead_tokens + (end - starts) * row_cost[starts]
        # Among equal costs the shortest last batch, so equal lengths fill whole batches first and leave the rest.
        pick = int(np.flatnonzero(costs <= costs.min() * (1 + 1e-12))[-1])
        best[end] = costs[pick]
        cut[end] = starts[pick]
    batches: list[list[int]] = []
    end = count
    while end > 0:
        start = int(cut[end])
        batches.append(order[start:end])
        end = start
    batches.reverse()
    return batches


def inference_streams(device: Any) -> int:
    """How many batches run side by side: 2 on a CPU with at least 2 torch threads, else 1.

    ``BERTWISE_INFERENCE_STREAMS`` overrides it (1 restores one batch at a time on all cores).
    """
    import torch

    configured = os.environ.get(STREAMS_ENV, "").strip()
    if configured:
        try:
            streams = int(configured)
        except ValueError:
            raise ConfigError(f"{STREAMS_ENV} must be a whole number >= 1; got {configured!r}") from None
        return max(1, streams)
    if getattr(device, "type", device) != "cpu":
        return 1  # one device queue: side-by-side batches would only interleave on it
    return 2 if torch.get_num_threads() >= 2 else 1


def run_batches(batches: Sequence[list[int]], run_batch: Callable[[list[int]], None], streams: int) -> None:
    """Call ``run_batch`` on every batch, ``streams`` at a time, each stream on its share of torch's threads.

    ``run_batch`` runs in a worker thread when ``streams > 1``: it must enter its own thread-local contexts
    (``torch.inference_mode``, ``torch.autocast``) and write its results where the caller can read them. The first
    error stops the streams after their current batch and is raised here; so is a Ctrl-C while waiting.
    """
    if streams <= 1 or len(batches) <= 1:
        for batch in batches:
            run_batch(batch)
        return
    import torch

    caller_threads = torch.get_num_threads()
    threads_per_stream = max(1, caller_threads // streams)
    pending = iter(batches)
    lock = threading.Lock()
    stop = threading.Event()

    def stream() -> None:
        # Per thread in torch's OpenMP build; the caller's own setting is put back below.
        torch.set_num_threads(threads_per_stream)
        while not stop.is_set():
            with lock:
                batch = next(pending, None)
            if batch is None:
                return
            run_batch(batch)

    executor = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="bertwise-stream")
    try:
        futures = [executor.submit(stream) for _ in range(min(streams, len(batches)))]
        wait(futures, return_when=FIRST_EXCEPTION)  # every future, unless one failed first
        for future in futures:
            error = future.exception() if future.done() else None
            if error is not None:
                raise error
    finally:
        stop.set()
        executor.shutdown(wait=True)
        torch.set_num_threads(caller_threads)


def run_inference(
    lengths: Sequence[int],
    max_batch: int,
    run_batch: Callable[[list[int]], None],
    *,
    device: Any,
    hidden_size: int,
    streams: int | None = None,
) -> None:
    """The torch paths' one entry: :func:`padding_aware_batches` for ``device``, run by :func:`run_batches`.

    ``streams=None`` takes :func:`inference_streams`, read from the calling thread's torch threads.
    """
    on_cpu = getattr(device, "type", device) == "cpu"
    batches = padding_aware_batches(
        lengths,
        max_batch,
        overhead_tokens=CPU_PASS_OVERHEAD_TOKENS if on_cpu else GPU_PASS_OVERHEAD_TOKENS,
        hidden_size=hidden_size,
    )
    run_batches(batches, run_batch, streams or inference_streams(device))
