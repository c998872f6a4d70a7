"""The report's plots as inline SVG strings, drawn from parts of a results.json (schema version 2) dict.

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
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour per strategy everywhere in the report, so a reader learns it once.
STRATEGY_COLORS = {"zero-shot": "#7f7f7f", "probe": "#1f77b4", "finetune": "#ff7f0e"}
_EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
PER_CLASS_LIMIT = 40
# Inches; at the SVG's 72 pt per inch this is about 1000 CSS pixels, the report column, so text is drawn 1:1.
_WIDTH = 10.4

_INK = "#1f2933"
_MUTED = "#5f6b7a"
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
    "axes.labelcolor": _INK,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e4e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "text.color": _INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def strategy_color(name: str) -> str:
    """The report-wide colour of a strategy; unknown names get a stable colour from a spare palette."""
    if name in STRATEGY_COLORS:
        return STRATEGY_COLORS[name]
    # A checksum rather than hash(): str hashes change between processes, and colours should not.
    return _EXTRA_COLORS[sum(name.encode("utf-8")) % len(_EXTRA_COLORS)]


def as_number(value: Any) -> float | None:
    """A finite float, or None for anything else (missing keys, null, strings, NaN); bools are not numbers here.

    numbers.Real rather than int | float so that numpy scalars in a dict that was never through JSON also count.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def as_interval(value: Any) -> tuple[float, float] | None:
    """A ``[low, high]`` pair as floats, or None when the value is not one."""
    value = _plain(value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        return None
    low, high = as_number(value[0]), as_number(value[1])
    if low is None or high is None:
        return None
    return (min(low, high), max(low, high))


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


def learning_curve_svg(learning_curve: Mapping[str, Any] | None) -> str:
    """Macro-F1 (points) against labeled examples per class on a log2 axis, one line per trained strategy.

    Each measured point carries its interval as a shaded band; a fitted curve's extrapolation continues the line
    dashed with a lighter band; zero-shot is a horizontal reference with its band; a crossover that was observed or
    extrapolated is marked. Returns "" when no trained strategy has a measured point.
    """
    if not isinstance(learning_curve, Mapping):
        return ""
    curves = {name: points for name, points in _curves(learning_curve.get("strategies")).items() if points}
    if not curves:
        return ""
    fits = _map(learning_curve.get("fit"))
    extrapolations = {name: _extrapolation(fits.get(name), curves[name][-1][0]) for name in curves}

    with _style():
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FixedLocator, NullLocator

        fig = Figure(figsize=(_WIDTH, 4.8), layout="constrained")
        ax = fig.add_subplot()
        handles: list[Any] = []
        ticks: set[float] = set()

        for name, reference in _references(learning_curve.get("reference")).items():
            value, band = reference
            color = strategy_color(name)
            if band is not None:
                ax.axhspan(band[0], band[1], color=color, alpha=0.12, linewidth=0)
            ax.axhline(value, color=color, linestyle="-.", linewidth=1.4)
            handles.append(
                Line2D([], [], color=color, linestyle="-.", linewidth=1.4, label=_text(f"{name} (no training)"))
            )

        for name, points in curves.items():
            color = strategy_color(name)
            xs = [p[0] for p in points]
            ticks.update(xs)
            ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points], color=color, alpha=0.18, linewidth=0)
            ax.plot(xs, [p[1] for p in points], color=color, linewidth=2.0, marker="o", markersize=4.5)
            handles.append(Line2D([], [], color=color, linewidth=2.0, marker="o", markersize=4.5, label=_text(name)))
            extra = extrapolations[name]
            if extra:
                # The dashed part starts at the last measurement, so the eye reads it as a continuation.
                joined = [points[-1], *extra]
                xe = [p[0] for p in joined]
                ticks.update(p[0] for p in extra)
                ax.fill_between(
                    xe, [p[2] for p in joined], [p[3] for p in joined], color=color, alpha=0.07, linewidth=0
                )
                ax.plot(xe, [p[1] for p in joined], color=color, linewidth=1.6, linestyle=(0, (5, 3)))
                ax.plot(
                    [p[0] for p in extra],
                    [p[1] for p in extra],
                    linestyle="none",
                    marker="o",
                    markersize=4,
                    markerfacecolor="white",
                    markeredgecolor=color,
                )
                ax.annotate(
                    "extrapolation",
                    (xe[-1], joined[-1][1]),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                    fontstyle="italic",
                    color=color,
                )
        if any(extrapolations.values()):
            handles.append(
                Line2D(
                    [], [], color=_MUTED, linewidth=1.6, linestyle=(0, (5, 3)), label="extrapolation of a fitted curve"
                )
            )

        crossover = _map(learning_curve.get("crossover"))
        span = set(ticks)
        if crossover.get("status") in ("observed", "extrapolated"):
            handle = _mark_crossover(ax, crossover, curves, extrapolations)
            if handle is not None:
                handles.append(handle)
                # A crossover beyond the drawn points still has to be on the plot.
                span.add(as_number(crossover.get("per_class")) or min(ticks))

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{tick:g}" for tick in sorted(ticks)])
        ax.set_xlim(min(span) / 1.25, max(span) * (1.6 if any(extrapolations.values()) else 1.25))
        bottom, top = ax.get_ylim()
        ax.set_ylim(max(0.0, bottom), min(100.0, top))
        ax.set_xlabel("labeled examples per class (log scale)")
        ax.set_ylabel("macro-F1 (points)")
        ax.grid(axis="x", visible=False)
        # Above the axes the legend can never hide a curve or a band.
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=min(3, len(handles)))
        return _to_svg(fig, "learning-curve")


