from __future__ import annotations

from typing import Any

import pytest

from bertwise.evaluation.runner import StrategyResult
from bertwise.recommendation import recommend


def result(name: str, f1: float, fit_seconds: float, status: str = "ok", interval: float = 0.02) -> StrategyResult:
    return StrategyResult(
        name=name,
        status=status,
        metrics={"accuracy": f1, "macro_f1": f1},
        metrics_interval={"macro_f1": [f1 - interval, f1 + interval]},
        cost={"fit_seconds": fit_seconds, "predict_ms_per_text": 1.0},
    )


def pair(a: str, b: str, difference: float, low: float, high: float) -> dict[str, Any]:
    return {
        "a": a,
        "b": b,
        "metric": "macro_f1",
        "difference": difference,
        "interval": [low, high],
        "significant": low > 0 or high < 0,
    }


THREE = [result("zero-shot", 0.40, 0.1), result("probe", 0.80, 5), result("finetune", 0.90, 300)]
THREE_PAIRED = [
    pair("finetune", "probe", 0.10, 0.07, 0.13),
    pair("finetune", "zero-shot", 0.50, 0.45, 0.55),
    pair("probe", "zero-shot", 0.40, 0.35, 0.45),
]


def test_a_significantly_better_strategy_wins_whatever_it_costs() -> None:
    choice = recommend(THREE, THREE_PAIRED)
    assert choice.strategy == "finetune"
    assert choice.runner_up == "probe"
    assert choice.reasons[0] == "finetune has the best macro-F1: 90.0 [88.0, 92.0]"
    assert "probe is 10.0 points lower [7.0, 13.0], a significant difference (80.0 [78.0, 82.0])" in choice.reasons
    assert not choice.would_change  # every priority agrees: probe is more than 3 points below for sure


def test_a_statistical_tie_goes_to_the_cheaper_strategy_and_the_paired_order_does_not_matter() -> None:
    results = [result("probe", 0.898, 5), result("finetune", 0.901, 300)]
    for paired in ([pair("finetune", "probe", 0.003, -0.01, 0.016)], [pair("probe", "finetune", -0.003, -0.016, 0.01)]):
        choice = recommend(results, paired, priority="accuracy")
        assert choice.strategy == "probe"
        assert choice.runner_up == "finetune"
        assert (
            "the difference, -0.3 points [-1.6, 1.0], is not significantly more than the 0-point" in (choice.reasons[0])
        )
        assert "fits in 5.0 s against 5.0 min" in choice.reasons[0]


@pytest.mark.parametrize(("priority", "expected"), [("accuracy", "finetune"), ("balanced", "probe"), ("cost", "probe")])
def test_the_priority_sets_how_far_below_the_best_a_cheaper_strategy_may_be(priority: str, expected: str) -> None:
    # finetune is significantly better, but by at most 0.8 points: within balanced's 1-point tolerance.
    results = [result("probe", 0.895, 5), result("finetune", 0.900, 300)]
    choice = recommend(results, [pair("finetune", "probe", 0.005, 0.002, 0.008)], priority=priority)
    assert choice.strategy == expected
    assert choice.tolerance_points == {"accuracy": 0.0, "balanced": 1.0, "cost": 3.0}[priority]
    other = "probe" if expected == "finetune" else "finetune"
    assert any(f"{other} would be chosen" in line for line in choice.would_change)


def test_a_clear_gap_beyond_the_cost_tolerance_keeps_the_best_even_for_cost() -> None:
    results = [result("probe", 0.85, 5), result("finetune", 0.90, 300)]
    choice = recommend(results, [pair("finetune", "probe", 0.05, 0.035, 0.065)], priority="cost")
    assert choice.strategy == "finetune"


def test_an_extrapolated_crossover_says_how_much_more_data_would_change_the_answer() -> None:
    curve = {
        "per_class_points": [8, 16, 32, 40.0],
        "crossover": {"a": "finetune", "b": "probe", "status": "extrapolated", "per_class": 95.0, "text": "..."},
    }
    choice = recommend(THREE[:2], [pair("probe", "zero-shot", 0.4, 0.35, 0.45)], learning_curve=curve)
    assert choice.strategy == "probe"
    assert any("about 55 more labeled examples per class (about 95 in all" in line for line in choice.would_change)


def test_diagnostics_are_cited_as_evidence() -> None:
    diagnostics = {"summary": ["the tokenizer splits your words into 1.62 pieces on average", "gap line", "hedge"]}
    choice = recommend(THREE, THREE_PAIRED, diagnostics=diagnostics)
    assert "the tokenizer splits your words into 1.62 pieces on average" in choice.reasons


def test_failed_strategies_are_ignored_and_nothing_finished_means_no_choice() -> None:
    only_zero_shot = [result("probe", 0.0, 1, status="failed"), result("zero-shot", 0.3, 0.1)]
    assert recommend(only_zero_shot, []).strategy == "zero-shot"
    nothing = recommend([result("probe", 0.0, 1, status="failed")], [])
    assert nothing.strategy is None and nothing.reasons


def test_a_budget_that_shortened_fine_tuning_is_a_caution_when_fine_tuning_loses() -> None:
    cuts = ["fine-tuning shortened to 25% of its planned steps: its score may understate what full training reaches"]
    results = [result("probe", 0.90, 5), result("finetune", 0.80, 30)]
    choice = recommend(results, [pair("probe", "finetune", 0.1, 0.07, 0.13)], budget_cuts=cuts)
    assert choice.strategy == "probe"
    assert choice.reasons[-1].startswith(
        "caution: the budget shortened fine-tuning to 25% of its planned steps, so its score understates"
    )
    assert not any("caution" in reason for reason in recommend(THREE, THREE_PAIRED, budget_cuts=cuts).reasons)


def test_an_exact_tie_is_worded_as_the_same_score() -> None:
    results = [result("probe", 0.987, 2), result("finetune", 0.987, 97)]
    choice = recommend(results, [pair("probe", "finetune", 0.0, -0.024, 0.026)])
    assert choice.strategy == "probe"
    assert choice.reasons[1].startswith("finetune scores the same (98.7 [96.7, 100.7], difference [-2.6, 2.4])")


def test_curves_that_meet_at_the_data_size_say_what_twice_the_data_would_give() -> None:
    curve = {
        "per_class_points": [8, 16, 32, 40.0],
        "crossover": {"a": "finetune", "b": "probe", "status": "extrapolated", "per_class": 40.0, "text": "..."},
        "fit": {
            "finetune": {"extrapolation": [{"per_class": 80.0, "macro_f1": 0.9881, "interval": [0.98, 0.99]}]},
            "probe": {"extrapolation": [{"per_class": 80.0, "macro_f1": 0.9843, "interval": [0.98, 0.99]}]},
        },
    }
    choice = recommend(THREE[:2], [pair("probe", "zero-shot", 0.4, 0.35, 0.45)], learning_curve=curve)
    assert choice.would_change == (
        "with more labeled data, fine-tuning would likely edge ahead of the probe: at 80 examples per class the "
        "fitted curves give 98.8 against 98.4 (an extrapolation)",
    )
