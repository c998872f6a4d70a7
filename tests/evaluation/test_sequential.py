"""The sequential protocol's stopping rule on constructed intervals and score sequences: it stops when it should, and
never while the (widened) interval straddles an edge of the tolerance band."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from bertwise.evaluation.sequential import (
    Look,
    StoppingRule,
    allowance,
    decide,
    lacking_spread,
    look,
    per_run_macro_f1,
    run_spread,
    widen,
)

N_CLASSES = 3


def _predictions(rng: np.random.Generator, y_true: np.ndarray, accuracy: float) -> np.ndarray:
    """Right on exactly ``round(accuracy * n)`` items (chosen at random), a random other class elsewhere."""
    n = y_true.size
    right = np.zeros(n, dtype=bool)
    right[rng.choice(n, size=round(accuracy * n), replace=False)] = True
    wrong = (y_true + rng.integers(1, N_CLASSES, size=n)) % N_CLASSES
    return np.where(right, y_true, wrong)


def _look(y_true: np.ndarray, runs: np.ndarray, rival: np.ndarray, rule: StoppingRule, **overrides: object) -> Look:
    options: dict[str, object] = {
        "part": "strategies",
        "strategy": "finetune",
        "against": "probe",
        "unit": f"seed {runs.shape[0]} of 3",
        "planned": 3,
        "prior_spread_points": 3.0,
        "resamples": 400,
        "seed": 0,
    }
    options.update(overrides)
    return look(y_true, runs, rival, N_CLASSES, rule, **options)  # type: ignore[arg-type]


@pytest.fixture
def y_true() -> np.ndarray:
    return np.random.default_rng(1).integers(0, N_CLASSES, size=400)


# --- decide ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "tolerance", "expected"),
    [
        (-0.20, -0.05, 1.0, "behind"),  # wholly below the band
        (0.05, 0.20, 1.0, "ahead"),  # wholly above it
        (-0.005, 0.008, 1.0, "equivalent"),  # wholly inside it
        (-0.03, 0.0, 1.0, None),  # straddles the lower edge
        (0.0, 0.03, 1.0, None),  # straddles the upper edge
        (-0.05, 0.05, 1.0, None),  # covers the whole band
        (-0.05, -0.0101, 1.0, "behind"),
        (-0.05, -0.01, 1.0, None),  # touching the edge is not beyond it
        (0.01, 0.05, 1.0, None),
        (-0.01, 0.01, 1.0, "equivalent"),  # the band is closed
        (-0.029, 0.029, 3.0, "equivalent"),  # the cost priority's wider band
        (-0.031, 0.029, 3.0, None),
        (0.001, 0.002, 0.0, "ahead"),  # the accuracy priority: any interval excluding zero decides
        (-0.002, -0.001, 0.0, "behind"),
    ],
)
def test_decide_reads_the_interval_against_the_band(
    low: float, high: float, tolerance: float, expected: str | None
) -> None:
    assert decide(low, high, tolerance) == expected


@pytest.mark.parametrize(("low", "high"), [(0.0, 0.0), (-1e-9, 1e-9), (-0.5, 0.5), (-0.001, 0.0)])
def test_zero_tolerance_never_gives_equivalent(low: float, high: float) -> None:
    assert decide(low, high, 0.0) is None


_bounds = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@given(_bounds, _bounds, st.sampled_from([0.0, 1.0, 3.0]))
def test_a_decided_interval_never_straddles_an_edge_of_the_band(a: float, b: float, tolerance_points: float) -> None:
    low, high = min(a, b), max(a, b)
    tolerance = tolerance_points / 100
    decision = decide(low, high, tolerance_points)
    straddles = any(low <= edge <= high for edge in (-tolerance, tolerance))
    if straddles and not (tolerance > 0 and -tolerance <= low and high <= tolerance):
        assert decision is None
    if decision == "behind":
        assert high < -tolerance
    elif decision == "ahead":
        assert low > tolerance
    elif decision == "equivalent":
        assert tolerance > 0 and -tolerance <= low and high <= tolerance
    else:  # undecided only when some part of the interval lies on each side of an edge
        assert low <= tolerance and high >= -tolerance
        assert not (tolerance > 0 and -tolerance <= low and high <= tolerance)


# --- the rule's confidence ---------------------------------------------------------------------------------------


def test_the_error_rate_is_shared_among_the_looks() -> None:
    one, two, four = (StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=n) for n in (1, 2, 4))
    assert one.confidence == pytest.approx(0.95)
    assert two.confidence == pytest.approx(0.975)
    assert four.confidence == pytest.approx(0.9875)
    assert one.z == pytest.approx(1.959964, abs=1e-5)
    assert two.z == pytest.approx(2.241403, abs=1e-5)
    assert one.z < two.z < four.z
    # No looks planned reads as one look, not a division by zero.
    assert StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=0).confidence == pytest.approx(0.95)


@pytest.mark.parametrize("error_rate", [0.0, 1.0, -0.1, 1.5])
def test_an_error_rate_outside_zero_one_is_refused(error_rate: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        StoppingRule(tolerance_points=1.0, error_rate=error_rate, looks=2)


def test_the_rule_describes_itself() -> None:
    described = StoppingRule(tolerance_points=3.0, error_rate=0.05, looks=2).to_dict()
    assert described["tolerance_points"] == 3.0
    assert described["looks_planned"] == 2
    assert described["confidence_per_look"] == pytest.approx(0.975)
    assert "Bonferroni" in described["rule"]


# --- the allowance for runs not yet seen -------------------------------------------------------------------------


def test_the_allowance_shrinks_as_runs_are_done_and_vanishes_when_all_are() -> None:
    z, spread = 2.0, 0.03
    widths = [allowance(z, spread, done, 3) for done in (1, 2, 3)]
    assert widths[0] > widths[1] > widths[2] == 0.0
    assert allowance(z, spread, 4, 3) == 0.0  # more runs than planned: nothing unseen
    assert allowance(z, spread, 1, 1) == 0.0  # a seed-free strategy's single run is all there is


def test_the_allowance_bounds_how_far_the_remaining_runs_move_the_mean() -> None:
    z, spread = 2.0, 0.03
    assert allowance(z, spread, 1, 3) == pytest.approx(z * spread * math.sqrt(2 / 3))
    assert allowance(z, spread, 2, 3) == pytest.approx(z * spread * math.sqrt(1 / 6))
    assert allowance(z, spread, 2, 5) == pytest.approx(z * spread * math.sqrt(3 / 10))


def test_the_lacking_spread_is_all_of_it_after_one_run_and_a_top_up_after_more() -> None:
    assert lacking_spread(2.0, 0.03, 0.0) == pytest.approx(0.06)
    assert lacking_spread(2.0, 0.03, 0.018) == pytest.approx(2.0 * 0.024)  # sqrt(0.03^2 - 0.018^2)
    assert lacking_spread(2.0, 0.03, 0.03) == 0.0
    assert lacking_spread(2.0, 0.03, 0.05) == 0.0  # the runs already show more spread than the prior


def test_the_allowance_scales_with_z_and_spread() -> None:
    assert allowance(4.0, 0.03, 1, 3) == pytest.approx(2 * allowance(2.0, 0.03, 1, 3))
    assert allowance(2.0, 0.06, 2, 3) == pytest.approx(2 * allowance(2.0, 0.03, 2, 3))
    assert allowance(2.0, 0.0, 1, 3) == 0.0


def test_a_look_needs_a_finished_run() -> None:
    with pytest.raises(ValueError, match="at least one finished run, got 0"):
        allowance(2.0, 0.03, 0, 3)


@pytest.mark.parametrize(
    ("scores", "prior", "expected"),
    [
        ([0.80], 3.0, 0.03),  # one run: only the prior
        ([0.80, 0.81, 0.805], 3.0, 0.03),  # runs that agree by chance do not shrink it below the prior
        ([0.70, 0.80, 0.90], 3.0, 0.1),  # a larger observed spread wins
        ([0.80, 0.80], 0.0, 0.0),
    ],
)
def test_run_spread_is_never_below_the_prior(scores: list[float], prior: float, expected: float) -> None:
    assert run_spread(scores, prior) == pytest.approx(expected)


def test_widen_moves_both_bounds_out() -> None:
    assert widen(-0.02, 0.05, 0.01) == pytest.approx((-0.03, 0.06))


def test_widen_combines_the_lacking_spread_in_quadrature_around_the_center() -> None:
    # Half-widths 0.03 and 0.04 around 0.01, each combined with 0.04: 0.05 and sqrt(0.0032); then 0.01 more.
    low, high = widen(-0.02, 0.05, 0.01, center=0.01, lacking=0.04)
    assert low == pytest.approx(0.01 - 0.05 - 0.01)
    assert high == pytest.approx(0.01 + math.sqrt(0.0032) + 0.01)


def test_per_run_macro_f1_matches_scikit_learn_and_scores_an_unseen_class_zero(y_true: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    runs = np.stack([_predictions(rng, y_true, 0.8), _predictions(rng, y_true, 0.6)])
    expected = [f1_score(y_true, run, average="macro") for run in runs]
    assert per_run_macro_f1(y_true, runs, N_CLASSES) == pytest.approx(expected)
    # A fourth class that neither truth nor predictions hold still counts, with F1 0.
    assert per_run_macro_f1(y_true, runs, N_CLASSES + 1) == pytest.approx([3 / 4 * score for score in expected])


# --- looks at constructed predictions ----------------------------------------------------------------------------


def test_a_clear_winner_is_decided_after_one_run(y_true: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    strong, weak = _predictions(rng, y_true, 0.95)[None, :], _predictions(rng, y_true, 0.60)[None, :]
    rule = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=2)
    ahead = _look(y_true, strong, weak, rule)
    behind = _look(y_true, weak, strong, rule, strategy="probe", against="finetune")
    assert ahead.decision == "ahead"
    assert behind.decision == "behind"
    assert ahead.difference == pytest.approx(-behind.difference)
    # The widened interval: the bootstrap one with the run spread it lacks (all of the 3-point prior) combined in
    # quadrature, then moved out by how far the two runs not yet seen could move the mean.
    expected = widen(
        *ahead.interval,
        allowance(rule.z, 0.03, 1, 3),
        center=ahead.difference,
        lacking=lacking_spread(rule.final_z, 0.03, 0),
    )
    assert ahead.widened == pytest.approx(expected)
    assert ahead.confidence == pytest.approx(0.975)
    assert ahead.widened[0] > 0.01


def test_near_identical_strategies_stay_undecided_while_runs_are_unseen(y_true: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    rival = _predictions(rng, y_true, 0.8)
    runs = rival.copy()
    runs[:4] = y_true[:4]  # a few items apart
    rule = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=2)
    seen = _look(y_true, runs[None, :], rival[None, :], rule)
    assert seen.decision is None
    assert seen.widened[0] < -0.01 and seen.widened[1] > 0.01  # it straddles both edges


def test_identical_predictions_are_equivalent_only_with_a_tolerance(y_true: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    same = _predictions(rng, y_true, 0.8)[None, :]
    options = {"planned": 1, "prior_spread_points": 0.0}
    balanced = _look(y_true, same, same, StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=1), **options)
    accuracy = _look(y_true, same, same, StoppingRule(tolerance_points=0.0, error_rate=0.05, looks=1), **options)
    assert balanced.decision == "equivalent"
    assert accuracy.decision is None


def test_the_decision_waits_until_enough_runs_exist(y_true: np.ndarray) -> None:
    """A 13-point lead: too little after one run, with two runs unseen at a 3-point prior spread; decided after two."""
    rng = np.random.default_rng(6)
    rival = _predictions(rng, y_true, 0.68)[None, :]
    runs = np.stack([_predictions(rng, y_true, 0.81) for _ in range(3)])
    rule = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=2)
    looks = [_look(y_true, runs[:done], rival, rule) for done in (1, 2, 3)]
    assert [seen.decision for seen in looks] == [None, "ahead", "ahead"]
    assert looks[0].widened[0] <= 0.01  # undecided because the widened interval reaches into the band
    widths = [seen.widened[1] - seen.widened[0] for seen in looks]
    assert widths[0] > widths[1]
    # With all runs done nothing is added to the bootstrap interval.
    assert looks[2].widened == pytest.approx(looks[2].interval)


def test_extra_width_for_a_half_trained_run_can_hold_the_decision_back(y_true: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    strong, weak = _predictions(rng, y_true, 0.95)[None, :], _predictions(rng, y_true, 0.60)[None, :]
    rule = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=2)
    assert _look(y_true, weak, strong, rule).decision == "behind"
    held = _look(y_true, weak, strong, rule, extra=0.5)
    assert held.decision is None
    assert held.widened[1] > 0.01


def test_a_widely_spread_run_set_is_held_back_by_its_observed_spread(y_true: np.ndarray) -> None:
    """Runs 30 points apart: their observed spread, far above the prior, keeps the look open."""
    rng = np.random.default_rng(8)
    rival = _predictions(rng, y_true, 0.70)[None, :]
    runs = np.stack([_predictions(rng, y_true, 0.95), _predictions(rng, y_true, 0.65)])
    rule = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=2)
    assert _look(y_true, runs, rival, rule).decision is None
    assert _look(y_true, runs, rival, rule, prior_spread_points=0.0).decision is None


def test_the_reason_names_the_rival_and_the_margin(y_true: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    strong, weak = _predictions(rng, y_true, 0.95)[None, :], _predictions(rng, y_true, 0.60)[None, :]
    rule = StoppingRule(tolerance_points=1.0, error_rate=0.05, looks=2)
    behind = _look(y_true, weak, strong, rule, strategy="finetune", against="probe")
    text = behind.reason(1.0)
    assert text.startswith(f"it trails probe by {-100 * behind.difference:.1f} points [")
    assert "beyond the 1-point margin" in text and "runs not yet seen" in text
    assert _look(y_true, strong, weak, rule).reason(1.0).startswith("it leads probe by")
    described = behind.to_dict()
    assert described["decision"] == "behind"
    assert described["unit"] == "seed 1 of 3"
    assert described["widened_interval"][1] < -0.01
