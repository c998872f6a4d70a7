"""Time estimates for a comparison's plan, and the cuts that make it fit a budget.

A short calibration measures, on the user's own texts (length matters), this machine's encoding speed and whatever
else the strategies' cost models need (each strategy's ``measure_speed``: a few real training steps, one pass of the
probe's regression grid); every part of the plan is estimated from those figures by the strategy's own
``fit_seconds``. The estimates are recorded beside the measured times in results.json, so their accuracy can be
checked. No strategy is named here: what the budget may cut is read from each strategy's tags.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bertwise.data.dataset import DataSplit
from bertwise.evaluation.learning_curve import CurvePlan
from bertwise.evaluation.protocol import Protocol, stratified_folds
from bertwise.exceptions import ConfigError
from bertwise.strategies.cost import Calibration, CalibrationSample, FitWork
from bertwise.strategies.registry import strategy_class, strategy_names, strategy_tags
from bertwise.util.formatting import duration

__all__ = ["Calibration", "Plan", "calibrate", "estimate", "fit_to_budget", "parse_duration"]

# Texts per timed chunk: enough that length-sorted batches pad as little as in a real run (much smaller chunks
# measured clearly slower than encoding the whole set at once; docs/speed.md).
CALIBRATION_TEXTS = 256
CALIBRATION_SECONDS = 1.0
CALIBRATION_MAX_TEXTS = 1024
SHORTEST_TRAINING = 0.25  # the budget never shortens a training schedule below this share of its planned steps
# A budget cuts a separate test set to no fewer rows than this (or than FEWEST_TEST_ROWS_PER_CLASS per class): fewer
# would leave macro-F1 intervals too wide to tell strategies apart.
FEWEST_TEST_ROWS = 300
FEWEST_TEST_ROWS_PER_CLASS = 10


@dataclass(frozen=True)
class Plan:
    """What will run: the knobs the budget may turn."""

    strategies: tuple[str, ...]
    protocol: Protocol
    curve: CurvePlan | None
    schedule_scale: float = 1.0  # share of the planned steps of strategies with a training schedule
    cuts: tuple[str, ...] = field(default=())

    def shortened_schedule(self, name: str) -> dict[str, Any]:
        """Parameters that make ``name`` train for this plan's share of its planned steps ({} when not cut)."""
        return strategy_class(name).shortened_schedule(self.schedule_scale)


def calibrate(
    split: DataSplit, model: str | None, pooling: str, device: str, seed: int, precision: str = "auto"
) -> Calibration:
    """Encode the user's texts for about a second (after a warm-up batch); then each strategy times what it needs."""
    from bertwise.backbone.encoder import forget_embeddings, load_encoder

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split.train))
    texts = [split.train.texts[i] for i in order[:CALIBRATION_MAX_TEXTS]]
    labels = [split.train.labels[i] for i in order[:CALIBRATION_MAX_TEXTS]]
    encoder = load_encoder(model, pooling, device, precision)  # type: ignore[arg-type]
    # cache=False: cached embeddings would time the disk, not the model. The first batch pays for thread start-up.
    encoder.encode(texts[:8], cache=False)
    forget_embeddings()
    # Time whole chunks until a second has passed: a GPU needs several batches before its speed shows.
    encoded: list[np.ndarray] = []
    done = 0
    start = time.perf_counter()
    while done < len(texts) and (done < CALIBRATION_TEXTS or time.perf_counter() - start < CALIBRATION_SECONDS):
        encoded.append(encoder.encode(texts[done : done + CALIBRATION_TEXTS], cache=False))
        done += len(encoded[-1])
    rate = done / max(time.perf_counter() - start, 1e-6)
    forget_embeddings()
    sample = CalibrationSample(
        texts, labels, np.concatenate(encoded), len(split.classes), model, device, seed, precision
    )
    figures: dict[str, float] = {}
    for name in strategy_names():
        figures.update(strategy_class(name).measure_speed(sample))
    return Calibration(encode_texts_per_second=rate, **figures)


