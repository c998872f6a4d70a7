"""Evaluation protocol, learning-curve planning and budget cuts: pure planning, no model is trained here."""

from __future__ import annotations

import pytest

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, LabeledTexts
from bertwise.evaluation.budget import Plan, estimate, fit_to_budget, parse_duration
from bertwise.evaluation.learning_curve import balanced_subsample, plan_curve
from bertwise.evaluation.protocol import choose_protocol
from bertwise.exceptions import ConfigError
from bertwise.strategies.cost import Calibration
from bertwise.strategies.finetune import FinetuneClassifier


def labeled(per_class: dict[str, int]) -> LabeledTexts:
    texts, labels = [], []
    for label, count in per_class.items():
        texts += [f"{label} text number {i}" for i in range(count)]
        labels += [label] * count
    return LabeledTexts(tuple(texts), tuple(labels), source="memory.csv")


def cross_validated(per_class: dict[str, int]) -> DataSplit:
    data = labeled(per_class)
    return DataSplit(train=data, test=data, test_origin="cross-validation")


def test_cross_validation_tests_every_row_exactly_once_and_never_trains_on_it() -> None:
    split = cross_validated({"a": 30, "b": 12, "c": 7})
    protocol = choose_protocol(split, CompareConfig())
    assert protocol.scheme == "cross-validation" and len(protocol.folds) == 5
    tested = sorted(row for fold in protocol.folds for row in fold.test_rows)
    assert tested == list(range(len(split.test)))
    for fold in protocol.folds:
        assert not set(fold.train_rows) & set(fold.test_rows)
        assert {split.train.labels[i] for i in fold.test_rows} == {"a", "b", "c"}  # stratified
    assert protocol.seeds == (0,)  # folds already train with distinct seeds
    assert "tests every row once" in protocol.why


def test_folds_shrink_to_the_smallest_class_and_a_fixed_test_set_gets_three_seeds() -> None:
    assert len(choose_protocol(cross_validated({"a": 30, "b": 3}), CompareConfig()).folds) == 3
    data = labeled({"a": 10, "b": 10})
    fixed = choose_protocol(DataSplit(train=data, test=data, test_origin="file"), CompareConfig(seed=7))
    assert fixed.scheme == "fixed-test" and len(fixed.folds) == 1 and fixed.seeds == (7, 8, 9)
    assert fixed.seeds_for(seed_dependent=False) == (7,)


def test_curve_points_double_from_eight_and_stop_before_the_full_set() -> None:
    split = cross_validated({"a": 100, "b": 100})  # 80 per class in the first fold's training part
    protocol = choose_protocol(split, CompareConfig())
    plan = plan_curve(split, protocol, CompareConfig(), ["probe", "finetune"])
    assert plan.points == (8, 16, 32, 64)
    assert plan.full_per_class == 80.0
    assert plan.repeats == {"probe": 5, "finetune": 3}
    assert len(plan.jobs()) == 4 * 5 + 4 * 3
    small = plan_curve(
        cross_validated({"a": 10, "b": 10}),
        choose_protocol(cross_validated({"a": 10, "b": 10}), CompareConfig()),
        CompareConfig(),
        ["probe"],
    )
    assert small.points == (2, 4)  # 8 per class in the fold: lower points rather than a single one


def test_balanced_subsample_takes_up_to_n_of_each_class_deterministically() -> None:
    pool = labeled({"a": 20, "b": 5})
    rows = balanced_subsample(pool, 8, seed=3)
    labels = [pool.labels[i] for i in rows]
    assert labels.count("a") == 8 and labels.count("b") == 5
    assert rows == balanced_subsample(pool, 8, seed=3)
    assert rows != balanced_subsample(pool, 8, seed=4)


def test_finetune_steps_mirror_the_classifier_schedule() -> None:
    finetune_steps = FinetuneClassifier.schedule().planned_steps
    assert finetune_steps(1000) == 29 * 14  # 900 training rows: 29 steps an epoch, 14 epochs reach 400 steps
    assert finetune_steps(40) == 2 * 200  # tiny sets: as many epochs as 400 steps take (no default cap)
    assert finetune_steps(100_000) == 2813 * 5  # large sets train 5 epochs
    assert finetune_steps(1000, scale=0.5) < finetune_steps(1000)


CALIBRATION = Calibration(encode_texts_per_second=300.0, train_examples_per_second=75.0, probe_seconds_per_row=1e-4)


def plan_for(split: DataSplit, config: CompareConfig) -> Plan:
    protocol = choose_protocol(split, config)
    curve = plan_curve(split, protocol, config, ["probe", "finetune"])
    return Plan(strategies=("zero-shot", "probe", "finetune"), protocol=protocol, curve=curve)


