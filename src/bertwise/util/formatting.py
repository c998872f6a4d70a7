"""Numbers as people read them, shared by the terminal output, the budget's messages and the reports."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """3.2 s, 45 s, 12.5 min, 2.1 h."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
