"""Values read from a config file or the command line, checked against a Python type annotation.

TOML and JSON give ints, floats, bools, strings, lists and tables; settings are annotated with the types a
function expects (``float | None``, ``tuple[float, ...]``, ``Literal["auto", "cls"]``, ``Mapping[str, str]``).
:func:`conform` checks one against the other and returns the value in the annotated form (an int where a float is
expected becomes a float, a list where a tuple is expected a tuple), or raises :class:`TypeMismatch` saying what was
expected, so every caller words its error the same way. Only these shapes occur in settings; an annotation outside
them is not checked.
"""

from __future__ import annotations

import collections.abc
import json
import types
import typing
from typing import Any


class TypeMismatch(ValueError):
    """A value that does not fit its annotation; ``expected`` says, in words, what would have."""

    def __init__(self, expected: str, value: Any) -> None:
        self.expected = expected
        self.value = value
        super().__init__(f"expected {expected}, found {describe(value)}")


def describe(value: Any) -> str:
    """How a found value reads in an error: as TOML or JSON would write it (``"three"``, ``1.5``, ``true``)."""
    try:
        return json.dumps(value, ensure_ascii=False)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


def conform(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` annotates it, or :class:`TypeMismatch`."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return _union(value, typing.get_args(hint))
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value in choices and isinstance(value, str | int):
            return value
        raise TypeMismatch(f"one of {', '.join(json.dumps(choice) for choice in choices)}", value)
    if origin is tuple or origin in (list, collections.abc.Sequence):
        return _sequence(value, hint, origin)
    if origin in (dict, collections.abc.Mapping):
        return _mapping(value, hint)
    if hint is type(None):
        if value is None:
            return None
        raise TypeMismatch("nothing", value)
    if hint in _SCALARS:
        return _scalar(value, hint)
    return value  # an annotation settings do not use: left to the code that takes the value


_SCALARS: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def expected_text(hint: Any) -> str:
    """What ``hint`` accepts, in words (for a list of parameters and their kinds)."""
    try:
        conform(_NOTHING, hint)
    except TypeMismatch as mismatch:
        return mismatch.expected
    return "any value"


_NOTHING = object()


def _scalar(value: Any, hint: type) -> Any:
    # bool is an int to Python, never to a user: true where a number is expected is a mistake.
    if hint is bool:
        fits = isinstance(value, bool)
    elif hint is float:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        fits = isinstance(value, hint) and not isinstance(value, bool)
    if not fits:
        raise TypeMismatch(_SCALARS[hint], value)
    return float(value) if hint is float else value


def _union(value: Any, members: tuple[Any, ...]) -> Any:
    expected = []
    for member in members:
        if member is type(None) and value is not None:
            continue  # TOML has no null: an optional setting is one left out
        try:
            return conform(value, member)
        except TypeMismatch as mismatch:
            expected.append(mismatch.expected)
    raise TypeMismatch(" or ".join(dict.fromkeys(expected)), value)


def _sequence(value: Any, hint: Any, origin: Any) -> Any:
    arguments = typing.get_args(hint)
    item = arguments[0] if arguments else Any
    if origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        item = arguments[0]
    elif origin is tuple and arguments:
        item = Any  # a fixed-length tuple: settings have none; its items are not checked
    if not isinstance(value, list | tuple):
        raise TypeMismatch(f"an array{_expected_item(item)}", value)
    try:
        items = [conform(element, item) for element in value]
    except TypeMismatch as mismatch:
        raise TypeMismatch(f"an array of {_plural(mismatch.expected)}", value) from None
    return tuple(items) if origin is tuple else items


def _mapping(value: Any, hint: Any) -> Any:
    arguments = typing.get_args(hint)
    item = arguments[1] if len(arguments) == 2 else Any
    inner = _expected_item(item)
    if not isinstance(value, dict):
        raise TypeMismatch(f"a table{inner.replace(' of ', ' of names to ')}", value)
    try:
        return {str(key): conform(element, item) for key, element in value.items()}
    except TypeMismatch as mismatch:
        raise TypeMismatch(f"a table of names to {_plural(mismatch.expected)}", value) from None


def _expected_item(item: Any) -> str:
    if item is Any:
        return ""
    return f" of {_plural(expected_text(item))}"


def _plural(expected: str) -> str:
    for singular, plural in (("an integer", "integers"), ("a number", "numbers"), ("a string", "strings")):
        expected = expected.replace(singular, plural)
    return expected
