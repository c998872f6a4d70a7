"""The recommendation rule: each case is a result set where the rule must pick a given strategy, and say why."""

from __future__ import annotations

from typing import Any

import pytest

from bertwise.evaluation.runner import StrategyResult
from bertwise.recommendation import cheaper, recommend


def result(
    name: str,
    f1: float,
    fit_seconds: float,
    status: str = "ok",
    interval: float = 0.02,
    predict_ms: float = 1.0,
    bounds: tuple[float, float] | None = None,
) -> StrategyResult:
    return StrategyResult(
        name=name,
        status=status,
        metrics={"accuracy": f1, "macro_f1": f1},
        metrics_interval={"macro_f1": list(bounds) if bounds else [f1 - interval, f1 + interval]},
        cost={"fit_seconds": fit_seconds, "predict_ms_per_text": predict_ms},
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

# The issue's case: 25 classes, 564 train / 141 test texts (patient utterances), default --priority balanced.
PATIENT = [
    result("zero-shot", 0.759, 0.01, predict_ms=5.1, bounds=(0.682, 0.835)),
    result("probe", 0.820, 3.1, predict_ms=4.3, bounds=(0.753, 0.888)),
]
PATIENT_PAIRED = [pair("probe", "zero-shot", 0.061, 0.001, 0.126)]
PATIENT_DIAGNOSTICS = {
    "tokenizer": {"user": {"words": 4000, "unknown_rate": 0.0}},
    "summary": [
        "the tokenizer splits your words into 1.10 pieces on average, against 1.07 in general English (1.03x)",
        "the best trained strategy scores 6.1 macro-F1 points above zero-shot",
        "fragmentation alone does not decide between strategies",
    ],
}


def test_the_issue_case_a_significant_lead_beyond_the_tolerance_picks_the_better_strategy() -> None:
    for paired in (PATIENT_PAIRED, [pair("zero-shot", "probe", -0.061, -0.126, -0.001)]):
        choice = recommend(PATIENT, paired, priority="balanced", diagnostics=PATIENT_DIAGNOSTICS)
        assert choice.strategy == "probe"
        assert choice.runner_up == "zero-shot"
        assert choice.reasons[0] == "probe has the best macro-F1: 82.0 [75.3, 88.8]"
        assert choice.reasons[1] == (
            "zero-shot is 6.1 points below probe [-12.6, -0.1], a significant difference that reaches beyond the "
            "1-point margin (75.9 [68.2, 83.5])"
        )
        # Reasons never contradict the choice, and a user with labels is not told to label examples.
        text = " ".join(choice.reasons + choice.would_change)
        assert "labeled data matters" not in text and "labeling" not in text
        assert "the tokenizer splits your words into 1.10 pieces" in choice.reasons[2]
        assert not any("zero-shot" in reason for reason in choice.reasons[2:])
        # Zero-shot's real advantage is named, for a user who has no labels.
        assert choice.would_change[-1].startswith("without any labeled data, zero-shot is the only one of these")


def test_the_issue_case_under_every_priority() -> None:
    # Even --priority cost (3-point margin) cannot call a 6.1-point lead [0.1, 12.6] equivalent.
    for priority in ("accuracy", "balanced", "cost"):
        assert recommend(PATIENT, PATIENT_PAIRED, priority=priority).strategy == "probe"


def test_a_strategy_that_predicts_slower_is_not_cheaper() -> None:
    zero_shot, probe = PATIENT
    assert not cheaper(zero_shot, probe)  # fits faster, predicts 19 % slower: neither is cheaper
    assert not cheaper(probe, zero_shot)
    same_speed = result("zero-shot", 0.80, 0.01, predict_ms=4.4)
    assert cheaper(same_speed, probe)  # predict times within timing noise, fitting far faster


def test_practical_equivalence_gives_the_cheaper_strategy() -> None:
    # finetune leads by 0.4 points [-0.5, 0.9]: within balanced's ±1 point, and the probe costs less on both counts.
    results = [result("probe", 0.896, 5, predict_ms=2.0), result("finetune", 0.900, 300, predict_ms=2.1)]
    for paired in (
        [pair("finetune", "probe", 0.004, -0.005, 0.009)],
        [pair("probe", "finetune", -0.004, -0.009, 0.005)],
    ):
        choice = recommend(results, paired, priority="balanced")
        assert choice.strategy == "probe"
        assert choice.runner_up == "finetune"
        assert choice.reasons[0] == (
            "probe scores 89.6 [87.6, 91.6] macro-F1 against 90.0 [88.0, 92.0] for finetune; finetune's lead, +0.4 "
            "points [-0.5, 0.9], lies within the ±1-point margin of --priority balanced, so the two are practically "
            "equivalent, and probe costs less: probe fits faster (5.0 s against 5.0 min) and predicts about as fast "
            "(2 against 2.1 ms per text)"
        )
        assert "with --priority accuracy, finetune would be chosen" in choice.would_change


def test_a_significant_lead_within_the_margin_is_still_practical_equivalence() -> None:
    # finetune is significantly better, but by at most 0.8 points: equivalent under balanced and cost, not accuracy.
    results = [result("probe", 0.895, 5), result("finetune", 0.900, 300)]
    paired = [pair("finetune", "probe", 0.005, 0.002, 0.008)]
    for priority, expected in (("accuracy", "finetune"), ("balanced", "probe"), ("cost", "probe")):
        choice = recommend(results, paired, priority=priority)
        assert choice.strategy == expected
        assert choice.tolerance_points == {"accuracy": 0.0, "balanced": 1.0, "cost": 3.0}[priority]


def test_an_inconclusive_wide_interval_keeps_the_better_scoring_strategy() -> None:
    # 2 points apart, [-4.0, +8.0]: not significant, but not shown within ±1 (nor ±3) either. Documented behaviour:
    # equivalence must be shown, so the better-scoring strategy stays, and the reasons say the test set cannot tell.
    results = [result("zero-shot", 0.80, 0.01, predict_ms=1.0), result("probe", 0.82, 3.0, predict_ms=1.0)]
    paired = [pair("probe", "zero-shot", 0.02, -0.04, 0.08)]
    for priority in ("accuracy", "balanced", "cost"):
        choice = recommend(results, paired, priority=priority)
        assert choice.strategy == "probe"
    choice = recommend(results, paired)
    assert choice.reasons[1] == (
        "zero-shot is 2.0 points below probe [-8.0, 4.0]: not a significant difference, but the interval reaches "
        "beyond the ±1-point margin, so the two are not shown to be practically equivalent (80.0 [78.0, 82.0])"
    )
    assert any(
        line.startswith("zero-shot costs less, but its interval against probe is too wide")
        for line in (choice.would_change)
    )
    # Under accuracy's 0-point margin no test set could show equivalence, so that line is not offered.
    assert not any("too wide" in line for line in recommend(results, paired, priority="accuracy").would_change)


def test_seconds_of_fitting_never_outweigh_a_clear_lead() -> None:
    results = [result("probe", 0.85, 5), result("finetune", 0.90, 3000)]
    choice = recommend(results, [pair("finetune", "probe", 0.05, 0.035, 0.065)], priority="cost")
    assert choice.strategy == "finetune"
    assert "significantly and by more than the 3-point margin" in choice.reasons[1]


def test_a_significantly_better_strategy_wins_whatever_it_costs() -> None:
    choice = recommend(THREE, THREE_PAIRED)
    assert choice.strategy == "finetune"
    assert choice.runner_up == "probe"
    assert choice.reasons[0] == "finetune has the best macro-F1: 90.0 [88.0, 92.0]"
    assert choice.reasons[1] == (
        "probe is 10.0 points below finetune [-13.0, -7.0], significantly and by more than the 1-point margin "
        "(80.0 [78.0, 82.0])"
    )
    assert choice.would_change == (
        "without any labeled data, zero-shot is the only one of these you could use (it needs no labels); it scored "
        "40.0 [38.0, 42.0] here, against 90.0 [88.0, 92.0] for finetune",
    )


def test_equivalent_but_not_cheaper_keeps_the_best() -> None:
    # The probe is equivalent but predicts far slower (a large head, say): fitting faster does not make it cheaper.
    results = [result("probe", 0.898, 5, predict_ms=9.0), result("finetune", 0.900, 300, predict_ms=2.0)]
    choice = recommend(results, [pair("finetune", "probe", 0.002, -0.004, 0.008)])
    assert choice.strategy == "finetune"
    assert choice.reasons[1].startswith("probe (89.8 [87.8, 91.8]) is practically equivalent to finetune")
    assert "but is not cheaper: probe fits faster (5.0 s against 5.0 min) and predicts slower" in choice.reasons[1]


def test_the_cheapest_of_several_equivalent_strategies_is_chosen() -> None:
    results = [
        result("zero-shot", 0.897, 0.01, predict_ms=2.0),
        result("probe", 0.899, 5, predict_ms=2.0),
        result("finetune", 0.900, 300, predict_ms=2.0),
    ]
    paired = [
        pair("finetune", "probe", 0.001, -0.004, 0.006),
        pair("finetune", "zero-shot", 0.003, -0.005, 0.009),
        pair("probe", "zero-shot", 0.002, -0.004, 0.008),
    ]
    choice = recommend(results, paired)
    assert choice.strategy == "zero-shot"
    assert choice.runner_up == "probe"
    assert choice.reasons[1].startswith("probe (89.9 [87.9, 91.9]) is practically equivalent to finetune")
    assert "and cheaper, but zero-shot costs less still" in choice.reasons[1]
    # Chosen zero-shot: no line tells a user with labels to label more, nor that zero-shot needs no labels.
    assert not any("label" in line for line in choice.reasons + choice.would_change)


def test_an_exact_tie_goes_to_the_cheaper_strategy() -> None:
    results = [result("probe", 0.987, 2), result("finetune", 0.987, 97)]
    choice = recommend(results, [pair("probe", "finetune", 0.0, -0.004, 0.004)], priority="accuracy")
    assert choice.strategy == "probe"


def test_an_extrapolated_crossover_says_how_much_more_data_would_change_the_answer() -> None:
    curve = {
        "per_class_points": [8, 16, 32, 40.0],
        "crossover": {"a": "finetune", "b": "probe", "status": "extrapolated", "per_class": 95.0, "text": "..."},
    }
    choice = recommend(THREE[:2], [pair("probe", "zero-shot", 0.4, 0.35, 0.45)], learning_curve=curve)
    assert choice.strategy == "probe"
    assert any("about 55 more labeled examples per class (about 95 in all" in line for line in choice.would_change)


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
    assert choice.would_change[0] == (
        "with more labeled data, fine-tuning would likely edge ahead of the probe: at 80 examples per class the "
        "fitted curves give 98.8 against 98.4 (an extrapolation)"
    )


@pytest.mark.parametrize(
    ("where", "from_first_point", "said"), [(8.0, True, False), (8.0, None, False), (20.0, False, True)]
)
def test_a_smaller_label_budget_is_named_only_when_the_rival_led_at_some_measured_size(
    where: float, from_first_point: bool | None, said: bool
) -> None:
    crossover = {"a": "finetune", "b": "probe", "status": "observed", "per_class": where, "text": "..."}
    if from_first_point is not None:  # results written before the key existed have none
        crossover["from_first_point"] = from_first_point
    curve = {"per_class_points": [8, 16, 32, 40.0], "crossover": crossover}
    choice = recommend(THREE, THREE_PAIRED, learning_curve=curve)
    assert choice.strategy == "finetune"
    assert any("the probe was ahead on the learning curve" in line for line in choice.would_change) is said


def test_a_strategy_ahead_on_fewer_labels_is_named_with_the_size_where_it_lost_the_lead() -> None:
    setfit_ahead_below_30 = {"a": "finetune", "b": "setfit", "status": "observed", "per_class": 29.6}
    ahead_everywhere = {"a": "finetune", "b": "zero-shot", "status": "observed", "per_class": 8.0}
    curve = {
        "per_class_points": [8, 16, 32, 40.0],
        "crossover": None,
        "crossovers": [
            {**setfit_ahead_below_30, "from_first_point": False, "text": "..."},
            {**ahead_everywhere, "from_first_point": True, "text": "..."},
            {"a": "probe", "b": "finetune", "status": "extrapolated", "per_class": 400.0, "text": "..."},
        ],
    }
    choice = recommend(THREE, THREE_PAIRED, learning_curve=curve)
    assert choice.strategy == "finetune"
    assert (
        "with fewer than about 30 labeled examples per class SetFit was ahead on the learning curve, so a smaller "
        "label budget would favour it"
    ) in choice.would_change
    assert any(
        "about 400 labeled examples per class in all (against 40 now), the probe would likely overtake "
        "fine-tuning" in line
        for line in choice.would_change
    )
    assert not any("zero-shot" in line and "ahead on the learning curve" in line for line in choice.would_change)


def test_only_the_tokenizer_lines_of_the_diagnostics_are_cited() -> None:
    diagnostics = {
        "tokenizer": {"user": {"words": 100, "unknown_rate": 0.02}},
        "summary": ["splits line", "unknown line", "gap line", "hedge"],
    }
    choice = recommend(THREE, THREE_PAIRED, diagnostics=diagnostics)
    assert "splits line" in choice.reasons and "unknown line" in choice.reasons
    assert "gap line" not in choice.reasons and "hedge" not in choice.reasons


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


@pytest.mark.parametrize("priority", ["accuracy", "balanced", "cost"])
def test_the_choice_is_never_significantly_worse_than_the_best_by_more_than_the_margin(priority: str) -> None:
    """A grid of leads and interval widths: whatever the costs, a lead whose whole interval lies beyond the margin
    is never given up, and a lead whose interval lies within it always goes to the strategy cheaper on both counts."""
    margin = {"accuracy": 0.0, "balanced": 0.01, "cost": 0.03}[priority]
    for lead in (0.0, 0.005, 0.01, 0.02, 0.05, 0.1):
        for half_width in (0.0, 0.002, 0.01, 0.04):
            results = [result("probe", 0.8, 5, predict_ms=1.0), result("finetune", 0.8 + lead, 300, predict_ms=1.0)]
            paired = [pair("finetune", "probe", lead, lead - half_width, lead + half_width)]
            chosen = recommend(results, paired, priority=priority).strategy
            if lead - half_width > margin:
                assert chosen == "finetune", (lead, half_width)
            if -margin <= lead - half_width and lead + half_width <= margin:
                assert chosen == "probe", (lead, half_width)
