"""One typed view of a results.json dict, which the terminal table, the Markdown summary and the HTML page render.

:func:`build_view` reads the dict once, leniently: any part may be missing or malformed (a failed strategy, no
learning curve, an older file), and the view then holds None or an empty tuple there, so a renderer says so in a
line instead of failing. Numbers stay fractions as recorded; the renderers choose how to write them
(:mod:`bertwise.report.format`). The plots draw from the recorded parts kept in ``record`` fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertwise.report.facts import describe_test_set, shown_config
from bertwise.report.format import (
    METRICS,
    as_interval,
    as_number,
    mapping,
    sequence,
    strings,
    text,
    texts,
)
from bertwise.report.stopping import (
    CurveStopping,
    Stopping,
    StrategyStopping,
    read_curve_stopping,
    read_stopping,
    read_strategy_stopping,
)

Interval = tuple[float, float]


@dataclass(frozen=True)
class Score:
    """A score (a fraction) and its interval, either of which may be missing."""

    value: float | None
    interval: Interval | None

    @classmethod
    def read(cls, value: Any, interval: Any) -> Score:
        return cls(as_number(value), as_interval(interval))


@dataclass(frozen=True)
class DataPart:
    """The training or the test set: where it came from and how many rows it has."""

    source: str | None
    rows: float | None
    origin: Any  # the test set's "held-out", "file" or "cross-validation"

    @property
    def file_name(self) -> str | None:
        return Path(self.source).name if self.source is not None else None


@dataclass(frozen=True)
class Dataset:
    train: DataPart | None
    test: DataPart | None
    classes: tuple[str, ...]
    notes: tuple[str, ...]
    max_length: Any
    truncated: Mapping[str, Any]  # part -> texts cut at max_length, in the order recorded
    test_set: str | None  # where the test set came from, in words


@dataclass(frozen=True)
class Model:
    id: str | None
    label: str  # the id, else the path, else "unknown"
    sha256: str | None
    embedded: bool
    pooling: str | None
    max_length: float | None
    record: Mapping[str, Any]  # everything results.json says about the model, for the facts panel


@dataclass(frozen=True)
class StrategyEntry:
    """One strategy's entry: its scores with intervals and its costs, or why it failed."""

    name: str
    ok: bool
    error: str
    scores: Mapping[str, Score]  # by metric key (format.METRICS)
    runs: int
    fit_seconds: float | None
    predict_ms_per_text: float | None
    peak_memory_mb: float | None
    peak_gpu_memory_mb: float | None
    stopping: StrategyStopping | None  # None in files written before the sequential protocol

    def score(self, metric: str) -> Score:
        return self.scores.get(metric) or Score(None, None)

    @property
    def runs_out_of_planned(self) -> str | None:
        """Runs done of those planned ("1 of 3 runs") where the protocol stopped early; None where all ran."""
        return self.stopping.runs_text if self.stopping else None


@dataclass(frozen=True)
class Pair:
    """A paired difference between two strategies, first minus second."""

    a: str
    b: str
    metric: str | None
    difference: float | None
    interval: Interval | None
    p_value: float | None
    significant: bool | None
    method: str | None


@dataclass(frozen=True)
class CurveColumn:
    """One strategy's learning curve: scores by labeled examples per class, measured and extrapolated."""

    name: str
    measured: Mapping[float | None, Score]  # None: a point without a size
    extrapolated: Mapping[float | None, Score]


@dataclass(frozen=True)
class Curve:
    columns: tuple[CurveColumn, ...]
    references: tuple[tuple[str, Score], ...]  # strategies that need no training, as a level
    fitted: tuple[str, ...]  # the strategies a curve was fitted to
    forms: tuple[str, ...]  # the fitted curves' forms, sorted
    crossover: str | None
    crossover_status: str | None
    crossings: tuple[str, ...]  # the other pairs' crossings: measured ones and extrapolated overtakes, in words
    stopping: CurveStopping | None
    record: Mapping[str, Any]


@dataclass(frozen=True)
class TokenizerSide:
    name: str | None
    texts: float | None
    words: float | None
    pieces_per_word: float | None
    share_words_3plus: float | None
    unknown_rate: float | None


@dataclass(frozen=True)
class Fragmented:
    word: str
    pieces: tuple[str, ...]
    count: float | None


