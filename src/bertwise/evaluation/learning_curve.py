"""Learning curves: macro-F1 against labeled examples per class, with intervals, for every trained strategy.

Each point trains on class-balanced subsamples of the first fold's training rows (up to ``n`` rows of each class,
drawn anew for every repeat) and tests on that fold's test rows, so every point and the zero-shot reference are
scored on the same items. The last point is the full training set, taken from the main evaluation rather than refit.
Probe points reuse the embeddings computed once: only the logistic regression is refit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, Label, LabeledTexts
from bertwise.evaluation.curve_sequential import CurveStopping, CurveWatch
from bertwise.evaluation.protocol import Protocol
from bertwise.exceptions import BertwiseError
from bertwise.strategies.cost import FitWork
from bertwise.strategies.registry import strategy_tags

if TYPE_CHECKING:
    from bertwise.evaluation.deadline import Deadline
    from bertwise.evaluation.runner import FitStore

# How far beyond the data the fitted curve is drawn, in multiples of the full set's examples per class.
FORECAST_MULTIPLES = (1.5, 2.0, 4.0, 8.0)
FIRST_POINT = 8


@dataclass(frozen=True)
class CurvePlan:
    points: tuple[int, ...]  # examples per class for the subsampled points (the full set is added after)
    full_per_class: float  # mean examples per class in the full training part
    repeats: dict[str, int] = field(default_factory=dict)  # strategy -> subsamples per point
    strategies: tuple[str, ...] = ()
    # Fewer points for a strategy (a budget thins the expensive fine-tuning curve); others use ``points``.
    points_by_strategy: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def points_for(self, name: str) -> tuple[int, ...]:
        return self.points_by_strategy.get(name, self.points)

    def jobs(self) -> list[tuple[str, int, int]]:
        """(strategy, examples per class, repeat) for every fit the curve needs."""
        return [
            (name, point, repeat)
            for name in self.strategies
            for point in self.points_for(name)
            for repeat in range(self.repeats.get(name, 1))
        ]


def plan_curve(split: DataSplit, protocol: Protocol, config: CompareConfig, trained: Sequence[str]) -> CurvePlan:
    pool = split.train.subset(protocol.folds[0].train_rows)
    counts = pool.class_counts()
    full = len(pool) / len(counts)
    points: list[int] = []
    point = FIRST_POINT
    while point < 0.9 * full:  # a point within 10 % of the full set would only repeat it
        points.append(point)
        point *= 2
    if len(points) < 2:
        # Small sets still get a curve: start lower rather than draw a single point.
        points = [p for p in (2, 4) if p < 0.9 * full] + points
    return CurvePlan(
        points=tuple(points),
        full_per_class=round(full, 1),
        repeats={name: config.curve_repeats.get(name, strategy_tags(name).curve_repeats) for name in trained},
        strategies=tuple(trained),
    )


def balanced_subsample(pool: LabeledTexts, per_class: int, seed: int) -> list[int]:
    """Up to ``per_class`` rows of every class, drawn without replacement; file order kept."""
    rng = np.random.default_rng(seed)
    by_class: dict[Label, list[int]] = {}
    for row, label in enumerate(pool.labels):
        by_class.setdefault(label, []).append(row)
    chosen: list[int] = []
    for label in pool.classes:
        rows = by_class[label]
        take = min(per_class, len(rows))
        chosen.extend(int(row) for row in rng.choice(rows, size=take, replace=False))
    return sorted(chosen)


def curve_looks(plan: CurvePlan) -> int:
    """How many looks the sequential curve may take, for the stopping rule's share of the error rate: one after every
    repeat but the last, at every point where the crossover's ``a`` meets its rival ``b``."""
    pair = crossover_pair(plan.strategies)
    if pair is None:
        return 0
    a, b = pair
    shared = set(plan.points_for(a)) & set(plan.points_for(b))
    return len(shared) * max(0, plan.repeats.get(a, 1) - 1)