def estimate(plan: Plan, split: DataSplit, calibration: Calibration) -> dict[str, float]:
    """Seconds per part: "<strategy>" for the main evaluation, "<strategy> curve" for its learning curve."""
    n_classes = len(split.classes)
    parts: dict[str, float] = {}
    for name in plan.strategies:
        cls = strategy_class(name)
        seeds = len(plan.protocol.seeds_for(cls.tags.seed_dependent))
        total = 0.0
        for run in range(seeds):
            for number, fold in enumerate(plan.protocol.folds):
                work = FitWork(
                    len(fold.train_rows),
                    len(fold.test_rows),
                    n_classes,
                    encode_train=(run == 0 and number == 0),
                    schedule_scale=plan.schedule_scale,
                )
                total += cls.fit_seconds(work, calibration)
        parts[name] = total
    if plan.curve is not None:
        test_rows = len(plan.protocol.folds[0].test_rows)
        for name, per_class, _ in plan.curve.jobs():
            work = FitWork(
                per_class * n_classes,
                test_rows,
                n_classes,
                encode_train=False,
                curve_point=True,
                schedule_scale=plan.schedule_scale,
            )
            parts[f"{name} curve"] = parts.get(f"{name} curve", 0.0) + strategy_class(name).fit_seconds(
                work, calibration
            )
    return parts


def fit_to_budget(plan: Plan, split: DataSplit, calibration: Calibration, limit: float) -> Plan:
    """Cut the plan, least valuable part first, until its estimate fits ``limit`` seconds; say what was cut.

    Order: fewer learning-curve repeats (those of strategies with a training schedule first, as their fits cost most),
    fewer seeds of seed-dependent strategies (or folds), fewer then no learning-curve points for strategies with a
    training schedule, and last shorter training schedules. The main comparison is cut last because it is the answer
    itself.
    """

    def total(candidate: Plan) -> float:
        return sum(estimate(candidate, split, calibration).values())

    steps: list[tuple[str, Any]] = []
    if plan.curve is not None:
        for name in sorted(plan.curve.repeats, key=lambda name: not strategy_tags(name).has_training_schedule):
            fewest = strategy_tags(name).fewest_curve_repeats
            if plan.curve.repeats.get(name, 1) > fewest:
                steps.append(("curve-repeats", (name, fewest)))
    steps.extend([("seeds", 2), ("seeds", 1), ("folds", 3), ("thin-curve", None), ("drop-curve", None)])
    current = plan
    for kind, value in steps:
        if total(current) <= limit:
            break
        current = _CUTS[kind](current, split, value)
    if total(current) > limit and any(_scheduled(current.strategies)):
        current = _shorten(current, limit, total)
    if total(current) > limit:
        current = _cut_test_rows(current, split, limit, total)
    if total(current) > limit:
        current = replace(
            current,
            cuts=(
                *current.cuts,
                f"even this plan is estimated at {duration(total(current))}, over the {duration(limit)} budget; "
                "it runs anyway",
            ),
        )
    return current


def _scheduled(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if strategy_tags(name).has_training_schedule]


def _cut_curve_repeats(plan: Plan, split: DataSplit, value: tuple[str, int]) -> Plan:
    name, repeats = value
    if plan.curve is None or name not in plan.curve.strategies:
        return plan
    before = plan.curve.repeats.get(name, 1)
    curve = replace(plan.curve, repeats={**plan.curve.repeats, name: repeats})
    return replace(plan, curve=curve, cuts=(*plan.cuts, f"{name} learning-curve repeats {before} -> {repeats}"))


def _cut_seeds(plan: Plan, split: DataSplit, value: int) -> Plan:
    seeded = [name for name in plan.strategies if strategy_tags(name).seed_dependent]
    before = len(plan.protocol.seeds)
    if not seeded or before <= value:
        return plan
    if plan.protocol.scheme == "cross-validation" and value == 1:
        return plan  # the folds already use distinct seeds; cutting folds is the next step
    protocol = replace(plan.protocol, seeds=plan.protocol.seeds[:value])
    return replace(plan, protocol=protocol, cuts=(*plan.cuts, f"{', '.join(seeded)} seeds {before} -> {value}"))


def _cut_folds(plan: Plan, split: DataSplit, value: int) -> Plan:
    if plan.protocol.scheme != "cross-validation" or len(plan.protocol.folds) <= value:
        return plan
    protocol = replace(plan.protocol, folds=stratified_folds(split, value, plan.protocol.seeds[0]))
    return replace(plan, protocol=protocol, cuts=(*plan.cuts, f"cross-validation folds -> {value}"))


def _thin_curves(plan: Plan, split: DataSplit, value: None) -> Plan:
    """Every other point of the curves of strategies with a training schedule; others keep every point (cheap)."""
    curve, cuts = plan.curve, []
    if curve is None:
        return plan
    for name in _scheduled(curve.strategies):
        points = curve.points_for(name)
        if len(points) > 2:
            kept = points[1::2] if len(points) % 2 == 0 else points[::2]
            curve = replace(curve, points_by_strategy={**curve.points_by_strategy, name: kept})
            cuts.append(f"{name} learning-curve points {len(points)} -> {len(kept)}")
    return replace(plan, curve=curve, cuts=(*plan.cuts, *cuts))