def score_cost_svg(strategies: Any, recommended: str | None = None) -> str:
    """Macro-F1 (points, with its interval) against fit seconds on a log axis, one labelled point per strategy.

    A strategy that needs no fitting (zero seconds) sits at the left edge with "no fitting" in its label, since a
    log axis has no zero. Returns "" when no finished strategy has both numbers.
    """
    rows: list[tuple[str, float, float, tuple[float, float] | None]] = []
    for entry in ok_strategies(strategies):
        metrics, cost, intervals = (
            _map(entry.get("metrics")),
            _map(entry.get("cost")),
            _map(entry.get("metrics_interval")),
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

    with _style():
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, NullFormatter

        size = (_WIDTH, 4.0)
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
                    markeredgecolor=_INK,
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
                _text(f"{name}{' (recommended)' if name == recommended else ''}\n{f1:.1f} pts, {time}"),
                (max(seconds, floor), f1),
                xytext=(12, offset),
                textcoords="offset points",
                va="center",
                fontsize=8.5,
                color=_INK,
                arrowprops={"arrowstyle": "-", "color": "#9aa5b1", "linewidth": 0.8} if offset else None,
            )
        ax.set_xlabel("fit time per run (seconds, log scale)")
        ax.set_ylabel("macro-F1 (points)")
        return _to_svg(fig, "score-cost")


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
    with _style():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(_WIDTH, 1.1 + per_class_height * len(shown)), layout="constrained")
        ax = fig.add_subplot()
        bar = 0.8 / len(names)
        for index, name in enumerate(names):
            offsets = [row + (index - (len(names) - 1) / 2) * bar for row in range(len(shown))]
            values = [table[name].get(label, math.nan) for label in shown]
            ax.barh(offsets, values, height=bar * 0.92, color=strategy_color(name), label=_text(name))
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels([_text(_short(label, 34)) for label in shown], fontsize=8)
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("F1 (points)")
        ax.tick_params(axis="y", length=0)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(names), borderaxespad=0.3)
        return _to_svg(fig, "per-class-f1")


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
    side = min(5.2, 2.8 + 0.25 * n) if n <= 15 else 8.0 if n <= 30 else _WIDTH
    label_size = 8.0 if n <= 15 else 7.0 if n <= 30 else 5.5

    with _style():
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
        ax.set_xticklabels([_text(_short(label, 24)) for label in labels], rotation=90, fontsize=label_size)
        ax.set_yticklabels([_text(_short(label, 24)) for label in labels], fontsize=label_size)
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
                        color="white" if shares[row][column] > 0.55 else _INK,
                    )
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.set_title(_text(name), fontweight="bold", color=strategy_color(name) if name != "zero-shot" else _INK)
        bar = fig.colorbar(image, ax=ax, shrink=0.7, aspect=30, pad=0.02)
        bar.set_label("share of the true class", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        bar.outline.set_visible(False)
        return _to_svg(fig, f"confusion-{slug(name)}")


# -- helpers -------------------------------------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    # rc settings are read when artists are made and when the file is written, so both happen inside.
    with matplotlib.rc_context(_STYLE):
        yield


def _to_svg(fig: Figure, prefix: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    svg = buffer.getvalue()
    # Inline SVG in HTML needs no XML prolog or doctype (and the doctype names an external DTD).
    svg = svg[svg.find("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    # Every plot numbers its elements from 1 and a page holds several: prefix ids and the references to them.
    svg = re.sub(r'(\bid="|url\(#|href="#)', lambda match: f"{match.group(1)}{prefix}-", svg)
    return svg.strip()


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _plain(value: Any) -> Any:
    # numpy arrays (a results dict that was never written to JSON) become lists; anything else is left alone.
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) and not isinstance(value, numbers.Real) else value


def _text(label: str) -> str:
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


Point = tuple[float, float, float, float]  # per class, macro-F1, interval low, interval high (points)


def _point(entry: Any) -> Point | None:
    if not isinstance(entry, Mapping):
        return None
    x, y = as_number(entry.get("per_class")), as_number(entry.get("macro_f1"))
    if x is None or y is None or x <= 0:
        return None
    interval = as_interval(entry.get("interval")) or (y, y)
    return (x, y * 100, interval[0] * 100, interval[1] * 100)


def _curves(strategies: Any) -> dict[str, list[Point]]:
    if not isinstance(strategies, Mapping):
        return {}
    curves: dict[str, list[Point]] = {}
    for name, entries in strategies.items():
        if not isinstance(name, str) or not isinstance(entries, Sequence) or isinstance(entries, str):
            continue
        points = [point for point in map(_point, entries) if point is not None]
        curves[name] = sorted(points)
    return curves


def _extrapolation(fit: Any, after: float) -> list[Point]:
    if not isinstance(fit, Mapping) or not isinstance(fit.get("extrapolation"), Sequence):
        return []
    points = [point for point in map(_point, fit["extrapolation"]) if point is not None and point[0] > after]
    return sorted(points)


def _references(reference: Any) -> dict[str, tuple[float, tuple[float, float] | None]]:
    if not isinstance(reference, Mapping):
        return {}
    found: dict[str, tuple[float, tuple[float, float] | None]] = {}
    for name, entry in reference.items():
        if not isinstance(name, str) or not isinstance(entry, Mapping):
            continue
        value = as_number(entry.get("macro_f1"))
        if value is None:
            continue
        interval = as_interval(entry.get("interval"))
        found[name] = (value * 100, (interval[0] * 100, interval[1] * 100) if interval else None)
    return found


def _value_at(points: Sequence[Point], x: float) -> float | None:
    # Linear in log2(x), the way the curve is drawn.
    for left, right in zip(points, points[1:], strict=False):
        if left[0] <= x <= right[0]:
            if right[0] == left[0]:
                return left[1]
            share = (math.log2(x) - math.log2(left[0])) / (math.log2(right[0]) - math.log2(left[0]))
            return left[1] + share * (right[1] - left[1])
    if points and points[0][0] == x:
        return points[0][1]
    return None


def _mark_crossover(
    ax: Axes, crossover: Mapping[str, Any], curves: Mapping[str, list[Point]], extrapolations: Mapping[str, list[Point]]
) -> Any:
    from matplotlib.lines import Line2D

    x = as_number(crossover.get("per_class"))
    if x is None or x <= 0:
        return None
    # At a crossover both curves meet, so whichever of the two reaches x gives the height.
    y = None
    for name in (crossover.get("a"), crossover.get("b")):
        if isinstance(name, str) and name in curves:
            y = _value_at([*curves[name], *extrapolations.get(name, [])], x)
            if y is not None:
                break
    status = str(crossover.get("status"))
    label = f"crossover ≈ {x:g} per class" + (" (extrapolated)" if status == "extrapolated" else "")
    if y is None:
        ax.axvline(x, color=_INK, linestyle=":", linewidth=1.2)
        return Line2D([], [], color=_INK, linestyle=":", linewidth=1.2, label=label)
    style = {"marker": "D", "markersize": 8, "markeredgecolor": _INK, "markeredgewidth": 1.3}
    face = "white" if status == "extrapolated" else "#ffd166"
    ax.plot([x], [y], linestyle="none", markerfacecolor=face, zorder=5, **style)  # type: ignore[arg-type]
    ax.annotate(
        label,
        (x, y),
        xytext=(8, -12),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=8,
        color=_INK,
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )
    return Line2D([], [], linestyle="none", markerfacecolor=face, label=label, **style)  # type: ignore[arg-type]


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
    labels, matrix = _plain(confusion.get("labels")), _plain(confusion.get("matrix"))
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
