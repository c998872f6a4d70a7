"""Pick one strategy from the results, with the reasons in plain words.

The rule: the best test macro-F1 wins, unless a cheaper strategy is within the tie tolerance of it; then the
cheapest of the tied ones wins. Cheaper means less time to fit, then faster prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bertwise.evaluation.runner import StrategyResult


@dataclass(frozen=True)
class Recommendation:
    strategy: str | None
    reasons: tuple[str, ...] = field(default=())
    runner_up: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "reasons": list(self.reasons), "runner_up": self.runner_up}


def recommend(results: list[StrategyResult], *, tie_tolerance_points: float = 0.5) -> Recommendation:
    finished = [result for result in results if result.status == "ok"]
    if not finished:
        return Recommendation(strategy=None, reasons=("no strategy finished, so there is nothing to recommend",))
    best = max(finished, key=lambda r: r.metrics["macro_f1"])
    best_f1 = best.metrics["macro_f1"]
    tied = [r for r in finished if (best_f1 - r.metrics["macro_f1"]) * 100 <= tie_tolerance_points]
    chosen = min(tied, key=_cost_key)
    others = sorted((r for r in finished if r is not chosen), key=lambda r: -r.metrics["macro_f1"])
    runner_up = others[0] if others else None

    reasons = []
    if chosen is best:
        reasons.append(f"{chosen.name} has the best test macro-F1: {_points(best_f1)}")
    else:
        reasons.append(
            f"{chosen.name} scores {_points(chosen.metrics['macro_f1'])} macro-F1, within {tie_tolerance_points:g} "
            f"points of the best ({best.name}, {_points(best_f1)}), and costs less: fits in "
            f"{_seconds(chosen.cost['fit_seconds'])} against {_seconds(best.cost['fit_seconds'])}"
        )
    for other in others:
        gap = (chosen.metrics["macro_f1"] - other.metrics["macro_f1"]) * 100
        if gap > tie_tolerance_points:
            reasons.append(f"{other.name} is {gap:.1f} points lower ({_points(other.metrics['macro_f1'])})")
        elif other is not best:
            ratio = other.cost["fit_seconds"] / max(chosen.cost["fit_seconds"], 1e-3)
            reasons.append(
                f"{other.name} is within {tie_tolerance_points:g} points ({_points(other.metrics['macro_f1'])}) "
                f"but takes {ratio:.1f}x as long to fit"
            )
    reasons.append(
        "one split, one seed: differences of a few points can be noise; "
        "repeated runs and intervals are not yet measured"
    )
    return Recommendation(strategy=chosen.name, reasons=tuple(reasons), runner_up=runner_up.name if runner_up else None)


def _cost_key(result: StrategyResult) -> tuple[float, float]:
    return (result.cost["fit_seconds"], -result.cost["predict_texts_per_second"])


def _points(f1: float) -> str:
    return f"{f1 * 100:.1f}"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
