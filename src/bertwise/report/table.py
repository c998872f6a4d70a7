"""The comparison in the terminal: the plan before it runs, then the dataset summary, the table of results and the
recommendation, rendered from the report view of results.json; formats, never computes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from rich.table import Table

from bertwise.report.format import MISSING, as_number
from bertwise.report.view import ReportView, build_view
from bertwise.strategies.registry import strategy_names, strategy_tags
from bertwise.util.formatting import duration

if TYPE_CHECKING:
    from rich.console import Console

    from bertwise.evaluation.protocol import Protocol as EvaluationProtocol


class Planned(Protocol):
    """What the plan is printed from: the comparison as ``compare`` hands it to on_plan."""

    @property
    def protocol(self) -> EvaluationProtocol: ...

    @property
    def budget(self) -> Mapping[str, Any]: ...


class Recorded(Protocol):
    """Anything that gives its results.json dict: the comparison ``compare`` returns."""

    def to_dict(self) -> dict[str, Any]: ...


def print_plan(planned: Planned, console: Console) -> None:
    """What will run and about how long it takes, printed before the first strategy runs (``compare``'s on_plan)."""
    for line in plan_lines(planned.protocol, planned.budget):
        # soft_wrap: one line stays one line in a log file; a terminal folds it to its own width.
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def plan_lines(protocol: EvaluationProtocol, budget: Mapping[str, Any]) -> list[str]:
    """The protocol, the estimate of each part, the budget's cuts, and the advice a long unbudgeted plan gets."""
    folds = f" ({len(protocol.folds)} folds)" if protocol.scheme == "cross-validation" else ""
    parts = budget.get("estimated_seconds_by_part") or {}
    # Only a seed-dependent strategy (fine-tuning) runs once per seed: the others run once whatever the seeds.
    seeds = f", fine-tuning seeds {list(protocol.seeds)}" if _any_seed_dependent(parts) else ""
    lines = [f"plan: {protocol.scheme}{folds}{seeds}: {protocol.why}"]
    total = budget.get("estimated_seconds", sum(parts.values()))
    shown = ", ".join(f"{part} {duration(seconds)}" for part, seconds in parts.items())
    lines.append(f"  estimated time: {duration(total)} ({shown})")
    first_runs = budget.get("estimated_seconds_first_runs")
    if first_runs is not None:
        lines.append(
            f"  sequential protocol: one run of each strategy is about {duration(first_runs)}; the rest runs only "
            "where it can still change the recommendation"
        )
    limit = budget.get("limit_seconds")
    if limit is not None:
        uncut = budget.get("estimated_seconds_uncut", total)
        cuts = budget.get("cuts") or []
        fits = "the full plan fits, nothing cut" if not cuts else f"the full plan is {duration(uncut)}, cut to fit"
        lines.append(f"  --budget {budget_option(limit)}: {fits}")
        lines += [f"  budget cut: {cut}" for cut in cuts]
        if budget.get("deadline"):
            lines.append(f"  then: {budget['deadline']}")
    suggested = budget.get("suggested")
    if suggested:
        lines.append(_long_plan_advice(total, suggested, budget.get("protocol", "full")))
    return lines


def _any_seed_dependent(parts: Mapping[str, Any]) -> bool:
    """Whether any part of the plan is a strategy whose result depends on the seed, as its class's tags say."""
    # Deferred: the strategies package imports scikit-learn (and strategy_tags the strategy's class).

    known = set(strategy_names())
    return any(strategy_tags(part).seed_dependent for part in parts if part in known)


def _long_plan_advice(total: float, suggested: Mapping[str, Any], protocol: str) -> str:
    """The line for an unbudgeted plan over ``when_over_seconds``: the ``--budget`` that fits, and what it cuts."""
    running = "running the full plan" if protocol == "full" else "running the sequential protocol without a deadline"
    option = f"--budget {budget_option(suggested['budget_seconds'])}"
    cuts = "; ".join(suggested.get("cuts") or [])
    over = f"  estimated {duration(total)}, over {duration(suggested['when_over_seconds'])}: "
    if suggested.get("fits", True) and protocol != "full":
        cut = f" ({cuts})" if cuts else ""
        return (
            f"{over}{option} would run one of each strategy in about {duration(suggested['estimated_seconds'])}{cut} "
            f"and the rest while time is left; {running}"
        )
    if suggested.get("fits", True):
        return f"{over}{option} would cut it to about {duration(suggested['estimated_seconds'])} ({cuts}); {running}"
    cut = f" after its cuts ({cuts})" if cuts else ""
    return (
        f"{over}even {option} would leave about {duration(suggested['estimated_seconds'])}{cut}, so no budget makes "
        f"it fit {duration(suggested['budget_seconds'])}: fewer strategies (--strategies) or fewer rows would; "
        f"{running}"
    )


def budget_option(seconds: float) -> str:
    """How ``--budget`` spells ``seconds``: 15m, 1h, 90s."""
    whole = round(seconds)
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def print_comparison(results: Mapping[str, Any] | Recorded, console: Console) -> None:
    """The run in the terminal: what it ran on, the table of scores and costs, the paired differences and the
    recommendation; from a results.json dict, or from the comparison that writes one."""
    view = build_view(results if isinstance(results, Mapping) else results.to_dict())
    for line in _summary_lines(view):
        console.print(line)
    console.print(_results_table(view))
    for pair in view.paired:
        low, high = pair.interval or (None, None)
        console.print(
            f"  {pair.a} - {pair.b}: {_number(pair.difference, '+.1f', 100)} points macro-F1 "
            f"[{_number(low, '+.1f', 100)}, {_number(high, '+.1f', 100)}]{' (significant)' if pair.significant else ''}"
        )
    if view.curve is not None and view.curve.crossover:
        console.print(f"[bold]learning curve[/]: {view.curve.crossover}")
    for text in view.curve.crossings if view.curve is not None else ():
        console.print(f"  also: {text}")
    recommendation = view.recommendation
    if recommendation is not None:
        console.print(
            f"[bold]recommendation[/] (--priority {recommendation.priority}): [bold green]{recommendation.strategy}[/]"
            + (f", runner-up {recommendation.runner_up}" if recommendation.runner_up else "")
        )
        for reason in recommendation.reasons:
            console.print(f"  - {reason}")
        for line in recommendation.would_change:
            console.print(f"  would change: {line}")
    for line in stopping_lines(view):
        # Plain: a stop's interval "[+15.0, +21.5]" is text, not markup.
        console.print(line, markup=False, highlight=False)


def stopping_lines(view: ReportView) -> list[str]:
    """What the protocol skipped, and why, in short plain lines; none for a results.json that does not record it."""
    stopping = view.stopping
    if stopping is None:
        return []
    lines = [f"  stopped: {line}" for line in stopping.stopped]
    lines += [f"  skipped for the budget: {line}" for line in stopping.skipped_for_budget]
    if stopping.nothing_skipped:
        lines.append("  sequential protocol: nothing was skipped")
    if view.time_to_recommendation is not None:
        lines.append(f"  time: {view.time_to_recommendation}")
    return lines


def _summary_lines(view: ReportView) -> list[str]:
    """The data, model and evaluation lines above the table (rich markup)."""
    dataset, model, protocol = view.dataset, view.model, view.protocol
    origins = {"held-out": "held-out split", "file": "test file", "cross-validation": "cross-validated"}
    origin = dataset.test.origin if dataset.test else None
    test_rows = dataset.test.rows if dataset.test else None
    test_part = "" if origin == "cross-validation" else f" / {_number(test_rows, '.0f')} test"
    train_rows = dataset.train.rows if dataset.train else None
    lines = [
        f"[bold]data[/]: {_number(train_rows, '.0f')} train{test_part} texts ({origins.get(str(origin), origin)})"
        f", {len(dataset.classes)} classes"
    ]
    lines += [f"  note: {note}" for note in dataset.notes]
    truncated = ", ".join(f"{count} {part}" for part, count in dataset.truncated.items())
    if model is not None:
        lines.append(
            f"[bold]model[/]: {model.id} (sha256 {(model.sha256 or '')[:12]}..., {model.pooling} pooling, "
            f"max {_number(model.max_length, '.0f')} tokens; truncated texts: {truncated})"
        )
    if protocol is not None:
        lines.append(f"[bold]evaluation[/]: {protocol.scheme}, seeds {list(protocol.seeds)}: {protocol.why}")
    lines += [f"  budget cut: {cut}" for cut in (view.budget.cuts if view.budget else ())]
    return lines


def _results_table(view: ReportView) -> Table:
    # The terminal states the confidence as configured ("95%"), the reports as the protocol recorded it ("95 %").
    confidence = as_number(view.config.get("confidence"))
    table = Table(title="bertwise compare", title_justify="left")
    for column, justify in (
        ("strategy", "left"),
        ("runs", "right"),
        ("macro-F1", "right"),
        (f"{_number(confidence, '.0%')} interval", "right"),
        ("accuracy", "right"),
        ("fit s", "right"),
        ("ms/text", "right"),
        ("peak MB", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    chosen = view.chosen
    for result in view.strategies:
        if not result.ok:
            table.add_row(result.name, "failed", "", "", "", "", "", "", style="red")
            continue
        f1, accuracy = result.score("macro_f1"), result.score("accuracy")
        low, high = f1.interval or (None, None)
        table.add_row(
            result.name + (" *" if result.name == chosen else ""),
            (result.stopping.runs_fraction if result.stopping else None) or str(result.runs),
            _number(f1.value, ".1f", 100),
            f"[{_number(low, '.1f', 100)}, {_number(high, '.1f', 100)}]",
            _number(accuracy.value, ".1f", 100),
            _number(result.fit_seconds, ".1f"),
            _number(result.predict_ms_per_text, ".2f"),
            _number(result.peak_memory_mb, ".0f"),
            style="bold" if result.name == chosen else None,
        )
    return table


def _number(value: float | None, spec: str, scale: float = 1) -> str:
    return MISSING if value is None else format(value * scale, spec)
