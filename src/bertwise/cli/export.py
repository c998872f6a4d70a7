"""`bertwise export`: placeholder being written (issue 5); replaced by its real command."""

from __future__ import annotations


def export_command() -> None:
    """Not written yet."""
    raise NotImplementedError("bertwise export is being written")
