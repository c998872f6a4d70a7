"""The plan/budget stage: the protocol, the learning curve's points, the calibration of this machine's speed, the
estimates, and the cuts a budget makes (or, without one, the cuts a long plan could take)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit
from bertwise.evaluation import budget as budgeting
from bertwise.evaluation.learning_curve import curve_looks as curve_looks_of
from bertwise.evaluation.learning_curve import plan_curve, refit_plan
from bertwise.evaluation.protocol import choose_protocol
from bertwise.evaluation.sequential import StoppingRule
from bertwise.strategies.registry import strategy_tags  # the strategies import scikit-learn
from bertwise.util.kill_hook import kill_point

if TYPE_CHECKING:
    from bertwise.evaluation.budget import Calibration, Plan
    from bertwise.evaluation.run_cache import RunCache

# Without --budget, a plan estimated over LONG_PLAN_SECONDS is announced as long, with the cuts --budget would make
# to fit SUGGESTED_BUDGET_SECONDS.
LONG_PLAN_SECONDS = 30 * 60
SUGGESTED_BUDGET_SECONDS = 15 * 60


@dataclass(frozen=True)
class Planned:
    """The plan to run, its estimated seconds per part, results.json's "budget" record (measured seconds are added as
    the stages finish), whether the calibration came from the run cache, and the sequential protocol's stopping rules
    (None under the full protocol): one for the looks that can change the recommendation, one for the curve's."""

    plan: Plan
    # The data the comparison runs on: the loaded split, its test set cut when the budget cut test rows.
    split: DataSplit
    estimates: dict[str, float]
    budget: dict[str, Any]
    calibration_reused: bool
    calibration: Calibration
    rule: StoppingRule | None = None
    curve_rule: StoppingRule | None = None


def make_plan(config: CompareConfig, split: DataSplit, run_cache: RunCache | None) -> Planned:
    """The plan for ``config`` on ``split``, cut to ``config.budget_seconds`` when there is one."""
    protocol = choose_protocol(split, config)
    trained = [name for name in config.strategies if strategy_tags(name).uses_labels_for_training]
    curve = plan_curve(split, protocol, config, trained) if config.learning_curve and trained else None
    plan = budgeting.Plan(strategies=config.strategies, protocol=protocol, curve=curve)
    calibration, reused = _calibration(config, split, run_cache)
    uncut = budgeting.estimate(plan, split, calibration)
    sequential = config.protocol == "sequential"
    if sequential:
        # Cheapest first: the cheap strategies' results are the rivals the expensive ones race against.
        plan = replace(plan, strategies=tuple(sorted(plan.strategies, key=lambda name: uncut[name])))
    suggested = None
    if config.budget_seconds is not None and sequential:
        plan = _essentials_budgeted(plan, split, calibration, config.budget_seconds)
    elif config.budget_seconds is not None:
        plan = _budgeted(plan, split, calibration, config.budget_seconds)
    elif sum(uncut.values()) > LONG_PLAN_SECONDS:
        suggested = _suggestion(plan, split, calibration, sequential=sequential)
    plan, split = _test_set_cut(plan, split)
    parts = budgeting.estimate(plan, split, calibration)
    record = {
        "protocol": config.protocol,
        "limit_seconds": config.budget_seconds,
        "estimated_seconds": round(sum(parts.values()), 1),
        "estimated_seconds_uncut": round(sum(uncut.values()), 1),
        "estimated_seconds_by_part": {part: round(seconds, 1) for part, seconds in parts.items()},
        "measured_seconds_by_part": {},
        "calibration": calibration.to_dict(),
        "cuts": list(plan.cuts),
        "suggested": suggested,
    }
    if sequential and config.budget_seconds is not None:
        record["deadline"] = (
            "one run of each strategy was fitted into the budget; further seeds and the learning curves run while "
            "it has time for them, most useful first"
        )
    if sequential:
        # What the answer itself needs: one run of every strategy, no curve. The rest may stop early.
        record["estimated_seconds_first_runs"] = round(
            sum(budgeting.estimate(_first_runs(plan), split, calibration).values()), 1
        )
    rule, curve_rule = _rules(plan, config) if sequential else (None, None)
    return Planned(
        plan=plan,
        split=split,
        estimates=parts,
        budget=record,
        calibration_reused=reused,
        calibration=calibration,
        rule=rule,
        curve_rule=curve_rule,
    )


