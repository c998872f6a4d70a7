"""The limits of `bertwise serve` (one frozen dataclass) and the ASGI middleware that caps the request body.

This module imports nothing heavy, so the CLI can read the defaults while ``bertwise --help`` stays instant.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from bertwise.exceptions import ConfigError

# ASGI types spelt out here rather than imported from starlette, so this module loads without the serve extra.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServeSettings:
    """Every limit of the server; each one is a CLI option of ``bertwise serve`` and is shown by ``GET /metadata``.

    The defaults suit a CPU and short texts: a request of the largest allowed size (256 texts) fits in the body limit
    only if its texts average under about 8,000 characters, so the body limit is the one that binds on long texts.
    """

    max_texts_per_request: int = 256
    """Texts one ``POST /predict`` may carry; more is answered 413."""
    max_text_chars: int = 20_000
    """Characters of one text; a longer one is answered 413 naming its index. (The backbone reads only its first few
    hundred tokens anyway; the limit is there to bound tokenization time and memory.)"""
    max_body_bytes: int = 2 * 1024 * 1024
    """Bytes of a request body, checked from Content-Length and again while a chunked body is read; more is 413."""
    max_batch_texts: int = 64
    """Texts the model is given at once: concurrent requests are merged up to this size."""
    max_wait_ms: float = 5.0
    """How long the first queued text waits for others to join its batch while the model is idle."""
    max_queue_texts: int = 1024
    """Texts that may wait for the model; a request that would go past it is answered 503 with Retry-After."""
    warmup: bool = True
    """Run the model once on a dummy text at start-up, so the first client does not pay for lazy initialisation."""

    def __post_init__(self) -> None:
        for name in ("max_texts_per_request", "max_text_chars", "max_body_bytes", "max_batch_texts", "max_queue_texts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{_option(name)} must be a whole number of at least 1; got {value!r}")
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, int | float) or self.max_wait_ms < 0:
            raise ConfigError(
                f"{_option('max_wait_ms')} must be a number of milliseconds >= 0; got {self.max_wait_ms!r}"
            )
        # Otherwise a request of the largest allowed size could never be admitted, even to an empty queue.
        if self.max_queue_texts < self.max_texts_per_request:
            raise ConfigError(
                f"{_option('max_queue_texts')} ({self.max_queue_texts}) must be at least "
                f"{_option('max_texts_per_request')} ({self.max_texts_per_request}), or a full-size request could "
                "never be queued"
            )

    def as_dict(self) -> dict[str, Any]:
        """The limits as JSON-ready values, for ``GET /metadata``."""
        return asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in fields(cls)]


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


class BodySizeLimitMiddleware:
    """Answers 413 to a request whose body is larger than ``max_body_bytes``, before the app parses any of it.

    A declared Content-Length over the limit is refused without reading the body; otherwise (chunked bodies, or a
    Content-Length that lies) the body is read here, counting bytes and stopping at the limit, then replayed to the
    app. Buffering is bounded by the limit itself, and it keeps the app free of partial-body states. Written as plain
    ASGI rather than with FastAPI's own ``max_body_size`` so it works across the FastAPI versions the extra allows.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(send, f"request body is {declared} bytes")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its whole body: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._refuse(send, f"request body is more than {self.max_body_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # later calls wait for the disconnect, as the server's own receive would

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, found: str) -> None:
        detail = (
            f"{found}; this server accepts at most {self.max_body_bytes} bytes per request (max_body_bytes): "
            "send fewer or shorter texts per request"
        )
        payload = json.dumps({"detail": detail}).encode()
        # The rest of the body is not read, so the connection cannot carry another request: say so.
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server rejects a malformed length itself; count the bytes instead
    return None
