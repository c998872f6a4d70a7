"""The budget as a deadline, on a fake clock: time left, estimates that follow measured fits, and refusals."""

from __future__ import annotations

import pytest

from bertwise.evaluation.deadline import RECENT_FITS, Deadline
from bertwise.strategies.cost import Calibration, FitWork

# The probe's cost model with these figures: 200 test rows / 100 texts/s + 1000 rows * 0.01 s/row = 12 s.
CALIBRATION = Calibration(encode_texts_per_second=100.0, train_examples_per_second=10.0, probe_seconds_per_row=0.01)
WORK = FitWork(train_rows=1000, test_rows=200, n_classes=3, encode_train=False)
CURVE_WORK = FitWork(train_rows=1000, test_rows=200, n_classes=3, encode_train=False, curve_point=True)  # 10 s


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _deadline(limit: float = 60.0, finishing: float | None = 0.0) -> tuple[Deadline, FakeClock]:
    clock = FakeClock()
    deadline = Deadline(limit, started=clock.now, calibration=CALIBRATION, clock=clock, finishing_seconds=finishing)
    return deadline, clock


def test_remaining_follows_the_clock_and_keeps_time_back_for_the_report() -> None:
    deadline, clock = _deadline(60.0, finishing=None)
    assert deadline.remaining() == pytest.approx(60.0 - 15.0)  # the finishing stages' 15 s, the least kept back
    clock.now += 30.0
    assert deadline.remaining() == pytest.approx(15.0)
    clock.now += 30.0
    assert deadline.remaining() == pytest.approx(-15.0)
    long, _ = _deadline(1800.0, finishing=None)
    assert long.remaining() == pytest.approx(1800.0 * 0.95)  # 5 % of a longer budget


def test_estimates_follow_the_measured_fits() -> None:
    deadline, _ = _deadline()
    assert deadline.correction("probe", False) == 1.0
    assert deadline.estimate("probe", WORK) == pytest.approx(12.0)
    deadline.record("probe", WORK, 24.0)  # the machine got twice as slow
    assert deadline.correction("probe", False) == pytest.approx(2.0)
    assert deadline.estimate("probe", WORK) == pytest.approx(24.0)
    deadline.record("probe", WORK, 12.0)
    assert deadline.correction("probe", False) == pytest.approx(1.5)
    # Another strategy's estimates are not touched.
    assert deadline.correction("zero-shot", False) == 1.0


def test_only_the_recent_fits_count() -> None:
    deadline, _ = _deadline()
    for seconds in [120.0] * 4 + [12.0] * RECENT_FITS:  # slow at first, then back to the calibrated speed
        deadline.record("probe", WORK, seconds)
    assert deadline.correction("probe", False) == pytest.approx(1.0)
    deadline.record("probe", WORK, 48.0)
    assert deadline.correction("probe", False) == pytest.approx((1.0 * (RECENT_FITS - 1) + 4.0) / RECENT_FITS)


def test_a_kind_without_fits_borrows_the_other_kinds_ratios() -> None:
    deadline, _ = _deadline()
    deadline.record("probe", WORK, 36.0)  # ratio 3 on main fits
    assert deadline.estimate("probe", CURVE_WORK) == pytest.approx(30.0)
    deadline.record("probe", CURVE_WORK, 10.0)  # curve points at the calibrated speed: their own ratio wins
    assert deadline.correction("probe", True) == pytest.approx(1.0)
    assert deadline.correction("probe", False) == pytest.approx(3.0)


def test_a_fit_measured_at_zero_seconds_is_ignored() -> None:
    deadline, _ = _deadline()
    deadline.record("probe", WORK, 0.0)
    assert deadline.ratios == {}


def test_refusal_is_none_when_the_work_fits() -> None:
    deadline, clock = _deadline(60.0)
    assert deadline.refusal("probe", WORK, "the probe's curve") is None
    clock.now += 48.0  # exactly 12 s left for a 12 s fit
    assert deadline.refusal("probe", WORK, "the probe's curve") is None


def test_refusal_names_the_estimate_and_the_time_left() -> None:
    deadline, clock = _deadline(60.0)
    clock.now += 55.0
    assert deadline.refusal("probe", WORK, "probe repeat 2") == (
        "probe repeat 2 skipped: estimated at 12 s, 5.0 s of the budget left"
    )
    deadline.record("probe", WORK, 24.0)
    clock.now -= 40.0  # 45 s left: the doubled estimate, 24 s, fits
    assert deadline.refusal("probe", WORK, "probe repeat 2") is None
    deadline.record("probe", WORK, 120.0)  # ratios 2 and 10: 6 x 12 s
    assert deadline.refusal("probe", WORK, "probe repeat 2") == (
        "probe repeat 2 skipped: estimated at 72 s, 45 s of the budget left"
    )


def test_an_overrun_budget_shows_no_negative_time_left() -> None:
    deadline, clock = _deadline(60.0)
    clock.now += 90.0
    assert deadline.refusal("probe", WORK, "seed 2") == "seed 2 skipped: estimated at 12 s, 0.0 s of the budget left"
