"""``bertwise.embed``: texts in, one float32 vector per text out, with the same encoder the strategies use.

Vectors come from the in-process memo, then the disk cache (see :mod:`bertwise.backbone.cache` for where it lives
and how to turn it off), and only then from the model, so embedding the same texts again is nearly free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bertwise.backbone.device import PRECISION_CHOICES
from bertwise.exceptions import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from bertwise.backbone.cache import CacheStats


@dataclass(frozen=True)
class Embedded:
    """What :func:`embed_with_stats` produced, and where the vectors came from."""

    vectors: np.ndarray  # (texts, dimension) float32, input order
    stats: CacheStats  # unique texts from memory, from disk, and computed, in this call
    model_id: str


def embed(
    texts: Sequence[str],
    model: str | None = None,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    pooling: str = "auto",
    precision: str = "auto",
    progress: bool = False,
    cache: bool = True,
) -> np.ndarray:
    """Embed ``texts`` with a frozen backbone: a float32 array with one row per text, in input order.

    ``texts`` is a list, tuple, numpy array, pandas Series or one-column DataFrame of str, as the estimators take.

    ``model`` is a local model directory or a Hugging Face Hub id (default: the embedded all-MiniLM-L6-v2);
    ``pooling`` is ``auto`` (the model's own: a sentence-transformers checkpoint's modules, mean for a plain one) or
    one of sentence-transformers' modes (``cls``, ``max``, ``mean``, ``mean_sqrt_len_tokens``, ``weightedmean``,
    ``lasttoken``); ``batch_size`` defaults to the encoder's;
    ``precision`` is ``auto`` (bfloat16 where the hardware has bfloat16 units: within cosine 0.9999 of float32 and
    faster on such a CPU, docs/speed.md), ``float32`` or ``bfloat16``;
    ``cache=False`` neither reads nor writes the disk cache. Duplicates are encoded once; an empty list gives an
    array of shape ``(0, dimension)``.

    >>> vectors = bertwise.embed(["where is my card?", "what is the exchange rate?"])  # doctest: +SKIP
    """
    return embed_with_stats(
        texts,
        model,
        batch_size=batch_size,
        device=device,
        pooling=pooling,
        precision=precision,
        progress=progress,
        cache=cache,
    ).vectors


def embed_with_stats(
    texts: Sequence[str],
    model: str | None = None,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    pooling: str = "auto",
    precision: str = "auto",
    progress: bool = False,
    cache: bool = True,
) -> Embedded:
    """:func:`embed`, also saying how many texts came from memory, from disk, or the model (for the CLI)."""
    from bertwise.backbone.encoder import load_encoder
    from bertwise.data.containers import check_texts

    checked = check_texts(texts, "embed()")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be a whole number of at least 1; got {batch_size!r}")

    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}; got {precision!r}")
    # resolve_backbone checks pooling.
    encoder = load_encoder(model, pooling, device, precision)  # type: ignore[arg-type]
    before = encoder.cache_stats.copy()
    default_batch_size = encoder.batch_size
    if batch_size is not None:
        # The encoder is shared with the strategies: the caller's batch size holds for this call only.
        encoder.batch_size = batch_size
    try:
        vectors = encoder.encode(checked, progress=progress, description="embedding", cache=cache)
    finally:
        encoder.batch_size = default_batch_size
    return Embedded(vectors=vectors, stats=encoder.cache_stats.since(before), model_id=encoder.backbone.model_id)
