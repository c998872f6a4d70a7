"""The report's plots as inline SVG strings, drawn from parts of a results.json (schema version 2) dict: score against
cost, per-class F1 and confusion matrices, and what every plot shares (colours, style, SVG clean-up); the learning
curve is in :mod:`bertwise.report.curve_plot`.

Every function takes the raw, possibly incomplete part of the results and returns "" when there is nothing to draw,
so one failed strategy or a skipped learning curve never takes the whole report down. Values in the results are
fractions; the plots show points (0-100) because that is how the rest of bertwise talks about scores.

matplotlib is imported inside the functions: importing the report must not slow down ``bertwise --help``.
Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so drawing needs no backend switch, keeps
no global figure registry and is safe to call from a library.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bertwise.report.format import as_interval, as_number, mapping, plain
from bertwise.strategies.registry import strategy_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour per strategy everywhere in the report, so a reader learns it once: the registry's strategies take these
# in the registry's order (the first, zero-shot's, is the grey of a reference level that needs no training).
NEUTRAL = "#7f7f7f"
_COLORS = (NEUTRAL, "#1f77b4", "#ff7f0e")
_EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
PER_CLASS_LIMIT = 40
# Inches; at the SVG's 72 pt per inch this is about 1000 CSS pixels, the report column, so text is drawn 1:1.
WIDTH = 10.4

INK = "#1f2933"
MUTED = "#5f6b7a"
_STYLE: dict[Any, Any] = {
    # Text stays text: smaller files, selectable labels, and the browser renders it crisply at any zoom.
    "svg.fonttype": "none",
    # A fixed salt makes the output reproducible; _to_svg prefixes the ids so several plots can share a page.
    "svg.hashsalt": "bertwise",
    "svg.image_inline": True,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e4e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def strategy_color(name: str) -> str:
    """The report-wide colour of a strategy: by its place among the registry's names, then from a spare palette."""
    # Deferred: the strategies package imports scikit-learn, which reading a report does not otherwise need.

    known = strategy_names()
    if name in known and known.index(name) < len(_COLORS + _EXTRA_COLORS):
        return (_COLORS + _EXTRA_COLORS)[known.index(name)]
    # A checksum rather than hash(): str hashes change between processes, and colours should not.
    return _EXTRA_COLORS[sum(name.encode("utf-8")) % len(_EXTRA_COLORS)]


def ok_strategies(strategies: Any) -> list[Mapping[str, Any]]:
    """The strategy entries that finished, in the results' order; failed or malformed ones are left out."""
    if not isinstance(strategies, Sequence) or isinstance(strategies, str):
        return []
    return [
        entry
        for entry in strategies
        if isinstance(entry, Mapping) and entry.get("status") == "ok" and isinstance(entry.get("name"), str)
    ]


