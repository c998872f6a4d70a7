"""Values from TOML, JSON or the command line checked against annotations, and put in the annotated form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pytest

from bertwise.util.typecheck import TypeMismatch, conform, expected_text


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        (3, int, 3),
        (1, float, 1.0),  # TOML's 1 where a float is meant: made a float, as set_params would want it
        (5e-5, float | None, 5e-5),
        ([0.1, 1], tuple[float, ...], (0.1, 1.0)),  # arrays become the tuples a strategy's grid is
        ("cls", Literal["auto", "cls"], "cls"),
        ({"a": "b"}, Mapping[str, str] | None, {"a": "b"}),
        ("probe,finetune", list[str] | str, "probe,finetune"),
        ({"anything": [1]}, Any, {"anything": [1]}),
    ],
)
def test_values_that_fit_come_back_in_the_annotated_form(value: Any, hint: Any, expected: Any) -> None:
    result = conform(value, hint)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ("three", int, 'expected an integer, found "three"'),
        (True, int, "expected an integer, found true"),  # a bool is an int only to Python
        (2.5, int, "expected an integer, found 2.5"),
        (1, bool, "expected true or false, found 1"),
        ("fast", float | None, 'expected a number, found "fast"'),
        ([1, "a"], tuple[float, ...], 'expected an array of numbers, found [1, "a"]'),
        ("max", Literal["auto", "cls"], 'expected one of "auto", "cls", found "max"'),
        ({"probe": "two"}, dict[str, int], 'expected a table of names to integers, found {"probe": "two"}'),
        (1, list[str] | str, "expected an array of strings or a string, found 1"),
    ],
)
def test_values_that_do_not_fit_say_what_was_expected_and_found(value: Any, hint: Any, message: str) -> None:
    with pytest.raises(TypeMismatch) as refused:
        conform(value, hint)
    assert str(refused.value) == message


def test_expected_text_describes_an_annotation() -> None:
    assert expected_text(float | None) == "a number"
    assert expected_text(tuple[str, ...]) == "an array of strings"
