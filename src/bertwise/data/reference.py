"""The packaged general-English reference text (see evaluation/reference/SOURCE.md for where it comes from).

Read here, below every package that needs sample text: the diagnostics compare a data set's tokenization with it, and
the ONNX export checks its parity on it.
"""

from __future__ import annotations

from importlib import resources

REFERENCE_PATH = ("evaluation", "reference", "general_english.txt")


def reference_paragraphs() -> list[str]:
    """The reference's paragraphs, one per line, blank lines skipped."""
    path = resources.files("bertwise").joinpath(*REFERENCE_PATH)
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
