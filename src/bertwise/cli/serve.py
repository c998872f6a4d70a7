"""`bertwise serve`: an HTTP endpoint for a model folder (FastAPI on uvicorn, one process).

Only the settings dataclass (no heavy import) loads with the CLI; FastAPI, uvicorn and the model load when the command
runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertwise.exceptions import ConfigError
from bertwise.serve import serve
from bertwise.serve.limits import ServeSettings

_DEFAULTS = ServeSettings()

HOST_HELP = (
    "Address to listen on. 127.0.0.1 (the default) serves this machine only; 0.0.0.0 serves every network interface, "
    "with no authentication: put an authenticating proxy in front."
)


def serve_command(
    model_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Model folder written by `bertwise train --out` or `bertwise compare --save-best`."
        ),
    ],
    host: Annotated[str, typer.Option(help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8000,
    max_texts_per_request: Annotated[
        int, typer.Option(help="Texts one request may carry; more is answered 413.")
    ] = _DEFAULTS.max_texts_per_request,
    max_text_chars: Annotated[
        int, typer.Option(help="Characters of one text; a longer one is answered 413 naming its index.")
    ] = _DEFAULTS.max_text_chars,
    max_body_bytes: Annotated[
        int, typer.Option(help="Bytes of a request body (Content-Length or chunked); more is answered 413.")
    ] = _DEFAULTS.max_body_bytes,
    max_batch_texts: Annotated[
        int, typer.Option(help="Texts the model runs at once; texts of concurrent requests are merged up to this.")
    ] = _DEFAULTS.max_batch_texts,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long an idle model waits for more texts to join a batch, in milliseconds.")
    ] = _DEFAULTS.max_wait_ms,
    max_queue_texts: Annotated[
        int,
        typer.Option(help="Texts that may wait for the model; a request past it is answered 503 with Retry-After."),
    ] = _DEFAULTS.max_queue_texts,
    request_timeout_s: Annotated[
        float,
        typer.Option(
            help="Seconds a client has to send a whole request, from its connection opening (or the first byte of its "
            "next request); a connection still sending then is closed. Guards against slow clients (slowloris)."
        ),
    ] = _DEFAULTS.request_timeout_s,
    max_head_bytes: Annotated[
        int, typer.Option(help="Bytes of a request line and headers; a longer head is answered 431.")
    ] = _DEFAULTS.max_head_bytes,
    keep_alive_s: Annotated[
        int, typer.Option(help="Seconds an idle keep-alive connection stays open after its last response.")
    ] = _DEFAULTS.keep_alive_s,
    max_connections: Annotated[
        int,
        typer.Option(
            help="Connections open at once; at the cap a new one closes the one idle longest, or gets 503 if all are "
            "busy. Lowered to fit `ulimit -n`."
        ),
    ] = _DEFAULTS.max_connections,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps: where the model runs.")] = "auto",
    precision: Annotated[
        str | None,
        typer.Option(help="auto, float32 or bfloat16 (default: the precision the model was trained with)."),
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            help="torch, or onnx to serve the folder's ONNX export (bertwise export DIR --onnx): CPU, in the "
            "precision it was exported in."
        ),
    ] = "torch",
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info, debug or trace.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log one line per request.")] = True,
) -> None:
    """Serve a model folder over HTTP: POST /predict, GET /health, GET /metadata, OpenAPI page at /docs."""
    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level.lower() not in levels:
        raise ConfigError(f"--log-level must be one of {', '.join(levels)}; got {log_level!r}")
    serve(
        model_dir,
        host=host,
        port=port,
        device=device,
        precision=precision,
        runtime=runtime,
        log_level=log_level.lower(),
        access_log=access_log,
        announce=lambda line: typer.echo(line, err=True),
        max_texts_per_request=max_texts_per_request,
        max_text_chars=max_text_chars,
        max_body_bytes=max_body_bytes,
        max_batch_texts=max_batch_texts,
        max_wait_ms=max_wait_ms,
        max_queue_texts=max_queue_texts,
        request_timeout_s=request_timeout_s,
        max_head_bytes=max_head_bytes,
        keep_alive_s=keep_alive_s,
        max_connections=max_connections,
    )
