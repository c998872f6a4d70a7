"""The comparison as a terminal table, with the dataset summary and the recommendation; formats, never computes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bertwise.util.formatting import duration

if TYPE_CHECKING:
    from rich.console import Console

    from bertwise.evaluation.protocol import Protocol
    from bertwise.pipeline.comparison import Comparison


def print_plan(comparison: Comparison, console: Console) -> None:
    """What will run and about how long it takes, printed before the first strategy runs (``compare``'s on_plan)."""
    for line in plan_lines(comparison.protocol, comparison.budget):
        # soft_wrap: one line stays one line in a log file; a terminal folds it to its own width.
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def plan_lines(protocol: Protocol, budget: Mapping[str, Any]) -> list[str]:
    """The protocol, the estimate of each part, the budget's cuts, and the advice a long unbudgeted plan gets."""
    folds = f" ({len(protocol.folds)} folds)" if protocol.scheme == "cross-validation" else ""
    parts = budget.get("estimated_seconds_by_part") or {}
    # Only fine-tuning's result depends on the seed: the other strategies run once whatever the seeds.
    seeds = f", fine-tuning seeds {list(protocol.seeds)}" if "finetune" in parts else ""
    lines = [f"plan: {protocol.scheme}{folds}{seeds}: {protocol.why}"]
    total = budget.get("estimated_seconds", sum(parts.values()))
    shown = ", ".join(f"{part} {duration(seconds)}" for part, seconds in parts.items())
    lines.append(f"  estimated time: {duration(total)} ({shown})")
    limit = budget.get("limit_seconds")
    if limit is not None:
        uncut = budget.get("estimated_seconds_uncut", total)
        cuts = budget.get("cuts") or []
        fits = "the full plan fits, nothing cut" if not cuts else f"the full plan is {duration(uncut)}, cut to fit"
        lines.append(f"  --budget {budget_option(limit)}: {fits}")
        lines += [f"  budget cut: {cut}" for cut in cuts]
    suggested = budget.get("suggested")
    if suggested:
        lines.append(_long_plan_advice(total, suggested))
    return lines


def _long_plan_advice(total: float, suggested: Mapping[str, Any]) -> str:
    """The line for an unbudgeted plan over ``when_over_seconds``: the ``--budget`` that fits, and what it cuts."""
    option = f"--budget {budget_option(suggested['budget_seconds'])}"
    cuts = "; ".join(suggested.get("cuts") or [])
    over = f"  estimated {duration(total)}, over {duration(suggested['when_over_seconds'])}: "
    if suggested.get("fits", True):
        return (
            f"{over}{option} would cut it to about {duration(suggested['estimated_seconds'])} ({cuts}); "
            "running the full plan"
        )
    cut = f" after its cuts ({cuts})" if cuts else ""
    return (
        f"{over}even {option} would leave about {duration(suggested['estimated_seconds'])}{cut}, so no budget makes "
        f"it fit {duration(suggested['budget_seconds'])}: fewer strategies (--strategies) or fewer rows would; "
        "running the full plan"
    )


def budget_option(seconds: float) -> str:
    """How ``--budget`` spells ``seconds``: 15m, 1h, 90s."""
    whole = round(seconds)
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def print_comparison(comparison: Comparison, console: Console) -> None:
    from rich.table import Table

    split, backbone = comparison.split, comparison.backbone
    origin = {"held-out": "held-out split", "file": "test file", "cross-validation": "cross-validated"}
    test_part = "" if split.test_origin == "cross-validation" else f" / {len(split.test)} test"
    console.print(
        f"[bold]data[/]: {len(split.train)} train{test_part} texts ({origin.get(split.test_origin, split.test_origin)})"
        f", {len(split.classes)} classes"
    )
    for note in split.notes:
        console.print(f"  note: {note}")
    truncated = ", ".join(f"{count} {part}" for part, count in comparison.truncated.items())
    console.print(
        f"[bold]model[/]: {backbone.model_id} (sha256 {backbone.sha256[:12]}..., {backbone.pooling} pooling, "
        f"max {backbone.max_length} tokens; truncated texts: {truncated})"
    )
    protocol = comparison.protocol
    console.print(f"[bold]evaluation[/]: {protocol.scheme}, seeds {list(protocol.seeds)}: {protocol.why}")
    for cut in comparison.budget.get("cuts", []):
        console.print(f"  budget cut: {cut}")
    confidence = f"{comparison.config.confidence:.0%}"
    table = Table(title="bertwise compare", title_justify="left")
    for column, justify in (
        ("strategy", "left"),
        ("runs", "right"),
        ("macro-F1", "right"),
        (f"{confidence} interval", "right"),
        ("accuracy", "right"),
        ("fit s", "right"),
        ("ms/text", "right"),
        ("peak MB", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    chosen = comparison.recommendation.strategy if comparison.recommendation else None
    for result in comparison.results:
        if result.status != "ok":
            table.add_row(result.name, "failed", "", "", "", "", "", "", style="red")
            continue
        low, high = result.metrics_interval["macro_f1"]
        table.add_row(
            result.name + (" *" if result.name == chosen else ""),
            str(len(result.runs)),
            f"{result.metrics['macro_f1'] * 100:.1f}",
            f"[{low * 100:.1f}, {high * 100:.1f}]",
            f"{result.metrics['accuracy'] * 100:.1f}",
            f"{result.cost['fit_seconds']:.1f}",
            f"{result.cost['predict_ms_per_text']:.2f}",
            f"{result.cost['peak_memory_mb']:.0f}",
            style="bold" if result.name == chosen else None,
        )
    console.print(table)
    for pair in comparison.paired:
        low, high = pair["interval"]
        console.print(
            f"  {pair['a']} - {pair['b']}: {pair['difference'] * 100:+.1f} points macro-F1 "
            f"[{low * 100:+.1f}, {high * 100:+.1f}]{' (significant)' if pair['significant'] else ''}"
        )
    curve = comparison.learning_curve
    if curve and curve.get("crossover"):
        console.print(f"[bold]learning curve[/]: {curve['crossover']['text']}")
    if comparison.recommendation is not None:
        recommendation = comparison.recommendation
        console.print(
            f"[bold]recommendation[/] (--priority {recommendation.priority}): [bold green]{recommendation.strategy}[/]"
            + (f", runner-up {recommendation.runner_up}" if recommendation.runner_up else "")
        )
        for reason in recommendation.reasons:
            console.print(f"  - {reason}")
        for line in recommendation.would_change:
            console.print(f"  would change: {line}")
