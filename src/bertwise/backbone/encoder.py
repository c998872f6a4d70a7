"""Turning texts into one vector each with a frozen backbone: the probe's features and zero-shot's similarities.

Texts are tokenized once, sorted by length and run in batches padded only to the longest text of the batch, so short
texts never pay for long ones (the article's pad-everything-to-128, one-text-at-a-time loop is about 10x slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bertwise.backbone.device import autocast_dtype, resolve_device
from bertwise.backbone.resolve import Backbone, PoolingChoice, resolve_backbone

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


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first so a memory problem shows at once."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


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

    Embeddings are remembered per text, so strategies that share an encoder (probe and zero-shot in one comparison)
    never encode the same text twice.
    """

    def __init__(self, backbone: Backbone, device: str = "auto", batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModel

        from bertwise.backbone.loading import quiet_loading

        self.backbone = backbone
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(backbone.path)
        with quiet_loading():
            self.model = AutoModel.from_pretrained(
                backbone.path, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
            )
        self.model.to(self.device).eval()
        self.dimension = int(self.model.config.hidden_size)
        self._memo: dict[str, np.ndarray] = {}

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        return tokenize(self.tokenizer, texts, self.backbone.max_length)

    def encode(self, texts: Sequence[str], *, progress: bool = False, description: str = "encoding") -> np.ndarray:
        """One float32 row per text, in input order."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._memo))
        if missing:
            if len(self._memo) + len(missing) > MEMO_LIMIT:
                self._memo.clear()
            for text, vector in zip(missing, self._encode_uncached(missing, progress, description), strict=True):
                self._memo[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[text] for text in texts])

    def _encode_uncached(self, texts: list[str], progress: bool, description: str) -> np.ndarray:
        import torch

        tokenized = self.tokenize(texts)
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        batches = length_sorted_batches([len(ids) for ids in tokenized.input_ids], self.batch_size)
        amp = autocast_dtype(self.device)
        pad_id = self.tokenizer.pad_token_id or 0
        with (
            torch.inference_mode(),
            tqdm(total=len(texts), desc=description, unit="text", disable=not progress) as bar,
        ):
            for batch in batches:
                inputs = pad_batch([tokenized.input_ids[i] for i in batch], pad_id, self.device)
                with torch.autocast(self.device.type, dtype=amp, enabled=amp is not None):
                    hidden = self.model(**inputs).last_hidden_state
                vectors = pool(hidden.float(), inputs["attention_mask"], self.backbone.pooling)
                if self.backbone.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                output[batch] = vectors.cpu().numpy()
                bar.update(len(batch))
        return output


def pool(hidden: Any, attention_mask: Any, pooling: str) -> Any:
    """Mean over real tokens (padding excluded), or the first ([CLS]) token's state."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


_ENCODERS: dict[tuple[str | None, str, str], Encoder] = {}


def load_encoder(model: str | None = None, pooling: PoolingChoice = "auto", device: str = "auto") -> Encoder:
    """A shared encoder per (model, pooling, device): loading weights once per process, not once per strategy."""
    key = (model, pooling, device)
    if key not in _ENCODERS:
        if len(_ENCODERS) >= 4:
            _ENCODERS.pop(next(iter(_ENCODERS)))
        _ENCODERS[key] = Encoder(resolve_backbone(model, pooling=pooling), device=device)
    return _ENCODERS[key]


def forget_embeddings() -> None:
    """Drop remembered embeddings, so that the next strategy's cost is measured as if it ran alone."""
    for encoder in _ENCODERS.values():
        encoder._memo.clear()
