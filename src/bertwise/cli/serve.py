"""`bertwise serve`: placeholder being written (issue 5); replaced by its real command."""

from __future__ import annotations


def serve_command() -> None:
    """Not written yet."""
    raise NotImplementedError("bertwise serve is being written")
