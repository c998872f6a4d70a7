"""The HTML report's summary sections: the header, the recommendation, the results, what the protocol skipped, the
paired differences, score against cost, and the machine and configuration at the end; each renders part of the
report view."""

from __future__ import annotations

from collections.abc import Sequence

from bertwise.evaluation.runner import SCHEMA_VERSION
from bertwise.report.format import (
    METRICS,
    MISSING,
    RESUMED_NOTE,
    as_number,
    count,
    fixed,
    interval_text,
    megabytes,
    metric_heading,
    p_value,
    points,
    seconds,
    signed_points,
    yes_no,
)
from bertwise.report.html_markup import ci, escape, fact_value, facts, list_items, swatch
from bertwise.report.plots import score_cost_svg, strategy_color
from bertwise.report.stopping import NOTHING_SKIPPED, SECTION_TITLE
from bertwise.report.view import DataPart, Pair, RecommendationEntry, ReportView, StrategyEntry


def header(view: ReportView) -> str:
    dataset, model = view.dataset, view.model
    lines = ["<header>\n<h1>Which BERT strategy fits this data?</h1>"]
    shown = []
    if dataset.train is not None:
        shown.append(f"<strong>train</strong> {_source(dataset.train)}")
    if dataset.test is not None:
        origin = " (held out from train)" if dataset.test.origin == "held-out" else ""
        shown.append(f"<strong>test</strong> {_source(dataset.test)}{origin}")
    if dataset.classes:
        shown.append(f"<strong>{len(dataset.classes)}</strong> classes")
    if shown:
        lines.append(f'<p class="subtitle">{" · ".join(shown)}</p>')
    if model is not None:
        details = [f"<strong>model</strong> {escape(model.label)}"]
        if model.embedded:
            details.append("bundled copy")
        if model.pooling is not None:
            details.append(f"{escape(model.pooling)} pooling")
        if model.max_length is not None:
            details.append(f"max {count(model.max_length)} tokens")
        lines.append(f'<p class="subtitle">{" · ".join(details)}</p>')
    notes = [escape(note) for note in dataset.notes]
    truncated = dataset.truncated
    if any((as_number(truncated.get(part)) or 0) > 0 for part in ("train", "test")):
        notes.append(
            f"texts cut at {count(dataset.max_length)} tokens: {count(truncated.get('train'))} train, "
            f"{count(truncated.get('test'))} test"
        )
    if notes:
        lines.append('<ul class="notes">' + "".join(f"<li>{note}</li>" for note in notes) + "</ul>")
    if view.schema_version != SCHEMA_VERSION:
        lines.append(
            f'<p class="warning">These results say schema version {escape(view.schema_version)}; this report reads '
            f"version {SCHEMA_VERSION}, so some sections may be empty.</p>"
        )
    lines.append("</header>")
    return "\n".join(lines)


def recommendation(view: ReportView) -> str:
    chosen: RecommendationEntry | None = view.recommendation
    if chosen is None or chosen.strategy is None:
        reasons = list_items(chosen.reasons) if chosen else ""
        return (
            '<section class="recommendation" id="recommendation">\n<p class="label">Recommendation</p>\n'
            '<p class="choice">None</p>\n' + (f"<ul>{reasons}</ul>\n" if reasons else "") + "</section>"
        )
    meta = []
    if chosen.runner_up is not None:
        meta.append(f"runner-up: <strong>{escape(chosen.runner_up)}</strong>")
    if chosen.priority is not None:
        meta.append(f"priority: {escape(chosen.priority)}")
    tolerance = chosen.tolerance_points
    if tolerance is not None:
        unit = "point" if tolerance == 1 else "points"
        meta.append(f"practically equivalent: paired difference within ±{tolerance:g} {unit}")
    name = chosen.strategy
    lines = [
        f'<section class="recommendation" id="recommendation" style="border-left-color: {strategy_color(name)}">',
        '<p class="label">Recommendation</p>',
        f'<p class="choice">{swatch(name)}{escape(name)}</p>',
    ]
    if meta:
        lines.append(f'<p class="meta">{" · ".join(meta)}</p>')
    if chosen.reasons:
        lines.append(f"<h3>Why</h3>\n<ul>{list_items(chosen.reasons)}</ul>")
    if chosen.would_change:
        lines.append(f"<h3>What would change it</h3>\n<ul>{list_items(chosen.would_change)}</ul>")
    lines.append("</section>")
    return "\n".join(lines)


