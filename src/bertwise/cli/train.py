"""`bertwise train`: placeholder being written (issue 5); replaced by its real command."""

from __future__ import annotations


def train_command() -> None:
    """Not written yet."""
    raise NotImplementedError("bertwise train is being written")
