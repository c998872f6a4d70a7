"""Finding the text and label columns in a header, and the one-line message when one is missing or repeated.

Shared by every reader (files, streams and tables in memory), so a typo in ``--text-col`` reads the same everywhere.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from bertwise.data.values import one_line
from bertwise.exceptions import DataError

_TEXT_COLUMN_NAMES = (
    "text",
    "sentence",
    "review",
    "content",
    "body",
    "document",
    "question",
    "utterance",
    "comment",
    "message",
    "tweet",
    "abstract",
    "query",
)
_LABEL_COLUMN_NAMES = (
    "label",
    "labels",
    "class",
    "category",
    "target",
    "intent",
    "sentiment",
    "topic",
    "tag",
    "y",
)
# A header's columns listed in a message, and the characters shown of each: enough to spot a typo, not a screenful.
_SHOWN_COLUMNS = 20
_SHOWN_NAME_CHARS = 60


def check_columns(source: str, columns: Sequence[str], *, text_col: str, label_col: str | None) -> None:
    """Refuse a table in memory (a DataFrame, a ``datasets.Dataset``) whose columns lack ``text_col`` or
    ``label_col``, naming the nearest column, as a file's header is refused."""
    if text_col == label_col:
        raise DataError(
            f"{source}: the text and label columns are both '{text_col}' (text_col, label_col); "
            "expected two different columns"
        )
    column_indices(source, list(columns), text_col, label_col)


def column_indices(source: str, columns: list[str], text_col: str, label_col: str | None) -> tuple[int, int | None]:
    """The positions of the text and label columns in a header; a missing or repeated one is refused."""
    wanted = [(text_col, label_col or "", "text", "--text-col")]
    if label_col is not None:
        wanted.append((label_col, text_col, "label", "--label-col"))
    for name, other, role, flag in wanted:
        if name not in columns:
            guess = _suggest_column(name, other, role, columns)
            did_you_mean = f"; did you mean '{_shown_name(guess)}'?" if guess is not None else ""
            raise DataError(
                f"{source}: no {role} column '{_shown_name(name)}' ({flag}); found columns: "
                f"{_shown_columns(columns)}{did_you_mean}"
            )
        where = [i for i, column in enumerate(columns) if column == name]
        if len(where) > 1:
            # Reading either one would silently ignore the other.
            numbers = ", ".join(str(i + 1) for i in where[:_SHOWN_COLUMNS])
            raise DataError(
                f"{source}: {len(where)} columns are named '{_shown_name(name)}' (columns {numbers} of "
                f"{len(columns)}); expected one {role} column (rename or drop the others)"
            )
    return columns.index(text_col), columns.index(label_col) if label_col is not None else None


def _shown_name(name: str) -> str:
    name = one_line(name)
    return name if len(name) <= _SHOWN_NAME_CHARS else name[: _SHOWN_NAME_CHARS - 3] + "..."


def _shown_columns(columns: list[str]) -> str:
    if not columns:
        return "(none)"
    more = f", ... ({len(columns)} in all)" if len(columns) > _SHOWN_COLUMNS else ""
    return ", ".join(_shown_name(c) for c in columns[:_SHOWN_COLUMNS]) + more


def _suggest_column(name: str, other: str, role: str, columns: list[str]) -> str | None:
    candidates = [c for c in columns if c != other]
    if not candidates:
        return None
    by_case = [c for c in candidates if c.lower() == name.lower()]
    if by_case:
        return by_case[0]
    close = difflib.get_close_matches(name, candidates, n=1)
    if close:
        return close[0]
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    if close:
        return lowered[close[0]]
    # Synonyms stand in only for the default names; any other name was chosen on purpose, so spelling decides.
    if name == ("text" if role == "text" else "label"):
        for usual in _TEXT_COLUMN_NAMES if role == "text" else _LABEL_COLUMN_NAMES:
            if usual in lowered:
                return lowered[usual]
    if other in columns and len(candidates) == 1:
        return candidates[0]
    return None