def slug(text: str) -> str:
    """A lowercase id fragment made of letters, digits and hyphens (strategy names become element ids)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def score_cost_svg(strategies: Any, recommended: str | None = None) -> str:
    """Macro-F1 (points, with its interval) against fit seconds on a log axis, one labelled point per strategy.

    A strategy that needs no fitting (zero seconds) sits at the left edge with "no fitting" in its label, since a
    log axis has no zero. Returns "" when no finished strategy has both numbers.
    """
    rows: list[tuple[str, float, float, tuple[float, float] | None]] = []
    for entry in ok_strategies(strategies):
        metrics, cost, intervals = (
            mapping(entry.get("metrics")),
            mapping(entry.get("cost")),
            mapping(entry.get("metrics_interval")),
        )
        f1, seconds = as_number(metrics.get("macro_f1")), as_number(cost.get("fit_seconds"))
        if f1 is None or seconds is None:
            continue
        interval = as_interval(intervals.get("macro_f1"))
        rows.append((entry["name"], seconds, f1 * 100, (interval[0] * 100, interval[1] * 100) if interval else None))
    if not rows:
        return ""
    positive = [seconds for _, seconds, _, _ in rows if seconds > 0]
    floor = min(positive) / 4 if positive else 0.1

    with plot_style():
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, NullFormatter

        size = (WIDTH, 4.0)
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.add_subplot()
        for name, seconds, f1, interval in rows:
            color = strategy_color(name)
            x = max(seconds, floor)
            error = [[max(0.0, f1 - interval[0])], [max(0.0, interval[1] - f1)]] if interval else None
            ax.errorbar([x], [f1], yerr=error, fmt="o", color=color, markersize=8, capsize=4, elinewidth=1.5)
            if name == recommended:
                ax.plot(
                    [x],
                    [f1],
                    marker="o",
                    markersize=15,
                    markerfacecolor="none",
                    markeredgecolor=INK,
                    markeredgewidth=1.2,
                )
        xs = [max(seconds, floor) for _, seconds, _, _ in rows]
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g} s"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        # Room on the right for the labels, which sit to the right of their points.
        ax.set_xlim(min(xs) / 2.5, max(xs) * (12 if max(xs) / min(xs) < 1e4 else 30))
        bottom, top = ax.get_ylim()
        ax.set_ylim(max(0.0, bottom - 3), min(102.0, top + 3))

        points = [(math.log10(max(seconds, floor)), f1) for _, seconds, f1, _ in rows]
        offsets = _label_offsets(points, ax, size)
        for (name, seconds, f1, _), offset in zip(rows, offsets, strict=True):
            time = "no fitting" if seconds <= 0 else f"fit {_seconds(seconds)}"
            ax.annotate(
                plot_text(f"{name}{' (recommended)' if name == recommended else ''}\n{f1:.1f} pts, {time}"),
                (max(seconds, floor), f1),
                xytext=(12, offset),
                textcoords="offset points",
                va="center",
                fontsize=8.5,
                color=INK,
                arrowprops={"arrowstyle": "-", "color": "#9aa5b1", "linewidth": 0.8} if offset else None,
            )
        ax.set_xlabel("fit time per run (seconds, log scale)")
        ax.set_ylabel("macro-F1 (points)")
        return to_svg(fig, "score-cost")


def per_class_selection(
    strategies: Any, classes: Sequence[str] | None = None, limit: int = PER_CLASS_LIMIT
) -> tuple[list[str], str]:
    """Which classes the per-class plot shows, and a caption saying how they were chosen ("" when all are shown).

    Above ``limit`` classes the plot keeps those where the strategies disagree most (largest max-min F1 spread),
    because that is where the choice of strategy matters; with one strategy there is no spread, so it keeps the
    lowest-scoring classes. The shown classes keep their original order so a reader can find one.
    """
    table = _per_class_table(strategies)
    order = _class_order(table, classes)
    if len(order) <= limit:
        return order, ""
    if len(table) >= 2:

        def spread(label: str) -> float:
            values = [scores[label] for scores in table.values() if label in scores]
            return max(values) - min(values) if len(values) >= 2 else 0.0

        keep = set(sorted(order, key=lambda label: -spread(label))[:limit])
        how = "with the largest F1 spread between strategies"
    else:

        def mean(label: str) -> float:
            values = [scores[label] for scores in table.values() if label in scores]
            return sum(values) / len(values) if values else 0.0

        keep = set(sorted(order, key=mean)[:limit])
        how = "with the lowest F1"
    shown = [label for label in order if label in keep]
    return shown, f"Showing the {len(shown)} of {len(order)} classes {how}; the others are left out for readability."


def per_class_f1_svg(strategies: Any, classes: Sequence[str] | None = None, limit: int = PER_CLASS_LIMIT) -> str:
    """Horizontal grouped bars of per-class F1 (points), one bar per finished strategy, for up to ``limit`` classes.

    The figure grows with the number of classes so labels never overlap; see per_class_selection for which classes
    are shown when there are more. Returns "" when no finished strategy reports per-class scores.
    """
    table = _per_class_table(strategies)
    if not table:
        return ""
    shown, _ = per_class_selection(strategies, classes, limit)
    if not shown:
        return ""
    names = list(table)
    per_class_height = 0.075 * len(names) + 0.08
    with plot_style():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(WIDTH, 1.1 + per_class_height * len(shown)), layout="constrained")
        ax = fig.add_subplot()
        bar = 0.8 / len(names)
        for index, name in enumerate(names):
            offsets = [row + (index - (len(names) - 1) / 2) * bar for row in range(len(shown))]
            values = [table[name].get(label, math.nan) for label in shown]
            ax.barh(offsets, values, height=bar * 0.92, color=strategy_color(name), label=plot_text(name))
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels([plot_text(_short(label, 34)) for label in shown], fontsize=8)
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("F1 (points)")
        ax.tick_params(axis="y", length=0)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(names), borderaxespad=0.3)
        return to_svg(fig, "per-class-f1")


def confusion_matrix_svg(strategy: Mapping[str, Any] | None) -> str:
    """One strategy's confusion matrix as a row-normalised heatmap (rows: true label, columns: predicted).

    Cells hold their counts up to 15 classes, only the non-zero counts up to 30, and no text above that, where
    the numbers would be unreadable anyway. Returns "" when the strategy has no well-formed matrix.
    """
    if not isinstance(strategy, Mapping):
        return ""
    name = str(strategy["name"]) if isinstance(strategy.get("name"), str) else "strategy"
    parsed = _confusion(strategy.get("confusion_matrix"))
    if parsed is None:
        return ""
    labels, counts = parsed
    n = len(labels)
    shares = [[cell / sum(row) if sum(row) > 0 else 0.0 for cell in row] for row in counts]
    # Up to 15 classes two matrices sit side by side in the page's column; more need the full width.
    side = min(5.2, 2.8 + 0.25 * n) if n <= 15 else 8.0 if n <= 30 else WIDTH
    label_size = 8.0 if n <= 15 else 7.0 if n <= 30 else 5.5

    with plot_style():
        from matplotlib.colors import LinearSegmentedColormap
        from matplotlib.figure import Figure

        fig = Figure(figsize=(side, side * 0.97), layout="constrained")
        ax = fig.add_subplot()
        cmap = LinearSegmentedColormap.from_list("bertwise", ["#ffffff", strategy_color(name)])
        # interpolation "none" keeps cells sharp: matplotlib then asks the browser for pixelated scaling.
        image = ax.imshow(shares, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="none", aspect="equal")
        ticks = list(range(n))
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xticklabels([plot_text(_short(label, 24)) for label in labels], rotation=90, fontsize=label_size)
        ax.set_yticklabels([plot_text(_short(label, 24)) for label in labels], fontsize=label_size)
        ax.grid(False)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color("#cbd2d9")
        if n <= 30:
            # Thin white rules between cells make rows and columns easy to follow.
            ax.set_xticks([i - 0.5 for i in range(1, n)], minor=True)
            ax.set_yticks([i - 0.5 for i in range(1, n)], minor=True)
            ax.grid(which="minor", color="white", linewidth=1.0)
            ax.tick_params(which="minor", length=0)
            for row in range(n):
                for column in range(n):
                    count = counts[row][column]
                    if n > 15 and count == 0:
                        continue
                    ax.text(
                        column,
                        row,
                        f"{count:g}",
                        ha="center",
                        va="center",
                        fontsize=7.5 if n <= 15 else 5.5,
                        color="white" if shares[row][column] > 0.55 else INK,
                    )
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        # The neutral grey is too pale for a title.
        color = strategy_color(name)
        ax.set_title(plot_text(name), fontweight="bold", color=color if color != NEUTRAL else INK)
        bar = fig.colorbar(image, ax=ax, shrink=0.7, aspect=30, pad=0.02)
        bar.set_label("share of the true class", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        bar.outline.set_visible(False)
        return to_svg(fig, f"confusion-{slug(name)}")


# -- helpers -------------------------------------------------------------------------------------------------------


@contextmanager
def plot_style() -> Iterator[None]:
    """The report's matplotlib style, for drawing a figure and writing it out."""
    import matplotlib

    # rc settings are read when artists are made and when the file is written, so both happen inside.
    with matplotlib.rc_context(_STYLE):
        yield


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as inline SVG whose element ids start with ``prefix``."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    svg = buffer.getvalue()
    # Inline SVG in HTML needs no XML prolog or doctype (and the doctype names an external DTD).
    svg = svg[svg.find("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    # Every plot numbers its elements from 1 and a page holds several: prefix ids and the references to them.
    svg = re.sub(r'(\bid="|url\(#|href="#)', lambda match: f"{match.group(1)}{prefix}-", svg)
    return svg.strip()


def plot_text(label: str) -> str:
    """A label from the data as matplotlib text, with no mathtext."""
    # Labels come from user data; a pair of $ would switch matplotlib into mathtext and could raise.
    return label.replace("$", r"\$")


def _short(label: str, width: int) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _label_offsets(points: Sequence[tuple[float, float]], ax: Axes, size: tuple[float, float]) -> list[float]:
    """Vertical offsets (points) for two-line labels right of each (log10 x, y) point, so that no two overlap.

    Works from the axes' size and limits before layout, which is close enough for a handful of labels.
    """
    width_in, height_in = size
    x_low, x_high = (math.log10(limit) for limit in ax.get_xlim())
    y_low, y_high = ax.get_ylim()
    # Roughly the axes' share of the figure once the tick labels and axis titles have their room.
    x_scale = (width_in * 72 - 70) / max(x_high - x_low, 1e-9)
    y_scale = (height_in * 72 - 60) / max(y_high - y_low, 1e-9)
    label_width, label_height = 130.0, 26.0
    placed: list[tuple[float, float]] = []  # label centres in points
    offsets = [0.0] * len(points)
    # Top to bottom, so a label pushed aside moves away from the ones already placed.
    for index in sorted(range(len(points)), key=lambda i: -points[i][1]):
        x, y = points[index][0] * x_scale, points[index][1] * y_scale
        for step in (0, -1, 1, -2, 2, -3, 3, -4, 4):
            offset = step * label_height
            if all(abs(x - px) > label_width or abs(y + offset - py) > label_height for px, py in placed):
                break
        placed.append((x, y + offset))
        offsets[index] = offset
    return offsets


def _per_class_table(strategies: Any) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for entry in ok_strategies(strategies):
        per_class = entry.get("per_class")
        if not isinstance(per_class, Mapping):
            continue
        scores = {
            str(label): f1 * 100
            for label, values in per_class.items()
            if isinstance(values, Mapping) and (f1 := as_number(values.get("f1"))) is not None
        }
        if scores:
            table[entry["name"]] = scores
    return table


def _class_order(table: Mapping[str, Mapping[str, float]], classes: Sequence[str] | None) -> list[str]:
    present = {label for scores in table.values() for label in scores}
    order = [str(label) for label in classes or [] if str(label) in present]
    seen = set(order)
    for scores in table.values():
        for label in scores:
            if label not in seen:
                order.append(label)
                seen.add(label)
    return order


def _confusion(confusion: Any) -> tuple[list[str], list[list[float]]] | None:
    if not isinstance(confusion, Mapping):
        return None
    labels, matrix = plain(confusion.get("labels")), plain(confusion.get("matrix"))
    if not isinstance(labels, Sequence) or isinstance(labels, str) or not labels:
        return None
    if not isinstance(matrix, Sequence) or len(matrix) != len(labels):
        return None
    counts: list[list[float]] = []
    for row in matrix:
        if not isinstance(row, Sequence) or len(row) != len(labels):
            return None
        values = [as_number(cell) for cell in row]
        if any(value is None or value < 0 for value in values):
            return None
        counts.append([float(value) for value in values if value is not None])
    return [str(label) for label in labels], counts
