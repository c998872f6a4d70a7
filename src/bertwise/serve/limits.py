"""The limits of `bertwise serve` (one frozen dataclass) and the ASGI middleware that check a request body before the
app parses it: its size, then its encoding.

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
    request_timeout_s: float = 20.0
    """Seconds a client has to send one whole request (head and body), counted from when its connection opens or the
    first byte of its next request arrives; a connection still sending after that is closed. Bounds slow-header
    (slowloris) and slow-body clients. Applies to :func:`bertwise.serve.serve`, not to an app run by your own server."""
    max_head_bytes: int = 64 * 1024
    """Bytes of a request line and headers; a longer head is answered 431 and its connection closed. Applies to
    :func:`bertwise.serve.serve`, not to an app run by your own server."""
    keep_alive_s: int = 5
    """Seconds an idle keep-alive connection stays open after its last response (uvicorn's ``timeout_keep_alive``)."""
    max_connections: int = 256
    """Connections open at once. At the cap a new connection closes the one that has waited longest without a request
    being answered (idle, or still sending); when every one has a request in progress, the new one gets 503. Lowered
    at start to fit the process's open-file limit (``ulimit -n``)."""

    def __post_init__(self) -> None:
        whole = (
            "max_texts_per_request",
            "max_text_chars",
            "max_body_bytes",
            "max_batch_texts",
            "max_queue_texts",
            "max_head_bytes",
            "keep_alive_s",
            "max_connections",
        )
        for name in whole:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{_option(name)} must be a whole number of at least 1; got {value!r}")
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, int | float) or self.max_wait_ms < 0:
            raise ConfigError(
                f"{_option('max_wait_ms')} must be a number of milliseconds >= 0; got {self.max_wait_ms!r}"
            )
        timeout = self.request_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
            raise ConfigError(f"{_option('request_timeout_s')} must be a number of seconds > 0; got {timeout!r}")
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
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, send: Send, found: str) -> None:
        detail = (
            f"{found}; this server accepts at most {self.max_body_bytes} bytes per request (max_body_bytes): "
            "send fewer or shorter texts per request"
        )
        # The rest of the body is not read, so the connection cannot carry another request: say so.
        await _send_json(send, 413, {"detail": detail}, close=True)


class BodyEncodingMiddleware:
    """Answers 422, naming the byte and its position, to a JSON body that is not valid UTF-8 (or UTF-16/32, which
    ``json.loads`` also detects), instead of the framework's bare 400 "There was an error parsing the body".

    The decoding is strict, so surrogates written as bytes (``ED A0 80``) are refused here too; a surrogate written
    as a JSON escape (``"\\ud800"``) decodes fine and is refused by the request model, which knows the text's index.
    Placed inside :class:`BodySizeLimitMiddleware`, so the body it holds is already bounded.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        encoding = json.detect_encoding(bytes(body))
        try:
            bytes(body).decode(encoding)
        except UnicodeDecodeError as error:
            bad = bytes(body[error.start : min(error.end, error.start + 4)]).hex(" ")
            shown = "UTF-8" if encoding == "utf-8" else f"{encoding.upper()} (detected from its first bytes)"
            detail = (
                f"request body is not valid {shown}: bytes {bad} at position {error.start} cannot be decoded "
                f"({error.reason}); send the JSON encoded as UTF-8"
            )
            problem = {"type": "body_encoding", "loc": ["body", error.start], "msg": detail}
            await _send_json(send, 422, {"detail": detail, "errors": [problem]})
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the whole body already read, then waits on the server's own."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as the server's own receive would

    return replay


async def _send_json(send: Send, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


def _is_json(scope: Scope) -> bool:
    """Whether the request says its body is JSON (the only bodies the app parses)."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server rejects a malformed length itself; count the bytes instead
    return None
