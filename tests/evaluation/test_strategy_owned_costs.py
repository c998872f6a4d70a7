"""The budget, the learning-curve plan, the crossover and the recommendation read a strategy's tags and cost model
from its class: strategies registered here, unknown to every module, are planned, estimated and cut like the built-in
ones, in their own words."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, Label, LabeledTexts
from bertwise.evaluation.budget import Plan, estimate, fit_to_budget
from bertwise.evaluation.learning_curve import crossover_pair, plan_curve
from bertwise.evaluation.protocol import choose_protocol
from bertwise.evaluation.runner import StrategyResult
from bertwise.exceptions import ConfigError
from bertwise.recommendation import recommend
from bertwise.strategies.base import Strategy, StrategyTags
from bertwise.strategies.cost import Calibration, FitWork
from bertwise.strategies.registry import (
    check_strategy_names,
    default_curve_repeats,
    register,
    strategy_names,
    unregister,
)

SECONDS_PER_STEP = 0.5


class _Slow(Strategy):
    """Trains its backbone on a schedule of 100 steps per fit, whatever the data."""

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="slow-tuner",
        trains_backbone=True,
        uses_labels_for_training=True,
        seed_dependent=True,
        has_training_schedule=True,
        curve_repeats=4,
        fewest_curve_repeats=2,
        spoken_name="slow tuning",
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        return 100 * work.schedule_scale * SECONDS_PER_STEP

    @classmethod
    def shortened_schedule(cls, scale: float) -> dict[str, Any]:
        return {} if scale >= 1.0 else {"steps": round(100 * scale)}

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        pass


class _Lookup(Strategy):
    """Learns nothing from labels and keeps the base class's cost model."""

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="lookup", trains_backbone=False, uses_labels_for_training=False, seed_dependent=False
    )

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        pass


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    register(_Slow)
    register(_Lookup)
    yield
    unregister("slow-tuner")
    unregister("lookup")


def labeled(per_class: dict[str, int]) -> LabeledTexts:
    texts = [f"{label} text {i}" for label, count in per_class.items() for i in range(count)]
    labels = [label for label, count in per_class.items() for _ in range(count)]
    return LabeledTexts(tuple(texts), tuple(labels), source="memory.csv")


SPLIT = DataSplit(
    train=labeled({label: 60 for label in "abc"}), test=labeled({label: 20 for label in "abc"}), test_origin="file"
)
CALIBRATION = Calibration(encode_texts_per_second=300.0, train_examples_per_second=75.0, probe_seconds_per_row=1e-4)


def plan_of(strategies: tuple[str, ...]) -> Plan:
    protocol = choose_protocol(SPLIT, CompareConfig())
    trained = [name for name in strategies if name != "lookup"]
    return Plan(strategies=strategies, protocol=protocol, curve=plan_curve(SPLIT, protocol, CompareConfig(), trained))


def test_estimates_come_from_each_strategy_s_own_cost_model() -> None:
    plan = plan_of(("lookup", "probe", "slow-tuner"))
    assert plan.curve is not None and plan.curve.repeats == {"probe": 5, "slow-tuner": 4}
    parts = estimate(plan, SPLIT, CALIBRATION)
    # Seed-dependent: one fit per seed (3 on a test file), each 100 steps; seed-free: one fit.
    assert parts["slow-tuner"] == 3 * 100 * SECONDS_PER_STEP
    assert parts["slow-tuner curve"] == len(plan.curve.points) * 4 * 100 * SECONDS_PER_STEP
    assert parts["lookup"] == pytest.approx(2.0 + (180 + 60) / 300.0)  # the base model: load, encode train and test


def test_a_budget_cuts_a_registered_strategy_by_its_tags_and_names_it() -> None:
    plan = plan_of(("lookup", "probe", "slow-tuner"))
    everything = sum(estimate(plan, SPLIT, CALIBRATION).values())
    cut = fit_to_budget(plan, SPLIT, CALIBRATION, everything * 0.5)
    assert cut.cuts[:2] == ("slow-tuner learning-curve repeats 4 -> 2", "probe learning-curve repeats 5 -> 3")
    assert sum(estimate(cut, SPLIT, CALIBRATION).values()) <= everything * 0.5
    tiny = fit_to_budget(plan, SPLIT, CALIBRATION, 40.0)
    assert "slow-tuner seeds 3 -> 2" in tiny.cuts and "slow-tuner seeds 2 -> 1" in tiny.cuts
    assert tiny.curve is not None and "slow-tuner" not in tiny.curve.strategies and "probe" in tiny.curve.strategies
    assert any(line.startswith("slow tuning shortened to ") for line in tiny.cuts)
    assert tiny.shortened_schedule("slow-tuner") == {"steps": round(100 * tiny.schedule_scale)}
    assert tiny.shortened_schedule("probe") == {}


def test_the_crossover_pairs_a_strategy_that_trains_the_backbone_with_a_frozen_one() -> None:
    assert crossover_pair(["probe", "slow-tuner"]) == ("slow-tuner", "probe")
    assert crossover_pair(["slow-tuner"]) is None


def test_the_recommendation_names_a_label_free_strategy_and_a_shortened_one_in_their_own_words() -> None:
    def result(name: str, f1: float, fit_seconds: float) -> StrategyResult:
        return StrategyResult(
            name=name,
            status="ok",
            metrics={"accuracy": f1, "macro_f1": f1},
            metrics_interval={"macro_f1": [f1 - 0.02, f1 + 0.02]},
            cost={"fit_seconds": fit_seconds, "predict_ms_per_text": 1.0},
        )

    results = [result("lookup", 0.5, 0.1), result("probe", 0.9, 5.0), result("slow-tuner", 0.8, 300.0)]
    paired = [
        {"a": "probe", "b": name, "difference": 0.9 - f1, "interval": [0.05, 0.5], "significant": True}
        for name, f1 in (("lookup", 0.5), ("slow-tuner", 0.8))
    ]
    cuts = ["slow tuning shortened to 40% of its planned steps: its score may understate what full training reaches"]
    choice = recommend(results, paired, budget_cuts=cuts)
    assert choice.strategy == "probe"
    assert any(line.startswith("caution: the budget shortened slow tuning to 40%") for line in choice.reasons)
    assert any(line.startswith("without any labeled data, lookup is the only one") for line in choice.would_change)


def test_registered_names_are_accepted_and_unknown_ones_refused_with_every_known_name() -> None:
    check_strategy_names(["probe", "slow-tuner"])
    assert strategy_names()[-2:] == ("slow-tuner", "lookup")
    assert default_curve_repeats() == {"probe": 5, "finetune": 3, "lora": 3, "setfit": 1, "slow-tuner": 4}
    with pytest.raises(ConfigError, match=r"unknown strategy 'magic'; expected some of zero-shot, .*, lookup$"):
        check_strategy_names(["probe", "magic"])
    with pytest.raises(ConfigError, match="no strategy selected"):
        check_strategy_names([])


def test_built_in_defaults_stay_as_before() -> None:
    unregister("slow-tuner")
    unregister("lookup")
    assert default_curve_repeats() == {"probe": 5, "finetune": 3, "lora": 3, "setfit": 1}
    known = "zero-shot, probe, finetune, lora, setfit"
    with pytest.raises(ConfigError, match=rf"^unknown strategy 'magic'; expected some of {known}$"):
        check_strategy_names(["magic"])
