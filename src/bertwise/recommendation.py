"""Pick one strategy from the measured evidence, with the reasons in plain words and what would change the answer.

The rule: the cheapest strategy whose macro-F1 is not significantly more than the priority's tolerance below the best
one. "Significantly" is read from the paired bootstrap: a strategy is out when the whole 95 % interval of its
difference to the best lies below minus the tolerance. Tolerances (``PRIORITY_TOLERANCE_POINTS``): accuracy 0 points
(a cheaper strategy only when it is statistically tied with the best), balanced 1 point, cost 3 points. Cheaper means
less time to fit, then less time per prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bertwise.config import PRIORITY_TOLERANCE_POINTS
from bertwise.evaluation.runner import StrategyResult
from bertwise.formatting import duration


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
    chosen, best = _choose(finished, paired, tolerance)
    rest = [result for result in finished if result is not chosen]
    runner_up = _choose(rest, paired, tolerance)[0] if rest else None

    reasons: list[str] = []
    if chosen is best:
        reasons.append(f"{chosen.name} has the best macro-F1: {_score(chosen)}")
    else:
        difference = _difference(paired, chosen.name, best.name)
        reasons.append(
            f"{chosen.name} scores {_score(chosen)} macro-F1 against {_score(best)} for {best.name}; the difference, "
            f"{_points(difference['difference'])} points {_interval(difference['interval'])}, is not significantly "
            f"more than the {tolerance:g}-point tolerance of --priority {priority}, and {chosen.name} costs less: "
            f"{_cost_comparison(chosen, best)}"
        )
    for other in sorted(rest, key=lambda result: -result.metrics["macro_f1"]):
        if other is best:
            continue
        difference = _difference(paired, other.name, chosen.name)
        gap = -difference["difference"]
        low, high = (-difference["interval"][1], -difference["interval"][0])
        if abs(gap) < 0.0005:  # equal to the displayed precision
            reasons.append(
                f"{other.name} scores the same ({_score(other)}, difference {_interval(difference['interval'])}) "
                f"and costs more: {_cost_comparison(other, chosen)}"
            )
        elif difference["significant"] and gap > 0:
            reasons.append(
                f"{other.name} is {_points(gap)} points lower {_interval([low, high])}, a significant difference "
                f"({_score(other)})"
            )
        elif gap > 0:
            reasons.append(
                f"{other.name} is {_points(gap)} points lower {_interval([low, high])}, not significant, but costs "
                f"more: {_cost_comparison(other, chosen)}"
            )
        else:
            reasons.append(
                f"{other.name} is {_points(-gap)} points higher {_interval([-high, -low])}, not significantly "
                f"more than the {tolerance:g}-point tolerance, and costs more: {_cost_comparison(other, chosen)}"
            )
    if diagnostics:
        reasons.extend(line for line in diagnostics.get("summary", [])[:2])
    shortened = [cut for cut in budget_cuts if cut.startswith("fine-tuning shortened")]
    if shortened and chosen.name != "finetune" and any(r.name == "finetune" for r in finished):
        cut = shortened[0].split(":")[0].replace("fine-tuning shortened", "the budget shortened fine-tuning")
        reasons.append(
            f"caution: {cut}, so its score understates what full training reaches; rerun with a larger --budget "
            "before ruling it out"
        )

    would_change = _would_change(finished, paired, priority, chosen, learning_curve)
    return Recommendation(
        strategy=chosen.name,
        reasons=tuple(reasons),
        runner_up=runner_up.name if runner_up else None,
        priority=priority,
        tolerance_points=tolerance,
        would_change=tuple(would_change),
    )


def _choose(
    finished: Sequence[StrategyResult], paired: Sequence[dict[str, Any]], tolerance: float
) -> tuple[StrategyResult, StrategyResult]:
    """(chosen, best) under ``tolerance`` points."""
    best = max(finished, key=lambda result: (result.metrics["macro_f1"], -_cost_key(result)[0]))
    candidates = [best]
    for result in finished:
        if result is best:
            continue
        difference = _difference(paired, result.name, best.name)
        if difference["interval"][1] * 100 >= -tolerance:
            candidates.append(result)
    return min(candidates, key=_cost_key), best


def _would_change(
    finished: Sequence[StrategyResult],
    paired: Sequence[dict[str, Any]],
    priority: str,
    chosen: StrategyResult,
    learning_curve: dict[str, Any] | None,
) -> list[str]:
    lines: list[str] = []
    for other_priority, tolerance in PRIORITY_TOLERANCE_POINTS.items():
        if other_priority == priority:
            continue
        alternative = _choose(finished, paired, tolerance)[0]
        if alternative is not chosen:
            lines.append(f"with --priority {other_priority}, {alternative.name} would be chosen")
    crossover = (learning_curve or {}).get("crossover")
    full = (learning_curve or {}).get("per_class_points", [None])[-1]
    if crossover and full:
        where = crossover.get("per_class")
        doubled = _forecast_at(learning_curve or {}, 2 * full)
        if chosen.name == "probe" and crossover["status"] == "extrapolated" and where and where <= 1.1 * full:
            line = "with more labeled data, fine-tuning would likely edge ahead of the probe"
            if doubled:
                line += (
                    f": at {2 * full:g} examples per class the fitted curves give {doubled['finetune'] * 100:.1f} "
                    f"against {doubled['probe'] * 100:.1f} (an extrapolation)"
                )
            lines.append(line)
        elif chosen.name == "probe" and crossover["status"] == "extrapolated" and where:
            lines.append(
                f"with about {max(where - full, 1):.0f} more labeled examples per class (about {where:.0f} in all, "
                f"against {full:g} now), fine-tuning would likely overtake the probe: an extrapolation of the "
                "fitted learning curves"
            )
        elif chosen.name == "probe" and crossover["status"] == "none":
            lines.append(
                "more labeled data is unlikely to change this soon: the fitted learning curves do not cross within "
                "8 times the current data"
            )
        elif chosen.name == "finetune" and crossover["status"] == "observed" and where and where > 0:
            lines.append(
                f"with fewer than about {where:.0f} labeled examples per class the probe was ahead on the learning "
                "curve, so a smaller label budget would favour it"
            )
    if chosen.name == "zero-shot":
        lines.append("labeling even a few examples per class may change this: see the learning curve")
    return lines


def _forecast_at(learning_curve: dict[str, Any], per_class: float) -> dict[str, float] | None:
    """Each fitted curve's extrapolated macro-F1 at ``per_class``, when both finetune and probe have one there."""
    values: dict[str, float] = {}
    for name in ("finetune", "probe"):
        fit = (learning_curve.get("fit") or {}).get(name)
        points = [point for point in (fit or {}).get("extrapolation", []) if abs(point["per_class"] - per_class) < 0.5]
        if not points:
            return None
        values[name] = points[0]["macro_f1"]
    return values


