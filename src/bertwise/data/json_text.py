"""JSON text read safely: every way a text can fail to load is a ``json.JSONDecodeError`` with a position.

Used by the one reader of JSON Lines and JSON (:mod:`bertwise.data.readers`, :mod:`bertwise.data.io`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any


class JsonObject(dict[str, Any]):
    """A JSON object as :func:`load_json` returns it: a dict that remembers which of its keys were repeated."""

    repeated: frozenset[str] = frozenset()


def load_json(text: str) -> Any:
    """``json.loads``, but every way the text can fail to load raises ``json.JSONDecodeError`` with a position.

    Nesting too deep for the parser (it recurses) and integers with more digits than Python converts would
    otherwise escape as ``RecursionError`` and ``ValueError``. Objects come back as :class:`JsonObject`, so a key
    given twice (JSON keeps the last silently) can be refused where it matters: the text or label column.
    """
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        position, depth = _too_deep(text)
        message = f"arrays or objects nested too deep to read, {depth} levels,"
        raise json.JSONDecodeError(message, text, position) from None
    except ValueError:  # int() refuses integers of more than sys.get_int_max_str_digits() digits
        limit = sys.get_int_max_str_digits()
        found = re.search(f"[0-9]{{{limit + 1}}}", text)
        message = f"a number of more than {limit} digits, too long to read,"
        raise json.JSONDecodeError(message, text, found.start() if found else 0) from None


def repeated_keys(obj: dict[str, Any], names: Sequence[str | None]) -> list[str]:
    """Those of ``names`` that the JSON object gave more than once."""
    repeated: frozenset[str] = getattr(obj, "repeated", frozenset())
    return [name for name in names if name is not None and name in repeated]


def _json_object(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj = JsonObject(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        obj.repeated = frozenset(key for key in obj if keys.count(key) > 1)
    return obj


def _too_deep(text: str) -> tuple[int, int]:
    """Where the nesting of ``text`` is deepest (its position and depth), outside strings: for the message."""
    depth = deepest = position = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest, position = depth, match.start()
        elif token in "]}":
            depth -= 1
    return position, deepest
