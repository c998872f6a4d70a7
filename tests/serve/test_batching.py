"""Micro-batching: texts of concurrent requests share one predict_proba call; checked by batch sizes, not by time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bertwise.serve.batching import BatcherClosedError, MicroBatcher, QueueFullError
from tests.serve.conftest import in_thread, wait_until
from tests.serve.fakes import GatedModel, KeywordModel

MakeClient = Callable[..., TestClient]


def test_concurrent_requests_share_a_batch(make_client: MakeClient) -> None:
    model = GatedModel()
    client = make_client(model, max_batch_texts=64)
    first = in_thread(lambda: client.post("/predict", json={"text": "rain"}))
    wait_until(model.entered.is_set, "the first batch to reach the model")
    texts = ["bake", "goal", "snow", "soup", "match", "wind"]
    waiting = [in_thread(lambda text=text: client.post("/predict", json={"text": text})) for text in texts]
    wait_until(lambda: client.get("/health").json()["queued_texts"] == len(texts), "six requests queued")
    model.gate.set()
    assert first().json()["predictions"][0]["label"] == "weather"
    labels = [join().json()["predictions"][0]["label"] for join in waiting]
    assert labels == ["cooking", "sports", "weather", "cooking", "sports", "weather"]  # each got its own row
    assert model.batch_sizes == [1, len(texts)]  # the six requests went through the model together
    assert sorted(model.batches[1]) == sorted(texts)


def test_a_batch_stops_at_max_batch_texts(make_client: MakeClient) -> None:
    model = GatedModel()
    client = make_client(model, max_batch_texts=4)
    first = in_thread(lambda: client.post("/predict", json={"text": "rain"}))
    wait_until(model.entered.is_set, "the first batch to reach the model")
    waiting = [in_thread(lambda: client.post("/predict", json={"texts": ["goal", "soup", "snow"]})) for _ in range(3)]
    wait_until(lambda: client.get("/health").json()["queued_texts"] == 9, "three requests queued")
    model.gate.set()
    first()
    for join in waiting:
        assert [p["label"] for p in join().json()["predictions"]] == ["sports", "cooking", "weather"]
    assert model.batch_sizes == [1, 4, 4, 1]  # requests are split across batches where a batch fills


def test_a_request_larger_than_a_batch_is_split_in_order(make_client: MakeClient) -> None:
    model = KeywordModel()
    client = make_client(model, max_batch_texts=4)
    texts = ["bake", "goal", "snow", "soup", "match", "wind", "salt", "team", "rain", "onion"]
    response = client.post("/predict", json={"texts": texts})
    assert [p["label"] for p in response.json()["predictions"]] == list(KeywordModel().predict(texts))
    assert model.batch_sizes == [4, 4, 2]


def test_a_full_batch_goes_without_waiting_for_max_wait(make_client: MakeClient) -> None:
    # With a wait of ten minutes the test would hang unless a full batch starts at once.
    model = KeywordModel()
    client = make_client(model, max_batch_texts=3, max_wait_ms=600_000)
    waiting = [in_thread(lambda text=text: client.post("/predict", json={"text": text})) for text in ("a", "b", "c")]
    assert all(join().status_code == 200 for join in waiting)
    assert model.batch_sizes == [3]


class _Rows:
    """predict_proba whose row for text "k" is [k, 100 - k] / 100, so each row names its text."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        self.gate.wait(timeout=30)
        values = np.array([float(text) for text in texts]) / 100
        return np.stack([values, 1 - values], axis=1)


def _batcher(model: _Rows, **overrides: float) -> MicroBatcher:
    settings = {"max_batch_texts": 4, "max_wait_s": 0.0, "max_queue_texts": 100, **overrides}
    return MicroBatcher(
        model,
        max_batch_texts=int(settings["max_batch_texts"]),
        max_wait_s=settings["max_wait_s"],
        max_queue_texts=int(settings["max_queue_texts"]),
        n_classes=2,
    )


def test_batches_cross_request_boundaries_and_rows_go_back_to_their_request() -> None:
    model = _Rows()

    async def scenario() -> list[np.ndarray]:
        batcher = _batcher(model)
        await batcher.start()
        # gather starts all three before the worker runs, so nine texts are queued at once
        results = await asyncio.gather(
            batcher.predict(["1", "2", "3"]), batcher.predict(["4", "5", "6"]), batcher.predict(["7", "8", "9"])
        )
        await batcher.stop()
        return list(results)

    results = asyncio.run(scenario())
    assert model.calls == [["1", "2", "3", "4"], ["5", "6", "7", "8"], ["9"]]
    for result, first in zip(results, (1, 4, 7), strict=True):
        assert result[:, 0] == pytest.approx([first / 100, (first + 1) / 100, (first + 2) / 100])


def test_a_cancelled_request_is_not_computed() -> None:
    model = _Rows()
    model.gate.clear()

    async def scenario() -> tuple[np.ndarray, int]:
        batcher = _batcher(model)
        await batcher.start()
        first = asyncio.create_task(batcher.predict(["1"]))
        await asyncio.to_thread(model.entered.wait, 20)
        second = asyncio.create_task(batcher.predict(["2", "3"]))
        await asyncio.sleep(0)  # let it queue
        queued_before = batcher.queued_texts
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        model.gate.set()
        result = await first
        assert batcher.queued_texts == 0
        await batcher.stop()
        return result, queued_before

    result, queued_before = asyncio.run(scenario())
    assert queued_before == 2
    assert result[0, 0] == pytest.approx(0.01)
    assert model.calls == [["1"]]


def test_queue_limit_and_shutdown() -> None:
    model = _Rows()
    model.gate.clear()

    async def scenario() -> None:
        batcher = _batcher(model, max_queue_texts=3)
        await batcher.start()
        running = asyncio.create_task(batcher.predict(["1"]))
        await asyncio.to_thread(model.entered.wait, 20)
        queued = asyncio.create_task(batcher.predict(["2", "3"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="2 texts are already waiting and this request adds 2"):
            await batcher.predict(["4", "5"])
        assert batcher.stats.rejected_requests == 1
        assert 1 <= batcher.retry_after_s() <= 60
        await batcher.stop()
        with pytest.raises(BatcherClosedError, match="shutting down"):
            await queued
        with pytest.raises(BatcherClosedError):
            await batcher.predict(["6"])
        with pytest.raises(BatcherClosedError):  # even the batch the model was running is answered
            await running
        model.gate.set()

    asyncio.run(scenario())


def test_a_wrong_shape_from_the_model_fails_the_request_not_the_worker() -> None:
    calls: list[int] = []

    def flaky(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        rows = 1 if len(calls) == 1 else len(texts)  # the first call returns one row too few
        return np.full((rows, 2), 0.5)

    async def scenario() -> None:
        batcher = MicroBatcher(flaky, max_batch_texts=8, max_wait_s=0.0, max_queue_texts=8, n_classes=2)
        await batcher.start()
        with pytest.raises(Exception, match=r"returned an array of shape \(1, 2\) for 2 texts; expected \(2, 2\)"):
            await batcher.predict(["a", "b"])
        assert (await batcher.predict(["c", "d"])).shape == (2, 2)
        assert batcher.running
        await batcher.stop()

    asyncio.run(scenario())
