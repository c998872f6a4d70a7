"""Pick one strategy from the measured evidence, with the reasons in plain words and what would change the answer.

The rule (docs/recommendation.md has it with worked cases):

1. The *best* strategy is the one with the highest mean macro-F1 (an exact tie goes to the one that predicts faster,
   then fits faster).
2. The priority's tolerance (``PRIORITY_TOLERANCE_POINTS``: accuracy 0, balanced 1, cost 3 macro-F1 points) is a
   margin of practical equivalence. Another strategy is *practically equivalent* to the best when the whole interval
   of their paired difference (the paired bootstrap's, 95 % by default) lies within plus or minus the tolerance: an
   equivalence test, read from the same interval as the significance test. Equivalence has to be shown: an interval
   that reaches beyond the tolerance (a significant lead larger than the tolerance, or too wide a test set to tell)
   leaves the best strategy in place. With the 0-point tolerance of ``accuracy`` only identical scores are equivalent.
3. Among the best and the strategies practically equivalent to it, the cheapest is chosen. Costs are compared like
   with like, each on its own: the time one fit takes and the time per predicted text. One strategy is cheaper than
   another only when it is no slower on either (times within ``SAME_COST_SHARE`` of each other, or within the
   absolute floors, count as the same: timing noise) and faster on at least one. When each is faster on one of them,
   neither is cheaper, and the better-scoring one stays. So seconds of fitting never buy back points of macro-F1
   beyond the tolerance.
4. The own advantage of a strategy that learns nothing from labels (zero-shot), needing no labeled data, does not
   weigh in the choice: whoever runs a comparison has labels. It is named in ``would_change``, for a user who has
   none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bertwise.config import PRIORITY_TOLERANCE_POINTS
from bertwise.evaluation.diagnostics import evidence_lines
from bertwise.evaluation.runner import StrategyResult
from bertwise.strategies.registry import strategy_tags
from bertwise.util.formatting import duration

# Two measured times within this share of the larger one count as the same cost: one timing of one fit on a shared
# machine moves by several percent from run to run (docs/recommendation.md).
SAME_COST_SHARE = 0.15
# Below these differences a cost is the same whatever the share: nobody chooses a model for a second of fitting.
SAME_FIT_SECONDS = 1.0
SAME_PREDICT_MS = 0.05
# Differences printed with one decimal in points: below this they read as 0.0.
_SHOWN_ZERO = 0.0005

EQUIVALENT = "equivalent"
BEYOND = "beyond"  # significantly lower, by more than the tolerance
LOWER = "lower"  # significantly lower, but not shown to be by more than the tolerance
INCONCLUSIVE = "inconclusive"  # not significant, and not shown equivalent either


@dataclass(frozen=True)
class Recommendation:
    strategy: str | None
    reasons: tuple[str, ...] = field(default=())
    runner_up: str | None = None
    priority: str = "balanced"
    tolerance_points: float = 1.0
    would_change: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "runner_up": self.runner_up,
            "priority": self.priority,
            "tolerance_points": self.tolerance_points,
            "reasons": list(self.reasons),
            "would_change": list(self.would_change),
        }


def recommend(
    results: Sequence[StrategyResult],
    paired: Sequence[dict[str, Any]],
    *,
    priority: str = "balanced",
    learning_curve: dict[str, Any] | None = None,
    diagnostics: dict[str, Any] | None = None,
    budget_cuts: Sequence[str] = (),
) -> Recommendation:
    tolerance = PRIORITY_TOLERANCE_POINTS[priority]
    finished = [result for result in results if result.status == "ok"]
    if not finished:
        return Recommendation(
            strategy=None,
            reasons=("no strategy finished, so there is nothing to recommend",),
            priority=priority,
            tolerance_points=tolerance,
        )
    chosen, best = choose(finished, paired, tolerance)
    rest = [result for result in finished if result is not chosen]
    runner_up = choose(rest, paired, tolerance)[0] if rest else None

    reasons = [_lead_reason(chosen, best, paired, tolerance, priority)]
    for other in sorted(rest, key=lambda result: -result.metrics["macro_f1"]):
        if other is not best:
            reasons.append(_other_reason(other, chosen, best, paired, tolerance))
    if diagnostics:
        reasons.extend(evidence_lines(diagnostics))
    caution = _shortened_caution(chosen, finished, budget_cuts)
    if caution is not None:
        reasons.append(caution)

    would_change = _would_change(finished, paired, priority, chosen, best, learning_curve)
    return Recommendation(
        strategy=chosen.name,
        reasons=tuple(reasons),
        runner_up=runner_up.name if runner_up else None,
        priority=priority,
        tolerance_points=tolerance,
        would_change=tuple(would_change),
    )


def _shortened_caution(chosen: StrategyResult, finished: Sequence[StrategyResult], cuts: Sequence[str]) -> str | None:
    """A warning when the budget shortened a strategy's training and another one was chosen over it."""
    if strategy_tags(chosen.name).has_training_schedule:
        return None
    for result in finished:
        tags = strategy_tags(result.name)
        shortened = [cut for cut in cuts if cut.startswith(f"{tags.in_words} shortened")]
        if tags.has_training_schedule and shortened:
            cut = (
                shortened[0]
                .split(":")[0]
                .replace(f"{tags.in_words} shortened", f"the budget shortened {tags.in_words}")
            )
            return (
                f"caution: {cut}, so its score understates what full training reaches; rerun with a larger --budget "
                "before ruling it out"
            )
    return None