def results_table(view: ReportView, confidence: str) -> str:
    head = (
        '<h2 id="results">Results on the test set</h2>\n'
        f'<p class="note">Scores in points (0-100); below each, its {confidence} interval.</p>'
    )
    if not view.strategies:
        return head + '\n<p class="note">No strategy results in this file.</p>'
    show_gpu = any((strategy.peak_gpu_memory_mb or 0) > 0 for strategy in view.strategies)
    columns = [
        ("Strategy", ""),
        *((heading, "num") for _, heading, _ in METRICS),
        ("Runs", "num"),
        ("Fit", "num"),
        ("Predict ms/text", "num"),
        ("Peak memory", "num"),
    ]
    if show_gpu:
        columns.append(("Peak GPU", "num"))
    rows = [_result_row(strategy, view.chosen, len(columns), show_gpu) for strategy in view.strategies]
    heading = "".join(
        f'<th class="{kind}">{escape(label)}</th>' if kind else f"<th>{escape(label)}</th>" for label, kind in columns
    )
    return (
        f'{head}\n<table id="results-table">\n<thead><tr>{heading}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _result_row(strategy: StrategyEntry, chosen: str | None, columns: int, show_gpu: bool) -> str:
    name = strategy.name
    first = f"<td>{swatch(name)}{escape(name)}{' ★' if name == chosen else ''}</td>"
    if not strategy.ok:
        return f'<tr class="failed">{first}<td colspan="{columns - 1}">failed: {escape(strategy.error)}</td></tr>'
    cells = [first]
    for key, _, _ in METRICS:
        score = strategy.score(key)
        cells.append(f'<td class="num">{points(score.value)}{ci(score.interval)}</td>')
    runs = strategy.runs_out_of_planned or strategy.runs or MISSING
    cells.append(f'<td class="num">{escape(runs)}</td>')
    cells.append(f'<td class="num">{seconds(strategy.fit_seconds)}</td>')
    cells.append(f'<td class="num">{fixed(strategy.predict_ms_per_text, 1)}</td>')
    cells.append(f'<td class="num">{megabytes(strategy.peak_memory_mb)}</td>')
    if show_gpu:
        cells.append(f'<td class="num">{megabytes(strategy.peak_gpu_memory_mb)}</td>')
    row_class = ' class="chosen"' if name == chosen else ""
    return f"<tr{row_class}>{''.join(cells)}</tr>"


def skipped(view: ReportView) -> str:
    """What the protocol skipped, and why: the protocol, each stop and each budget skip; "" for older files."""
    stopping = view.stopping
    if stopping is None:
        return ""
    lines = [f'<h2 id="skipped">{escape(SECTION_TITLE)}</h2>']
    shown = stopping.protocol_text()
    if shown is not None:
        lines.append(f'<p id="stopping-protocol"><strong>Protocol</strong>: {escape(shown)}.</p>')
    if stopping.rule is not None:
        lines.append(f'<p class="note">Rule: {escape(stopping.rule)}.</p>')
    if stopping.stopped:
        lines.append(f'<h3>Stopped early</h3>\n<ul id="stopped">{list_items(stopping.stopped)}</ul>')
    if stopping.skipped_for_budget:
        skips = list_items(stopping.skipped_for_budget)
        lines.append(f'<h3>Skipped for the budget</h3>\n<ul id="skipped-for-budget">{skips}</ul>')
    if stopping.nothing_skipped:
        lines.append(f'<p class="note">{escape(NOTHING_SKIPPED)}</p>')
    timing = view.time_to_recommendation
    if timing is not None:
        lines.append(f'<p class="note" id="time-to-recommendation">Time: {escape(timing)}.</p>')
    return "\n".join(lines) if len(lines) > 1 else ""


def paired(pairs: Sequence[Pair], confidence: str) -> str:
    head = '<h2 id="paired">Paired differences</h2>'
    if not pairs:
        return head + '\n<p class="note">No paired comparison: fewer than two strategies finished.</p>'
    rows = [
        "<tr>"
        f"<td>{swatch(pair.a)}{escape(pair.a)} − {swatch(pair.b)}{escape(pair.b)}</td>"
        f"<td>{escape(metric_heading(pair.metric))}</td>"
        f'<td class="num">{signed_points(pair.difference)}</td>'
        f'<td class="num">{interval_text(pair.interval, signed=True)}</td>'
        f'<td class="num">{escape(p_value(pair.p_value))}</td>'
        f"<td>{yes_no(pair.significant)}</td>"
        "</tr>"
        for pair in pairs
    ]
    methods = sorted({pair.method for pair in pairs if pair.method is not None})
    note = (
        f'<p class="note">Method: {escape("; ".join(methods))}. Differences are in points, first minus second.</p>'
        if methods
        else ""
    )
    return (
        f'{head}\n<table id="paired-table">\n<thead><tr><th>Comparison</th><th>Metric</th>'
        f'<th class="num">Difference</th><th class="num">{escape(confidence)} interval</th><th class="num">p</th>'
        "<th>Significant</th></tr></thead>\n<tbody>\n" + "\n".join(rows) + f"\n</tbody>\n</table>\n{note}"
    )


def score_cost(view: ReportView) -> str:
    head = '<h2 id="cost">Score against cost</h2>'
    svg = score_cost_svg(view.strategy_records, view.chosen)
    if not svg:
        return head + '\n<p class="note">No finished strategy reports both a score and a fit time.</p>'
    return (
        f'{head}\n<figure class="plot" id="score-cost">\n{svg}\n<figcaption>Up and to the left is better: macro-F1 '
        "with its interval against the time one run takes to fit.</figcaption>\n</figure>"
    )


def resumed(stages: Sequence[str]) -> str:
    if not stages:
        return ""
    return f'<p class="note" id="resumed">Resumed: {escape(", ".join(stages))}: {escape(RESUMED_NOTE)}.</p>'


def machine_config(view: ReportView) -> str:
    lines = ['<h2 id="machine">Machine and configuration</h2>\n<div class="grid">']
    panels = [("Machine", view.machine, "machine-facts"), ("Configuration", view.config, "config-facts")]
    if view.model is not None:
        record = view.model.record
        shown = {key: value for key, value in record.items() if key != "sha256"}
        if isinstance(record.get("sha256"), str):
            shown["sha256"] = record["sha256"][:16] + "…"
        panels.append(("Model", shown, "model-facts"))
    for title, entries, ident in panels:
        if entries:
            items = [(escape(key), fact_value(value)) for key, value in entries.items()]
            lines.append(f"<div><h3>{title}</h3>\n" + facts(items, ident) + "</div>")
    lines.append("</div>")
    if len(lines) == 2:
        return ""
    return "\n".join(lines)


def footer(view: ReportView) -> str:
    version = view.bertwise_version
    made = f"bertwise {escape(version)}" if version else "bertwise"
    when = view.machine.get("time")
    at = f" on {escape(when)}" if isinstance(when, str) else ""
    schema = "?" if view.schema_version is None else view.schema_version
    return (
        f"<footer>Made by {made}{at} from results.json (schema version {escape(schema)}). "
        "This page is self-contained: no scripts, no network.</footer>"
    )


def _source(part: DataPart) -> str:
    source = escape(part.file_name) if part.file_name is not None else "unknown source"
    return f"{source} ({count(part.rows)} rows)" if part.rows is not None else source
