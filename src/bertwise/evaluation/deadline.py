"""The budget as a deadline: before each optional unit of work, is there time left for it?

The plan's estimates come from one short calibration; a machine that gets busier (or quieter) afterwards makes them
wrong for the rest of the run. So every finished fit's measured seconds are set against its estimate, and later
estimates of the same strategy (and kind of fit) are scaled by the latest ratios: the deadline follows the machine
as it is now, not as it was at the start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bertwise.strategies.cost import Calibration, FitWork
from bertwise.strategies.registry import strategy_class
from bertwise.util.formatting import duration

# The ratios of the last few fits, not all of them: the machine's load changes during a run.
RECENT_FITS = 3
# Kept back from the budget for what follows the last fit (diagnostics, results.json, the report): optional work
# must end this much before the budget does. 5 %, at least 15 s: a 10-minute sample run spent 48 s on them on a
# heavily loaded 2-core machine (docs/sequential.md).
FINISHING_SHARE = 0.05
FINISHING_SECONDS = 15.0


@dataclass
class Deadline:
    """``limit_seconds`` from ``started`` (a ``time.perf_counter`` reading); ``clock`` is replaceable for tests."""

    limit_seconds: float
    started: float
    calibration: Calibration
    clock: Callable[[], float] = time.perf_counter
    # Seconds kept back for the finishing stages; None: FINISHING_SHARE of the budget, at least FINISHING_SECONDS.
    finishing_seconds: float | None = None
    ratios: dict[tuple[str, bool], list[float]] = field(default_factory=dict)

    def remaining(self) -> float:
        """Seconds left for optional work: the budget less what has passed and the finishing stages' share."""
        finishing = self.finishing_seconds
        if finishing is None:
            finishing = max(FINISHING_SECONDS, FINISHING_SHARE * self.limit_seconds)
        return self.limit_seconds - finishing - (self.clock() - self.started)

    def correction(self, name: str, curve_point: bool) -> float:
        """Measured over estimated seconds of ``name``'s recent fits of this kind (else of any kind); 1 when none."""
        recent = self.ratios.get((name, curve_point)) or self.ratios.get((name, not curve_point)) or []
        recent = recent[-RECENT_FITS:]
        return sum(recent) / len(recent) if recent else 1.0

    def estimate(self, name: str, work: FitWork) -> float:
        raw = strategy_class(name).fit_seconds(work, self.calibration)
        return raw * self.correction(name, work.curve_point)

    def record(self, name: str, work: FitWork, seconds: float) -> None:
        """A finished fit of ``work`` took ``seconds``: later estimates of its kind follow."""
        raw = strategy_class(name).fit_seconds(work, self.calibration)
        if raw > 0 and seconds > 0:
            self.ratios.setdefault((name, work.curve_point), []).append(seconds / raw)

    def training_stop(self, step: int, total_steps: int) -> str | None:
        """Why a training run at ``step`` of ``total_steps`` stops now (the budget's time is spent), or None."""
        if self.remaining() > 0:
            return None
        return f"the budget ran out at step {step} of {total_steps}"

    def refusal(self, name: str, work: FitWork | Sequence[FitWork], what: str) -> str | None:
        """Why ``what`` (one fit of ``name``, or several) does not fit in the time left, or None when it does."""
        works = [work] if isinstance(work, FitWork) else list(work)
        needed, left = sum(self.estimate(name, one) for one in works), self.remaining()
        if needed <= left:
            return None
        return f"{what} skipped: estimated at {duration(needed)}, {duration(max(left, 0.0))} of the budget left"