def choose(
    finished: Sequence[StrategyResult], paired: Sequence[dict[str, Any]], tolerance: float
) -> tuple[StrategyResult, StrategyResult]:
    """(chosen, best) under ``tolerance`` points: the cheapest of the best and the strategies practically
    equivalent to it; among candidates none of which is cheaper than another, the better-scoring."""
    best = max(finished, key=lambda result: (result.metrics["macro_f1"], -_predict_ms(result), -_fit(result)))
    candidates = [best] + [
        result
        for result in finished
        if result is not best
        and verdict(_difference_or_none(paired, result.name, best.name), tolerance) == EQUIVALENT
        and cheaper(result, best)
    ]
    cheapest = [result for result in candidates if not any(cheaper(other, result) for other in candidates)]
    chosen = max(cheapest, key=lambda result: (result.metrics["macro_f1"], -_predict_ms(result), -_fit(result)))
    return chosen, best


def verdict(difference: dict[str, Any] | None, tolerance: float) -> str:
    """How a strategy stands against the best, from the paired difference (strategy - best) and its interval."""
    if difference is None:
        return INCONCLUSIVE
    low, high = (bound * 100 for bound in difference["interval"])
    if -tolerance <= low and high <= tolerance:
        return EQUIVALENT
    if high < -tolerance:
        return BEYOND
    if high < 0:
        return LOWER
    return INCONCLUSIVE


def cheaper(a: StrategyResult, b: StrategyResult) -> bool:
    """Whether ``a`` costs less than ``b``: no slower to fit nor to predict, and faster at one of them."""
    fit = _compare(_fit(a), _fit(b), SAME_FIT_SECONDS)
    predict = _compare(_predict_ms(a), _predict_ms(b), SAME_PREDICT_MS)
    return fit <= 0 and predict <= 0 and (fit < 0 or predict < 0)


def _compare(a: float, b: float, floor: float) -> int:
    """-1 when a is clearly less than b, 1 when clearly more, 0 when the same within the noise margins."""
    if abs(a - b) <= max(floor, SAME_COST_SHARE * max(a, b)):
        return 0
    return -1 if a < b else 1


def _lead_reason(
    chosen: StrategyResult,
    best: StrategyResult,
    paired: Sequence[dict[str, Any]],
    tolerance: float,
    priority: str,
) -> str:
    if chosen is best:
        return f"{chosen.name} has the best macro-F1: {_score(chosen)}"
    difference = _difference(paired, best.name, chosen.name)
    return (
        f"{chosen.name} scores {_score(chosen)} macro-F1 against {_score(best)} for {best.name}; {best.name}'s lead, "
        f"{_signed(difference['difference'])} points {_interval(difference['interval'])}, lies within the "
        f"±{tolerance:g}-point margin of --priority {priority}, so the two are practically equivalent, and "
        f"{chosen.name} costs less: {_costs(chosen, best)}"
    )


