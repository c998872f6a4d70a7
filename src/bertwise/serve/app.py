"""The FastAPI app of `bertwise serve`: ``POST /predict``, ``GET /health``, ``GET /metadata`` and the OpenAPI page.

Imported only once the serve extra is known to be installed (see :func:`bertwise.serve.create_app`), so FastAPI and
pydantic load at module level here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from bertwise.backbone.device import precision_name, resolve_device
from bertwise.exceptions import ConfigError, ModelError
from bertwise.inference import loading
from bertwise.serve.batching import BatcherClosedError, BatchFailedError, MicroBatcher, QueueFullError
from bertwise.serve.limits import BodyEncodingMiddleware, BodySizeLimitMiddleware, ServeSettings
from bertwise.util.version import __version__

logger = logging.getLogger("bertwise.serve")

WARMUP_TEXT = "warm-up text"
EXPECTED_BODY = 'expected a JSON object {"text": "..."} or {"texts": ["...", ...]} with Content-Type: application/json'


# --- request and response bodies (they are what /docs shows) -----------------------------------------------------


def _encodable(text: str) -> str:
    """Refuses a lone surrogate, which JSON can carry as an escape ("\\ud800") but no tokenizer can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"the text contains a lone UTF-16 surrogate (\\u{ord(text[error.start]):04x}) at character {error.start}, "
            "which is not a character; send valid Unicode (a \\ud800-\\udbff escape must be followed by a "
            "\\udc00-\\udfff one)"
        ) from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class PredictRequest(BaseModel):
    """One text or a list of texts; send exactly one of the two fields."""

    model_config = ConfigDict(
        extra="forbid",  # a misspelt field ("txt") is an error rather than silently ignored
        json_schema_extra={
            "examples": [
                {"text": "I still have not received my new card"},
                {"texts": ["Why was I charged for a cash withdrawal?", "How do I top up by bank transfer?"]},
            ]
        },
    )

    text: Text | None = Field(default=None, description="One text to classify.")
    texts: list[Text | None] | None = Field(
        default=None,
        description="Several texts to classify, answered in this order. An empty, whitespace-only or null text gets "
        "no prediction (label and probabilities null), as `bertwise predict` leaves such rows blank.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            found = "both" if self.text is not None else "neither"
            raise ValueError(f'send exactly one of "text" (a string) or "texts" (a list of strings); found {found}')
        return self

    def all_texts(self) -> list[str | None]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Prediction(BaseModel):
    label: str | int | None = Field(description="The most probable label; null for an empty text.")
    probabilities: dict[str, float] | None = Field(
        description="Probability of every label, in the model's label order; they sum to 1. Null for an empty text."
    )


class ModelSummary(BaseModel):
    id: str = Field(description="Short identifier of the model: its strategy and a hash of its manifest.")
    strategy: str


class PredictResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One prediction per text, in the order the texts were sent.")
    model: ModelSummary


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong, which limit applies, and what to send instead.")


class ValidationErrorResponse(BaseModel):
    detail: str = Field(description="The first problem found, in words.")
    errors: list[dict[str, Any]] = Field(description="Every problem found: its location, type and message.")


class HealthResponse(BaseModel):
    status: str = Field(description='"ok" when the model worker runs, else "unavailable" (with status 503).')
    ready: bool
    queued_texts: int = Field(description="Texts waiting for the model.")
    running_texts: int = Field(description="Texts of the batch the model is running now.")
    max_queue_texts: int
    batches: int = Field(description="Batches run since start.")
    texts: int = Field(description="Texts predicted since start.")
    failed_batches: int
    rejected_requests: int = Field(description="Requests answered 503 because the queue was full.")
    busy_s: float = Field(description="Seconds the model spent predicting since start; over uptime, its load.")
    uptime_s: float


class MetadataResponse(BaseModel):
    model: dict[str, Any] = Field(description="The model folder's strategy, classes, metrics, backbone and versions.")
    server: dict[str, Any] = Field(description="Versions of the serving software.")
    limits: dict[str, Any] = Field(description="The limits in force (see docs/serve.md).")


# --- the model ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard:
    """What the app needs to know of the model, computed once at start-up."""

    id: str
    strategy: str
    classes: list[str | int]
    keys: list[str]  # the classes as JSON object keys
    manifest: dict[str, Any]
    # How it runs here (runtime, device, precision): /metadata reports it beside what was trained.
    running: dict[str, Any] = field(default_factory=dict)


def load_model(model_or_path: Any, device: str = "auto", precision: str | None = None, runtime: str = "torch") -> Any:
    """The estimator itself, or the one ``bertwise.load`` reads (and checks) from a model folder: on ``device``, in
    ``precision`` (default: the one it was trained with), through torch or the folder's ONNX export (``runtime``)."""
    if not isinstance(model_or_path, str | os.PathLike):
        model = model_or_path
    else:
        path = check_folder(model_or_path)
        # Checks every file against the manifest's sha256.
        model = loading.load(path, device=device, precision=precision, runtime=runtime)
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise TypeError(
            f"cannot serve a {type(model).__name__}: expected a fitted bertwise estimator (with classes_ and "
            "predict_proba) or the path of a model folder"
        )
    return model


def _running(model: Any, device: str, precision: str | None, runtime: str) -> dict[str, Any]:
    manifest = getattr(model, "manifest_", None) or {}
    if runtime == "onnx":
        onnx = manifest.get("onnx") or {}
        return {"runtime": "onnx", "device": "cpu", "precision": "int8" if onnx.get("quantized") else "float32"}
    asked = precision if precision is not None else str((manifest.get("params") or {}).get("precision", "auto"))
    where = resolve_device(device)  # "auto" as what it picked here, as the model was loaded
    return {"runtime": "torch", "device": str(where), "precision": precision_name(where, asked)}


def check_folder(model_or_path: str | os.PathLike[str]) -> Path:
    """The folder's path, or a ConfigError when there is no folder there (the loader checks what is inside)."""
    path = Path(model_or_path)
    expected = "expected a model folder written by `bertwise train --out DIR` or `bertwise compare --save-best DIR`"
    if not path.exists():
        raise ConfigError(f"model folder '{path}' does not exist; {expected}")
    if not path.is_dir():
        raise ConfigError(f"model folder '{path}' is a file; {expected}")
    return path


def describe_model(model: Any) -> ModelCard:
    manifest = getattr(model, "manifest_", None)
    manifest = dict(manifest) if isinstance(manifest, dict) else {}
    classes = [_plain_label(label) for label in list(model.classes_)]
    if not classes:
        raise ModelError("the model has no classes; expected a fitted estimator")
    keys = [str(label) for label in classes]
    if len(set(keys)) != len(keys):
        raise ModelError(f"the model's labels {keys} are not distinct as text, so they cannot key a JSON object")
    strategy = str(manifest.get("strategy") or type(model).__name__)
    # The manifest holds the hashes of the weights, so its hash names these exact weights; an estimator without a
    # manifest is named by its labels only.
    source = manifest if manifest else {"strategy": strategy, "classes": keys}
    digest = hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return ModelCard(id=f"{strategy}-{digest}", strategy=strategy, classes=classes, keys=keys, manifest=manifest)


def _plain_label(label: Any) -> str | int:
    """numpy scalars as the JSON-ready Python value: ints stay ints, anything else becomes text."""
    value = label.item() if hasattr(label, "item") else label
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)