def test_a_budget_cuts_the_cheapest_evidence_first_and_says_so() -> None:
    data = labeled({label: 60 for label in "abcde"})
    split = DataSplit(train=data, test=labeled({label: 20 for label in "abcde"}), test_origin="file")
    plan = plan_for(split, CompareConfig())
    full = sum(estimate(plan, split, CALIBRATION).values())
    generous = fit_to_budget(plan, split, CALIBRATION, full * 2)
    assert generous.cuts == ()
    # Fine-tuning's small curve points train min_steps too, so they cost about a full fit each: cut to 1 repeat, they
    # save 40 % of this plan (0.6 of it keeps every seed).
    assert fit_to_budget(plan, split, CALIBRATION, full * 0.6).cuts == ("finetune learning-curve repeats 3 -> 1",)
    tight = fit_to_budget(plan, split, CALIBRATION, full * 0.5)
    # Curve repeats go first; the main comparison loses one seed only when that is not enough, and keeps two.
    assert tight.cuts == (
        "finetune learning-curve repeats 3 -> 1",
        "probe learning-curve repeats 5 -> 3",
        "finetune seeds 3 -> 2",
    )
    assert sum(estimate(tight, split, CALIBRATION).values()) <= full * 0.5
    assert tight.protocol.seeds == (0, 1) and tight.schedule_scale == 1.0


def test_an_impossible_budget_shortens_training_and_still_says_it_is_over() -> None:
    data = labeled({label: 60 for label in "abcde"})
    split = DataSplit(train=data, test=labeled({label: 20 for label in "abcde"}), test_origin="file")
    plan = fit_to_budget(plan_for(split, CompareConfig()), split, CALIBRATION, 1.0)
    assert plan.protocol.seeds == (0,)
    assert plan.curve is not None and "finetune" not in plan.curve.strategies
    assert plan.schedule_scale == 0.25
    assert plan.shortened_schedule("finetune") == {"min_steps": 100, "max_epochs": None, "min_epochs": 1}
    assert "shortened to 25%" in plan.cuts[-2]
    assert "over the 1.0 s budget; it runs anyway" in plan.cuts[-1]


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("90s", 90), ("1h30m", 5400), ("600", 600), ("2h", 7200)])
def test_budget_durations_are_read_like_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fifteen minutes", "15x", "0", "-5m", ""])
def test_unreadable_budgets_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ConfigError, match="duration|positive"):
        parse_duration(text)


def test_when_shorter_training_is_not_enough_the_budget_cuts_test_rows_keeping_every_class() -> None:
    data = labeled({label: 60 for label in "abcde"})
    test = labeled({"a": 2000, "b": 1000, "c": 500, "d": 300, "e": 1})
    split = DataSplit(train=data, test=test, test_origin="file")
    plan = plan_for(split, CompareConfig())
    shortened = fit_to_budget(plan, split, CALIBRATION, 1.0)  # far too tight: the floor, and still over
    rows = shortened.protocol.folds[0].test_rows
    assert 300 <= len(rows) <= 310  # FEWEST_TEST_ROWS, give or take a class's rounding
    kept = [test.labels[row] for row in rows]
    assert set(kept) == set("abcde")  # the one-row class keeps its row
    assert abs(kept.count("a") / len(kept) - 2000 / 3801) < 0.01  # every class its share
    assert any(cut.startswith(f"test set cut to {len(rows)} of 3801 rows") for cut in shortened.cuts)
    assert "it runs anyway" in shortened.cuts[-1]
    # Between the floor and every row: the most rows that fit, and then no "over the budget" note.
    at_floor = sum(estimate(shortened, split, CALIBRATION).values())
    roomier = fit_to_budget(plan, split, CALIBRATION, at_floor + 3.0)
    assert len(shortened.protocol.folds[0].test_rows) < len(roomier.protocol.folds[0].test_rows) < 3801
    assert sum(estimate(roomier, split, CALIBRATION).values()) <= at_floor + 3.0
    assert "it runs anyway" not in roomier.cuts[-1]
    # The same cut every time (a rerun's cached stages must meet the same rows).
    assert fit_to_budget(plan, split, CALIBRATION, at_floor + 3.0).protocol == roomier.protocol


def test_cross_validation_has_no_test_set_to_cut() -> None:
    split = cross_validated({label: 400 for label in "abc"})
    plan = fit_to_budget(plan_for(split, CompareConfig()), split, CALIBRATION, 1.0)
    assert not any(cut.startswith("test set cut") for cut in plan.cuts)
    assert sorted(row for fold in plan.protocol.folds for row in fold.test_rows) == list(range(1200))
