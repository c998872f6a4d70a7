"""The ONNX export's parity check: a candidate model (ONNX Runtime) against the reference (torch float32) on the same
texts, how often their labels agree and how far their probabilities move, and the texts it is checked on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.data.io import read_text_file
from bertwise.data.reference import reference_paragraphs
from bertwise.exceptions import BertwiseError, DataError
from bertwise.onnx.runtime import OnnxExportError

# The least share of texts on which ONNX and torch float32 must predict the same label. A float32 graph computes what
# torch computes (to about 1e-7), so any difference is a broken export. int8 changes the numbers on purpose: probes
# agreed with torch on nearly all in-domain texts but on fewer of the bundled general-English sample, whose texts sit
# near the decision boundaries of a banking model (docs/onnx.md has the shares). 90 % passes such a sample and still
# fails a broken graph, which agrees at about chance; users who want more pass their own texts and a higher
# --min-agreement.
FLOAT32_MIN_AGREEMENT = 1.0
INT8_MIN_AGREEMENT = 0.90
# A disagreement where torch's own probabilities for the two labels are this close is a tie, not a difference.
TIE_TOLERANCE = 1e-6
DEFAULT_CHECK_ROWS = 1000
DEFAULT_SAMPLE_TEXTS = 200
_SHOWN_TEXT = 60


class OnnxParityError(BertwiseError, ValueError):
    """The ONNX export does not predict what the torch model predicts, by more than the allowed margin."""


@dataclass(frozen=True)
class ParityReport:
    """ONNX against torch float32 on the same texts: how often the labels agree and how far probabilities move."""

    texts: int
    agreeing: int
    ties: int  # labels that differ where torch's two probabilities are within TIE_TOLERANCE: not counted against
    max_probability_difference: float
    min_agreement: float
    source: str  # where the texts came from, in words
    torch_seconds: float
    onnx_seconds: float
    first_difference: str | None  # one differing text, shortened, with both labels

    @property
    def agreement(self) -> float:
        return self.agreeing / self.texts if self.texts else 1.0

    @property
    def passed(self) -> bool:
        return (self.agreeing + self.ties) >= self.min_agreement * self.texts - 1e-9

    def line(self) -> str:
        ties = f", {self.ties} tie{'s' if self.ties != 1 else ''} within {TIE_TOLERANCE:g}" if self.ties else ""
        return (
            f"parity on {self.texts} texts ({self.source}): labels agree on {self.agreement * 100:.1f}% "
            f"({self.agreeing}/{self.texts}{ties}; at least {self.min_agreement * 100:g}% required), "
            f"max probability difference {self.max_probability_difference:.2g}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "source": self.source,
            "agreement": round(self.agreement, 6),
            "ties": self.ties,
            "min_agreement": self.min_agreement,
            "max_probability_difference": float(f"{self.max_probability_difference:.3g}"),
            "torch_float32_texts_per_second": round(self.texts / max(self.torch_seconds, 1e-9), 1),
            "onnx_texts_per_second": round(self.texts / max(self.onnx_seconds, 1e-9), 1),
        }


def check_parity(
    reference: Any, candidate: Any, texts: Sequence[str], *, min_agreement: float, source: str
) -> ParityReport:
    """Predict ``texts`` with both models (same ``classes_``) and compare labels and probabilities."""
    import time

    for model in (reference, candidate):  # first calls pay for kernel selection and allocation: not in the timings
        model.predict_proba(list(texts[:8]))
    started = time.perf_counter()
    expected = np.asarray(reference.predict_proba(list(texts)), dtype=np.float64)
    torch_seconds = time.perf_counter() - started
    started = time.perf_counter()
    found = np.asarray(candidate.predict_proba(list(texts)), dtype=np.float64)
    onnx_seconds = time.perf_counter() - started
    rows = np.arange(len(texts))
    expected_labels, found_labels = expected.argmax(axis=1), found.argmax(axis=1)
    differ = np.flatnonzero(expected_labels != found_labels)
    gaps = expected[rows, expected_labels] - expected[rows, found_labels]
    ties = int(np.count_nonzero(gaps[differ] <= TIE_TOLERANCE))
    first = None
    if len(differ):
        row = int(differ[np.argmax(gaps[differ])])  # the clearest difference says most about what went wrong
        text = texts[row] if len(texts[row]) <= _SHOWN_TEXT else texts[row][: _SHOWN_TEXT - 3] + "..."
        classes = reference.classes_
        first = f"{text!r}: torch {classes[expected_labels[row]]!r}, ONNX {classes[found_labels[row]]!r}"
    return ParityReport(
        texts=len(texts),
        agreeing=len(texts) - len(differ),
        ties=ties,
        max_probability_difference=float(np.abs(expected - found).max()) if len(texts) else 0.0,
        min_agreement=min_agreement,
        source=source,
        torch_seconds=torch_seconds,
        onnx_seconds=onnx_seconds,
        first_difference=first,
    )


def default_check_texts(limit: int = DEFAULT_SAMPLE_TEXTS) -> list[str]:
    """Texts of every length from the packaged general-English reference: its longest paragraphs (a quarter of the
    sample; past 256 tokens, so truncation is checked too) and single sentences spread evenly over it."""
    import re

    paragraphs = reference_paragraphs()
    longest = sorted(paragraphs, key=len, reverse=True)[: limit // 4]
    sentences = list(
        dict.fromkeys(
            sentence
            for paragraph in paragraphs
            for sentence in re.split(r"(?<=[.!?])\s+", paragraph)
            if len(sentence.split()) >= 3 and sentence not in longest
        )
    )
    wanted = limit - len(longest)
    step = max(1.0, len(sentences) / wanted)
    return longest + [sentences[int(i * step)] for i in range(min(wanted, len(sentences)))]


def read_check_texts(path: str | Path, *, text_col: str = "text", limit: int = DEFAULT_CHECK_ROWS) -> list[str]:
    """The non-empty texts of ``path``'s text column, at most ``limit`` of them spread evenly over the file."""
    texts = [text for text in read_text_file(Path(path), text_col=text_col)[0] if text.strip()]
    if not texts:
        raise DataError(f"'{path}' has no non-empty text in column '{text_col}'; expected texts to check the export on")
    if limit < 1:
        raise OnnxExportError(f"the number of check rows must be at least 1; got {limit}")
    if len(texts) <= limit:
        return texts
    step = len(texts) / limit
    return [texts[int(i * step)] for i in range(limit)]
