"""The comparison as a terminal table, with the dataset summary and the recommendation; formats, never computes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from bertwise.comparison import Comparison


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
