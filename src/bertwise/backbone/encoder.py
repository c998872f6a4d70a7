"""Turning texts into one vector each with a frozen backbone: the probe's features and zero-shot's similarities.

Texts are tokenized once, sorted by length and run in batches padded only to the longest text of the batch, cut
where padding would cost more than another forward pass and run two side by side on a CPU
(:mod:`bertwise.backbone.batching`), so short texts never pay for long ones (the article's pad-everything-to-128,
one-text-at-a-time loop is several times slower: docs/speed.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm.auto import tqdm

from bertwise.backbone.batching import run_inference
from bertwise.backbone.cache import CacheStats, EmbeddingStore, model_fingerprint, open_store
from bertwise.backbone.device import resolve_device, resolve_precision
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.modules import declared_lowercase
from bertwise.backbone.resolve import Backbone, PoolingChoice, resolve_backbone

# The most texts per batch when the caller names none (batches are cut shorter where padding costs more). On 2 CPU
# cores 16 to 32 were fastest on short and long texts alike, wider batches slower (docs/speed.md); GPUs need wide
# batches.
CPU_BATCH_SIZE = 32
GPU_BATCH_SIZE = 256
# Past this many remembered embeddings the memo is cleared rather than grown (about 150 MB at 384 dimensions).
MEMO_LIMIT = 100_000
# Texts longer than this many characters per token of max_length are cut before tokenizing (bounded_texts): English
# averages about 4.5 characters a token, so the first window nearly always holds enough tokens.
CHARS_PER_TOKEN = 16
# Tokens a cut text must hold beyond max_length: its last few, at the cut, may differ from the whole text's (a trailing
# space token, say), never its first max_length.
CUT_MARGIN = 8


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[list[int]]
    truncated: int  # how many texts were longer than the backbone's max_length and were cut


def load_tokenizer(path: str) -> Any:
    """The folder's fast tokenizer, lowercasing first where a sentence-transformers checkpoint says do_lower_case."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=False)
    if declared_lowercase(Path(path)):
        _lowercase_first(tokenizer)
    return tokenizer


def _lowercase_first(tokenizer: Any) -> None:
    # As sentence-transformers' Transformer does: a Lowercase normaliser in front, unless one is already there.
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        tokenizer.do_lower_case = True
        return
    normalizer = backend.normalizer
    members: list[Any] = list(cast(Any, normalizer)) if isinstance(normalizer, NormalizerSequence) else [normalizer]
    if any(isinstance(member, Lowercase) for member in members):
        return
    chain: list[Any] = [Lowercase(), *(member for member in members if member is not None)]
    backend.normalizer = NormalizerSequence(chain)


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, *, text_pairs: Sequence[str] | None = None
) -> Tokenized:
    """Token ids without padding, truncated to ``max_length``, counting the texts that were cut.

    Long texts are cut first (:func:`bounded_texts`), so a 10 MB text costs what its first few thousand characters
    cost; the ids and the count are exactly those of the uncut texts.
    """
    encoded = tokenizer(
        bounded_texts(tokenizer, texts, max_length),
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


def bounded_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[str]:
    """``texts``, each long one cut where truncating to ``max_length`` tokens or fewer cannot tell the difference.

    A text over ``max_length * CHARS_PER_TOKEN`` characters is tokenized from a window of its start and cut where a
    word of the tokenizer's own (a pre-token: what its normaliser and pre-tokenizer make of the text, each then
    tokenized alone) begins, at least ``max_length + CUT_MARGIN`` tokens in, and with a whole word after it in the
    window. The words before that point, and so their tokens, are the uncut text's: a word's extent depends on the
    characters up to its end and the next one or two, never on the end of the text, and only the window's last word
    may have been cut short. So the cut text's first ``max_length`` tokens are the uncut text's, and it still
    overflows. A window without such a point (too few tokens, or one huge word: unspaced text to a byte-level or
    SentencePiece tokenizer) grows fourfold, up to the whole text. Texts are left whole by slow tokenizers (no word
    records) and by tokenizers that truncate on the left.
    """
    result = list(texts)
    size = max(max_length, 1) * CHARS_PER_TOKEN
    pending = [row for row, text in enumerate(result) if len(text) > size]
    if not pending or not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "truncation_side", "") == "left":
        return result
    needed = max(max_length, 1) + CUT_MARGIN
    while pending:
        windows = [result[row][:size] for row in pending]
        encoded = tokenizer(
            windows, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        still = []
        for index, (row, spans) in enumerate(zip(pending, encoded["offset_mapping"], strict=True)):
            cut = _word_start(encoded.word_ids(index), spans, needed)
            if cut is not None:
                result[row] = result[row][:cut]
            elif len(result[row]) > size * 4:
                still.append(row)
        pending, size = still, size * 4
    return result


def _word_start(words: list[int | None], spans: list[tuple[int, int]], needed: int) -> int | None:
    """Where the first word starting at token ``needed`` or later begins, if another word follows it; else None."""
    if len(words) <= needed:
        return None
    end_before = max(end for _, end in spans[:needed])
    for token in range(needed, len(words)):
        word, previous = words[token], words[token - 1]
        if word is not None and word == words[-1]:
            return None  # the window's last word, perhaps cut short by the window
        if word is not None and previous is not None and word != previous:
            # Offsets of whitespace tokens may be trimmed: never cut before the end of a token that is kept.
            return max(spans[token][0], end_before)
        end_before = max(end_before, spans[token][1])
    return None


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
    """A frozen backbone that maps texts to float32 vectors with the backbone's own pooling, Dense and Normalize.

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

        from bertwise.backbone.head import build_head

        self.backbone = backbone
        self.device = resolve_device(device)
        self.batch_size = batch_size or (CPU_BATCH_SIZE if self.device.type == "cpu" else GPU_BATCH_SIZE)
        self.tokenizer = load_tokenizer(backbone.path)
        # Weights are cast once rather than autocast per operation: on a CPU with bfloat16 units, autocast ran slower
        # than float32 and bfloat16 weights faster (benchmarks/encode_speed.py; docs/speed.md has the figures).
        dtype = resolve_precision(self.device, precision) or torch.float32
        with quiet_loading():
            self.model = AutoModel.from_pretrained(
                backbone.path, use_safetensors=True, trust_remote_code=False, dtype=dtype
            )
        self.model.to(self.device).eval()
        # Pooling, Dense and Normalize run in float32 whatever the transformer's precision, as the pooling always did.
        self.head = build_head(backbone, int(self.model.config.hidden_size)).to(self.device)
        self.dimension = self.head.dimension
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
                vectors = self.head(hidden.float(), inputs["attention_mask"])
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
