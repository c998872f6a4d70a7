"""Loading and validating labeled text sets (CSV, TSV, JSONL, Parquet, or a folder with train/test files)."""

from __future__ import annotations

from bertwise.data.dataset import DataSplit, Label, LabeledTexts

__all__ = ["DataSplit", "Label", "LabeledTexts"]
