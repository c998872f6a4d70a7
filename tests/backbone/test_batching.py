from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import torch

from bertwise.backbone.batching import STREAMS_ENV, inference_streams, padding_aware_batches, run_batches
from bertwise.backbone.encoder import Encoder
from bertwise.backbone.resolve import resolve_backbone
from bertwise.exceptions import ConfigError


def _cost(lengths: list[int], batches: list[list[int]], overhead: int, hidden: int) -> float:
    total = 0.0
    for batch in batches:
        width = max(lengths[i] for i in batch)
        total += overhead + len(batch) * width * (1 + width / (3 * hidden))
    return total


def _best_cost(lengths: list[int], max_batch: int, overhead: int, hidden: int) -> float:
    """Every way of cutting the length-sorted list into runs of at most max_batch, by brute force."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        batches, current = [], [order[0]]
        for index, cut in zip(order[1:], cuts, strict=True):
            if cut:
                batches.append(current)
                current = []
            current.append(index)
        batches.append(current)
        if all(len(batch) <= max_batch for batch in batches):
            best = min(best, _cost(lengths, batches, overhead, hidden))
    return best


def test_batches_cover_every_index_once_longest_first_within_the_size_limit() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=300).tolist()
    batches = padding_aware_batches(lengths, 32, overhead_tokens=64)
    assert sorted(i for batch in batches for i in batch) == list(range(300))
    assert all(1 <= len(batch) <= 32 for batch in batches)
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat, reverse=True)


@pytest.mark.parametrize("seed", range(6))
def test_cuts_are_the_cheapest_under_the_cost_model(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 120, size=11).tolist()
    batches = padding_aware_batches(lengths, 4, overhead_tokens=40, hidden_size=64)
    assert _cost(lengths, batches, 40, 64) == pytest.approx(_best_cost(lengths, 4, 40, 64))


def test_one_long_text_gets_its_own_batch_instead_of_padding_the_rest() -> None:
    lengths = [500] + [12] * 15
    batches = padding_aware_batches(lengths, 32, overhead_tokens=64)
    assert batches == [[0], list(range(1, 16))]
    # Equal lengths gain nothing from a cut, so the size limit alone splits them.
    assert [len(batch) for batch in padding_aware_batches([20] * 70, 32, overhead_tokens=64)] == [32, 32, 6]


def test_no_lengths_no_batches_and_a_bad_limit_is_refused() -> None:
    assert padding_aware_batches([], 8) == []
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        padding_aware_batches([3], 0)


def test_streams_run_every_batch_in_parallel_threads_and_restore_the_callers_threads() -> None:
    seen: dict[int, int] = {}
    threads: set[str] = set()
    lock = threading.Lock()
    caller = torch.get_num_threads()

    def run(batch: list[int]) -> None:
        with lock:
            threads.add(threading.current_thread().name)
            for index in batch:
                seen[index] = torch.get_num_threads()

    run_batches([[0, 1], [2], [3, 4], [5]], run, streams=2)
    assert sorted(seen) == [0, 1, 2, 3, 4, 5]
    assert all(name.startswith("bertwise-stream") for name in threads)
    assert set(seen.values()) == {max(1, caller // 2)}
    assert torch.get_num_threads() == caller


def test_one_stream_runs_inline() -> None:
    names: list[str] = []
    run_batches([[0], [1]], lambda batch: names.append(threading.current_thread().name), streams=1)
    assert names == [threading.current_thread().name] * 2


def test_a_failing_batch_stops_the_streams_and_raises_in_the_caller() -> None:
    ran: list[int] = []

    def run(batch: list[int]) -> None:
        ran.append(batch[0])
        if batch[0] == 1:
            raise RuntimeError("batch 1 failed")

    with pytest.raises(RuntimeError, match="batch 1 failed"):
        run_batches([[i] for i in range(200)], run, streams=2)
    assert len(ran) < 200  # the other stream stopped instead of running out the list


def test_streams_follow_the_device_the_threads_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STREAMS_ENV, raising=False)
    assert inference_streams(torch.device("cuda")) == 1
    expected = 2 if torch.get_num_threads() >= 2 else 1
    assert inference_streams(torch.device("cpu")) == expected
    monkeypatch.setenv(STREAMS_ENV, "3")
    assert inference_streams(torch.device("cpu")) == 3
    monkeypatch.setenv(STREAMS_ENV, "two")
    with pytest.raises(ConfigError, match=f"{STREAMS_ENV} must be a whole number >= 1; got 'two'"):
        inference_streams(torch.device("cpu"))


def test_streams_give_the_embeddings_of_one_batch_at_a_time(tiny_bert: str) -> None:
    texts = [" ".join(["word"] * n) for n in (1, 3, 9, 2, 30, 5, 7, 4, 12, 6)]
    alone = Encoder(resolve_backbone(tiny_bert), device="cpu", batch_size=2, remember=False, streams=1)
    streamed = Encoder(resolve_backbone(tiny_bert), device="cpu", batch_size=2, remember=False, streams=2)
    np.testing.assert_allclose(streamed.encode(texts), alone.encode(texts), atol=1e-5)
    # The time shares of side-by-side batches are scaled to the wall time, one positive share per text.
    assert streamed.last_compute_seconds.shape == (10,) and (streamed.last_compute_seconds > 0).all()