def run_curve(
    plan: CurvePlan,
    split: DataSplit,
    protocol: Protocol,
    config: CompareConfig,
    *,
    full_runs: dict[str, np.ndarray],
    references: Mapping[str, np.ndarray],
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
    on_fit: Callable[[str, int, int, float], None] | None = None,
    store: FitStore | None = None,
    stopping: CurveStopping | None = None,
    deadline: Deadline | None = None,
    schedule_scale: float = 1.0,
) -> dict[str, Any]:
    """The ``learning_curve`` part of results.json.

    ``full_runs[name]`` holds the main evaluation's predicted class indices on the first fold's test rows, one row
    per run: the curve's last point. ``references[name]`` are the predicted indices on all test rows of a strategy
    drawn as a flat line beside the curves (one that learns nothing from labels, such as zero-shot).
    ``store`` keeps every finished fit and gives back those an earlier, killed curve finished.
    ``stopping`` stops a point's repeats of the crossover's ``a`` once they cannot change which is ahead there (see
    :mod:`bertwise.evaluation.curve_sequential`); ``deadline`` skips the fits the budget has no time left for
    (``schedule_scale``: the share of a training schedule the budget left, for its estimates). With either, the result
    gains a ``stopping`` part; with neither, every planned fit runs.
    """
    from bertwise.evaluation.curve_fit import crossover

    fold = protocol.folds[0]
    pool = split.train.subset(fold.train_rows)
    test_rows = list(fold.test_rows)
    score = _Scorer(split, test_rows, config)
    pair = crossover_pair(plan.strategies)
    watch = CurveWatch(stopping, deadline, score.y_true, len(split.classes), rivals={pair[0]: pair[1]} if pair else {})
    test_texts = [split.test.texts[i] for i in test_rows]
    fits = _CurveFits(plan, pool, test_texts, split, config, overrides or {}, on_fit, store, watch, schedule_scale)
    ran: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, str] = {}
    for name in watch.order(plan.strategies):
        points: list[dict[str, Any]] = []
        try:
            _strategy_points(name, fits, score, points)
        except BertwiseError as error:
            failed[name] = str(error)
        if name in full_runs:
            points.append(score(plan.full_per_class, len(pool), full_runs[name]))
        ran[name] = points
    curves = {name: ran[name] for name in plan.strategies}  # in the plan's order, whatever order they ran in

    reference: dict[str, Any] = {}
    for name, predictions in references.items():
        flat = score(0, 0, predictions[test_rows][None, :])
        reference[name] = {"macro_f1": flat["macro_f1"], "interval": flat["interval"]}
    forecasts = _forecasts(curves, plan, config.seed)
    result: dict[str, Any] = {
        "per_class_points": [*plan.points, plan.full_per_class],
        "test_rows": len(test_rows),
        "repeats": dict(plan.repeats),
        "reference": reference,
        "strategies": curves,
        "fit": {name: None if forecast is None else _describe_fit(forecast) for name, forecast in forecasts.items()},
        "crossover": _crossover(curves, forecasts, plan, crossover),
        "crossovers": _pairwise_crossovers(curves, forecasts, plan, crossover),
    }
    if failed:
        result["failed"] = failed
    decided = watch.to_dict()
    if decided is not None:
        result["stopping"] = decided
    return result


@dataclass(frozen=True)
class _CurveFits:
    """What every fit of one curve shares."""

    plan: CurvePlan
    pool: LabeledTexts
    test_texts: list[str]
    split: DataSplit
    config: CompareConfig
    overrides: dict[str, dict[str, Any]]
    on_fit: Callable[[str, int, int, float], None] | None
    store: FitStore | None
    watch: CurveWatch
    schedule_scale: float


def _strategy_points(name: str, fits: _CurveFits, score: _Scorer, points: list[dict[str, Any]]) -> None:
    """``name``'s subsampled points, appended to ``points`` as they finish; a point the deadline left without a
    single repeat is left out, and so are the points after it."""
    planned = fits.plan.points_for(name)
    for index, per_class in enumerate(planned):
        train_rows, runs, refused = _point_runs(name, per_class, fits, later=list(planned[index + 1 :]))
        if runs is not None:
            fits.watch.keep(name, per_class, runs)
            points.append(score(per_class, train_rows, runs))
        if refused:
            return


def _point_runs(name: str, per_class: int, fits: _CurveFits, later: list[int]) -> tuple[int, np.ndarray | None, bool]:
    """(training rows, predicted indices per repeat or None when none ran, whether the deadline refused a repeat)
    of one curve point: a fresh class-balanced subsample a repeat, until the stopping rule says the rest cannot
    change which is ahead there."""
    planned = fits.plan.repeats.get(name, 1)
    runs: list[np.ndarray] = []
    train_rows = 0
    for repeat in range(planned):
        rows = balanced_subsample(fits.pool, per_class, seed=fits.config.seed + 7919 * repeat + per_class)
        fit = _curve_fit(name, per_class, repeat, rows, fits, later)
        if fit is None:
            return train_rows, np.stack(runs) if runs else None, True
        train_rows = len(rows)
        runs.append(fit.probabilities.argmax(axis=1))
        if fits.on_fit is not None:
            fits.on_fit(name, per_class, repeat, fit.fit_seconds + fit.predict_seconds)
        if fits.watch.stops(name, per_class, np.stack(runs), planned):
            break
    return train_rows, np.stack(runs), False