def _difference(paired: Sequence[dict[str, Any]], a: str, b: str) -> dict[str, Any]:
    """The paired difference a - b, whichever order it was computed in."""
    for entry in paired:
        if entry["a"] == a and entry["b"] == b:
            return entry
        if entry["a"] == b and entry["b"] == a:
            low, high = entry["interval"]
            return {**entry, "a": a, "b": b, "difference": -entry["difference"], "interval": [-high, -low]}
    raise KeyError(f"no paired difference between {a} and {b}")


def _cost_key(result: StrategyResult) -> tuple[float, float]:
    return (result.cost["fit_seconds"], result.cost.get("predict_ms_per_text", 0.0))


def _cost_comparison(cheaper: StrategyResult, dearer: StrategyResult) -> str:
    return (
        f"fits in {duration(cheaper.cost['fit_seconds'])} against {duration(dearer.cost['fit_seconds'])}, "
        f"predicts in {cheaper.cost.get('predict_ms_per_text', 0):.2g} ms per text against "
        f"{dearer.cost.get('predict_ms_per_text', 0):.2g}"
    )


def _score(result: StrategyResult) -> str:
    low, high = result.metrics_interval.get("macro_f1", [float("nan")] * 2)
    return f"{result.metrics['macro_f1'] * 100:.1f} {_interval([low, high])}"


def _interval(bounds: Sequence[float]) -> str:
    return f"[{bounds[0] * 100:.1f}, {bounds[1] * 100:.1f}]"


def _points(value: float) -> str:
    return f"{value * 100:.1f}"