@dataclass(frozen=True)
class Diagnostics:
    user: TokenizerSide | None
    reference: TokenizerSide | None
    ratio: float | None
    fragmented: tuple[Fragmented, ...]
    zero_shot_gap_points: float | None
    summary: tuple[str, ...]


@dataclass(frozen=True)
class RecommendationEntry:
    strategy: str | None
    runner_up: str | None
    priority: str | None
    tolerance_points: float | None
    reasons: tuple[str, ...]
    would_change: tuple[str, ...]


@dataclass(frozen=True)
class ProtocolEntry:
    scheme: Any  # as recorded ("unknown" when missing)
    folds: float | None
    why: str | None
    seeds: tuple[Any, ...]
    test_rows: float | None
    interval: str | None
    confidence: float | None
    bootstrap_resamples: float | None


@dataclass(frozen=True)
class Budget:
    limit_seconds: float | None
    estimated_seconds: float | None
    estimated_seconds_uncut: float | None
    measured_seconds: float | None  # the sum of measured_seconds_by_part: the run's time in all
    calibration: tuple[tuple[str, float | None], ...]
    cuts: tuple[str, ...]


@dataclass(frozen=True)
class ReportView:
    """Everything the reports show, read from one results.json dict."""

    schema_version: Any
    bertwise_version: Any
    dataset: Dataset
    model: Model | None
    strategies: tuple[StrategyEntry, ...]
    paired: tuple[Pair, ...]
    curve: Curve | None
    diagnostics: Diagnostics | None
    recommendation: RecommendationEntry | None
    protocol: ProtocolEntry | None
    budget: Budget | None
    stopping: Stopping | None  # what the protocol skipped, and why; None in older files
    resumed: tuple[str, ...]
    machine: Mapping[str, Any]
    config: Mapping[str, Any]  # the settings that took part in the run (facts.shown_config)
    confidence: float | None  # of the intervals, as the protocol records it; the config's for the terminal
    strategy_records: Any  # results.json's "strategies" as recorded, for the plots

    @property
    def chosen(self) -> str | None:
        return self.recommendation.strategy if self.recommendation else None

    @property
    def time_to_recommendation(self) -> str | None:
        """The time to the recommendation ("42 s to the recommendation, of 3.1 min in all"), where recorded."""
        if self.stopping is None:
            return None
        return self.stopping.time_text(self.budget.measured_seconds if self.budget else None)


def build_view(results: Any) -> ReportView:
    """The view of a results.json dict; anything that is not a dict reads as an empty one."""
    results = mapping(results)
    protocol = _protocol(results.get("protocol"))
    strategies = tuple(_strategy(entry) for entry in sequence(results.get("strategies")) if isinstance(entry, Mapping))
    curve = _curve(results.get("learning_curve"))
    stops = [(strategy.name, strategy.stopping) for strategy in strategies]
    return ReportView(
        schema_version=results.get("schema_version"),
        bertwise_version=results.get("bertwise_version"),
        dataset=_dataset(results),
        model=_model(results.get("model")),
        strategies=strategies,
        paired=tuple(_pair(entry) for entry in sequence(results.get("paired")) if isinstance(entry, Mapping)),
        curve=curve,
        diagnostics=_diagnostics(results.get("diagnostics")),
        recommendation=_recommendation(results.get("recommendation")),
        protocol=protocol,
        budget=_budget(results.get("budget")),
        stopping=read_stopping(results, stops, curve.stopping if curve else None),
        resumed=tuple(str(stage) for stage in sequence(results.get("resumed")) if stage),
        machine=mapping(results.get("machine")),
        config=shown_config(results),
        confidence=protocol.confidence if protocol else None,
        strategy_records=results.get("strategies"),
    )


def sizes(points: Mapping[float | None, Score]) -> list[float]:
    """The sizes (examples per class) of a curve's points, leaving out points without one."""
    return [size for size in points if size is not None]


def curve_sizes(columns: Sequence[CurveColumn]) -> tuple[list[float], list[float]]:
    """The rows of a learning-curve table: the measured sizes, then the extrapolated ones beyond them, ascending."""
    measured = sorted({size for column in columns for size in sizes(column.measured)})
    guessed = sorted({size for column in columns for size in sizes(column.extrapolated)} - set(measured))
    return measured, guessed


