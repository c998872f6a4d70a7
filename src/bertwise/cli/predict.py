"""`bertwise predict`: placeholder being written (issue 5); replaced by its real command."""

from __future__ import annotations


def predict_command() -> None:
    """Not written yet."""
    raise NotImplementedError("bertwise predict is being written")
