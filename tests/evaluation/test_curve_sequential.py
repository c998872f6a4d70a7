"""The learning curve under the sequential protocol: repeats stop once they cannot change which is ahead, the budget's
deadline skips what it has no time for, and without either the curve is the full protocol's.

No model trains here: ``stored_fit`` is replaced by one that returns constructed fits whose predictions are right on
a chosen share of the test rows, and that counts every fit asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, LabeledTexts
from bertwise.evaluation import runner
from bertwise.evaluation.curve_sequential import CurveStopping
from bertwise.evaluation.deadline import Deadline
from bertwise.evaluation.learning_curve import CurvePlan, curve_looks, run_curve
from bertwise.evaluation.protocol import choose_protocol
from bertwise.evaluation.runner import Fit
from bertwise.evaluation.sequential import StoppingRule
from bertwise.strategies.cost import Calibration

TEST_ROWS = 200
CONFIG = CompareConfig(bootstrap_resamples=200)


def labeled(per_class: int, word: str) -> LabeledTexts:
    texts = [f"{label} {word} {i}" for label in ("a", "b") for i in range(per_class)]
    labels = [label for label in ("a", "b") for _ in range(per_class)]
    return LabeledTexts(tuple(texts), tuple(labels), source="memory.csv")


SPLIT = DataSplit(train=labeled(40, "train"), test=labeled(TEST_ROWS // 2, "test"), test_origin="file")
PROTOCOL = choose_protocol(SPLIT, CONFIG)
Y_TRUE = np.array([0] * (TEST_ROWS // 2) + [1] * (TEST_ROWS // 2))


def predictions(correct_share: float) -> np.ndarray:
    """Class indices right on the first ``correct_share`` of the test rows and wrong on the rest."""
    right = int(round(correct_share * TEST_ROWS))
    return np.where(np.arange(TEST_ROWS) < right, Y_TRUE, 1 - Y_TRUE)


def macro_f1(correct_share: float) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(Y_TRUE, predictions(correct_share), average="macro"))


class FakeFits:
    """Stands in for ``runner.stored_fit``: every fit asked for is recorded as (name, per class, repeat), and is
    right on ``share(name, per_class)`` of the test rows; each fit takes ``seconds`` on ``clock``."""

    def __init__(self, share: Callable[[str, int], float], seconds: float = 1.0) -> None:
        self.share = share
        self.seconds = seconds
        self.calls: list[tuple[str, int, int]] = []
        self.clock = 0.0

    def __call__(self, store: Any, fit_id: str, **fit_args: Any) -> Fit:
        name, per_class, repeat = fit_id.rsplit("-", 2)
        self.calls.append((name, int(per_class), int(repeat)))
        details: dict[str, Any] = {}
        monitor = fit_args.get("monitor")
        for step in range(1, 11):  # ten training steps, a tenth of the fit's time each, the monitor asked after each
            self.clock += self.seconds / 10
            reason = monitor(SimpleNamespace(step=step, total_steps=10)) if monitor is not None else None
            if reason:  # training ends here; predicting is instant
                details = {"stopped_by": reason, "stopped_at_step": step}
                break
        chosen = predictions(self.share(name, int(per_class)))
        probabilities = np.eye(2)[chosen]
        return Fit(probabilities, self.seconds, 0.0, 0.0, None, {}, details)

    def fitted(self, name: str, per_class: int) -> list[int]:
        return [repeat for fitted, point, repeat in self.calls if (fitted, point) == (name, per_class)]


def plan(points: tuple[int, ...] = (8, 16), **repeats: int) -> CurvePlan:
    repeats = repeats or {"finetune": 3, "probe": 3}
    return CurvePlan(points=points, full_per_class=40.0, repeats=repeats, strategies=tuple(repeats))


def full_runs(*names: str) -> dict[str, np.ndarray]:
    return {name: predictions(0.9)[None, :] for name in names}


def curve(fakes: FakeFits, monkeypatch: pytest.MonkeyPatch, curve_plan: CurvePlan, **keywords: Any) -> dict[str, Any]:
    monkeypatch.setattr(runner, "stored_fit", fakes)
    return run_curve(
        curve_plan,
        SPLIT,
        PROTOCOL,
        CONFIG,
        full_runs=full_runs(*curve_plan.strategies),
        references={},
        **keywords,
    )


def sequential(curve_plan: CurvePlan, tolerance_points: float = 0.0) -> CurveStopping:
    rule = StoppingRule(tolerance_points=tolerance_points, error_rate=0.05, looks=curve_looks(curve_plan))
    return CurveStopping(rule=rule, resamples=200, seed=0)


def test_the_planned_looks_are_one_after_each_repeat_but_the_last_where_the_rivals_meet() -> None:
    assert curve_looks(plan()) == 2 * (3 - 1)
    thinned = CurvePlan(
        points=(8, 16, 32),
        full_per_class=40.0,
        repeats={"finetune": 2, "probe": 5},
        strategies=("finetune", "probe"),
        points_by_strategy={"finetune": (8,)},
    )
    assert curve_looks(thinned) == 1
    assert curve_looks(plan(finetune=3)) == 0  # no frozen rival: nothing to look against
    assert curve_looks(plan(finetune=1, probe=5)) == 0  # a single repeat leaves nothing to stop


def test_a_clearly_losing_point_stops_after_one_repeat_and_an_undecided_one_runs_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fine-tuning is right on 20 % of the rows at 8 per class against the probe's 90 %; level with it at 16.
    fakes = FakeFits(lambda name, per_class: 0.2 if (name, per_class) == ("finetune", 8) else 0.9)
    curve_plan = plan()
    result = curve(fakes, monkeypatch, curve_plan, stopping=sequential(curve_plan))

    assert fakes.fitted("finetune", 8) == [0]  # repeats 2 and 3 never fitted
    assert fakes.fitted("finetune", 16) == [0, 1, 2]
    assert fakes.fitted("probe", 8) == fakes.fitted("probe", 16) == [0, 1, 2]  # the cheap rival always runs in full
    assert [name for name, _, _ in fakes.calls] == ["probe"] * 6 + ["finetune"] * 4  # the rival runs first
    assert list(result["strategies"]) == ["finetune", "probe"]  # the plan's order, whatever order they ran in
    assert [(point["per_class"], point["runs"]) for point in result["strategies"]["finetune"]] == [
        (8, 1),
        (16, 3),
        (40.0, 1),
    ]

    stopping = result["stopping"]
    assert [(look["unit"], look["decision"]) for look in stopping["looks"]] == [
        ("8 per class, repeat 1 of 3", "behind"),
        ("16 per class, repeat 1 of 3", None),
        ("16 per class, repeat 2 of 3", None),
    ]
    assert all(look["part"] == "curve" and look["against"] == "probe" for look in stopping["looks"])
    [stop] = stopping["stopped"]
    assert (stop["strategy"], stop["per_class"], stop["after"]) == ("finetune", 8, "repeat 1 of 3")
    trails = 100 * (macro_f1(0.9) - macro_f1(0.2))
    assert stop["text"].startswith(
        f"fine-tuning's curve at 8 per class stopped after repeat 1 of 3: it trails probe by {trails:.1f} points ["
    )
    assert stop["text"].endswith("; more repeats could not change which is ahead there")
    assert stopping["skipped_for_budget"] == []


def test_a_clearly_winning_point_stops_too_and_a_strategy_without_a_rival_runs_every_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = FakeFits(lambda name, per_class: {"finetune": 0.95, "probe": 0.3, "zero-shot": 0.5}[name])
    curve_plan = plan(finetune=3, probe=2, **{"zero-shot": 2})
    result = curve(fakes, monkeypatch, curve_plan, stopping=sequential(curve_plan, tolerance_points=1.0))

    assert fakes.fitted("finetune", 8) == fakes.fitted("finetune", 16) == [0]
    assert fakes.fitted("zero-shot", 8) == fakes.fitted("zero-shot", 16) == [0, 1]  # no rival: no looks, every repeat
    assert [look["decision"] for look in result["stopping"]["looks"]] == ["ahead", "ahead"]
    assert (
        f"it leads probe by {100 * (macro_f1(0.95) - macro_f1(0.3)):.1f} points"
        in result["stopping"]["stopped"][0]["text"]
    )


def test_an_undecided_interval_never_stops_even_on_a_near_tie_with_no_tolerance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = FakeFits(lambda name, per_class: 0.9 if name == "finetune" else 0.885)
    curve_plan = plan()
    result = curve(fakes, monkeypatch, curve_plan, stopping=sequential(curve_plan))
    assert len(fakes.calls) == len(curve_plan.jobs())
    assert result["stopping"]["stopped"] == []
    assert len(result["stopping"]["looks"]) == curve_looks(curve_plan)


def test_the_deadline_skips_the_fits_it_has_no_time_for_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = FakeFits(lambda name, per_class: 0.8, seconds=30.0)
    # The probe's estimate is a second per training row (16 rows at 8 per class); measured fits take 30 s, and the
    # deadline follows them: 30 s left after two fits is enough for a third, 15 s is not.
    calibration = Calibration(encode_texts_per_second=100.0, train_examples_per_second=10.0, probe_seconds_per_row=1.0)
    deadline = Deadline(
        limit_seconds=75.0, started=0.0, calibration=calibration, clock=lambda: fakes.clock, finishing_seconds=0.0
    )
    curve_plan = plan(points=(8, 16, 32), probe=3)
    result = curve(fakes, monkeypatch, curve_plan, deadline=deadline)

    assert fakes.calls == [("probe", 8, 0), ("probe", 8, 1)]
    assert [(point["per_class"], point["runs"]) for point in result["strategies"]["probe"]] == [(8, 2), (40.0, 1)]
    [skipped] = result["stopping"]["skipped_for_budget"]
    assert skipped.startswith("the probe's curve at 8 per class, repeat 3 skipped: estimated at 30")
    assert skipped.endswith("of the budget left; so were its later points (16, 32 per class)")
    assert result["stopping"]["looks"] == result["stopping"]["stopped"] == []
    assert deadline.correction("probe", True) == pytest.approx(30.0 / 16.0)  # the measured fits were recorded


def test_a_curve_fit_whose_training_the_budget_ends_is_abandoned_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = FakeFits(lambda name, per_class: 0.8, seconds=30.0)
    # Fine-tuning's estimate (4 s) lets the first fit start with 20 s left; it really takes 30 s, so the deadline
    # ends its training at step 7 of 10. A point trained on less than planned would misstate that many examples.
    calibration = Calibration(encode_texts_per_second=1e6, train_examples_per_second=1e6, probe_seconds_per_row=0.0)
    deadline = Deadline(
        limit_seconds=20.0, started=0.0, calibration=calibration, clock=lambda: fakes.clock, finishing_seconds=0.0
    )
    result = curve(fakes, monkeypatch, plan(points=(8, 16), finetune=2), deadline=deadline)

    assert fakes.calls == [("finetune", 8, 0)]
    assert [(point["per_class"], point["runs"]) for point in result["strategies"]["finetune"]] == [(40.0, 1)]
    [abandoned] = result["stopping"]["skipped_for_budget"]
    assert abandoned == (
        "fine-tuning's curve at 8 per class, repeat 1 abandoned: the budget ran out at step 7 of 10; "
        "its later points were skipped (16 per class)"
    )


def test_without_stopping_or_deadline_the_curve_is_the_full_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    share = {("finetune", 8): 0.2, ("finetune", 16): 0.6, ("probe", 8): 0.9, ("probe", 16): 0.92}
    curve_plan = plan()
    before = FakeFits(lambda name, per_class: share[(name, per_class)])
    today = curve(before, monkeypatch, curve_plan)
    after = FakeFits(before.share)
    explicit = curve(after, monkeypatch, curve_plan, stopping=None, deadline=None, schedule_scale=1.0)

    assert explicit == today
    assert "stopping" not in today
    assert before.calls == after.calls == curve_plan.jobs()  # every planned fit, in the plan's order
    assert [point["runs"] for point in today["strategies"]["finetune"]] == [3, 3, 1]


def test_every_other_pair_of_curves_says_where_one_overtook_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    # SetFit leads at 8 per class, fine-tuning from 16 on; the probe trails both everywhere.
    shares = {("setfit", 8): 0.85, ("setfit", 16): 0.8, ("finetune", 8): 0.6, ("finetune", 16): 0.88}
    fakes = FakeFits(lambda name, per_class: shares.get((name, per_class), 0.55))
    curve_plan = plan(finetune=1, probe=1, setfit=1)
    monkeypatch.setattr(runner, "stored_fit", fakes)
    full = {"finetune": predictions(0.95)[None, :], "probe": predictions(0.6)[None, :]}
    full["setfit"] = predictions(0.85)[None, :]
    result = run_curve(curve_plan, SPLIT, PROTOCOL, CONFIG, full_runs=full, references={})

    assert (result["crossover"]["a"], result["crossover"]["b"]) == ("finetune", "probe")  # the main pair, unchanged
    by_pair = {(c["a"], c["b"]): c for c in result["crossovers"]}
    assert ("finetune", "probe") not in by_pair and ("probe", "finetune") not in by_pair
    overtaken = by_pair[("finetune", "setfit")]
    assert overtaken["status"] == "observed" and 8 < overtaken["per_class"] < 16
    assert not overtaken["from_first_point"]
    assert overtaken["text"].startswith("fine-tuning overtakes SetFit at about")
    ahead = by_pair[("setfit", "probe")]
    assert ahead["status"] == "observed" and ahead["from_first_point"]
    # The one behind at the data's size gets the forward-looking question: would it overtake with more data?
    assert by_pair[("setfit", "finetune")]["status"] in ("extrapolated", "none", "unknown")
    assert by_pair[("probe", "setfit")]["status"] in ("extrapolated", "none", "unknown")