def _part(value: Any) -> DataPart | None:
    part = mapping(value)
    if not part:
        return None
    source = part.get("source")
    return DataPart(source if isinstance(source, str) else None, as_number(part.get("rows")), part.get("origin"))


def _dataset(results: Mapping[str, Any]) -> Dataset:
    dataset = mapping(results.get("dataset"))
    return Dataset(
        train=_part(dataset.get("train")),
        test=_part(dataset.get("test")),
        classes=tuple(str(label) for label in sequence(dataset.get("classes"))),
        notes=strings(sequence(dataset.get("notes"))),
        max_length=dataset.get("max_length"),
        truncated=mapping(dataset.get("truncated")),
        test_set=describe_test_set(results),
    )


def _model(value: Any) -> Model | None:
    model = mapping(value)
    if not model:
        return None
    model_id, sha256, pooling = model.get("id"), model.get("sha256"), model.get("pooling")
    return Model(
        id=model_id if isinstance(model_id, str) else None,
        label=str(model_id or model.get("path") or "unknown"),
        sha256=sha256 if isinstance(sha256, str) else None,
        embedded=model.get("embedded") is True,
        pooling=pooling if isinstance(pooling, str) else None,
        max_length=as_number(model.get("max_length")),
        record=model,
    )


def _strategy(entry: Mapping[str, Any]) -> StrategyEntry:
    metrics, intervals, cost = (
        mapping(entry.get("metrics")),
        mapping(entry.get("metrics_interval")),
        mapping(entry.get("cost")),
    )
    return StrategyEntry(
        name=str(entry.get("name", "?")),
        ok=entry.get("status") == "ok",
        error=str(entry.get("error") or "no reason given"),
        scores={key: Score.read(metrics.get(key), intervals.get(key)) for key, _, _ in METRICS},
        runs=len(sequence(entry.get("runs"))),
        fit_seconds=as_number(cost.get("fit_seconds")),
        predict_ms_per_text=as_number(cost.get("predict_ms_per_text")),
        peak_memory_mb=as_number(cost.get("peak_memory_mb")),
        peak_gpu_memory_mb=as_number(cost.get("peak_gpu_memory_mb")),
        stopping=read_strategy_stopping(entry),
    )


def _pair(entry: Mapping[str, Any]) -> Pair:
    metric, significant, method = entry.get("metric"), entry.get("significant"), entry.get("method")
    return Pair(
        a=text(entry.get("a")),
        b=text(entry.get("b")),
        metric=None if metric is None else str(metric),
        difference=as_number(entry.get("difference")),
        interval=as_interval(entry.get("interval")),
        p_value=as_number(entry.get("p_value")),
        significant=significant if isinstance(significant, bool) else None,
        method=method if isinstance(method, str) else None,
    )


def _points_by_size(points: Any) -> dict[float | None, Score]:
    return {
        as_number(point.get("per_class")): Score.read(point.get("macro_f1"), point.get("interval"))
        for point in sequence(points)
        if isinstance(point, Mapping)
    }


def _curve(value: Any) -> Curve | None:
    curve = mapping(value)
    if not curve:
        return None
    fits = {str(name): fit for name, fit in mapping(curve.get("fit")).items() if isinstance(fit, Mapping)}
    columns = tuple(
        CurveColumn(
            name=str(name),
            measured=_points_by_size(points),
            extrapolated=_points_by_size(mapping(mapping(curve.get("fit")).get(name)).get("extrapolation")),
        )
        for name, points in mapping(curve.get("strategies")).items()
        if sequence(points)
    )
    references = tuple(
        (str(name), Score.read(entry.get("macro_f1"), entry.get("interval")))
        for name, entry in mapping(curve.get("reference")).items()
        if isinstance(entry, Mapping) and as_number(entry.get("macro_f1")) is not None
    )
    crossover = mapping(curve.get("crossover"))
    crossover_text, status = crossover.get("text"), crossover.get("status")
    return Curve(
        columns=columns,
        references=references,
        fitted=tuple(fits),
        forms=tuple(sorted(set(strings(fit.get("form") for fit in fits.values())))),
        crossover=crossover_text if isinstance(crossover_text, str) and crossover_text else None,
        crossover_status=status if isinstance(status, str) else None,
        crossings=_crossings(curve),
        stopping=read_curve_stopping(curve),
        record=curve,
    )