def _rules(plan: Plan, config: CompareConfig) -> tuple[StoppingRule, StoppingRule | None]:
    """The stopping rules, their error rate (1 - the confidence) shared among the looks each may take: a look after
    every run of a seed-dependent strategy but its last, and one inside every training fit; the curve's looks apart,
    as they can change the curve's statements but not the recommendation."""
    error_rate = 1.0 - config.confidence
    looks = 0
    for name in plan.strategies:
        tags = strategy_tags(name)
        runs = len(plan.protocol.seeds_for(tags.seed_dependent))
        looks += runs - 1
        if tags.has_training_schedule:
            looks += runs * len(plan.protocol.folds)
    rule = StoppingRule(config.tolerance_points, error_rate, max(1, looks))
    curve_looks = curve_looks_of(plan.curve) if plan.curve is not None else 0
    curve_rule = StoppingRule(config.tolerance_points, error_rate, curve_looks) if curve_looks else None
    return rule, curve_rule


def _essentials_budgeted(plan: Plan, split: DataSplit, calibration: Calibration, limit: float) -> Plan:
    """Under the sequential protocol a budget cuts at plan time only what the answer needs, one run of every
    strategy (folds, then the training length), so that it fits; seeds and curves are kept in the plan and run while
    the deadline has time for them (:mod:`bertwise.evaluation.deadline`), most useful first."""
    cut = budgeting.fit_to_budget(_first_runs(plan), split, calibration, limit)
    protocol = replace(plan.protocol, folds=cut.protocol.folds)
    curve = plan.curve
    if curve is not None and cut.protocol.folds[0] != plan.protocol.folds[0]:
        curve = refit_plan(curve, split, protocol)
    return replace(plan, protocol=protocol, curve=curve, schedule_scale=cut.schedule_scale, cuts=cut.cuts)


def _test_set_cut(plan: Plan, split: DataSplit) -> tuple[Plan, DataSplit]:
    """When the budget cut test rows: the split whose test set is those rows only, and the plan renumbered onto it, so
    that every later stage (scores, intervals, predictions, the report) speaks of the rows that were tested."""
    rows = plan.protocol.folds[0].test_rows
    if plan.protocol.scheme == "cross-validation" or len(rows) == len(split.test):
        return plan, split
    note = (
        f"the budget kept {len(rows)} of the {len(split.test)} test rows (every class its share, seed "
        f"{plan.protocol.seeds[0]}); scores speak of those rows"
    )
    cut = replace(split, test=split.test.subset(rows), notes=(*split.notes, note))
    folds = tuple(replace(fold, test_rows=tuple(range(len(rows)))) for fold in plan.protocol.folds)
    return replace(plan, protocol=replace(plan.protocol, folds=folds)), cut


def _calibration(config: CompareConfig, split: DataSplit, run_cache: RunCache | None) -> tuple[Calibration, bool]:
    """This machine's measured speeds, and whether they came from the run cache. A kept calibration matters beyond its
    seconds: the budget's cuts follow from it, and so do the later stages' keys."""
    calibration = run_cache.load_calibration() if run_cache is not None else None
    if calibration is not None:
        return calibration, True
    calibration = budgeting.calibrate(split, config.model, config.pooling, config.device, config.seed, config.precision)
    kill_point("calibration")  # the test hook: measured, not yet kept
    if run_cache is not None:
        run_cache.save_calibration(calibration)
    return calibration, False


def _first_runs(plan: Plan) -> Plan:
    """``plan`` with one run of every strategy and no learning curve: what the answer itself needs."""
    return replace(plan, protocol=replace(plan.protocol, seeds=plan.protocol.seeds[:1]), curve=None)


def _suggestion(plan: Plan, split: DataSplit, calibration: Calibration, *, sequential: bool) -> dict[str, Any]:
    """What ``--budget`` with SUGGESTED_BUDGET_SECONDS would do to a long plan (under the sequential protocol, to the
    first run of each strategy; the rest would run while time is left)."""
    if sequential:
        shorter = _first_runs(_essentials_budgeted(plan, split, calibration, SUGGESTED_BUDGET_SECONDS))
    else:
        shorter = _budgeted(plan, split, calibration, SUGGESTED_BUDGET_SECONDS)
    shorter_seconds = sum(budgeting.estimate(shorter, split, calibration).values())
    fits = shorter_seconds <= SUGGESTED_BUDGET_SECONDS
    return {
        "when_over_seconds": LONG_PLAN_SECONDS,
        "budget_seconds": SUGGESTED_BUDGET_SECONDS,
        "estimated_seconds": round(shorter_seconds, 1),
        "fits": fits,
        # When nothing fits, fit_to_budget's last cut is the note saying so ("even this plan..."): the fits flag
        # says it here.
        "cuts": list(shorter.cuts if fits else shorter.cuts[:-1]),
    }


def _budgeted(plan: Plan, split: DataSplit, calibration: Calibration, limit: float) -> Plan:
    """``plan`` cut to fit ``limit`` seconds, its learning curve re-planned on the folds the cuts left."""
    cut = budgeting.fit_to_budget(plan, split, calibration, limit)
    if cut.curve is not None and cut.protocol.folds[0] != plan.protocol.folds[0]:
        cut = replace(cut, curve=refit_plan(cut.curve, split, cut.protocol))
    return cut
