"""How the reports write numbers and words from results.json, once for the terminal table, Markdown and HTML.

Every helper takes a value as results.json may hold it (missing, null, a string where a number belongs) and
returns text, with "–" standing for a number that is not there. Escaping is the renderer's job: these return
plain text.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bertwise.util.formatting import duration

MISSING = "–"
# The scores results.json records per strategy, in the order the reports show them: key, column heading, and the
# name used in running text.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("macro_f1", "Macro-F1", "macro-F1"),
    ("accuracy", "Accuracy", "accuracy"),
    ("weighted_f1", "Weighted F1", "weighted F1"),
    ("macro_precision", "Precision", "macro precision"),
    ("macro_recall", "Recall", "macro recall"),
)
# Stages results.json lists under "resumed" were not computed in this run.
RESUMED_NOTE = (
    "reused from the run cache, where an earlier run with the same data, settings and model left them; "
    "their costs are the ones measured then"
)


def as_number(value: Any) -> float | None:
    """A finite float, or None for anything else (missing keys, null, strings, NaN); bools are not numbers here.

    numbers.Real rather than int | float so that numpy scalars in a dict that was never through JSON also count.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def as_interval(value: Any) -> tuple[float, float] | None:
    """A ``[low, high]`` pair as floats, or None when the value is not one."""
    value = plain(value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        return None
    low, high = as_number(value[0]), as_number(value[1])
    if low is None or high is None:
        return None
    return (min(low, high), max(low, high))


def plain(value: Any) -> Any:
    """numpy arrays (a results dict that was never written to JSON) as lists; anything else as it is."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) and not isinstance(value, numbers.Real) else value


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else []


def text(value: Any) -> str:
    """A free-text value as a string; null is the empty string."""
    return "" if value is None else str(value)


def texts(values: Any) -> tuple[str, ...]:
    """A list of free-text items (reasons, cuts, summary lines), leaving out null and empty ones."""
    return tuple(text(value) for value in sequence(values) if value not in (None, ""))


def strings(values: Iterable[Any]) -> tuple[str, ...]:
    """The items that are strings, in order."""
    return tuple(value for value in values if isinstance(value, str))


def confidence_label(confidence: float | None) -> str:
    """95 %: the confidence level of the intervals (0.95 when results.json does not say)."""
    return f"{(confidence if confidence is not None else 0.95) * 100:g} %"


def count(value: Any) -> str:
    number = as_number(value)
    return MISSING if number is None else f"{number:,.0f}"


def fixed(value: Any, digits: int) -> str:
    number = as_number(value)
    return MISSING if number is None else f"{number:,.{digits}f}"


def percent(value: Any) -> str:
    number = as_number(value)
    return MISSING if number is None else f"{number * 100:.1f} %"


def megabytes(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return MISSING
    return f"{number / 1024:.1f} GB" if number >= 1024 else f"{number:.0f} MB"


def seconds(value: Any) -> str:
    number = as_number(value)
    return MISSING if number is None else duration(number)


def p_value(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return MISSING
    return "< 0.001" if number < 0.001 else f"{number:.3f}"


def points(value: Any) -> str:
    """A score (a fraction) in points, 0-100, one decimal."""
    number = as_number(value)
    return MISSING if number is None else f"{number * 100:.1f}"


def signed_points(value: Any) -> str:
    """A difference of scores in points with its sign: +1.5."""
    number = as_number(value)
    return MISSING if number is None else f"{number * 100:+.1f}"


def interval_text(interval: tuple[float, float] | None, signed: bool = False) -> str:
    """[85.8, 95.1] in points, or "" without an interval."""
    if interval is None:
        return ""
    low, high = interval[0] * 100, interval[1] * 100
    return f"[{low:+.1f}, {high:+.1f}]" if signed else f"[{low:.1f}, {high:.1f}]"


def scored(value: float | None, interval: tuple[float, float] | None) -> str:
    """A score in points followed by its interval: 98.7 [96.3, 99.9]."""
    if value is None:
        return MISSING
    return points(value) + (f" {interval_text(interval)}" if interval else "")


def yes_no(flag: Any) -> str:
    return "yes" if flag is True else "no" if flag is False else MISSING


def metric_heading(key: Any) -> str:
    """A metric's column heading (Macro-F1); an unknown key as it is."""
    return next((heading for name, heading, _ in METRICS if name == text(key)), str(key))


def metric_phrase(key: Any) -> str:
    """A metric's name in running text (macro-F1); an unknown key as it is, null as ""."""
    return next((phrase for name, _, phrase in METRICS if name == text(key)), text(key))
