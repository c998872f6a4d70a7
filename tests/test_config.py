"""CompareConfig's params: a frozen field, checked for shape here and for names and kinds by strategies.params."""

from __future__ import annotations

import dataclasses

import pytest

from bertwise.config import CompareConfig
from bertwise.exceptions import ConfigError


def test_params_are_part_of_the_frozen_settings_and_of_their_record() -> None:
    config = CompareConfig(params={"probe": {"Cs": (0.5,)}})
    assert config.to_dict()["params"] == {"probe": {"Cs": (0.5,)}}
    assert CompareConfig().to_dict()["params"] == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.params = {}  # type: ignore[misc]


def test_params_that_are_not_a_table_per_strategy_are_refused() -> None:
    with pytest.raises(ConfigError, match="params must map each strategy to a table of its parameters"):
        CompareConfig(params={"probe": 3})  # type: ignore[dict-item]
