"""A comparison's hyperparameters by strategy: checked against each strategy's own parameters, applied on build."""

from __future__ import annotations

import pytest

from bertwise.config import CompareConfig
from bertwise.exceptions import ConfigError
from bertwise.strategies import registry
from bertwise.strategies.params import check_params, merge_params, tunable_params
from bertwise.strategies.registry import build_strategy
from bertwise.strategies.variants import on_backbone


def place(strategy: str, name: str | None) -> str:
    return f"at {strategy}.{name}"


def test_checked_params_come_back_in_each_parameters_own_form() -> None:
    checked = check_params({"finetune": {"learning_rate": 1, "max_epochs": 8}, "probe": {"Cs": [0.5, 2]}}, place)
    assert checked == {"finetune": {"learning_rate": 1.0, "max_epochs": 8}, "probe": {"Cs": (0.5, 2.0)}}
    assert isinstance(checked["finetune"]["learning_rate"], float)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"finetun": {"learning_rate": 1e-4}},
            "at finetun.None: unknown strategy 'finetun'; expected one of zero-shot",
        ),
        (
            {"finetune": {"learnin_rate": 1e-4}},
            "at finetune.learnin_rate: finetune has no parameter 'learnin_rate' (did you mean 'learning_rate'?); "
            "it has: learning_rate, batch_size",
        ),
        ({"finetune": {"learning_rate": "fast"}}, 'at finetune.learning_rate: expected a number, found "fast"'),
        ({"probe": {"cv": 2.5}}, "at probe.cv: expected an integer, found 2.5"),
        ({"finetune": {"seed": 3}}, "at finetune.seed: the comparison sets seed for every strategy; use --seed"),
        ({"finetune": 3}, "at finetune.None: expected a table of parameters, found 3"),
        ({"probe@tiny": {"cv": 2}}, "at probe@tiny.None: parameters are set per strategy and apply on every backbone"),
    ],
)
def test_each_bad_key_or_value_is_refused_with_its_place(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_params(params, place)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_the_comparisons_own_settings_are_not_tunable() -> None:
    assert {"model", "seed", "device", "precision", "progress"}.isdisjoint(tunable_params("finetune"))
    assert "learning_rate" in tunable_params("finetune") and "Cs" in tunable_params("probe")


def test_later_layers_win_key_by_key() -> None:
    merged = merge_params({"finetune": {"learning_rate": 1e-4, "max_epochs": 3}}, None, {"finetune": {"max_epochs": 5}})
    assert merged == {"finetune": {"learning_rate": 1e-4, "max_epochs": 5}}


def test_build_strategy_sets_the_params_after_from_config_on_every_backbone() -> None:
    config = CompareConfig(seed=7, params={"probe": {"cv": 2, "Cs": (0.5,)}, "finetune": {"max_epochs": 9}})
    probe = build_strategy("probe", config)
    assert (probe.cv, probe.Cs, probe.seed) == (2, (0.5,), 7)
    assert build_strategy("finetune", config).max_epochs == 9
    pair = on_backbone("probe", "other/model", "other", 1.0)  # what backbone_grid registers as probe@other
    registry.register(pair)
    try:
        built = build_strategy("probe@other", config)
    finally:
        registry.unregister("probe@other")
    assert (built.model, built.cv, built.Cs) == ("other/model", 2, (0.5,))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"finetune": {"learning_rate": -1}}, "at finetune.learning_rate: the 'learning_rate' parameter of Finetune"),
        ({"probe": {"max_iter": 0}}, "at probe.max_iter: the 'max_iter' parameter of ProbeClassifier is out of range"),
        ({"probe": {"Cs": []}}, "at probe.Cs: the 'Cs' parameter of ProbeClassifier is out of range: got ()"),
        ({"zero-shot": {"template": "no label"}}, "at zero-shot.template: the zero-shot 'template' must contain"),
        ({"lora": {"lora_r": 0}}, "at lora.lora_r: the 'lora_r' parameter of LoraClassifier is out of range"),
        # max_epochs below the default min_epochs (5): the combination is wrong, so no single key is blamed.
        ({"finetune": {"max_epochs": 2}}, "at finetune.None: the 'min_epochs' parameter of FinetuneClassifier"),
    ],
)
def test_values_out_of_range_are_refused_before_any_work_by_the_strategys_own_check(params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_params(params, place)
    assert str(refused.value).startswith(message)


def test_every_strategys_defaults_pass_its_own_range_check() -> None:
    for name in registry.strategy_names():
        registry.strategy_class(name)().check_params()
