"""The sequential protocol's stopping rule: stop work on a strategy once more of it cannot change the answer.

After each unit of work (a seed's run, a learning-curve repeat, half of a fine-tuning schedule) the strategy's paired
difference to its rival is updated, and further work stops once that difference is *decided* at the priority's
tolerance: its interval lies wholly below the tolerance band (behind), wholly above it (ahead), or, with a tolerance
above zero, wholly inside it (practically equivalent). These are the verdicts the recommendation reads
(:mod:`bertwise.recommendation`). A look asks whether the full protocol, had it run every planned unit, would read
the same verdict from its interval; the error rate it states is the chance that it would not.

The test items are the same for both protocols; what the full protocol would add is the runs still planned. So a look
predicts the full protocol's interval from what it has, and widens it for what is still random:

* **The interval the full protocol would read**: the paired bootstrap's, at the comparison's own confidence
  (``1 - error_rate``, 95 %), with the run-to-run spread it still lacks, ``z_final * sqrt(spread**2 - observed**2)``
  (all of it after one run; the top-up to the prior when two or three runs happen to agree), combined in quadrature:
  that spread is independent of which test items were drawn, and the full protocol's two-level bootstrap combines the
  two the same way.
* **Where the runs still planned can move its centre**: ``z * spread * sqrt(remaining / (planned * done))``, added on
  each side, with ``z`` at the look's confidence ``1 - error_rate / looks``: the error rate is shared among the
  planned looks (Bonferroni, which holds whatever the dependence between looks), since each is a chance to stop
  wrongly.

``spread`` is the larger of the runs' observed standard deviation and the strategy's prior (its ``run_spread_points``
tag). The simulation in docs/sequential.md measures how often this stops where the full protocol would have answered
otherwise.

:func:`decide` and :func:`widen` are the rule on numbers; :func:`look` applies it to predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

Decision = Literal["behind", "ahead", "equivalent"]

RULE_TEXT = (
    "after each run, curve repeat or half of a training schedule, a strategy's paired macro-F1 difference to its "
    "rival is updated; work on it stops once the interval lies wholly outside the priority's tolerance band (or, "
    "with a tolerance above 0, wholly inside it). The interval is the one the full protocol would read: widened for "
    "the run-to-run spread it lacks (the larger of the observed spread and a prior) and for how far the runs not yet "
    "seen could move it, at the error rate shared among the planned looks (Bonferroni)"
)


@dataclass(frozen=True)
class StoppingRule:
    """How sure a look must be: the priority's ``tolerance_points`` and the ``error_rate`` shared by ``looks``."""

    tolerance_points: float
    error_rate: float
    looks: int

    def __post_init__(self) -> None:
        if not 0 < self.error_rate < 1:
            raise ValueError(f"the error rate must lie strictly between 0 and 1, got {self.error_rate}")

    @property
    def confidence(self) -> float:
        """Each look's two-sided confidence: the error rate split evenly among the planned looks."""
        return 1.0 - self.error_rate / max(1, self.looks)

    @property
    def final_confidence(self) -> float:
        """The confidence of the intervals the full protocol reads its verdicts from."""
        return 1.0 - self.error_rate

    @property
    def final_z(self) -> float:
        return NormalDist().inv_cdf(1.0 - self.error_rate / 2.0)

    @property
    def z(self) -> float:
        """The normal quantile of a look's confidence, which scales the allowance for runs not yet seen."""
        return NormalDist().inv_cdf(1.0 - (1.0 - self.confidence) / 2.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance_points": self.tolerance_points,
            "error_rate": self.error_rate,
            "looks_planned": self.looks,
            "confidence_per_look": round(self.confidence, 6),
            "interval_confidence": round(self.final_confidence, 6),
            "rule": RULE_TEXT,
        }


def decide(low: float, high: float, tolerance_points: float) -> Decision | None:
    """The verdict an interval (of a - b, in macro-F1 as a fraction) settles, or None while it straddles the band."""
    tolerance = tolerance_points / 100.0
    if high < -tolerance:
        return "behind"
    if low > tolerance:
        return "ahead"
    if tolerance > 0 and -tolerance <= low and high <= tolerance:
        return "equivalent"
    return None


def run_spread(per_run_scores: Sequence[float], prior_points: float) -> float:
    """The run-to-run standard deviation of macro-F1 (a fraction) to allow for: the observed one, never below the
    prior (two or three runs can agree by chance)."""
    observed = float(np.std(per_run_scores, ddof=1)) if len(per_run_scores) >= 2 else 0.0
    return max(observed, prior_points / 100.0)


def allowance(z: float, spread: float, done: int, planned: int) -> float:
    """How far (a fraction of macro-F1) the ``planned - done`` runs not yet seen can move the mean, with ``spread``
    their standard deviation: added to each side of the interval. Zero once every planned run is done."""
    if done < 1:
        raise ValueError(f"a look needs at least one finished run, got {done}")
    remaining = planned - done
    if remaining <= 0:
        return 0.0
    return z * spread * math.sqrt(remaining / (planned * done))