def warm_up(model: Any, card: ModelCard) -> None:
    """One prediction before the first client: loads lazy weights and kernels, and checks the output's shape."""
    try:
        import numpy as np

        probabilities = np.asarray(model.predict_proba([WARMUP_TEXT]))
    except Exception as error:
        raise ModelError(f"the model failed on a warm-up text: {type(error).__name__}: {error}") from error
    if probabilities.shape != (1, len(card.classes)):
        raise ModelError(
            f"the model's predict_proba returned shape {probabilities.shape} for one text; expected "
            f"(1, {len(card.classes)}) for its {len(card.classes)} classes"
        )


# --- the app -----------------------------------------------------------------------------------------------------


def create_app(
    model_or_path: Any,
    settings: ServeSettings | None = None,
    *,
    device: str = "auto",
    precision: str | None = None,
    runtime: str = "torch",
) -> FastAPI:
    """The ASGI app serving a model folder's path (loaded as :func:`load_model` says) or a fitted estimator under
    ``settings``."""
    settings = settings or ServeSettings()
    model = load_model(model_or_path, device, precision, runtime)
    # An estimator passed in runs as it was built: only a folder is loaded with these settings.
    loaded = isinstance(model_or_path, str | os.PathLike)
    card = replace(describe_model(model), running=_running(model, device, precision, runtime) if loaded else {})
    if settings.warmup:
        warm_up(model, card)
    batcher = MicroBatcher(
        model.predict_proba,
        max_batch_texts=settings.max_batch_texts,
        max_wait_s=settings.max_wait_ms / 1000,
        max_queue_texts=settings.max_queue_texts,
        n_classes=len(card.classes),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="bertwise",
        version=__version__,
        summary=f"Text classification with the {card.strategy} model {card.id} ({len(card.classes)} labels).",
        description=_description(settings),
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.model = model
    app.state.card = card
    app.state.settings = settings
    # The last added runs first: the size is checked before the body is held whole to check its encoding.
    app.add_middleware(BodyEncodingMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    _add_routes(app, batcher, card, settings)
    return app


def _add_routes(app: FastAPI, batcher: MicroBatcher, card: ModelCard, settings: ServeSettings) -> None:
    """``POST /predict``, ``GET /health`` and ``GET /metadata``, with the answers /docs lists for each."""
    summary = {"id": card.id, "strategy": card.strategy}
    metadata = _metadata(card, settings)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            413: {"model": ErrorResponse, "description": "Too many texts, a text too long, or a body too large."},
            422: {
                "model": ValidationErrorResponse,
                "description": "Malformed JSON, a body that is not UTF-8, a lone surrogate, wrong shape, or no texts.",
            },
            500: {"model": ErrorResponse, "description": "The model failed on the batch holding these texts."},
            503: {"model": ErrorResponse, "description": "The queue is full: retry after the Retry-After seconds."},
        },
        summary="Classify one text or a list of texts",
    )
    async def predict(body: PredictRequest) -> JSONResponse:
        texts = body.all_texts()
        _check_limits(body, texts, settings)
        predictions = await _predict(batcher, card, texts)
        # Built by hand and returned as a response, so FastAPI does not validate it again against PredictResponse
        # (which still documents it): that validation is per-request work on the event loop the batcher shares.
        return JSONResponse({"predictions": predictions, "model": summary})

    @app.get(
        "/health",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "The model worker is not running."}},
        summary="Whether the model is ready, and the queue depth",
    )
    async def health() -> JSONResponse:
        return _health(batcher, settings)

    @app.get("/metadata", response_model=MetadataResponse, summary="The model's manifest summary and the limits")
    async def get_metadata() -> dict[str, Any]:
        return metadata


