"""Turning texts into one vector each with a frozen backbone: the probe's features and zero-shot's similarities.

Texts are tokenized once, sorted by length and run in batches padded only to the longest text of the batch, cut
where padding would cost more than another forward pass and run two side by side on a CPU
(:mod:`bertwise.backbone.batching`), so short texts never pay for long ones (the article's pad-everything-to-128,
one-text-at-a-time loop is about 10x slower).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bertwise.backbone.batching import run_inference
from bertwise.backbone.cache import CacheStats, EmbeddingStore, model_fingerprint, open_store
from bertwise.backbone.device import resolve_device, resolve_precision
from bertwise.backbone.resolve import Backbone, PoolingChoice, resolve_backbone

# The most texts per batch when the caller names none (batches are cut shorter where padding costs more). On 2 CPU
# cores 16 to 32 were fastest on short and long texts alike (64: -10 %, 128: -25 %); GPUs need wide batches.
CPU_BATCH_SIZE = 32
GPU_BATCH_SIZE = 256
# Past this many remembered embeddings the memo is cleared rather than grown (about 150 MB at 384 dimensions).
MEMO_LIMIT = 100_000


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[list[int]]
    truncated: int  # how many texts were longer than the backbone's max_length and were cut


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=False)


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, *, text_pairs: Sequence[str] | None = None
) -> Tokenized:
    """Token ids without padding, truncated to ``max_length``, counting the texts that were cut."""
    encoded = tokenizer(
        list(texts),
        list(text_pairs) if text_pairs is not None else None,
        truncation="only_first" if text_pairs is not None else True,
        max_length=max_length,
        padding=False,
    )
    if getattr(encoded, "encodings", None):
        truncated = sum(1 for encoding in encoded.encodings if encoding.overflowing)
    else:  # slow tokenizers keep no overflow record
        truncated = sum(1 for ids in encoded["input_ids"] if len(ids) >= max_length)
    return Tokenized(input_ids=encoded["input_ids"], truncated=truncated)


def pad_batch(input_ids: Sequence[Sequence[int]], pad_id: int, device: Any) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids in input_ids)
    ids = torch.full((len(input_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(input_ids), width), dtype=torch.long)
    for row, sequence in enumerate(input_ids):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


class Encoder:
    """A frozen backbone that maps texts to float32 vectors with the backbone's own pooling.

    Embeddings are remembered per text, in memory and in the disk cache (:mod:`bertwise.backbone.cache`), so no text
    is encoded twice: not by strategies sharing an encoder, nor by later encoders or runs with the same model.

    ``remember=False`` keeps neither: every call computes its texts and holds on to nothing, so a saved model that
    predicts millions of rows keeps its memory flat and never writes its users' texts to disk.
    """

    def __init__(
        self,
        backbone: Backbone,
        device: str = "auto",
        batch_size: int | None = None,
        precision: str = "auto",
        *,
        remember: bool = True,
        streams: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel

        from bertwise.backbone.loading import quiet_loading

        self.backbone = backbone
        self.device = resolve_device(device)
        self.batch_size = batch_size or (CPU_BATCH_SIZE if self.device.type == "cpu" else GPU_BATCH_SIZE)
        self.tokenizer = load_tokenizer(backbone.path)
        # Weights are cast once rather than autocast per operation: on a CPU with bfloat16 units, autocast ran at a
        # third of float32's speed, bfloat16 weights at 1.8x (benchmarks/encode_speed.py).
        dtype = resolve_precision(self.device, precision) or torch.float32
        with quiet_loading():
            self.model = AutoModel.from_pretrained(
                backbone.path, use_safetensors=True, trust_remote_code=False, dtype=dtype
            )
        self.model.to(self.device).eval()
        self.dimension = int(self.model.config.hidden_size)
        self.remember = remember
        # None: decided per call from the calling thread's torch threads (a server's model threads run one each).
        self.streams = streams
        # Part of the disk cache key: whoever changes how vectors are computed must change this.
        self.precision = str(dtype).removeprefix("torch.")
        self.cache_stats = CacheStats()
        # Encoding seconds that cached vectors cost when they were computed: added to a strategy's measured cost, so
        # that the cost says what the strategy takes when run alone, however much the cache saved this time.
        self.replayed_seconds = 0.0
        self.last_compute_seconds = np.zeros(0)
        self._memo: dict[str, np.ndarray] = {}
        self._fingerprints: dict[str, tuple[str, dict[str, Any]]] = {}

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        return tokenize(self.tokenizer, texts, self.backbone.max_length)

    def encode(
        self, texts: Sequence[str], *, progress: bool = False, description: str = "encoding", cache: bool = True
    ) -> np.ndarray:
        """One float32 row per text, in input order: from the memo, else the disk cache, else the model.

        ``cache=False`` neither reads nor writes the disk cache (the memo still applies): for timing real encoding.
        An encoder made with ``remember=False`` uses neither, whatever ``cache`` says.
        """
        if not self.remember:
            return self._encode_unremembered(texts, progress, description)
        missing = list(dict.fromkeys(text for text in texts if text not in self._memo))
        self.cache_stats.memory_hits += len(set(texts)) - len(missing)
        if missing:
            if len(self._memo) + len(missing) > MEMO_LIMIT:
                self._memo.clear()
            store = self._disk_store() if cache else None
            found, seconds = store.get_with_seconds(missing) if store is not None else ({}, 0.0)
            self._memo.update(found)
            self.cache_stats.disk_hits += len(found)
            self.replayed_seconds += seconds
            to_compute = [text for text in missing if text not in found] if found else missing
            if to_compute:
                self.last_compute_seconds = np.zeros(len(to_compute))
                computed = self._encode_uncached(to_compute, progress, description)
                self.cache_stats.computed += len(to_compute)
                if store is not None:
                    store.put(to_compute, computed, self.last_compute_seconds)
                for text, vector in zip(to_compute, computed, strict=True):
                    self._memo[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[text] for text in texts])

    def _encode_unremembered(self, texts: Sequence[str], progress: bool, description: str) -> np.ndarray:
        # Duplicates are encoded once and texts batched exactly as encode() batches them on an empty memo, so a saved
        # model gives the vectors that the comparison that chose it computed.
        unique = list(dict.fromkeys(texts))
        if not unique:
            return np.zeros((0, self.dimension), dtype=np.float32)
        computed = self._encode_uncached(unique, progress, description)
        self.cache_stats.computed += len(unique)
        if len(unique) == len(texts):
            return computed
        position = {text: row for row, text in enumerate(unique)}
        return computed[[position[text] for text in texts]]

    def _disk_store(self) -> EmbeddingStore | None:
        # Looked up on every call: the cache directory and the precision may change between calls.
        if self.precision not in self._fingerprints:
            self._fingerprints[self.precision] = model_fingerprint(
                self.backbone, precision=self.precision, device_type=self.device.type
            )
        fingerprint, settings = self._fingerprints[self.precision]
        return open_store(fingerprint, self.dimension, settings)

    def _encode_uncached(self, texts: list[str], progress: bool, description: str) -> np.ndarray:
        """Run ``texts`` through the model; each text's share of its batch's time goes to ``last_compute_seconds``."""
        import torch

        tokenized = self.tokenize(texts)
        lengths = [len(ids) for ids in tokenized.input_ids]
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        seconds = np.zeros(len(texts))
        pad_id = self.tokenizer.pad_token_id or 0

        def run_batch(batch: list[int]) -> None:
            started = time.perf_counter()
            with torch.inference_mode():  # per thread: batches may run in stream threads
                inputs = pad_batch([tokenized.input_ids[i] for i in batch], pad_id, self.device)
                hidden = self.model(**inputs).last_hidden_state
                vectors = pool(hidden.float(), inputs["attention_mask"], self.backbone.pooling)
                if self.backbone.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                output[batch] = vectors.cpu().numpy()  # waits for the device, so the time below is real
            tokens = np.array([lengths[i] for i in batch], dtype=np.float64)
            seconds[batch] = (time.perf_counter() - started) * tokens / tokens.sum()
            bar.update(len(batch))

        started = time.perf_counter()
        with tqdm(total=len(texts), desc=description, unit="text", disable=not progress) as bar:
            run_inference(
                lengths,
                self.batch_size,
                run_batch,
                device=self.device,
                hidden_size=self.dimension,
                streams=self.streams,
            )
        # Side-by-side batches each took longer than their share of the wall time: scale the shares to the wall time,
        # so cached vectors replay what computing them cost.
        if seconds.sum() > 0:
            seconds *= (time.perf_counter() - started) / seconds.sum()
        self.last_compute_seconds = seconds
        return output


def pool(hidden: Any, attention_mask: Any, pooling: str) -> Any:
    """Mean over real tokens (padding excluded), or the first ([CLS]) token's state."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


_ENCODERS: dict[tuple[str | None, str, str, str], Encoder] = {}


def load_encoder(
    model: str | None = None, pooling: PoolingChoice = "auto", device: str = "auto", precision: str = "auto"
) -> Encoder:
    """A shared encoder per (model, pooling, device, precision): weights load once per process, not per strategy."""
    key = (model, pooling, device, precision)
    if key not in _ENCODERS:
        if len(_ENCODERS) >= 4:
            _ENCODERS.pop(next(iter(_ENCODERS)))
        _ENCODERS[key] = Encoder(resolve_backbone(model, pooling=pooling), device=device, precision=precision)
    return _ENCODERS[key]


def replayed_encoding_seconds() -> float:
    """Encoding seconds saved by the disk cache so far in this process (see ``Encoder.replayed_seconds``)."""
    return sum(encoder.replayed_seconds for encoder in _ENCODERS.values())


def forget_embeddings() -> None:
    """Drop the embeddings remembered in memory, so that the next strategy's cost is measured as if it ran alone.

    The disk cache is left as it is; to measure without it, run under ``use_cache_dir(None)``.
    """
    for encoder in _ENCODERS.values():
        encoder._memo.clear()
