"""The uvicorn server of `bertwise serve`, with what uvicorn lacks for a port any client can reach.

- **A deadline for receiving each request.** uvicorn times out only idle keep-alive connections, and only after a
  first response (``timeout_keep_alive``): a connection that sends nothing, or its request head a byte at a time, is
  kept forever, and enough of them use up the process's file descriptors (slowloris). uvicorn 0.55 has no option for
  it (``h11_max_incomplete_event_size`` bounds the size of a head, not its time; ``limit_concurrency`` answers 503
  only once a head is complete), so its HTTP protocol class is subclassed here.
- **A cap on the size of a request head.** httptools, uvicorn's fast parser, takes a head of any size (5 MB of one
  header, or 200,000 headers, were answered 200 here), holding it all in memory; past ``max_head_bytes`` the
  connection is answered 431 and closed.
- **A cap on open connections**, below the open-file limit, that makes room for a new connection by closing the one
  that has waited longest without a request in progress, so stalled clients cannot lock others out.
- **The "serving on" line once the socket listens** (after uvicorn's start-up), never before.
- **SIGTERM drains.** uvicorn stops accepting, answers the requests in flight (for up to ``DRAIN_S``), then re-raises
  the signal, which would end the process with -15 as if killed; here the re-raised signal is absorbed, so the
  process exits 0. SIGTERM before the server runs stops the start-up instead.

Imported only once the serve extra is known to be installed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from bertwise.serve.limits import ServeSettings

logger = logging.getLogger("uvicorn.error")  # uvicorn's own connection-level events go here, at its log level

DRAIN_S = 10
"""Seconds a stopping server waits for the requests in flight before it abandons them."""
FD_HEADROOM = 32
"""File descriptors kept free of connections, for what the process opens later (logs, lazily loaded libraries)."""


class Terminated(BaseException):
    """SIGTERM arrived before the server ran: it unwinds the model load (a BaseException, so that no library's
    ``except Exception`` swallows it)."""


class SigtermHandler:
    """SIGTERM for the whole of ``serve()``: before the server runs it raises :class:`Terminated`; once the server
    runs, it asks the server to drain and stop, and absorbs the signal uvicorn re-raises after draining.

    A context manager; it does nothing off the main thread, where Python cannot set signal handlers.
    """

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> SigtermHandler:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.server is None:
            raise Terminated
        # uvicorn's own handler sets the same flag while it runs; this covers the moments before it installs its
        # handler and after it restores this one (when it re-raises the signal it drained on).
        self.server.should_exit = True


class BertwiseServer(uvicorn.Server):
    """uvicorn's server, calling ``on_started`` once its sockets listen and the app's start-up has run."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # uvicorn's create_server has called listen() by now: a client told the address can connect at once. A stop
        # asked for during start-up (SIGTERM, Ctrl-C) skips the line: the server shuts down without serving.
        if self.started and not self.should_exit and self.on_started is not None:
            self.on_started()


def make_server(
    app: Any,
    settings: ServeSettings,
    *,
    log_level: str = "info",
    access_log: bool = True,
    on_started: Callable[[], None] | None = None,
) -> tuple[BertwiseServer, int]:
    """The server for ``app`` under ``settings``, and the connection cap it enforces (see :func:`connection_cap`)."""
    cap = connection_cap(settings.max_connections)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        workers=1,  # one model in memory, one forward pass at a time: more processes would only compete
        lifespan="on",
        ws="none",  # no WebSocket route: an upgrade would hand the socket to a protocol without the request deadline
        http=guarded_protocol(settings.request_timeout_s, cap, settings.max_head_bytes),
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=DRAIN_S,
    )
    return BertwiseServer(config, on_started), cap


def connection_cap(requested: int) -> int:
    """``requested``, or fewer where the open-file limit (``ulimit -n``) leaves room for fewer connections.

    Each connection is a file descriptor; past the limit the server could accept no one, not even ``/health``.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to respect
        return requested
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft - open_files() - FD_HEADROOM))


def open_files() -> int:
    """File descriptors this process has open (64, a guess, where the system does not list them)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 64


def _raw_response(status: str, detail: str, *, retry_after: bool = False) -> bytes:
    """A whole HTTP/1.1 response with a JSON body, for the moments the app cannot answer (no request parsed yet)."""
    body = json.dumps({"detail": detail}).encode()
    retry = b"retry-after: 1\r\n" if retry_after else b""
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n".encode()
    return head + retry + b"connection: close\r\n\r\n" + body


_SERIALS = itertools.count()
_BASE: Any = AutoHTTPProtocol  # httptools' protocol when installed, else h11's; a variable, so typed Any as a base