async def _predict(batcher: MicroBatcher, card: ModelCard, texts: list[str | None]) -> list[dict[str, Any]]:
    """One prediction per text, in order; a batcher's refusal or failure as the HTTP error it answers."""
    # As `bertwise predict` does with blank rows: no prediction for no text, rather than the model's prior dressed
    # up as an answer. The rest keep their positions.
    present = [index for index, text in enumerate(texts) if text is not None and text.strip()]
    predictions: list[dict[str, Any]] = [{"label": None, "probabilities": None} for _ in texts]
    if not present:
        return predictions
    try:
        probabilities = await batcher.predict([texts[index] or "" for index in present])
    except QueueFullError as full:
        raise HTTPException(503, detail=str(full), headers={"Retry-After": str(full.retry_after_s)}) from None
    except BatchFailedError as failed:
        raise HTTPException(500, detail=str(failed)) from None
    except BatcherClosedError as closed:
        raise HTTPException(503, detail=str(closed), headers={"Retry-After": "1"}) from None
    best = probabilities.argmax(axis=1).tolist()
    for index, label, row in zip(present, best, probabilities.tolist(), strict=True):
        predictions[index] = {
            "label": card.classes[label],
            "probabilities": dict(zip(card.keys, row, strict=True)),
        }
    return predictions


def _health(batcher: MicroBatcher, settings: ServeSettings) -> JSONResponse:
    """The worker's state and counters: 200 when it runs, else 503."""
    stats = batcher.stats
    ready = batcher.running
    payload = HealthResponse(
        status="ok" if ready else "unavailable",
        ready=ready,
        queued_texts=batcher.queued_texts,
        running_texts=batcher.running_texts,
        max_queue_texts=settings.max_queue_texts,
        batches=stats.batches,
        texts=stats.texts,
        failed_batches=stats.failed_batches,
        rejected_requests=stats.rejected_requests,
        busy_s=round(stats.busy_seconds, 3),
        uptime_s=round(time.monotonic() - stats.started_at, 3),
    )
    return JSONResponse(payload.model_dump(), status_code=200 if ready else 503)


