"""Serving a model folder over HTTP: :func:`serve` runs it, :func:`create_app` builds the ASGI app.

    from bertwise.serve import serve
    serve("my-model", port=8000, max_batch_texts=32)

FastAPI and uvicorn (the ``serve`` extra) load only when one of these functions runs, so importing this package and
``bertwise --help`` stay instant.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bertwise.exceptions import ConfigError
from bertwise.serve.limits import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "create_app", "serve"]

INSTALL_HINT = "pip install 'bertwise[serve]'"


def _require_serve_extra() -> None:
    missing = []
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(f"bertwise serve needs {' and '.join(missing)}, which are not installed: {INSTALL_HINT}")


def create_app(
    model_or_path: Any,
    settings: ServeSettings | None = None,
    *,
    device: str = "auto",
    precision: str | None = None,
    runtime: str = "torch",
    **limits: Any,
) -> FastAPI:
    """The FastAPI app serving a model folder (its path, loaded on ``device`` in ``precision`` through ``runtime``,
    as ``bertwise.load`` takes them) or a fitted estimator.

    Pass either ``settings`` or the limits as keywords (the fields of :class:`ServeSettings`).
    """
    _require_serve_extra()
    from bertwise.serve.app import create_app as build

    return build(model_or_path, _settings(settings, limits), device=device, precision=precision, runtime=runtime)


def serve(
    path: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    device: str = "auto",
    precision: str | None = None,
    runtime: str = "torch",
    log_level: str = "info",
    access_log: bool = True,
    announce: Callable[[str], None] | None = None,
    **limits: Any,
) -> None:
    """Serve a model folder (or a fitted estimator) on ``host:port`` until interrupted; one process, one model.

    ``limits`` are the fields of :class:`ServeSettings`; ``device`` is where a folder's model runs (auto, cpu, cuda,
    mps), ``precision`` its weights' precision (default: the one it was trained with) and ``runtime`` "torch" or
    "onnx" (the folder's ONNX export, on the CPU, in the precision it was exported in). The port is taken before the
    model loads, so a port in use is reported at once; ``port=0`` picks a free one. ``announce`` receives the lines
    saying where it listens (default: printed to stderr), once the port accepts connections. Ctrl-C or SIGTERM stops
    taking connections, answers the requests in flight, and returns.
    """
    settings = _settings(None, limits)
    _require_serve_extra()
    say = announce or (lambda line: print(line, file=sys.stderr, flush=True))

    from bertwise.serve.app import check_folder
    from bertwise.serve.app import create_app as build
    from bertwise.serve.server import SigtermHandler, Terminated, make_server

    # The cheap checks first (folder, then port), so a mistake is reported before the model takes seconds to load.
    if isinstance(path, str | os.PathLike):
        check_folder(path)
    listener = bind(host, port)
    try:
        with SigtermHandler() as sigterm:
            app = build(path, settings, device=device, precision=precision, runtime=runtime)
            lines = _announcement(host, listener.getsockname()[1], app.state.card)

            def started() -> None:
                for line in lines:
                    say(line)

            server, cap = make_server(app, settings, log_level=log_level, access_log=access_log, on_started=started)
            if cap < settings.max_connections:
                lines.insert(
                    0,
                    f"note: at most {cap} connections at once, not {settings.max_connections} (--max-connections): "
                    "the open-file limit (ulimit -n) leaves no room for more",
                )
            sigterm.server = server
            try:
                server.run(sockets=[listener])
            except KeyboardInterrupt:
                # uvicorn shut down gracefully on Ctrl-C, then re-raised it for the caller: a requested stop.
                pass
    except Terminated:
        say("stopped by SIGTERM before serving")
    finally:
        listener.close()


def _announcement(host: str, port: int, card: Any) -> list[str]:
    """The lines printed once the server listens: where, which model, and a warning off loopback."""
    url = f"http://{_url_host(host)}:{port}"
    listening = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    lines = []
    if not _is_loopback(host):
        lines.append(
            f"warning: listening on {host}, reachable from other machines, with no authentication; "
            "put an authenticating proxy in front or use --host 127.0.0.1"
        )
    running = card.running or {}
    how = ", ".join(str(running[key]) for key in ("runtime", "device", "precision") if running.get(key))
    model = f"{card.id} ({len(card.classes)} labels{'; ' + how if how else ''})"
    lines.append(f"serving {model} on {listening}  (docs: {url}/docs; Ctrl-C stops)")
    return lines


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a ConfigError saying why it cannot be (port in use, unknown address)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0 to 65535 (0 picks a free port); got {port!r}")
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ConfigError(
            f"--host {host!r} is not an address of this machine ({error.strerror}); expected an IP address such as "
            "127.0.0.1 or 0.0.0.0, or a host name"
        ) from None
    listener = socket.socket(family, kind, protocol)
    # Lets a restarted server take the port while the old one's connections linger in TIME_WAIT; on Linux it does
    # not let two servers listen on one port.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        where = f"{host}:{port}"
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use by another program; pass --port with a free port "
                "(or --port 0 to pick one)"
            ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"--host {host}: no network interface of this machine has that address; expected 127.0.0.1, "
                "0.0.0.0 or one of this machine's addresses"
            ) from None
        if error.errno == errno.EACCES:
            raise ConfigError(
                f"not allowed to listen on {where} (ports below 1024 need privileges); use --port 8000"
            ) from None
        raise ConfigError(f"cannot listen on {where}: {error.strerror or error}") from None
    return listener


def _settings(settings: ServeSettings | None, limits: dict[str, Any]) -> ServeSettings:
    if settings is not None and limits:
        raise TypeError("pass either settings or limits as keywords, not both")
    if settings is not None:
        return settings
    unknown = sorted(set(limits) - set(ServeSettings.names()))
    if unknown:
        raise ConfigError(
            f"unknown serve setting(s) {', '.join(unknown)}; expected some of {', '.join(ServeSettings.names())}"
        )
    return ServeSettings(**limits)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def _url_host(host: str) -> str:
    """The host part of a URL a browser on this machine can open."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