class GuardedProtocol(_BASE):
    """One connection under uvicorn's HTTP/1.1 protocol: a deadline runs while it owes a request, its request head
    is capped in size, and at the connection cap it can be closed to make room for another.

    It reads uvicorn's per-connection state (``cycle``, ``connections``, ``transport``, ``loop``), which both of its
    HTTP/1.1 protocols share. The limits are class attributes, set by :func:`guarded_protocol` on a subclass.
    """

    request_timeout_s: float = ServeSettings.request_timeout_s
    max_connections: int = ServeSettings.max_connections
    max_head_bytes: int = ServeSettings.max_head_bytes
    timed_out = b""
    head_too_large = b""
    evicted = b""
    busy = b""

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.deadline: asyncio.TimerHandle | None = None
        self.waiting_since: float = self.loop.time()
        self.serial = next(_SERIALS)  # breaks ties of waiting_since: connections accepted in one loop turn share it
        self.sending = False  # bytes of a request have arrived and nothing answers them yet
        self.head_bytes = 0  # bytes received while the request head stayed incomplete
        if not self._make_room():
            logger.warning("refused a connection from %s: all %d are busy", self.client, self.max_connections)
            self.transport.write(self.busy)
            self.transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._disarm()
        elif self.awaiting_request():  # a head or body still arriving (uvicorn has stopped its keep-alive timer)
            self.sending = True
            if self.deadline is None:
                self.waiting_since = self.loop.time()
                self._arm()
            if self.head_pending():
                # Counted only while the head stays incomplete, so body bytes in the data that ended it are not.
                self.head_bytes += len(data)
                if self.head_bytes > self.max_head_bytes:
                    self.close_for(self.head_too_large, f"request head over {self.max_head_bytes} bytes")
            else:
                self.head_bytes = 0
        else:  # a whole request arrived: the app has it, and the time it takes is not the client's
            self.sending = False
            self.head_bytes = 0
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.waiting_since = self.loop.time()  # idle from now on: uvicorn's keep-alive timeout applies

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def awaiting_request(self) -> bool:
        """No request of this connection is being handled: it is idle, or its request is still arriving."""
        cycle = self.cycle
        return cycle is None or bool(cycle.response_complete) or bool(cycle.more_body)

    def head_pending(self) -> bool:
        """No request head has been parsed since the last response (or since the connection opened)."""
        cycle = self.cycle
        return cycle is None or bool(cycle.response_complete)

    def close_for(self, answer: bytes, reason: str) -> None:
        logger.info("closed the connection from %s: %s", self.client, reason)
        cycle = self.cycle
        # Answer only a client that started a request nobody else answers (a head still arriving, or a body the app
        # is still waiting for); an idle one (a browser's spare connection, a pool's idle keep-alive) could take an
        # unasked-for answer for its next request's.
        unanswered = cycle is None or cycle.response_complete or not cycle.response_started
        if self.sending and unanswered:
            self.transport.write(answer)
        self.transport.close()

    def _make_room(self) -> bool:
        others = [c for c in self.connections if c is not self and not c.transport.is_closing()]
        if len(others) < self.max_connections:
            return True
        waiting = [c for c in others if isinstance(c, GuardedProtocol) and c.awaiting_request()]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda connection: (connection.waiting_since, connection.serial))
        oldest.close_for(self.evicted, f"{self.max_connections} connections open (max_connections); it waited longest")
        return True

    def _arm(self) -> None:
        self.deadline = self.loop.call_later(self.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expire(self) -> None:
        self.deadline = None
        if not self.transport.is_closing() and self.awaiting_request():
            self.close_for(self.timed_out, f"no whole request within {self.request_timeout_s:g} s (request_timeout_s)")


def guarded_protocol(
    request_timeout_s: float, max_connections: int, max_head_bytes: int = ServeSettings.max_head_bytes
) -> type[GuardedProtocol]:
    """:class:`GuardedProtocol` under these limits, with the answers it sends when one of them is reached."""
    answers = {
        "timed_out": _raw_response(
            "408 Request Timeout",
            f"the request did not arrive in full within {request_timeout_s:g} s of the connection opening or of its "
            "first byte (request_timeout_s); send the whole request at once",
        ),
        "head_too_large": _raw_response(
            "431 Request Header Fields Too Large",
            f"the request line and headers passed {max_head_bytes} bytes (max_head_bytes) before they ended; send a "
            "shorter request head",
        ),
        "evicted": _raw_response(
            "503 Service Unavailable",
            f"connection closed to make room for another: this server holds at most {max_connections} connections "
            "(max_connections) and this one had waited longest without sending a whole request; retry",
            retry_after=True,
        ),
        "busy": _raw_response(
            "503 Service Unavailable",
            f"too many connections: all {max_connections} (max_connections) have a request in progress; retry shortly",
            retry_after=True,
        ),
    }
    limits = {
        "request_timeout_s": request_timeout_s,
        "max_connections": max_connections,
        "max_head_bytes": max_head_bytes,
    }
    return type("GuardedProtocol", (GuardedProtocol,), {**limits, **answers})