def _other_reason(
    other: StrategyResult,
    chosen: StrategyResult,
    best: StrategyResult,
    paired: Sequence[dict[str, Any]],
    tolerance: float,
) -> str:
    """Why ``other`` (neither the chosen nor the best strategy) was not chosen, stated against the best."""
    difference = _difference_or_none(paired, other.name, best.name)
    if difference is None:
        return f"{other.name} ({_score(other)}) has no paired difference to {best.name}, so it cannot be ranked"
    gap, interval = -difference["difference"], _interval(difference["interval"])
    against = f"{_points(gap)} points below {best.name} {interval}" if gap >= _SHOWN_ZERO else None
    kind = verdict(difference, tolerance)
    if kind == EQUIVALENT:
        where = f"{other.name} ({_score(other)}) is practically equivalent to {best.name} (difference {interval})"
        if not cheaper(other, best):
            return f"{where}, but is not cheaper: {_costs(other, best)}"
        if cheaper(chosen, other):
            return f"{where} and cheaper, but {chosen.name} costs less still: {_costs(chosen, other)}"
        return (
            f"{where} and cheaper, but neither it nor {chosen.name} costs less than the other, and {chosen.name} "
            f"scores higher: {_costs(chosen, other)}"
        )
    if against is None:
        against = f"{_signed(-gap)} points against {best.name} {interval}"
    if kind == BEYOND:
        return (
            f"{other.name} is {against}, significantly and by more than the {tolerance:g}-point margin "
            f"({_score(other)})"
        )
    if kind == LOWER:
        return (
            f"{other.name} is {against}, a significant difference that reaches beyond the {tolerance:g}-point margin "
            f"({_score(other)})"
        )
    return (
        f"{other.name} is {against}: not a significant difference, but the interval reaches beyond the "
        f"±{tolerance:g}-point margin, so the two are not shown to be practically equivalent ({_score(other)})"
    )


def _would_change(
    finished: Sequence[StrategyResult],
    paired: Sequence[dict[str, Any]],
    priority: str,
    chosen: StrategyResult,
    best: StrategyResult,
    learning_curve: dict[str, Any] | None,
) -> list[str]:
    lines: list[str] = []
    for other_priority, tolerance in PRIORITY_TOLERANCE_POINTS.items():
        if other_priority == priority:
            continue
        alternative = choose(finished, paired, tolerance)[0]
        if alternative is not chosen:
            lines.append(f"with --priority {other_priority}, {alternative.name} would be chosen")
    tolerance = PRIORITY_TOLERANCE_POINTS[priority]
    for other in finished:
        difference = _difference_or_none(paired, other.name, best.name)
        # With a 0-point margin no interval can show equivalence, however many test texts there are.
        if (
            tolerance > 0
            and difference is not None
            and other is not best
            and cheaper(other, chosen)
            and verdict(difference, tolerance) == INCONCLUSIVE
        ):
            lines.append(
                f"{other.name} costs less, but its interval against {best.name} is too wide to call the two "
                f"equivalent: a larger test set could show it within the ±{tolerance:g}-point margin, and it would "
                "then be chosen"
            )
    lines.extend(_curve_lines(chosen, learning_curve))
    lines.extend(_pairwise_curve_lines(chosen, learning_curve))
    unlabeled = next((r for r in finished if not strategy_tags(r.name).uses_labels_for_training), None)
    if unlabeled is not None and unlabeled is not chosen:
        lines.append(
            f"without any labeled data, {strategy_tags(unlabeled.name).in_words} is the only one of these you could "
            f"use (it needs no labels); it scored {_score(unlabeled)} here, against {_score(chosen)} for {chosen.name}"
        )
    return lines


def _curve_lines(chosen: StrategyResult, learning_curve: dict[str, Any] | None) -> list[str]:
    """What the learning curves say more (or fewer) labeled examples would do to the choice: ``a`` (the strategy that
    trains the backbone) against ``b`` (the frozen one) of the curves' crossover."""
    crossover = (learning_curve or {}).get("crossover")
    full = (learning_curve or {}).get("per_class_points", [None])[-1]
    if not crossover or not full:
        return []
    a, b, status = crossover["a"], crossover["b"], crossover["status"]
    one, other = strategy_tags(a).in_words, strategy_tags(b).in_words
    where = crossover.get("per_class")
    doubled = _forecast_at(learning_curve or {}, 2 * full, (a, b))
    if chosen.name == b and status == "extrapolated" and where and where <= 1.1 * full:
        line = f"with more labeled data, {one} would likely edge ahead of {other}"
        if doubled:
            line += (
                f": at {2 * full:g} examples per class the fitted curves give {doubled[a] * 100:.1f} "
                f"against {doubled[b] * 100:.1f} (an extrapolation)"
            )
        return [line]
    if chosen.name == b and status == "extrapolated" and where:
        return [
            f"with about {max(where - full, 1):.0f} more labeled examples per class (about {where:.0f} in all, "
            f"against {full:g} now), {one} would likely overtake {other}: an extrapolation of the "
            "fitted learning curves"
        ]
    if chosen.name == b and status == "none":
        return [
            "more labeled data is unlikely to change this soon: the fitted learning curves do not cross within "
            "8 times the current data"
        ]
    # Led from the first measured point: no smaller label budget was seen to favour the other.
    led_throughout = crossover.get("from_first_point") or (where is not None and where <= _first_point(learning_curve))
    if chosen.name == a and status == "observed" and where and not led_throughout:
        return [
            f"with fewer than about {where:.0f} labeled examples per class {other} was ahead on the learning "
            "curve, so a smaller label budget would favour it"
        ]
    return []


