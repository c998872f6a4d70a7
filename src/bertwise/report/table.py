"""The comparison as a terminal table, with the dataset summary and the recommendation; formats, never computes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from bertwise.comparison import Comparison


def print_comparison(comparison: Comparison, console: Console) -> None:
    from rich.table import Table

    split, backbone = comparison.split, comparison.backbone
    console.print(
        f"[bold]data[/]: {len(split.train)} train / {len(split.test)} test texts "
        f"({'held-out split' if split.test_origin == 'held-out' else 'test file'}), {len(split.classes)} classes"
    )
    for note in split.notes:
        console.print(f"  note: {note}")
    truncated = comparison.truncated
    console.print(
        f"[bold]model[/]: {backbone.model_id} (sha256 {backbone.sha256[:12]}..., {backbone.pooling} pooling, "
        f"max {backbone.max_length} tokens; truncated: {truncated['train']} train, {truncated['test']} test texts)"
    )
    table = Table(title="bertwise compare", title_justify="left")
    for column, justify in (
        ("strategy", "left"),
        ("accuracy", "right"),
        ("macro-F1", "right"),
        ("fit s", "right"),
        ("predict texts/s", "right"),
        ("peak MB", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    chosen = comparison.recommendation.strategy if comparison.recommendation else None
    for result in comparison.results:
        if result.status != "ok":
            table.add_row(result.name, "failed", "", "", "", "", style="red")
            continue
        table.add_row(
            result.name + (" *" if result.name == chosen else ""),
            f"{result.metrics['accuracy']:.3f}",
            f"{result.metrics['macro_f1']:.3f}",
            f"{result.cost['fit_seconds']:.1f}",
            f"{result.cost['predict_texts_per_second']:.0f}",
            f"{result.cost['peak_memory_mb']:.0f}",
            style="bold" if result.name == chosen else None,
        )
    console.print(table)
    if comparison.recommendation is not None:
        recommendation = comparison.recommendation
        console.print(f"[bold]recommendation[/]: {recommendation.strategy}")
        for reason in recommendation.reasons:
            console.print(f"  - {reason}")
