"""Learning-curve forecasts: a power law fitted to macro-F1 against training size, its spread from the bootstrap, and
where two strategies' curves cross. Pure functions of the scores, like :mod:`bertwise.evaluation.statistics`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from bertwise.evaluation.statistics import check_resampling, percentile_bounds

# The exponent's lower bound: curve_fit needs a closed interval, and c=0 makes the curve flat (b then unidentified).
MIN_EXPONENT = 1e-6
MAX_EXPONENT = 3.0
# Points on the log grid used to look for where two fitted curves cross; the root is then refined exactly.
CROSSOVER_GRID = 512


@dataclass(frozen=True)
class CurveFit:
    """An inverse power law ``score = a - b * n ** (-c)`` with n the number of training examples per class.

    ``a`` is the score the curve levels off at with unlimited data (at most 1), ``b`` how far below that level the
    curve starts, ``c`` how quickly the gap closes. ``rms_residual`` is the root-mean-square distance of the fitted
    curve from the per-run scores it was fitted to.
    """

    a: float
    b: float
    c: float
    rms_residual: float = 0.0

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        """The fitted score at ``n`` examples per class (any shape; n must be positive)."""
        return _power_law(np.asarray(n, dtype=np.float64), self.a, self.b, self.c)


@dataclass(frozen=True)
class CurveForecast:
    """A fitted learning curve evaluated at ``per_class``: the fit's prediction (``mean``) and its band.

    ``band_from_runs`` is False when every measured point had a single run: then the gain part of the band comes from
    the fit's residuals rather than from resampled runs (see :func:`fit_learning_curve`).
    """

    fit: CurveFit
    per_class: tuple[float, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    band_from_runs: bool = True


def fit_learning_curve(
    per_class: Sequence[float],
    scores_per_point: Sequence[Sequence[float]],
    *,
    forecast_at: Sequence[float],
    measured: tuple[float, float, float] | None = None,
    resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> CurveForecast | None:
    """Fit ``score = a - b * n ** (-c)`` to measured learning-curve points and forecast it with a band.

    Method, in plain words. Scores usually rise quickly with the first examples per class and then level off; the
    inverse power law is the standard three-number summary of that shape (a: the level it approaches, at most 1;
    b: the initial gap; c: how fast the gap closes). It is fitted by least squares to every run's score at every
    measured size (scipy's ``curve_fit``, constrained to 0 <= a <= 1, b >= 0, 0 < c <= 3, tried from a few starting
    guesses and keeping the best).

    The band around a forecast at n has two parts, added in quadrature as independent errors:

    * what the score at the largest measured size L is uncertain by: ``measured`` = (score, low, high) there, the
      measured interval, which covers test-set sampling and seeds. A forecast rests on that point, so it cannot be
      known better than it;
    * what the gain from L to n is uncertain by: each bootstrap replay resamples, separately at each measured size,
      that size's runs with replacement (with one run per size, the fit's residuals instead, scaled up for the three
      fitted numbers), refits the curve and records its gain from L to n; the middle ``confidence`` share of the
      gains gives this part.

    So the band is never narrower than the measured interval at L, and it widens further out, never narrowing with n.
    It is not clipped to [0, 1], so that its width stays what it is. It still leaves out the risk that the true curve
    is not a power law, so far extrapolations are less certain than the band suggests. Replays whose refit fails are
    dropped. Without ``measured`` the band is the gain part alone, around the fitted curve.

    Returns None with fewer than three distinct sizes (three numbers cannot be fitted honestly from two points) or
    when no starting guess converges.
    """
    check_resampling(resamples, confidence)
    if len(per_class) != len(scores_per_point):
        raise ValueError(f"per_class has {len(per_class)} points but scores_per_point has {len(scores_per_point)}")
    sizes: list[float] = []
    point_scores: list[np.ndarray] = []
    for size, scores in zip(per_class, scores_per_point, strict=True):
        values = np.asarray(scores, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        if not size > 0:
            raise ValueError(f"examples per class must be positive, got {size}")
        sizes.append(float(size))
        point_scores.append(values)
    if len(set(sizes)) < 3:
        return None

    x = np.concatenate([np.full(values.size, size) for size, values in zip(sizes, point_scores, strict=True)])
    y = np.concatenate(point_scores)
    fit = _fit_power_law(x, y)
    if fit is None:
        return None
    targets = np.asarray(forecast_at, dtype=np.float64).ravel()
    if np.any(targets <= 0):
        raise ValueError("forecast_at must contain positive sizes")
    prediction = fit.predict(targets)
    largest = max(sizes)
    below, above = _gain_spread(fit, x, y, point_scores, targets, largest, resamples, confidence, seed)
    if measured is not None:
        score, low, high = measured
        below = np.sqrt(max(score - low, 0.0) ** 2 + below**2)
        above = np.sqrt(max(high - score, 0.0) ** 2 + above**2)
    # Further out is never more certain: each half-width is at least the one of any nearer size beyond L.
    order = np.argsort(targets, kind="stable")
    beyond = order[targets[order] >= largest]
    below[beyond] = np.maximum.accumulate(below[beyond])
    above[beyond] = np.maximum.accumulate(above[beyond])

    return CurveForecast(
        fit=fit,
        per_class=tuple(float(v) for v in targets),
        mean=tuple(float(v) for v in prediction),
        low=tuple(float(v) for v in prediction - below),
        high=tuple(float(v) for v in prediction + above),
        band_from_runs=any(values.size > 1 for values in point_scores),
    )


def _gain_spread(
    fit: CurveFit,
    x: np.ndarray,
    y: np.ndarray,
    point_scores: Sequence[np.ndarray],
    targets: np.ndarray,
    largest: float,
    resamples: int,
    confidence: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """How far below and above the fitted gain from ``largest`` to each target the refitted gains reach (>= 0)."""
    gain = fit.predict(targets) - float(fit.predict(largest))
    rng = np.random.default_rng(seed)
    from_runs = any(values.size > 1 for values in point_scores)
    fitted = fit.predict(x)
    # Residuals shrink by the fitted parameters' share of the points; scaling them back keeps the spread honest.
    scale = math.sqrt(y.size / (y.size - 3)) if y.size > 3 else 0.0
    residuals = (y - fitted) * scale
    replayed: list[np.ndarray] = []
    for _ in range(resamples):
        if from_runs:
            y_star = np.concatenate([values[rng.integers(0, values.size, size=values.size)] for values in point_scores])
        else:
            y_star = fitted + residuals[rng.integers(0, residuals.size, size=residuals.size)]
        refit = _fit_power_law(x, y_star, start=fit)
        if refit is not None:
            replayed.append(refit.predict(targets) - float(refit.predict(largest)))
    if not replayed:
        return np.zeros(targets.shape), np.zeros(targets.shape)
    low, high = percentile_bounds(np.vstack(replayed), confidence)
    return np.maximum(gain - low, 0.0), np.maximum(high - gain, 0.0)


def crossover(
    per_class: Sequence[float],
    mean_a: Sequence[float],
    mean_b: Sequence[float],
    forecast_a: CurveForecast | None,
    forecast_b: CurveForecast | None,
    *,
    search_up_to: float,
) -> tuple[str, float | None]:
    """From how many examples per class does strategy a (e.g. fine-tuning) score above strategy b (e.g. a probe)?

    Returns a kind and a size:

    * ``("observed", n)``: a is above b at the last measured size. If a was at or below b at some earlier size, n is
      where the straight line between the last such size and the next one crosses zero, interpolated on a log2 scale
      of sizes (learning curves are close to straight there). If a is above b at every measured size, n is the first
      measured size, meaning "from the start".
    * ``("extrapolated", n)``: a is at or below b at the last measured size, but the two fitted curves cross before
      ``search_up_to``; n is that crossing. If the fitted curves already put a above b at the last measured size
      (they disagree with the measurement, which happens when the two are within noise of each other), n is the last
      measured size.
    * ``("none", None)``: the fitted curves do not cross before ``search_up_to``.
    * ``("unknown", None)``: no observed crossing and at least one curve could not be fitted.
    """
    sizes = np.asarray(per_class, dtype=np.float64)
    gap = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    if sizes.ndim != 1 or sizes.size == 0 or gap.shape != sizes.shape:
        raise ValueError("per_class, mean_a and mean_b must be non-empty sequences of the same length")
    if np.any(sizes <= 0):
        raise ValueError("examples per class must be positive")
    order = np.argsort(sizes, kind="stable")
    sizes, gap = sizes[order], gap[order]

    if gap[-1] > 0:
        not_above = np.flatnonzero(~(gap > 0))
        if not_above.size == 0:
            return "observed", float(sizes[0])
        i = int(not_above[-1])
        log_low, log_high = math.log2(sizes[i]), math.log2(sizes[i + 1])
        # gap[i] <= 0 < gap[i + 1], so the fraction lies in [0, 1).
        fraction = float(gap[i] / (gap[i] - gap[i + 1]))
        return "observed", float(2.0 ** (log_low + fraction * (log_high - log_low)))

    if forecast_a is None or forecast_b is None:
        return "unknown", None
    last = float(sizes[-1])
    fit_a, fit_b = forecast_a.fit, forecast_b.fit

    def fitted_gap(log_n: float) -> float:
        n = 2.0**log_n
        return float(fit_a.predict(n) - fit_b.predict(n))

    if fitted_gap(math.log2(last)) > 0:
        return "extrapolated", last
    if search_up_to <= last:
        return "none", None
    grid = np.linspace(math.log2(last), math.log2(search_up_to), CROSSOVER_GRID)
    gaps = np.array([fitted_gap(float(v)) for v in grid])
    above = np.flatnonzero(gaps > 0)
    if above.size == 0:
        return "none", None
    j = int(above[0])
    if j == 0:
        return "extrapolated", last
    root = optimize.brentq(fitted_gap, float(grid[j - 1]), float(grid[j]))
    return "extrapolated", float(2.0**root)


def _power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def _fit_power_law(x: np.ndarray, y: np.ndarray, start: CurveFit | None = None) -> CurveFit | None:
    """Least-squares inverse power law from several starting guesses; the best converged fit, or None if none did."""
    lower = (0.0, 0.0, MIN_EXPONENT)
    upper = (1.0, np.inf, MAX_EXPONENT)
    starts: list[tuple[float, float, float]] = []
    if start is not None:
        # A bootstrap refit starts from the original fit, which is almost always next to the answer.
        starts.append((start.a, start.b, min(max(start.c, 2 * MIN_EXPONENT), MAX_EXPONENT)))
    smallest = float(x.min())
    level = min(1.0, float(y.max()) + 0.02)
    first_score = float(np.mean(y[x == smallest]))
    for exponent in (0.5, 0.2, 1.0, 2.0):
        starts.append((level, max(level - first_score, 1e-3) * smallest**exponent, exponent))

    best: CurveFit | None = None
    best_error = np.inf
    for initial in starts:
        try:
            with warnings.catch_warnings():
                # Only the parameters are used, so an inestimable covariance (exact fits, few points) is harmless.
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                params, _ = optimize.curve_fit(_power_law, x, y, p0=initial, bounds=(lower, upper), maxfev=2000)
        except (RuntimeError, ValueError):
            # RuntimeError: no convergence within maxfev; ValueError: non-finite values met along the way.
            continue
        a, b, c = (float(p) for p in params)
        residual = y - _power_law(x, a, b, c)
        error = float(np.sum(residual**2))
        if np.isfinite(error) and error < best_error:
            best_error = error
            best = CurveFit(a=a, b=b, c=c, rms_residual=math.sqrt(error / y.size))
        if start is not None and best is not None:
            # The warm start converged; more starts would only cost time in the bootstrap loop.
            break
    return best