def _curve_fit(name: str, per_class: int, repeat: int, rows: list[int], fits: _CurveFits, later: list[int]) -> Any:
    """One repeat's fit at one point, or None when the deadline has no time left for it. A fit an earlier, killed
    curve kept costs nothing, so the deadline is not asked about it."""
    from bertwise.evaluation.runner import stored_fit

    fit_id = f"{name}-{per_class}-{repeat}"
    work = FitWork(
        train_rows=len(rows),
        test_rows=len(fits.test_texts),
        n_classes=len(fits.split.classes),
        encode_train=False,
        curve_point=True,
        schedule_scale=fits.schedule_scale,
    )
    what = f"{strategy_tags(name).in_words}'s curve at {per_class} per class, repeat {repeat + 1}"
    if fits.watch.deadline is not None:
        kept = fits.store.load(fit_id) if fits.store is not None else None
        if kept is not None:
            return None if fits.watch.stopped_by_budget(what, kept.details, later) else kept
        if fits.watch.refusal(name, work, what, later):
            return None
    fit = stored_fit(
        fits.store,
        fit_id,
        kill_point="curve fit",
        name=name,
        config=fits.config,
        train=fits.pool.subset(rows),
        test_texts=fits.test_texts,
        classes=fits.split.classes,
        seed=fits.config.seed + repeat,
        overrides=fits.overrides.get(name),
        fresh=False,
        progress=False,
        monitor=fits.watch.training_monitor(name),
    )
    fits.watch.record(name, work, fit.fit_seconds + fit.predict_seconds)
    return None if fits.watch.stopped_by_budget(what, fit.details, later) else fit


class _Scorer:
    """One curve point's scores on the first fold's test rows, with bootstrap intervals."""

    def __init__(self, split: DataSplit, test_rows: list[int], config: CompareConfig) -> None:
        index = {label: position for position, label in enumerate(split.classes)}
        self.classes = split.classes
        self.y_true = np.array([index[split.test.labels[i]] for i in test_rows], dtype=np.int64)
        self.config = config

    def __call__(self, per_class: float, train_rows: int, runs: np.ndarray) -> dict[str, Any]:
        from bertwise.evaluation.statistics import bootstrap_metrics

        config = self.config
        estimates: Any = bootstrap_metrics(
            self.y_true,
            runs,
            len(self.classes),
            resamples=config.bootstrap_resamples,
            confidence=config.confidence,
            seed=config.seed,
        )
        return {
            "per_class": per_class,
            "train_rows": train_rows,
            "runs": int(runs.shape[0]),
            "macro_f1": round(estimates["macro_f1"].mean, 4),
            "interval": [round(estimates["macro_f1"].low, 4), round(estimates["macro_f1"].high, 4)],
            "accuracy": round(estimates["accuracy"].mean, 4),
            "accuracy_interval": [round(estimates["accuracy"].low, 4), round(estimates["accuracy"].high, 4)],
            "per_class_f1": {
                str(label): round(estimates["per_class_f1"][position].mean, 4)
                for position, label in enumerate(self.classes)
            },
            "per_run_macro_f1": [round(value, 4) for value in estimates["macro_f1"].per_run],
        }


def _forecasts(curves: dict[str, list[dict[str, Any]]], plan: CurvePlan, seed: int) -> dict[str, Any]:
    """Each curve's fitted forecast beyond the data (None under 3 points)."""
    from bertwise.evaluation.curve_fit import fit_learning_curve

    forecast_at = [plan.full_per_class * multiple for multiple in FORECAST_MULTIPLES]
    forecasts: dict[str, Any] = {}
    for name, points in curves.items():
        forecast = None
        if len(points) >= 3:
            # The forecast rests on the largest measured point, so its band starts from that point's interval.
            last = max(points, key=lambda point: point["per_class"])
            forecast = fit_learning_curve(
                [point["per_class"] for point in points],
                [point["per_run_macro_f1"] for point in points],
                forecast_at=forecast_at,
                measured=(last["macro_f1"], *last["interval"]),
                seed=seed,
            )
        forecasts[name] = forecast
    return forecasts


def _describe_fit(forecast: Any) -> dict[str, Any]:
    return {
        "form": "macro_f1 = a - b * n^(-c), n = examples per class",
        "params": {"a": round(forecast.fit.a, 4), "b": round(forecast.fit.b, 4), "c": round(forecast.fit.c, 4)},
        "extrapolation": [
            {"per_class": round(n, 1), "macro_f1": round(mean, 4), "interval": [round(low, 4), round(high, 4)]}
            for n, mean, low, high in zip(forecast.per_class, forecast.mean, forecast.low, forecast.high, strict=True)
        ],
    }


