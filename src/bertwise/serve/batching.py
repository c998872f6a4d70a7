"""The micro-batcher: texts of concurrent requests share one ``predict_proba`` call.

Requests put their texts on one queue. A single worker task takes texts from the head of the queue, across request
boundaries, up to ``max_batch_texts``; when the model is idle and fewer texts are waiting it holds the batch open for
at most ``max_wait`` after the oldest text arrived, so that clients arriving together share a forward pass. The batch
runs in one dedicated thread: torch already spreads one forward pass over every core, so two at once would only fight
for them, and the event loop stays free to accept, parse and answer requests meanwhile.

A request larger than a batch is split across consecutive batches. When a batch raises, each request in it is run
alone, so only the requests that fail by themselves get the error (500); the worker goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger("bertwise.serve")

PredictProba = Callable[[list[str]], Any]


class QueueFullError(Exception):
    """The queue cannot take this request's texts without going past ``max_queue_texts``."""

    def __init__(self, queued: int, requested: int, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"server busy: {queued} texts are already waiting and this request adds {requested}, past the queue "
            f"limit of {limit} (max_queue_texts); retry after {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class BatchFailedError(Exception):
    """The model raised on a batch holding this request's texts."""


class BatcherClosedError(Exception):
    """The server is shutting down (or its worker stopped) and takes no more texts."""


@dataclass(eq=False)
class _Job:
    """One request's texts, the rows already computed and the future its handler awaits."""

    texts: list[str]
    future: asyncio.Future[np.ndarray]
    enqueued_at: float
    next_text: int = 0  # the first text not yet handed to a batch
    finished: int = 0  # texts whose probabilities are in ``result``
    result: np.ndarray | None = None

    @property
    def waiting(self) -> int:
        return len(self.texts) - self.next_text


@dataclass
class BatcherStats:
    batches: int = 0
    texts: int = 0
    failed_batches: int = 0
    rejected_requests: int = 0
    seconds_per_text: float | None = None  # moving average of model time per text, for Retry-After
    busy_seconds: float = 0.0  # time spent in predict_proba: over a span of wall time, how busy the model was
    started_at: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Merges the texts of concurrent :meth:`predict` calls into batches for one ``predict_proba`` at a time.

    Call :meth:`start` from the event loop that will call :meth:`predict` (the app's lifespan does), and :meth:`stop`
    when done.
    """

    def __init__(
        self,
        predict_proba: PredictProba,
        *,
        max_batch_texts: int,
        max_wait_s: float,
        max_queue_texts: int,
        n_classes: int | None = None,
    ) -> None:
        self._predict_proba = predict_proba
        self.n_classes = n_classes
        self.max_batch_texts = max_batch_texts
        self.max_wait_s = max_wait_s
        self.max_queue_texts = max_queue_texts
        self.stats = BatcherStats()
        self._jobs: deque[_Job] = deque()
        self._queued_texts = 0
        self._running_texts = 0
        self._in_flight: list[_Job] = []  # the jobs with texts in the batch running now
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    # --- state -------------------------------------------------------------------------------------------------

    @property
    def queued_texts(self) -> int:
        """Texts waiting for a batch (not counting the batch the model is running)."""
        return self._queued_texts

    @property
    def running_texts(self) -> int:
        """Texts of the batch the model is running now (0 when idle)."""
        return self._running_texts

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done() and not self._closed

    def retry_after_s(self) -> int:
        """Whole seconds until the queue has likely drained, from the recent model time per text; 1 to 60."""
        per_text = self.stats.seconds_per_text
        if per_text is None:
            return 1
        return max(1, min(60, math.ceil((self._queued_texts + self._running_texts) * per_text)))

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("the batcher is already started")
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertwise-model")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="bertwise-batcher")
        self._worker.add_done_callback(self._worker_ended)

    async def stop(self) -> None:
        """Stop taking texts, fail the requests still queued, and let a running batch finish in its thread."""
        self._closed = True
        in_flight = list(self._in_flight)  # taken before the cancelled worker clears it
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherClosedError("the server is shutting down; retry on another server"))
        self._queued_texts = 0
        # Only when shutdown outlasted the server's grace period: the batch running now is abandoned in its thread.
        for job in in_flight:
            if not job.future.done():
                job.future.set_exception(BatcherClosedError("the server is shutting down; retry on another server"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _worker_ended(self, worker: asyncio.Task[None]) -> None:
        """A worker that died of a bug must not leave requests waiting forever: fail them (health turns 503)."""
        if worker.cancelled() or worker.exception() is None:
            return
        logger.error("the batching worker stopped", exc_info=worker.exception())
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherClosedError("the model worker stopped; see the server log"))
        self._queued_texts = 0

    # --- the request side --------------------------------------------------------------------------------------

    async def predict(self, texts: list[str]) -> np.ndarray:
        """Probabilities of ``texts`` (one row per text), computed in batches shared with other requests.

        Raises :class:`QueueFullError` at once when the queue is full, :class:`BatchFailedError` when the model
        raised on a batch holding these texts, and :class:`BatcherClosedError` when shutting down.
        """
        if not self.running or self._wakeup is None:
            raise BatcherClosedError("the model worker is not running")
        if not texts:
            raise ValueError("predict needs at least one text")
        if self._queued_texts + len(texts) > self.max_queue_texts:
            self.stats.rejected_requests += 1
            raise QueueFullError(self._queued_texts, len(texts), self.max_queue_texts, self.retry_after_s())
        loop = asyncio.get_running_loop()
        job = _Job(texts=texts, future=loop.create_future(), enqueued_at=loop.time())
        self._jobs.append(job)
        self._queued_texts += len(texts)
        self._wakeup.set()
        try:
            return await job.future
        finally:
            if job.future.cancelled():
                self._forget(job)  # the caller went away: its texts need no forward pass

    # --- the worker side ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Hold the batch open for late joiners only up to max_wait after its oldest text arrived; texts that
            # queued while the previous batch ran are past that already and go at once.
            deadline = self._jobs[0].enqueued_at + self.max_wait_s
            while self._queued_texts < self.max_batch_texts:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            segments, texts = self._take_batch()
            if texts:
                await self._run_batch(segments, texts)

    def _take_batch(self) -> tuple[list[tuple[_Job, int, int]], list[str]]:
        """Up to ``max_batch_texts`` texts from the head of the queue, each with its job and position in the job."""
        segments: list[tuple[_Job, int, int]] = []
        texts: list[str] = []
        while self._jobs and len(texts) < self.max_batch_texts:
            job = self._jobs[0]
            if job.future.done():  # cancelled by its caller, or failed by an earlier batch
                self._jobs.popleft()
                self._queued_texts -= job.waiting
                continue
            take = min(job.waiting, self.max_batch_texts - len(texts))
            start = job.next_text
            segments.append((job, start, start + take))
            texts += job.texts[start : start + take]
            job.next_text += take
            self._queued_texts -= take
            if job.waiting == 0:
                self._jobs.popleft()
        return segments, texts

    async def _run_batch(self, segments: list[tuple[_Job, int, int]], texts: list[str]) -> None:
        self._in_flight = [job for job, _, _ in segments]
        try:
            await self._run_segments(segments, texts)
        finally:
            self._in_flight = []

    async def _run_segments(self, segments: list[tuple[_Job, int, int]], texts: list[str]) -> None:
        try:
            probabilities = await self._timed_predict(texts)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # any model failure must fail only the requests at fault
            if len(segments) == 1:
                logger.error("prediction failed on a batch of %d texts", len(texts), exc_info=error)
                self._fail(segments[0][0], error)
                return
            # One client's text must not fail the others' requests that happened to share its batch: run each
            # request's texts alone, so only the request(s) that fail on their own get the error.
            logger.warning(
                "prediction failed on a batch of %d texts from %d requests (%s: %s); retrying each request alone",
                len(texts),
                len(segments),
                type(error).__name__,
                error,
            )
            for segment in segments:
                job, start, end = segment
                if job.future.done():
                    continue
                try:
                    rows = await self._timed_predict(job.texts[start:end])
                except asyncio.CancelledError:
                    raise
                except Exception as alone:
                    logger.error("prediction failed on a request of %d texts", end - start, exc_info=alone)
                    self._fail(job, alone)
                else:
                    self._deliver([segment], rows)
            return
        self._deliver(segments, probabilities)

    async def _timed_predict(self, texts: list[str]) -> np.ndarray:
        """One ``predict_proba`` in the model thread; counts it and updates the time per text."""
        loop = asyncio.get_running_loop()
        self._running_texts = len(texts)
        started = time.perf_counter()
        try:
            probabilities = await loop.run_in_executor(self._executor, self._predict, texts)
        except Exception:
            self.stats.failed_batches += 1
            raise
        finally:
            self._running_texts = 0
            self.stats.busy_seconds += time.perf_counter() - started
        per_text = (time.perf_counter() - started) / len(texts)
        previous = self.stats.seconds_per_text
        self.stats.seconds_per_text = per_text if previous is None else 0.8 * previous + 0.2 * per_text
        self.stats.batches += 1
        self.stats.texts += len(texts)
        return probabilities

    def _deliver(self, segments: list[tuple[_Job, int, int]], probabilities: np.ndarray) -> None:
        """Copy each segment's rows into its job; resolve the jobs that now have every row."""
        offset = 0
        for job, start, end in segments:
            rows = probabilities[offset : offset + end - start]
            offset += end - start
            if job.future.done():
                continue
            if job.result is None:
                job.result = np.empty((len(job.texts), probabilities.shape[1]), dtype=probabilities.dtype)
            job.result[start:end] = rows
            job.finished += end - start
            if job.finished == len(job.texts):
                job.future.set_result(job.result)

    def _predict(self, texts: list[str]) -> np.ndarray:
        """Runs in the model thread: the model's probabilities, checked to hold one row per text."""
        probabilities = np.asarray(self._predict_proba(texts), dtype=np.float64)
        columns = self.n_classes if self.n_classes is not None else "number of classes"
        if (
            probabilities.ndim != 2
            or probabilities.shape[0] != len(texts)
            or (self.n_classes is not None and probabilities.shape[1] != self.n_classes)
        ):
            raise ValueError(
                f"predict_proba returned an array of shape {probabilities.shape} for {len(texts)} texts; "
                f"expected ({len(texts)}, {columns})"
            )
        return probabilities

    def _fail(self, job: _Job, error: Exception) -> None:
        if not job.future.done():
            message = f"the model failed on this request's texts: {type(error).__name__}: {error}"
            job.future.set_exception(BatchFailedError(message[:1000]))
        self._forget(job)

    def _forget(self, job: _Job) -> None:
        """Drop a finished job's texts that are still queued, so no batch computes them for nobody."""
        if job.waiting and job in self._jobs:
            self._jobs.remove(job)
            self._queued_texts -= job.waiting
            job.next_text = len(job.texts)