def _crossings(curve: Mapping[str, Any]) -> tuple[str, ...]:
    """The texts of the other pairs' crossings worth a line: a lead that changed hands at a measured size, or one the
    fitted curves put ahead with more data; "ahead from the first point" and "never crosses" say nothing new."""
    texts: list[str] = []
    for entry in sequence(curve.get("crossovers")):
        crossing = mapping(entry)
        text, status = crossing.get("text"), crossing.get("status")
        moved = (status == "observed" and not crossing.get("from_first_point")) or status == "extrapolated"
        if isinstance(text, str) and text and moved:
            texts.append(text)
    return tuple(texts)


def _tokenizer_side(value: Any) -> TokenizerSide | None:
    side = mapping(value)
    if not side:
        return None
    name = side.get("name")
    return TokenizerSide(
        name=name if isinstance(name, str) else None,
        texts=as_number(side.get("texts")),
        words=as_number(side.get("words")),
        pieces_per_word=as_number(side.get("pieces_per_word")),
        share_words_3plus=as_number(side.get("share_words_3plus")),
        unknown_rate=as_number(side.get("unknown_rate")),
    )


def _diagnostics(value: Any) -> Diagnostics | None:
    diagnostics = mapping(value)
    if not diagnostics:
        return None
    tokenizer = mapping(diagnostics.get("tokenizer"))
    return Diagnostics(
        user=_tokenizer_side(tokenizer.get("user")),
        reference=_tokenizer_side(tokenizer.get("reference")),
        ratio=as_number(tokenizer.get("pieces_per_word_ratio")),
        fragmented=tuple(
            Fragmented(
                word=text(entry.get("word")),
                pieces=tuple(text(piece) for piece in sequence(entry.get("pieces"))),
                count=as_number(entry.get("count")),
            )
            for entry in sequence(tokenizer.get("most_fragmented"))
            if isinstance(entry, Mapping)
        ),
        zero_shot_gap_points=as_number(diagnostics.get("zero_shot_gap_points")),
        summary=texts(diagnostics.get("summary")),
    )


def _recommendation(value: Any) -> RecommendationEntry | None:
    if not isinstance(value, Mapping):
        return None
    chosen, runner_up, priority = value.get("strategy"), value.get("runner_up"), value.get("priority")
    return RecommendationEntry(
        strategy=chosen if isinstance(chosen, str) and chosen else None,
        runner_up=runner_up if isinstance(runner_up, str) else None,
        priority=priority if isinstance(priority, str) else None,
        tolerance_points=as_number(value.get("tolerance_points")),
        reasons=texts(value.get("reasons")),
        would_change=texts(value.get("would_change")),
    )


def _protocol(value: Any) -> ProtocolEntry | None:
    protocol = mapping(value)
    if not protocol:
        return None
    why, interval = protocol.get("why"), protocol.get("interval")
    return ProtocolEntry(
        scheme=protocol.get("scheme", "unknown"),
        folds=as_number(protocol.get("folds")),
        why=why if isinstance(why, str) else None,
        seeds=tuple(sequence(protocol.get("seeds"))),
        test_rows=as_number(protocol.get("test_rows")),
        interval=interval if isinstance(interval, str) else None,
        confidence=as_number(protocol.get("confidence")),
        bootstrap_resamples=as_number(protocol.get("bootstrap_resamples")),
    )


def _budget(value: Any) -> Budget | None:
    budget = mapping(value)
    if not budget:
        return None
    return Budget(
        limit_seconds=as_number(budget.get("limit_seconds")),
        estimated_seconds=as_number(budget.get("estimated_seconds")),
        estimated_seconds_uncut=as_number(budget.get("estimated_seconds_uncut")),
        measured_seconds=_total(budget.get("measured_seconds_by_part")),
        calibration=tuple((str(key), as_number(value)) for key, value in mapping(budget.get("calibration")).items()),
        cuts=texts(budget.get("cuts")),
    )


def _total(parts: Any) -> float | None:
    measured = [number for number in map(as_number, mapping(parts).values()) if number is not None]
    return sum(measured) if measured else None