def lacking_spread(z: float, spread: float, observed: float) -> float:
    """The run-to-run spread an interval from runs whose observed standard deviation is ``observed`` lacks, at
    ``z``: combined with the interval's half-widths in quadrature (:func:`widen`)."""
    return z * math.sqrt(max(0.0, spread**2 - observed**2))


def per_run_macro_f1(y_true: np.ndarray, runs: np.ndarray, n_classes: int) -> list[float]:
    """Each run's macro-F1 over all classes (a class absent from both truth and prediction scores 0, as in
    :mod:`bertwise.evaluation.statistics`)."""
    from sklearn.metrics import f1_score

    labels = np.arange(n_classes)
    return [float(f1_score(y_true, run, labels=labels, average="macro", zero_division=0.0)) for run in runs]


def widen(
    low: float, high: float, extra: float, *, center: float | None = None, lacking: float = 0.0
) -> tuple[float, float]:
    """``[low, high]`` with ``lacking`` combined into each half-width (around ``center``) in quadrature, then moved out
    by ``extra`` on each side."""
    if lacking > 0 and center is not None:
        low = center - math.hypot(center - low, lacking)
        high = center + math.hypot(high - center, lacking)
    return low - extra, high + extra


@dataclass(frozen=True)
class Look:
    """One look at a strategy against its rival: the paired difference, its interval at the comparison's confidence,
    that interval widened for the runs not yet seen (their spread, and how far they could move the centre at the
    look's ``confidence``), and the verdict (None: undecided, work goes on)."""

    part: str  # "strategies", "curve" or "training"
    strategy: str
    against: str
    unit: str  # what had been done, in words: "seed 1 of 3", "8 per class, repeat 1 of 3"
    difference: float
    interval: tuple[float, float]
    widened: tuple[float, float]
    confidence: float
    decision: Decision | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "strategy": self.strategy,
            "against": self.against,
            "unit": self.unit,
            "difference": round(self.difference, 4),
            "interval": [round(bound, 4) for bound in self.interval],
            "widened_interval": [round(bound, 4) for bound in self.widened],
            "confidence": round(self.confidence, 6),
            "decision": self.decision,
        }

    def reason(self, tolerance_points: float) -> str:
        """Why the work stopped, in words: "it trails probe by 18.2 points [15.0, 21.5] ...". Only for a decided
        look."""
        low, high = (100 * bound for bound in self.widened)
        shown = f"[{low:+.1f}, {high:+.1f}] allowing for runs not yet seen"
        if self.decision == "behind":
            return (
                f"it trails {self.against} by {-100 * self.difference:.1f} points {shown}, beyond the "
                f"{tolerance_points:g}-point margin"
            )
        if self.decision == "ahead":
            return (
                f"it leads {self.against} by {100 * self.difference:.1f} points {shown}, beyond the "
                f"{tolerance_points:g}-point margin"
            )
        return (
            f"it is within ±{tolerance_points:g} points of {self.against} ({100 * self.difference:+.1f} {shown}): "
            "practically equivalent"
        )


def look(
    y_true: np.ndarray,
    runs: np.ndarray,
    rival_runs: np.ndarray,
    n_classes: int,
    rule: StoppingRule,
    *,
    part: str,
    strategy: str,
    against: str,
    unit: str,
    planned: int,
    prior_spread_points: float,
    resamples: int,
    seed: int,
    extra: float = 0.0,
) -> Look:
    """A look at ``runs`` (predicted class indices, one row per finished run) against ``rival_runs`` on the same
    items. ``planned`` is how many runs the full protocol makes; ``extra`` widens the interval further (a training
    run stopped halfway allows for what the rest of its schedule could add)."""
    from bertwise.evaluation.statistics import paired_bootstrap

    difference = paired_bootstrap(
        y_true, runs, rival_runs, n_classes, resamples=resamples, confidence=rule.final_confidence, seed=seed
    )
    per_run = per_run_macro_f1(y_true, runs, n_classes)
    spread = run_spread(per_run, prior_spread_points)
    observed = float(np.std(per_run, ddof=1)) if len(per_run) >= 2 else 0.0
    done = runs.shape[0]
    lacking = lacking_spread(rule.final_z, spread, observed) if done < planned else 0.0
    widened = widen(
        difference.low,
        difference.high,
        allowance(rule.z, spread, done, planned) + extra,
        center=difference.difference,
        lacking=lacking,
    )
    return Look(
        part=part,
        strategy=strategy,
        against=against,
        unit=unit,
        difference=difference.difference,
        interval=(difference.low, difference.high),
        widened=widened,
        confidence=rule.confidence,
        decision=decide(*widened, rule.tolerance_points),
    )