def _check_limits(body: PredictRequest, texts: list[str | None], settings: ServeSettings) -> None:
    """The request-size limits, each answered with the status and a message naming the limit."""
    if not texts:
        raise HTTPException(
            422, detail=f'"texts" is an empty list; send 1 to {settings.max_texts_per_request} texts per request'
        )
    if len(texts) > settings.max_texts_per_request:
        raise HTTPException(
            413,
            detail=f"too many texts: {len(texts)} in this request; this server accepts at most "
            f"{settings.max_texts_per_request} per request (max_texts_per_request): split them into several requests",
        )
    for index, text in enumerate(texts):
        if text is not None and len(text) > settings.max_text_chars:
            where = '"text"' if body.text is not None else f'"texts"[{index}]'
            raise HTTPException(
                413,
                detail=f"{where} has {len(text)} characters; this server accepts at most {settings.max_text_chars} "
                "per text (max_text_chars): shorten or split it",
            )


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with the first problem in words, plus every problem without echoing the (possibly large) input."""
    problems = error.errors()
    errors = [{key: problem[key] for key in ("type", "loc", "msg") if key in problem} for problem in problems]
    return JSONResponse({"detail": _describe(problems, request), "errors": jsonable_encoder(errors)}, status_code=422)


async def _http_error(request: Request, error: StarletteHTTPException) -> Any:
    """FastAPI's own answer, except to a body that ``json.loads`` failed on other than by a syntax error (nesting
    deeper than Python's recursion limit): FastAPI answers that with a bare 400, other malformed JSON with 422."""
    cause = error.__cause__
    if error.status_code == 400 and cause is not None and not isinstance(cause, HTTPException):
        if isinstance(cause, RecursionError):
            found = "JSON nested too deeply to parse (arrays or objects inside one another, past Python's limit)"
        else:
            found = f"JSON that could not be parsed ({type(cause).__name__}: {cause})"
        detail = f"request body is {found}; {EXPECTED_BODY}"
        problem = {"type": "json_invalid", "loc": ["body"], "msg": detail}
        return JSONResponse({"detail": detail, "errors": [problem]}, status_code=422)
    return await http_exception_handler(request, error)


def _describe(problems: Any, request: Request) -> str:
    if not problems:
        return f"invalid request; {EXPECTED_BODY}"
    first = problems[0]
    if first.get("type") == "json_invalid":
        position = first["loc"][-1] if first.get("loc") else "?"
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return f"request body is not valid JSON ({reason}; character {position}); {EXPECTED_BODY}"
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        shown = f"Content-Type '{content_type}'" if content_type else "no Content-Type"
        return f"request body sent with {shown}; {EXPECTED_BODY}"
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing" and not location:
        return f"request body is empty; {EXPECTED_BODY}"
    if first.get("type") == "extra_forbidden":
        return f'unknown field "{location}"; {EXPECTED_BODY}'
    shown_location = f"{location}: " if location else ""
    more = f" (and {len(problems) - 1} more problem(s), listed in errors)" if len(problems) > 1 else ""
    return f"{shown_location}{message}{more}; {EXPECTED_BODY}"


def _metadata(card: ModelCard, settings: ServeSettings) -> dict[str, Any]:
    manifest = card.manifest
    model = {
        "id": card.id,
        "strategy": card.strategy,
        "classes": card.classes,
        "metrics": manifest.get("metrics"),
        "backbone": manifest.get("backbone"),
        "bertwise_version": manifest.get("bertwise_version"),
        "created": manifest.get("created"),
        "trained_on": manifest.get("trained_on"),
        "running": card.running,
    }
    from importlib.metadata import PackageNotFoundError, version

    server: dict[str, Any] = {"bertwise": __version__, "python": platform.python_version()}
    for package in ("fastapi", "uvicorn", "torch"):
        # torch only when the model already loaded it: /metadata must not import a library to report its version.
        if package == "torch" and "torch" not in sys.modules:
            continue
        try:
            server[package] = version(package)
        except PackageNotFoundError:
            pass
    return jsonable_encoder({"model": model, "server": server, "limits": settings.as_dict()})


def _description(settings: ServeSettings) -> str:
    return (
        'Classifies texts with a model folder written by `bertwise train`. Send `{"text": "..."}` or '
        '`{"texts": ["...", ...]}` to `POST /predict`.\n\n'
        f"Limits: at most {settings.max_texts_per_request} texts per request and {settings.max_text_chars} "
        f"characters per text (413), {settings.max_body_bytes} bytes per body (413); malformed JSON or a wrong "
        f"shape is 422. Texts of concurrent requests are batched together (up to {settings.max_batch_texts} texts, "
        f"waiting at most {settings.max_wait_ms:g} ms); when {settings.max_queue_texts} texts are already waiting "
        "the answer is 503 with a Retry-After header.\n\n"
        "No authentication: keep it on localhost or put it behind a proxy that authenticates."
    )
