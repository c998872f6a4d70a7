"""Small stand-ins for a loaded bertwise model: the serve tests need its interface, not BERT."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.serve.app import WARMUP_TEXT

KEYWORDS = {
    "cooking": ("bake", "soup", "onion", "salt"),
    "sports": ("goal", "match", "team", "coach"),
    "weather": ("rain", "snow", "sunny", "wind"),
}

MANIFEST: dict[str, Any] = {
    "strategy": "probe",
    "classes": list(KEYWORDS),
    "metrics": {"macro_f1": 0.91, "accuracy": 0.93},
    "bertwise_version": "0.2.0",
    "created": "2025-01-01T00:00:00Z",
    "backbone": {"id": "tiny-test-bert"},
}


class KeywordModel:
    """Scores each label by its keywords in the text; records the size of every predict_proba call."""

    def __init__(self) -> None:
        self.classes_ = np.array(list(KEYWORDS))
        self.manifest_ = dict(MANIFEST)
        self.batch_sizes: list[int] = []
        self.batches: list[list[str]] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if texts != [WARMUP_TEXT]:  # record only what clients sent
            self.batch_sizes.append(len(texts))
            self.batches.append(list(texts))
        scores = np.array(
            [[1.0 + 4.0 * sum(word in text.lower() for word in words) for words in KEYWORDS.values()] for text in texts]
        )
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]


class GatedModel(KeywordModel):
    """Blocks every batch until the test opens the gate, so tests can fill the queue without timing anything."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()  # set when a batch has started and is waiting at the gate

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if texts == [WARMUP_TEXT]:
            return super().predict_proba(texts)
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        return super().predict_proba(texts)


class FailingModel(KeywordModel):
    """Raises on any batch holding a text with the word boom."""

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if any("boom" in text for text in texts):
            raise RuntimeError("model exploded on a boom")
        return super().predict_proba(texts)


class IntLabelModel:
    """Integer labels, no manifest: what a plain fitted estimator looks like."""

    def __init__(self) -> None:
        self.classes_ = np.array([0, 1])

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        positive = np.array([0.8 if "good" in text else 0.3 for text in texts])
        return np.stack([1 - positive, positive], axis=1)


class FileGatedModel(KeywordModel):
    """Blocks every client batch until the file ``open`` appears in ``folder``, after writing ``entered`` there: a
    gate a test can open from outside the server's process. With ``warm_up``, the start-up's warm-up text waits too."""

    def __init__(self, folder: str, warm_up: bool = False) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.warm_up = warm_up

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if texts != [WARMUP_TEXT] or self.warm_up:
            (self.folder / "entered").touch()
            deadline = time.monotonic() + 60  # guards against a test that never opens the gate; nothing is timed
            while not (self.folder / "open").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the test never opened the gate")
                time.sleep(0.01)
        return super().predict_proba(texts)
