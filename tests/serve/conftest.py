"""Fixtures of the serve tests: skipped as a whole when the serve extra is not installed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'bertwise[serve]'")
pytest.importorskip("httpx", reason="the serve tests need httpx")

from fastapi.testclient import TestClient  # noqa: E402

from bertwise.serve import ServeSettings, create_app  # noqa: E402


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Builds a started TestClient (lifespan run, so the batcher works) for a model and limits; closes them all."""
    clients: list[TestClient] = []

    def make(model: Any, **limits: Any) -> TestClient:
        client = TestClient(create_app(model, ServeSettings(**limits)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Polls ``condition``; the timeout only guards against a hang, the tests never measure speed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def in_thread(call: Callable[[], Any]) -> Callable[[], Any]:
    """Starts ``call`` in a thread; returns a function that joins it and gives back its result (or raises)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as error:  # handed to the joining test
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(timeout=30)
        if thread.is_alive():
            raise AssertionError("request thread did not finish")
        if "error" in box:
            raise box["error"]
        return box["result"]

    return join
