"""The learning-curve plot as an inline SVG string: macro-F1 against labeled examples per class, with intervals,
fitted extrapolations, references that need no training and the crossover; drawn from results.json's
"learning_curve" part, which may be incomplete (see :mod:`bertwise.report.plots`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bertwise.report.format import as_interval, as_number, mapping
from bertwise.report.plots import INK, MUTED, WIDTH, plot_style, plot_text, strategy_color, to_svg

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_DASHED = (0, (5, 3))


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
    fits = mapping(learning_curve.get("fit"))
    extrapolations = {name: _extrapolation(fits.get(name), curves[name][-1][0]) for name in curves}

    with plot_style():
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        fig = Figure(figsize=(WIDTH, 4.8), layout="constrained")
        ax = fig.add_subplot()
        handles: list[Any] = _draw_references(ax, learning_curve.get("reference"))
        ticks: set[float] = set()
        for name, points in curves.items():
            handles.append(_draw_curve(ax, name, points, extrapolations[name], ticks))
        if any(extrapolations.values()):
            handles.append(
                Line2D([], [], color=MUTED, linewidth=1.6, linestyle=_DASHED, label="extrapolation of a fitted curve")
            )

        crossover = mapping(learning_curve.get("crossover"))
        span = set(ticks)
        if crossover.get("status") in ("observed", "extrapolated"):
            handle = _mark_crossover(ax, crossover, curves, extrapolations)
            if handle is not None:
                handles.append(handle)
                # A crossover beyond the drawn points still has to be on the plot.
                span.add(as_number(crossover.get("per_class")) or min(ticks))
        _finish_axes(ax, ticks, span, extrapolated=any(extrapolations.values()))
        # Above the axes the legend can never hide a curve or a band.
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=min(3, len(handles)))
        return to_svg(fig, "learning-curve")


def _draw_references(ax: Axes, reference: Any) -> list[Any]:
    """Each strategy that needs no training as a horizontal level with its band; their legend handles."""
    from matplotlib.lines import Line2D

    handles = []
    for name, (value, band) in _references(reference).items():
        color = strategy_color(name)
        if band is not None:
            ax.axhspan(band[0], band[1], color=color, alpha=0.12, linewidth=0)
        ax.axhline(value, color=color, linestyle="-.", linewidth=1.4)
        handles.append(
            Line2D([], [], color=color, linestyle="-.", linewidth=1.4, label=plot_text(f"{name} (no training)"))
        )
    return handles


def _draw_curve(ax: Axes, name: str, points: list[Point], extra: list[Point], ticks: set[float]) -> Any:
    """One strategy's measured curve with its band, then its extrapolation; adds their sizes to ``ticks``."""
    from matplotlib.lines import Line2D

    color = strategy_color(name)
    xs = [p[0] for p in points]
    ticks.update(xs)
    ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points], color=color, alpha=0.18, linewidth=0)
    ax.plot(xs, [p[1] for p in points], color=color, linewidth=2.0, marker="o", markersize=4.5)
    handle = Line2D([], [], color=color, linewidth=2.0, marker="o", markersize=4.5, label=plot_text(name))
    if not extra:
        return handle
    # The dashed part starts at the last measurement, so the eye reads it as a continuation.
    joined = [points[-1], *extra]
    xe = [p[0] for p in joined]
    ticks.update(p[0] for p in extra)
    ax.fill_between(xe, [p[2] for p in joined], [p[3] for p in joined], color=color, alpha=0.07, linewidth=0)
    ax.plot(xe, [p[1] for p in joined], color=color, linewidth=1.6, linestyle=_DASHED)
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
    return handle


def _finish_axes(ax: Axes, ticks: set[float], span: set[float], *, extrapolated: bool) -> None:
    """A log2 axis with a tick at every drawn size, room for what is drawn, and the labels."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{tick:g}" for tick in sorted(ticks)])
    ax.set_xlim(min(span) / 1.25, max(span) * (1.6 if extrapolated else 1.25))
    bottom, top = ax.get_ylim()
    ax.set_ylim(max(0.0, bottom), min(100.0, top))
    ax.set_xlabel("labeled examples per class (log scale)")
    ax.set_ylabel("macro-F1 (points)")
    ax.grid(axis="x", visible=False)


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
        ax.axvline(x, color=INK, linestyle=":", linewidth=1.2)
        return Line2D([], [], color=INK, linestyle=":", linewidth=1.2, label=label)
    style = {"marker": "D", "markersize": 8, "markeredgecolor": INK, "markeredgewidth": 1.3}
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
        color=INK,
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )
    return Line2D([], [], linestyle="none", markerfacecolor=face, label=label, **style)  # type: ignore[arg-type]