def _first_point(learning_curve: dict[str, Any] | None) -> float:
    """The smallest measured size (results written before ``from_first_point`` existed say no more than this)."""
    points = (learning_curve or {}).get("per_class_points") or [0]
    return float(points[0])


def _pairwise_curve_lines(chosen: StrategyResult, learning_curve: dict[str, Any] | None) -> list[str]:
    """The crossings of the chosen strategy's curve with every other curve but the main pair's (``crossovers``):
    "with fewer than about 30 examples per class SetFit was ahead", "with about 200 in all fine-tuning would overtake
    it". Where the curves never cross, nothing is said: the main pair's line covers "more data will not change it"."""
    curve = learning_curve or {}
    full = curve.get("per_class_points", [None])[-1]
    lines: list[str] = []
    for crossing in curve.get("crossovers") or []:
        a, b, status, where = crossing["a"], crossing["b"], crossing["status"], crossing.get("per_class")
        if not full or not where or chosen.name not in (a, b):
            continue
        if a == chosen.name and status == "observed" and not crossing.get("from_first_point"):
            lines.append(
                f"with fewer than about {where:.0f} labeled examples per class {strategy_tags(b).in_words} was ahead "
                "on the learning curve, so a smaller label budget would favour it"
            )
        elif b == chosen.name and status == "extrapolated" and where > 1.1 * full:
            lines.append(
                f"with about {where:.0f} labeled examples per class in all (against {full:g} now), "
                f"{strategy_tags(a).in_words} would likely overtake {strategy_tags(b).in_words}: an extrapolation of "
                "the fitted learning curves"
            )
    return lines


def _forecast_at(learning_curve: dict[str, Any], per_class: float, names: Sequence[str]) -> dict[str, float] | None:
    """Each fitted curve's extrapolated macro-F1 at ``per_class``, when every one of ``names`` has one there."""
    values: dict[str, float] = {}
    for name in names:
        fit = (learning_curve.get("fit") or {}).get(name)
        points = [point for point in (fit or {}).get("extrapolation", []) if abs(point["per_class"] - per_class) < 0.5]
        if not points:
            return None
        values[name] = points[0]["macro_f1"]
    return values


def _difference(paired: Sequence[dict[str, Any]], a: str, b: str) -> dict[str, Any]:
    """The paired difference a - b, whichever order it was computed in."""
    found = _difference_or_none(paired, a, b)
    if found is None:
        raise KeyError(f"no paired difference between {a} and {b}")
    return found


def _difference_or_none(paired: Sequence[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    for entry in paired:
        if entry["a"] == a and entry["b"] == b:
            return entry
        if entry["a"] == b and entry["b"] == a:
            low, high = entry["interval"]
            return {**entry, "a": a, "b": b, "difference": -entry["difference"], "interval": [-high, -low]}
    return None


def _fit(result: StrategyResult) -> float:
    return float(result.cost.get("fit_seconds", 0.0))


def _predict_ms(result: StrategyResult) -> float:
    return float(result.cost.get("predict_ms_per_text", 0.0))


def _costs(a: StrategyResult, b: StrategyResult) -> str:
    """Each cost of ``a`` against ``b``'s, compared like with like: "fits faster (...) and predicts as fast (...)"."""
    fit = _compare(_fit(a), _fit(b), SAME_FIT_SECONDS)
    predict = _compare(_predict_ms(a), _predict_ms(b), SAME_PREDICT_MS)
    fits = {-1: "fits faster", 0: "fits about as fast", 1: "fits slower"}[fit]
    predicts = {-1: "predicts faster", 0: "predicts about as fast", 1: "predicts slower"}[predict]
    return (
        f"{a.name} {fits} ({duration(_fit(a))} against {duration(_fit(b))}) and {predicts} "
        f"({_predict_ms(a):.2g} against {_predict_ms(b):.2g} ms per text)"
    )


def _score(result: StrategyResult) -> str:
    low, high = result.metrics_interval.get("macro_f1", [float("nan")] * 2)
    return f"{result.metrics['macro_f1'] * 100:.1f} {_interval([low, high])}"


def _interval(bounds: Sequence[float]) -> str:
    return f"[{bounds[0] * 100:.1f}, {bounds[1] * 100:.1f}]"


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def _signed(value: float) -> str:
    return f"{value * 100:+.1f}"
