"""A short Markdown summary of a results.json (schema version 2) dict, for a pull request, an issue or a terminal.

It carries the decision and the numbers behind it, not the plots; the HTML report has those. Free text from the
results is escaped so that a label such as ``<b>x</b>`` or ``a|b`` shows as typed and cannot break a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bertwise.report.format import (
    MISSING,
    RESUMED_NOTE,
    confidence_label,
    count,
    interval_text,
    metric_phrase,
    p_value,
    scored,
    seconds,
    signed_points,
    yes_no,
)
from bertwise.report.stopping import NOTHING_SKIPPED, SECTION_TITLE
from bertwise.report.view import (
    Budget,
    Curve,
    Diagnostics,
    Pair,
    ProtocolEntry,
    RecommendationEntry,
    ReportView,
    Score,
    StrategyEntry,
    build_view,
    curve_sizes,
    sizes,
)

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that would change the rendering
# anywhere in a line. An underscore inside a word never starts emphasis, so snake_case labels stay readable.
_SPECIAL = re.compile(r"([\\`*\[\]<|&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# These only matter at the start of a line (a heading, a quote).
_LEADING = re.compile(r"^([#>])")


def render_markdown(results: Mapping[str, Any]) -> str:
    """The summary as Markdown text."""
    view = build_view(results)
    confidence = confidence_label(view.confidence)
    sections = [
        _title(view),
        _recommendation(view.recommendation),
        _strategies(view.strategies, confidence),
        _skipped(view),
        _paired(view.paired, confidence),
        _learning_curve(view.curve),
        _diagnostics(view.diagnostics),
        _protocol(view.protocol, confidence, view.dataset.test_set),
        _budget(view.budget),
        _resumed(view.resumed),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def write_markdown(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write the summary to ``path`` (parent folders are created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_markdown(results), encoding="utf-8")
    return target


def _title(view: ReportView) -> str:
    train, test = view.dataset.train, view.dataset.test
    parts = []
    if train is not None and train.file_name is not None:
        parts.append(_md(train.file_name))
    if view.model is not None and view.model.id is not None:
        parts.append(_md(view.model.id))
    title = "# bertwise report" + (": " + " with ".join(parts) if parts else "")
    facts = []
    if train is not None and train.rows is not None and test is not None and test.rows is not None:
        facts.append(f"{count(train.rows)} train / {count(test.rows)} test texts")
    if view.dataset.classes:
        facts.append(f"{len(view.dataset.classes)} classes")
    return title + ("\n\n" + ", ".join(facts) + "." if facts else "")


def _recommendation(recommendation: RecommendationEntry | None) -> str:
    lines = ["## Recommendation", ""]
    if recommendation is None or recommendation.strategy is None:
        lines.append("**None.**")
    else:
        extra = []
        if recommendation.runner_up is not None:
            extra.append(f"runner-up: {_md(recommendation.runner_up)}")
        if recommendation.priority is not None:
            extra.append(f"priority: {_md(recommendation.priority)}")
        lines.append(f"**{_md(recommendation.strategy)}**" + (f" ({'; '.join(extra)})" if extra else ""))
    if recommendation is not None and recommendation.reasons:
        lines += ["", *_bullets(recommendation.reasons)]
    if recommendation is not None and recommendation.would_change:
        lines += ["", "What would change it:", "", *_bullets(recommendation.would_change)]
    return "\n".join(lines)


def _strategies(strategies: Sequence[StrategyEntry], confidence: str) -> str:
    if not strategies:
        return "## Strategies\n\nNo strategy results."
    rows = [
        f"| strategy | macro-F1 [{confidence} interval] | accuracy [{confidence} interval] | fit time |",
        "|---|--:|--:|--:|",
    ]
    for strategy in strategies:
        name = _md(strategy.name)
        if strategy.runs_out_of_planned is not None:
            name += f" ({strategy.runs_out_of_planned})"
        if not strategy.ok:
            rows.append(f"| {name} | failed: {_md(strategy.error)} | | |")
            continue
        rows.append(
            f"| {name} | {_scored(strategy.score('macro_f1'))} "
            f"| {_scored(strategy.score('accuracy'))} | {seconds(strategy.fit_seconds)} |"
        )
    return "## Strategies\n\nScores in points (0-100).\n\n" + "\n".join(rows)


def _skipped(view: ReportView) -> str:
    """What the protocol skipped, and why; "" for a results.json written before the protocol recorded it."""
    stopping = view.stopping
    if stopping is None:
        return ""
    lines = []
    shown = stopping.protocol_text()
    if shown is not None:
        lines.append(f"**Protocol**: {_md(shown)}.")
    if stopping.stopped:
        lines += ["", "Stopped early:", "", *_bullets(stopping.stopped)]
    if stopping.skipped_for_budget:
        lines += ["", "Skipped for the budget:", "", *_bullets(stopping.skipped_for_budget)]
    if stopping.nothing_skipped:
        lines += ["", _md(NOTHING_SKIPPED)]
    if view.time_to_recommendation is not None:
        lines += ["", f"Time: {_md(view.time_to_recommendation)}."]
    while lines and not lines[0]:
        lines.pop(0)
    return f"## {SECTION_TITLE}\n\n" + "\n".join(lines) if lines else ""


def _paired(paired: Sequence[Pair], confidence: str) -> str:
    if not paired:
        return ""
    rows = [
        f"| comparison | metric | difference (points) [{confidence} interval] | p | significant |",
        "|---|---|--:|--:|---|",
    ]
    for pair in paired:
        shown = signed_points(pair.difference)
        if pair.interval is not None:
            shown += f" {interval_text(pair.interval, signed=True)}"
        rows.append(
            f"| {_md(pair.a)} − {_md(pair.b)} | {_md(metric_phrase(pair.metric))} | {shown} "
            f"| {p_value(pair.p_value)} | {yes_no(pair.significant)} |"
        )
    methods = sorted({pair.method for pair in paired if pair.method is not None})
    note = f"\n\nMethod: {_md('; '.join(methods))}." if methods else ""
    return "## Paired differences\n\n" + "\n".join(rows) + note


def _learning_curve(curve: Curve | None) -> str:
    # A strategy whose points all lack a size has no row to fill here.
    columns = [column for column in (curve.columns if curve else ()) if sizes(column.measured)]
    if curve is None or not columns:
        return ""
    measured, guessed = curve_sizes(columns)
    rows = [
        "| examples per class | " + " | ".join(_md(column.name) for column in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    for size in measured + guessed:
        is_guess = size in guessed
        cells = []
        for column in columns:
            point = (column.extrapolated if is_guess else column.measured).get(size)
            cells.append(MISSING if point is None else _scored(point))
        rows.append(f"| {size:g}{' (extrapolated)' if is_guess else ''} | " + " | ".join(cells) + " |")
    lines = ["## Learning curve", "", "Macro-F1 in points [interval] by labeled examples per class.", "", *rows]
    references = [f"{_md(name)} (no training): {_scored(score)}" for name, score in curve.references]
    if references:
        lines += ["", "Reference: " + "; ".join(references) + "."]
    if guessed:
        lines += [
            "",
            "Extrapolated rows come from a fitted curve, beyond the measured sizes: a trend, not a measurement.",
        ]
    if curve.crossover is not None:
        status = f" ({_md(curve.crossover_status)})" if curve.crossover_status is not None else ""
        lines += ["", f"Crossover{status}: {_md(curve.crossover)}"]
    if curve.crossings:
        lines += ["", "Other crossings:", "", *(f"- {_md(text)}" for text in curve.crossings)]
    return "\n".join(lines)


def _diagnostics(diagnostics: Diagnostics | None) -> str:
    if diagnostics is None:
        return ""
    lines = []
    user, reference = diagnostics.user, diagnostics.reference
    if user is not None and user.pieces_per_word is not None:
        line = f"- Tokenizer: {user.pieces_per_word:.2f} pieces per word on your texts"
        if reference is not None and reference.pieces_per_word is not None:
            name = _md(reference.name) if reference.name is not None else "the reference"
            line += f" vs {reference.pieces_per_word:.2f} on {name}"
        if diagnostics.ratio is not None:
            line += f" ({diagnostics.ratio:.2f}×)"
        lines.append(line + ".")
    words = [
        f"{_md(entry.word)} ({' '.join(_md(piece) for piece in entry.pieces)})" for entry in diagnostics.fragmented
    ]
    if words:
        lines.append("- Most fragmented words: " + ", ".join(words) + ".")
    if diagnostics.zero_shot_gap_points is not None:
        gap = diagnostics.zero_shot_gap_points
        lines.append(f"- Zero-shot gap: best trained strategy {gap:+.1f} macro-F1 points against zero-shot.")
    lines += _bullets(diagnostics.summary)
    return "## Diagnostics\n\n" + "\n".join(lines) if lines else ""


def _protocol(protocol: ProtocolEntry | None, confidence: str, tested_on: str | None) -> str:
    if protocol is None:
        return f"**Test set**: {_md(tested_on)}." if tested_on else ""
    scheme = _md(protocol.scheme)
    if protocol.folds is not None:
        scheme += f" ({protocol.folds:g} folds)"
    parts = [f"**Protocol**: {scheme}"]
    if protocol.seeds:
        parts.append("seeds " + ", ".join(_md(seed) for seed in protocol.seeds))
    if protocol.test_rows is not None:
        parts.append(f"{count(protocol.test_rows)} test rows")
    if tested_on:
        parts.append(f"test set: {_md(tested_on)}")
    line = ", ".join(parts)
    if protocol.why is not None:
        line += f" ({_md(protocol.why)})"
    line += "."
    if protocol.interval is not None:
        line += f" Intervals ({confidence}): {_md(protocol.interval)}."
    return line


def _budget(budget: Budget | None) -> str:
    if budget is None:
        return ""
    limit = budget.limit_seconds
    line = "**Budget**: " + ("no limit" if limit is None else f"limit {seconds(limit)}")
    if budget.estimated_seconds is not None:
        line += f", estimated {seconds(budget.estimated_seconds)}"
        if budget.estimated_seconds_uncut not in (None, budget.estimated_seconds):
            line += f" ({seconds(budget.estimated_seconds_uncut)} without cuts)"
    cuts = _bullets(budget.cuts)
    return line + (".\n\nCuts to fit the budget:\n\n" + "\n".join(cuts) if cuts else "; nothing was cut.")


def _resumed(resumed: Sequence[str]) -> str:
    if not resumed:
        return ""
    return f"**Resumed**: {_md(', '.join(resumed))}: {_md(RESUMED_NOTE)}."


# -- helpers -------------------------------------------------------------------------------------------------------


def _md(value: Any, line_start: bool = False) -> str:
    text = _SPECIAL.sub(r"\\\1", " ".join(str("" if value is None else value).split()))
    return _LEADING.sub(r"\\\1", text) if line_start else text


def _bullets(values: Iterable[str]) -> list[str]:
    return [f"- {_md(value, line_start=True)}" for value in values]


def _scored(score: Score) -> str:
    return scored(score.value, score.interval)