def _drop_curves(plan: Plan, split: DataSplit, value: None) -> Plan:
    """No curve for strategies with a training schedule: their full-data point is the main run's."""
    curve, cuts = plan.curve, []
    if curve is None:
        return plan
    for name in _scheduled(curve.strategies):
        curve = replace(curve, strategies=tuple(other for other in curve.strategies if other != name))
        cuts.append(f"no {name} learning curve (its full-data point is kept)")
    return replace(plan, curve=curve, cuts=(*plan.cuts, *cuts))


_CUTS: dict[str, Callable[[Plan, DataSplit, Any], Plan]] = {
    "curve-repeats": _cut_curve_repeats,
    "seeds": _cut_seeds,
    "folds": _cut_folds,
    "thin-curve": _thin_curves,
    "drop-curve": _drop_curves,
}


def _shorten(plan: Plan, limit: float, total: Callable[[Plan], float]) -> Plan:
    scale = 1.0
    candidate = plan
    while scale > SHORTEST_TRAINING and total(candidate) > limit:
        scale = max(SHORTEST_TRAINING, round(scale - 0.05, 2))
        candidate = replace(plan, schedule_scale=scale)
    if scale >= 1.0:
        return plan
    shortened = " and ".join(strategy_tags(name).in_words for name in _scheduled(plan.strategies))
    return replace(
        candidate,
        cuts=(
            *plan.cuts,
            f"{shortened} shortened to {scale:.0%} of its planned steps: its score may understate what full "
            "training reaches",
        ),
    )


def _cut_test_rows(plan: Plan, split: DataSplit, limit: float, total: Callable[[Plan], float]) -> Plan:
    """The most rows of a separate test set (a stratified, seeded sample) with which ``plan`` fits ``limit``, down to
    the floor; a wider interval is a better answer than a blown budget, and the cut says how much wider. Cross-
    validation tests the training rows themselves, so it has no test set to cut."""
    if plan.protocol.scheme == "cross-validation":
        return plan
    every = len(split.test)
    floor = min(every, max(FEWEST_TEST_ROWS, FEWEST_TEST_ROWS_PER_CLASS * len(split.classes)))
    if floor >= every:
        return plan

    def with_rows(n: int) -> Plan:
        fold = plan.protocol.folds[0]
        rows = tuple(range(every)) if n >= every else stratified_test_rows(split.test.labels, n, plan.protocol.seeds[0])
        return replace(plan, protocol=replace(plan.protocol, folds=(replace(fold, test_rows=rows),)))

    low, high = floor, every  # the largest n in [floor, every) that fits; floor when none does
    while high - low > max(1, every // 100):
        middle = (low + high) // 2
        low, high = (middle, high) if total(with_rows(middle)) <= limit else (low, middle)
    cut = with_rows(low)
    kept = len(cut.protocol.folds[0].test_rows)
    widening = (every / kept) ** 0.5
    note = (
        f"test set cut to {kept} of {every} rows (stratified): intervals about {widening:.1f}x wider than on every row"
    )
    return replace(cut, cuts=(*plan.cuts, note))


def stratified_test_rows(labels: Sequence[Any], n: int, seed: int) -> tuple[int, ...]:
    """About ``n`` row numbers of ``labels`` (a test set's, sorted): every class keeps its share, and at least one
    row, picked in a shuffled order deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    by_class: dict[Any, list[int]] = {}
    for row, label in enumerate(labels):
        by_class.setdefault(label, []).append(row)
    share = n / len(labels)
    kept: list[int] = []
    for rows in by_class.values():
        kept.extend(rng.permutation(rows)[: max(1, round(share * len(rows)))].tolist())
    return tuple(sorted(kept))


def parse_duration(text: str) -> float:
    """'15m', '90s', '1h30m', '2h' or a plain number of seconds -> seconds."""
    import re

    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", cleaned)
        if not parts or "".join(number + unit for number, unit in parts) != cleaned:
            raise ConfigError(f"could not read the budget {text!r}; expected a duration such as 15m, 90s, 1h30m or 600")
        seconds = sum(float(number) * {"h": 3600, "m": 60, "s": 1}[unit] for number, unit in parts)
    if seconds <= 0:
        raise ConfigError(f"the budget must be a positive duration; got {text!r}")
    return seconds