def crossover_pair(names: Sequence[str]) -> tuple[str, str] | None:
    """(a, b) whose curves the crossover compares: the first strategy that trains the backbone against the first
    that keeps it frozen, as in "from how many examples does fine-tuning overtake the probe"."""
    trains = [name for name in names if strategy_tags(name).trains_backbone]
    frozen = [name for name in names if not strategy_tags(name).trains_backbone]
    return (trains[0], frozen[0]) if trains and frozen else None


def _crossover(
    curves: dict[str, list[dict[str, Any]]], forecasts: dict[str, Any], plan: CurvePlan, crossover: Any
) -> dict[str, Any] | None:
    pair = crossover_pair(list(curves))
    return None if pair is None else _crossing(*pair, curves, forecasts, plan, crossover)


def _pairwise_crossovers(
    curves: dict[str, list[dict[str, Any]]], forecasts: dict[str, Any], plan: CurvePlan, crossover: Any
) -> list[dict[str, Any]]:
    """Every other pair of curves, both ways: the one ahead at the largest shared size gets where it took the lead
    (observed), the one behind whether it would overtake with more data (the fitted curves). This answers "SetFit wins
    below about 30 examples a class, fine-tuning above" when SetFit, fine-tuning and the probe all have curves, or the
    same strategy on two backbones."""
    primary = crossover_pair(list(curves))
    names = [name for name, points in curves.items() if points]
    found: list[dict[str, Any]] = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if primary is not None and {first, second} == set(primary):
                continue
            for a, b in ((first, second), (second, first)):
                entry = _crossing(a, b, curves, forecasts, plan, crossover)
                if entry is not None:
                    found.append(entry)
    return found


def _crossing(
    a: str,
    b: str,
    curves: dict[str, list[dict[str, Any]]],
    forecasts: dict[str, Any],
    plan: CurvePlan,
    crossover: Any,
) -> dict[str, Any] | None:
    """From how many examples per class ``a`` scores above ``b`` (see :func:`curve_fit.crossover`)."""
    first = {point["per_class"]: point["macro_f1"] for point in curves[a]}
    second = {point["per_class"]: point["macro_f1"] for point in curves[b]}
    shared = sorted(set(first) & set(second))
    if not shared:
        return None
    horizon = plan.full_per_class * FORECAST_MULTIPLES[-1]
    status, where = crossover(
        shared,
        [first[n] for n in shared],
        [second[n] for n in shared],
        forecasts.get(a),
        forecasts.get(b),
        search_up_to=horizon,
    )
    return {
        "a": a,
        "b": b,
        "status": status,
        "per_class": None if where is None else round(float(where), 1),
        "from_first_point": status == "observed" and where is not None and where <= shared[0],
        "text": _crossover_text(a, b, status, where, shared, plan, horizon),
    }


def _crossover_text(
    a: str, b: str, status: str, where: float | None, shared: list[float], plan: CurvePlan, horizon: float
) -> str:
    one, other = strategy_tags(a).in_words, strategy_tags(b).in_words
    if status == "observed" and where is not None and where <= shared[0]:
        return f"{one} scores above {other} from the first measured point ({shared[0]:g} examples per class)"
    if status == "observed" and where is not None:
        return f"{one} overtakes {other} at about {where:.0f} examples per class (measured)"
    if status == "extrapolated" and where is not None and where <= 1.1 * plan.full_per_class:
        return (
            f"{one} and {other} are level at the data's size ({plan.full_per_class:g} examples per class); "
            f"the fitted curves put {one} ahead beyond it (an extrapolation)"
        )
    if status == "extrapolated" and where is not None:
        return (
            f"{one} would overtake {other} at about {where:.0f} examples per class "
            f"(an extrapolation of the fitted curves; the data has {plan.full_per_class:g})"
        )
    if status == "none":
        return f"the fitted curves do not cross before {horizon:.0f} examples per class: {other} stays ahead"
    return f"too few curve points to say where {one} would overtake {other}"


def refit_plan(plan: CurvePlan, split: DataSplit, protocol: Protocol) -> CurvePlan:
    """The same plan on a protocol whose first fold changed (a budget cut the folds): new full size, points within."""
    pool = split.train.subset(protocol.folds[0].train_rows)
    full = len(pool) / len(pool.class_counts())
    keep = tuple(point for point in plan.points if point < 0.9 * full)
    by_strategy = {
        name: tuple(point for point in points if point < 0.9 * full) for name, points in plan.points_by_strategy.items()
    }
    return CurvePlan(
        points=keep,
        full_per_class=round(full, 1),
        repeats=plan.repeats,
        strategies=plan.strategies,
        points_by_strategy=by_strategy,
    )
