"""The comparison as one self-contained HTML page: inline CSS and SVG, no scripts, no network; formats, never computes.

It reads a results.json (schema version 2) dict. Any part may be missing or partial (a failed strategy, no learning
curve, zero-shot alone): a section then says so in a line instead of failing. Everything that came from the user's
data or from free text in the results (labels, words, reasons, errors, file names) goes through html.escape.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bertwise.report.facts import shown_config
from bertwise.report.plots import (
    as_interval,
    as_number,
    confusion_matrix_svg,
    learning_curve_svg,
    ok_strategies,
    per_class_f1_svg,
    per_class_selection,
    score_cost_svg,
    slug,
    strategy_color,
)
from bertwise.util.formatting import duration

SCHEMA_VERSION = 2

_CSS = """
:root { --ink: #1f2933; --muted: #5f6b7a; --line: #e4e7eb; --soft: #f5f7fa; --accent: #1f77b4; }
* { box-sizing: border-box; }
html { background: #fff; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 36px 40px 56px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 40px 0 12px; padding-top: 22px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p { margin: 8px 0; }
ul { margin: 6px 0; padding-left: 22px; }
li { margin: 3px 0; }
code { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  background: var(--soft); padding: 1px 5px; border-radius: 4px; }
.subtitle { color: var(--muted); margin: 0; }
.subtitle strong { color: var(--ink); font-weight: 600; }
.notes { color: var(--muted); font-size: 14px; margin-top: 8px; }
.note { color: var(--muted); font-size: 14px; }
.warning { background: #fff4e5; border: 1px solid #f5c58a; border-radius: 6px; padding: 10px 14px; margin: 16px 0; }
.recommendation { margin: 26px 0 8px; padding: 18px 24px 16px; background: var(--soft);
  border: 1px solid var(--line); border-left: 6px solid var(--accent); border-radius: 8px; }
.recommendation .label { text-transform: uppercase; letter-spacing: 0.08em; font-size: 12px; color: var(--muted);
  margin: 0; }
.recommendation .choice { font-size: 26px; font-weight: 700; margin: 2px 0 8px; }
.recommendation .meta { color: var(--muted); font-size: 14px; }
.recommendation h3 { font-size: 14px; margin: 12px 0 2px; color: var(--muted); font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 6px; font-size: 14px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em;
  border-bottom: 2px solid #cbd2d9; vertical-align: bottom; }
td.num, th.num { text-align: right; white-space: nowrap; }
td .ci { display: block; color: var(--muted); font-size: 12px; }
td .ci.inline { display: inline; margin-left: 6px; }
tr.chosen td { background: #f4f8fd; }
tr.chosen td:first-child { font-weight: 700; }
tr.failed td { color: #9b1c1c; }
table.compact { width: auto; min-width: 50%; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 7px;
  vertical-align: -1px; }
figure.plot { margin: 14px 0 8px; }
figure.plot svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 10px 20px; }
.grid.small { grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
.badge { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 10px; background: var(--soft);
  border: 1px solid var(--line); color: var(--muted); margin-left: 6px; vertical-align: 1px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; font-size: 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
footer { margin-top: 48px; padding-top: 14px; border-top: 1px solid var(--line); color: var(--muted);
  font-size: 13px; }
"""

_METRICS = (
    ("macro_f1", "Macro-F1"),
    ("accuracy", "Accuracy"),
    ("weighted_f1", "Weighted F1"),
    ("macro_precision", "Precision"),
    ("macro_recall", "Recall"),
)


# Stages results.json lists under "resumed" were not computed in this run.
RESUMED_NOTE = (
    "reused from the run cache, where an earlier run with the same data, settings and model left them; "
    "their costs are the ones measured then"
)


def render_html(results: Mapping[str, Any]) -> str:
    """The whole report page for one results dict, as a string."""
    results = results if isinstance(results, Mapping) else {}
    confidence = _confidence(results)
    parts = [
        _header(results),
        _recommendation(results.get("recommendation")),
        _results_table(results, confidence),
        _paired(results.get("paired"), confidence),
        _learning_curve(results.get("learning_curve"), confidence),
        _score_cost(results),
        _diagnostics(results.get("diagnostics")),
        _per_class(results),
        _confusions(results.get("strategies")),
        _protocol_budget(results.get("protocol"), results.get("budget")),
        _resumed(results.get("resumed")),
        _machine_config(results),
        _footer(results),
    ]
    title = "bertwise report"
    dataset, model = _dataset_name(results), _model_name(results)
    if dataset or model:
        title += ": " + " with ".join(part for part in (dataset, model) if part)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in parts if part)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_html(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report page to ``path`` (parent folders are created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(results), encoding="utf-8")
    return target


# -- sections ------------------------------------------------------------------------------------------------------


def _header(results: Mapping[str, Any]) -> str:
    dataset, model = _map(results.get("dataset")), _map(results.get("model"))
    lines = ["<header>\n<h1>Which BERT strategy fits this data?</h1>"]
    facts = []
    train, test = _map(dataset.get("train")), _map(dataset.get("test"))
    if train:
        facts.append(f"<strong>train</strong> {_source(train)}")
    if test:
        origin = " (held out from train)" if test.get("origin") == "held-out" else ""
        facts.append(f"<strong>test</strong> {_source(test)}{origin}")
    classes = _seq(dataset.get("classes"))
    if classes:
        facts.append(f"<strong>{len(classes)}</strong> classes")
    if facts:
        lines.append(f'<p class="subtitle">{" · ".join(facts)}</p>')
    if model:
        details = [f"<strong>model</strong> {_e(model.get('id') or model.get('path') or 'unknown')}"]
        if model.get("embedded") is True:
            details.append("bundled copy")
        if isinstance(model.get("pooling"), str):
            details.append(f"{_e(model['pooling'])} pooling")
        if as_number(model.get("max_length")) is not None:
            details.append(f"max {_int(model['max_length'])} tokens")
        lines.append(f'<p class="subtitle">{" · ".join(details)}</p>')
    notes = [_e(note) for note in _seq(dataset.get("notes")) if isinstance(note, str)]
    truncated = _map(dataset.get("truncated"))
    if any((as_number(truncated.get(part)) or 0) > 0 for part in ("train", "test")):
        notes.append(
            f"texts cut at {_int(dataset.get('max_length'))} tokens: {_int(truncated.get('train'))} train, "
            f"{_int(truncated.get('test'))} test"
        )
    if notes:
        lines.append('<ul class="notes">' + "".join(f"<li>{note}</li>" for note in notes) + "</ul>")
    version = results.get("schema_version")
    if version != SCHEMA_VERSION:
        lines.append(
            f'<p class="warning">These results say schema version {_e(version)}; this report reads version '
            f"{SCHEMA_VERSION}, so some sections may be empty.</p>"
        )
    lines.append("</header>")
    return "\n".join(lines)


def _recommendation(recommendation: Any) -> str:
    recommendation = _map(recommendation)
    chosen = recommendation.get("strategy")
    if not isinstance(chosen, str) or not chosen:
        reasons = _list_items(recommendation.get("reasons"))
        return (
            '<section class="recommendation" id="recommendation">\n<p class="label">Recommendation</p>\n'
            '<p class="choice">None</p>\n' + (f"<ul>{reasons}</ul>\n" if reasons else "") + "</section>"
        )
    meta = []
    if isinstance(recommendation.get("runner_up"), str):
        meta.append(f"runner-up: <strong>{_e(recommendation['runner_up'])}</strong>")
    if isinstance(recommendation.get("priority"), str):
        meta.append(f"priority: {_e(recommendation['priority'])}")
    tolerance = as_number(recommendation.get("tolerance_points"))
    if tolerance is not None:
        unit = "point" if tolerance == 1 else "points"
        meta.append(f"practically equivalent: paired difference within ±{tolerance:g} {unit}")
    lines = [
        f'<section class="recommendation" id="recommendation" style="border-left-color: {strategy_color(chosen)}">',
        '<p class="label">Recommendation</p>',
        f'<p class="choice">{_swatch(chosen)}{_e(chosen)}</p>',
    ]
    if meta:
        lines.append(f'<p class="meta">{" · ".join(meta)}</p>')
    reasons = _list_items(recommendation.get("reasons"))
    if reasons:
        lines.append(f"<h3>Why</h3>\n<ul>{reasons}</ul>")
    changes = _list_items(recommendation.get("would_change"))
    if changes:
        lines.append(f"<h3>What would change it</h3>\n<ul>{changes}</ul>")
    lines.append("</section>")
    return "\n".join(lines)


def _results_table(results: Mapping[str, Any], confidence: str) -> str:
    strategies = [entry for entry in _seq(results.get("strategies")) if isinstance(entry, Mapping)]
    head = (
        '<h2 id="results">Results on the test set</h2>\n'
        f'<p class="note">Scores in points (0-100); below each, its {confidence} interval.</p>'
    )
    if not strategies:
        return head + '\n<p class="note">No strategy results in this file.</p>'
    chosen = _map(results.get("recommendation")).get("strategy")
    show_gpu = any((as_number(_map(entry.get("cost")).get("peak_gpu_memory_mb")) or 0) > 0 for entry in strategies)
    columns = [
        ("Strategy", ""),
        *((label, "num") for _, label in _METRICS),
        ("Runs", "num"),
        ("Fit", "num"),
        ("Predict ms/text", "num"),
        ("Peak memory", "num"),
    ]
    if show_gpu:
        columns.append(("Peak GPU", "num"))
    rows = []
    for entry in strategies:
        name = str(entry.get("name", "?"))
        first = f"<td>{_swatch(name)}{_e(name)}{' ★' if name == chosen else ''}</td>"
        if entry.get("status") != "ok":
            error = entry.get("error") or "no reason given"
            rows.append(f'<tr class="failed">{first}<td colspan="{len(columns) - 1}">failed: {_e(error)}</td></tr>')
            continue
        metrics, intervals, cost = (
            _map(entry.get("metrics")),
            _map(entry.get("metrics_interval")),
            _map(entry.get("cost")),
        )
        cells = [first]
        for key, _ in _METRICS:
            cells.append(f'<td class="num">{_points(metrics.get(key))}{_ci(intervals.get(key))}</td>')
        cells.append(f'<td class="num">{len(_seq(entry.get("runs"))) or "–"}</td>')
        cells.append(f'<td class="num">{_duration(cost.get("fit_seconds"))}</td>')
        cells.append(f'<td class="num">{_fixed(cost.get("predict_ms_per_text"), 1)}</td>')
        cells.append(f'<td class="num">{_megabytes(cost.get("peak_memory_mb"))}</td>')
        if show_gpu:
            cells.append(f'<td class="num">{_megabytes(cost.get("peak_gpu_memory_mb"))}</td>')
        row_class = ' class="chosen"' if name == chosen else ""
        rows.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    header = "".join(
        f'<th class="{kind}">{_e(label)}</th>' if kind else f"<th>{_e(label)}</th>" for label, kind in columns
    )
    return (
        f'{head}\n<table id="results-table">\n<thead><tr>{header}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _paired(paired: Any, confidence: str) -> str:
    head = '<h2 id="paired">Paired differences</h2>'
    entries = [entry for entry in _seq(paired) if isinstance(entry, Mapping)]
    if not entries:
        return head + '\n<p class="note">No paired comparison: fewer than two strategies finished.</p>'
    rows = []
    for entry in entries:
        difference = as_number(entry.get("difference"))
        interval = as_interval(entry.get("interval"))
        significant = entry.get("significant")
        rows.append(
            "<tr>"
            f"<td>{_swatch(str(entry.get('a')))}{_e(entry.get('a'))} − "
            f"{_swatch(str(entry.get('b')))}{_e(entry.get('b'))}</td>"
            f"<td>{_e(_metric_name(entry.get('metric')))}</td>"
            f'<td class="num">{"–" if difference is None else f"{difference * 100:+.1f}"}</td>'
            f'<td class="num">{_interval_text(interval, signed=True)}</td>'
            f'<td class="num">{_p_value(entry.get("p_value"))}</td>'
            f"<td>{'yes' if significant is True else 'no' if significant is False else '–'}</td>"
            "</tr>"
        )
    methods = sorted({str(entry["method"]) for entry in entries if isinstance(entry.get("method"), str)})
    note = (
        f'<p class="note">Method: {_e("; ".join(methods))}. Differences are in points, first minus second.</p>'
        if methods
        else ""
    )
    return (
        f'{head}\n<table id="paired-table">\n<thead><tr><th>Comparison</th><th>Metric</th>'
        f'<th class="num">Difference</th><th class="num">{_e(confidence)} interval</th><th class="num">p</th>'
        "<th>Significant</th></tr></thead>\n<tbody>\n" + "\n".join(rows) + f"\n</tbody>\n</table>\n{note}"
    )


def _learning_curve(curve: Any, confidence: str) -> str:
    head = '<h2 id="learning">Learning curves</h2>'
    curve = _map(curve)
    svg = learning_curve_svg(curve) if curve else ""
    if not svg:
        return (
            head + '\n<p class="note">No learning curve in these results (it was not run, or no trained strategy '
            "finished).</p>"
        )
    lines = [
        head,
        f'<figure class="plot" id="learning-curve">\n{svg}\n'
        "<figcaption>Macro-F1 on the same test set after training on "
        f"growing subsets; shaded: {_e(confidence)} interval.</figcaption>\n</figure>",
    ]
    crossover = _map(curve.get("crossover"))
    if isinstance(crossover.get("text"), str) and crossover["text"]:
        status = crossover.get("status")
        badge = f'<span class="badge">{_e(status)}</span>' if isinstance(status, str) else ""
        lines.append(f"<p><strong>Crossover:</strong> {_e(crossover['text'])}{badge}</p>")
    fits = {name: fit for name, fit in _map(curve.get("fit")).items() if isinstance(fit, Mapping)}
    if fits:
        forms = sorted({str(fit["form"]) for fit in fits.values() if isinstance(fit.get("form"), str)})
        form = f" (<code>{_e(', '.join(forms))}</code>)" if forms else ""
        lines.append(
            f'<p class="note">Dashed lines continue a curve fitted to the measured points{form} for '
            f"{_e(', '.join(fits))}. Beyond the largest measured size they are an extrapolation: a guess at the trend, "
            "not a measurement.</p>"
        )
    table = _curve_table(curve)
    if table:
        lines.append(table)
    return "\n".join(lines)


def _curve_table(curve: Mapping[str, Any]) -> str:
    strategies = {
        name: {as_number(point.get("per_class")): point for point in _seq(points) if isinstance(point, Mapping)}
        for name, points in _map(curve.get("strategies")).items()
        if _seq(points)
    }
    extrapolated = {
        name: {
            as_number(point.get("per_class")): point
            for point in _seq(_map(fit).get("extrapolation"))
            if isinstance(point, Mapping)
        }
        for name, fit in _map(curve.get("fit")).items()
        if name in strategies
    }
    if not strategies:
        return ""
    measured = sorted({size for points in strategies.values() for size in points if size is not None})
    guessed = sorted({size for points in extrapolated.values() for size in points if size is not None} - set(measured))
    names = list(strategies)
    header = "".join(f'<th class="num">{_swatch(name)}{_e(name)}</th>' for name in names)
    rows = []
    for size in measured + guessed:
        is_guess = size in guessed
        cells = []
        for name in names:
            point = (extrapolated.get(name, {}) if is_guess else strategies[name]).get(size)
            if point is None:
                cells.append('<td class="num">–</td>')
            else:
                cells.append(
                    f'<td class="num">{_points(point.get("macro_f1"))}{_ci(point.get("interval"), inline=True)}</td>'
                )
        label = f"{size:g}" + (' <span class="badge">extrapolated</span>' if is_guess else "")
        rows.append(f"<tr><td>{label}</td>{''.join(cells)}</tr>")
    reference = _map(curve.get("reference"))
    notes = []
    for name, entry in reference.items():
        entry = _map(entry)
        if as_number(entry.get("macro_f1")) is not None:
            notes.append(
                f"{_e(name)} (no training): {_points(entry['macro_f1'])} "
                f"{_interval_text(as_interval(entry.get('interval')))}"
            )
    note = f'<p class="note">Reference: {"; ".join(notes)}.</p>' if notes else ""
    return (
        '<table class="compact" id="learning-curve-table">\n<thead><tr><th>Examples per class</th>'
        f"{header}</tr></thead>\n<tbody>\n" + "\n".join(rows) + f"\n</tbody>\n</table>\n{note}"
    )


def _score_cost(results: Mapping[str, Any]) -> str:
    head = '<h2 id="cost">Score against cost</h2>'
    chosen = _map(results.get("recommendation")).get("strategy")
    svg = score_cost_svg(results.get("strategies"), chosen if isinstance(chosen, str) else None)
    if not svg:
        return head + '\n<p class="note">No finished strategy reports both a score and a fit time.</p>'
    return (
        f'{head}\n<figure class="plot" id="score-cost">\n{svg}\n<figcaption>Up and to the left is better: macro-F1 '
        "with its interval against the time one run takes to fit.</figcaption>\n</figure>"
    )


def _diagnostics(diagnostics: Any) -> str:
    head = '<h2 id="diagnostics">Domain diagnostics</h2>'
    diagnostics = _map(diagnostics)
    if not diagnostics:
        return head + '\n<p class="note">No diagnostics in these results.</p>'
    lines = [head]
    tokenizer = _map(diagnostics.get("tokenizer"))
    user, reference = _map(tokenizer.get("user")), _map(tokenizer.get("reference"))
    if user or reference:
        measures = (
            ("texts", "Texts", _int),
            ("words", "Words", _int),
            ("pieces_per_word", "Word pieces per word", lambda value: _fixed(value, 2)),
            ("share_words_3plus", "Words split into 3+ pieces", _percent),
            ("unknown_rate", "Unknown-token rate", _percent),
        )
        rows = "\n".join(
            f'<tr><td>{label}</td><td class="num">{show(user.get(key))}</td>'
            f'<td class="num">{show(reference.get(key))}</td></tr>'
            for key, label, show in measures
        )
        lines.append(
            '<h3>Tokenizer fragmentation</h3>\n<table class="compact" id="tokenizer-table">\n'
            "<thead><tr><th>Measure</th>"
            f'<th class="num">Your data</th><th class="num">Reference</th></tr></thead>\n<tbody>\n{rows}\n'
            "</tbody>\n</table>"
        )
        if isinstance(reference.get("name"), str):
            # The name can be a whole sentence; as a column header it would stretch the table.
            lines.append(f'<p class="note">Reference: {_e(reference["name"])}.</p>')
        ratio = as_number(tokenizer.get("pieces_per_word_ratio"))
        if ratio is not None:
            lines.append(
                f"<p>Your texts split into <strong>{ratio:.2f}×</strong> as many pieces per word as the reference.</p>"
            )
    fragmented = [entry for entry in _seq(tokenizer.get("most_fragmented")) if isinstance(entry, Mapping)]
    if fragmented:
        rows = "\n".join(
            f"<tr><td>{_e(entry.get('word'))}</td>"
            f"<td>{' '.join(f'<code>{_e(piece)}</code>' for piece in _seq(entry.get('pieces')))}</td>"
            f'<td class="num">{_int(entry.get("count"))}</td></tr>'
            for entry in fragmented
        )
        lines.append(
            '<h3>Most fragmented words</h3>\n<table class="compact" id="fragmented-table">\n<thead><tr><th>Word</th>'
            f'<th>Pieces</th><th class="num">Count</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>'
        )
    gap = as_number(diagnostics.get("zero_shot_gap_points"))
    if gap is not None:
        lines.append(
            f"<p><strong>Zero-shot gap:</strong> the best trained strategy scores {gap:+.1f} macro-F1 points against "
            "zero-shot.</p>"
        )
    summary = _list_items(diagnostics.get("summary"))
    if summary:
        lines.append(f'<h3>Summary</h3>\n<ul id="diagnostics-summary">{summary}</ul>')
    return "\n".join(lines)


def _per_class(results: Mapping[str, Any]) -> str:
    head = '<h2 id="per-class">Per-class F1</h2>'
    strategies = results.get("strategies")
    classes = [str(label) for label in _seq(_map(results.get("dataset")).get("classes"))]
    svg = per_class_f1_svg(strategies, classes)
    if not svg:
        return head + '\n<p class="note">No per-class scores in these results.</p>'
    _, caption = per_class_selection(strategies, classes)
    caption = caption or "F1 per class for each finished strategy, in points."
    return f'{head}\n<figure class="plot" id="per-class-f1">\n{svg}\n<figcaption>{_e(caption)}</figcaption>\n</figure>'


def _confusions(strategies: Any) -> str:
    head = '<h2 id="confusion">Confusion matrices</h2>'
    figures, used = [], set()
    classes = 0
    for entry in ok_strategies(strategies):
        svg = confusion_matrix_svg(entry)
        if not svg:
            continue
        classes = max(classes, len(_seq(_map(entry.get("confusion_matrix")).get("labels"))))
        ident = f"confusion-{slug(entry['name'])}"
        while ident in used:
            ident += "-2"
        used.add(ident)
        figures.append(f'<figure class="plot confusion" id="{ident}">\n{svg}\n</figure>')
    if not figures:
        return head + '\n<p class="note">No confusion matrices in these results.</p>'
    note = (
        '<p class="note">Rows are true labels, columns predicted labels, from the first run; colour is the share of '
        "each true class, numbers are counts.</p>"
    )
    # Matrices of up to 15 classes are drawn small enough to sit side by side (three abreast up to 6 classes).
    grid = "grid small" if classes <= 6 else "grid"
    body = "\n".join(figures) if classes > 15 else f'<div class="{grid}">\n' + "\n".join(figures) + "\n</div>"
    return f"{head}\n{note}\n{body}"


def _protocol_budget(protocol: Any, budget: Any) -> str:
    protocol, budget = _map(protocol), _map(budget)
    lines = ['<h2 id="protocol">Protocol and budget</h2>']
    if protocol:
        scheme = str(protocol.get("scheme", "unknown"))
        folds = as_number(protocol.get("folds"))
        if folds is not None:
            scheme += f", {folds:g} folds"
        facts = [("Scheme", _e(scheme))]
        if isinstance(protocol.get("why"), str):
            facts.append(("Why", _e(protocol["why"])))
        seeds = _seq(protocol.get("seeds"))
        if seeds:
            facts.append(("Seeds", _e(", ".join(str(seed) for seed in seeds))))
        if as_number(protocol.get("test_rows")) is not None:
            facts.append(("Test rows", _int(protocol["test_rows"])))
        if isinstance(protocol.get("interval"), str):
            interval = _e(protocol["interval"])
            confidence = as_number(protocol.get("confidence"))
            resamples = as_number(protocol.get("bootstrap_resamples"))
            extra = [
                f"{confidence * 100:g} % confidence" if confidence is not None else "",
                f"{resamples:g} bootstrap resamples" if resamples is not None else "",
            ]
            extra_text = "; ".join(part for part in extra if part)
            facts.append(("Intervals", interval + (f" ({extra_text})" if extra_text else "")))
        lines.append("<h3>Protocol</h3>\n" + _facts(facts, "protocol-facts"))
    else:
        lines.append('<p class="note">No protocol recorded.</p>')
    if budget:
        limit = as_number(budget.get("limit_seconds"))
        facts = [("Limit", "none" if limit is None else _duration(limit))]
        if as_number(budget.get("estimated_seconds")) is not None:
            facts.append(("Estimated", _duration(budget["estimated_seconds"])))
        if as_number(budget.get("estimated_seconds_uncut")) is not None:
            facts.append(("Estimated without cuts", _duration(budget["estimated_seconds_uncut"])))
        calibration = _map(budget.get("calibration"))
        if calibration:
            facts.append(
                (
                    "Calibration",
                    ", ".join(f"{_e(key.replace('_', ' '))}: {_fixed(value, 0)}" for key, value in calibration.items()),
                )
            )
        cuts = _list_items(budget.get("cuts"))
        facts.append(("Cuts", f"<ul>{cuts}</ul>" if cuts else "none"))
        lines.append("<h3>Budget</h3>\n" + _facts(facts, "budget-facts"))
    return "\n".join(lines)


def _resumed(resumed: Any) -> str:
    stages = [str(stage) for stage in _seq(resumed) if stage]
    if not stages:
        return ""
    return f'<p class="note" id="resumed">Resumed: {_e(", ".join(stages))}: {_e(RESUMED_NOTE)}.</p>'


def _machine_config(results: Mapping[str, Any]) -> str:
    machine, config, model = _map(results.get("machine")), shown_config(results), _map(results.get("model"))
    lines = ['<h2 id="machine">Machine and configuration</h2>\n<div class="grid">']
    if machine:
        lines.append(
            "<div><h3>Machine</h3>\n"
            + _facts([(_e(key), _value(value)) for key, value in machine.items()], "machine-facts")
            + "</div>"
        )
    if config:
        lines.append(
            "<div><h3>Configuration</h3>\n"
            + _facts([(_e(key), _value(value)) for key, value in config.items()], "config-facts")
            + "</div>"
        )
    if model:
        shown = {key: value for key, value in model.items() if key != "sha256"}
        if isinstance(model.get("sha256"), str):
            shown["sha256"] = model["sha256"][:16] + "…"
        lines.append(
            "<div><h3>Model</h3>\n"
            + _facts([(_e(key), _value(value)) for key, value in shown.items()], "model-facts")
            + "</div>"
        )
    lines.append("</div>")
    if len(lines) == 2:
        return ""
    return "\n".join(lines)


def _footer(results: Mapping[str, Any]) -> str:
    version = results.get("bertwise_version")
    made = f"bertwise {_e(version)}" if version else "bertwise"
    when = _map(results.get("machine")).get("time")
    at = f" on {_e(when)}" if isinstance(when, str) else ""
    return (
        f"<footer>Made by {made}{at} from results.json (schema version {_e(results.get('schema_version', '?'))}). "
        "This page is self-contained: no scripts, no network.</footer>"
    )


# -- formatting helpers ------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else []


def _list_items(values: Any) -> str:
    return "".join(f"<li>{_e(value)}</li>" for value in _seq(values) if value not in (None, ""))


def _swatch(name: str) -> str:
    # The colour comes from a fixed palette, never from the data, so it is safe in a style attribute.
    return f'<span class="swatch" style="background: {strategy_color(name)}"></span>'


def _confidence(results: Mapping[str, Any]) -> str:
    confidence = as_number(_map(results.get("protocol")).get("confidence"))
    return f"{(confidence if confidence is not None else 0.95) * 100:g} %"


def _points(value: Any) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number * 100:.1f}"


def _interval_text(interval: tuple[float, float] | None, signed: bool = False) -> str:
    if interval is None:
        return ""
    low, high = interval[0] * 100, interval[1] * 100
    return f"[{low:+.1f}, {high:+.1f}]" if signed else f"[{low:.1f}, {high:.1f}]"


def _ci(value: Any, inline: bool = False) -> str:
    interval = as_interval(value)
    if interval is None:
        return ""
    return f'<span class="ci{" inline" if inline else ""}">{_interval_text(interval)}</span>'


def _fixed(value: Any, digits: int) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number:,.{digits}f}"


def _int(value: Any) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number:,.0f}"


def _percent(value: Any) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number * 100:.1f} %"


def _megabytes(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return "–"
    return f"{number / 1024:.1f} GB" if number >= 1024 else f"{number:.0f} MB"


def _duration(value: Any) -> str:
    seconds = as_number(value)
    return "–" if seconds is None else duration(seconds)


def _p_value(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return "–"
    return "&lt; 0.001" if number < 0.001 else f"{number:.3f}"


def _metric_name(value: Any) -> str:
    return dict(_METRICS).get(str(value), str(value))


def _source(part: Mapping[str, Any]) -> str:
    source = _e(Path(str(part["source"])).name) if isinstance(part.get("source"), str) else "unknown source"
    rows = as_number(part.get("rows"))
    return f"{source} ({_int(rows)} rows)" if rows is not None else source


def _dataset_name(results: Mapping[str, Any]) -> str:
    train = _map(_map(results.get("dataset")).get("train"))
    return Path(str(train["source"])).name if isinstance(train.get("source"), str) else ""


def _model_name(results: Mapping[str, Any]) -> str:
    model = _map(results.get("model"))
    return str(model["id"]) if isinstance(model.get("id"), str) else ""


def _facts(facts: Sequence[tuple[str, str]], ident: str) -> str:
    # Keys and values arrive already escaped (some values hold markup such as lists).
    items = "".join(f"<dt>{key}</dt><dd>{value}</dd>" for key, value in facts)
    return f'<dl class="facts" id="{ident}">{items}</dl>'


def _value(value: Any) -> str:
    if value is None:
        return '<span class="note">none</span>'
    if isinstance(value, str):
        return _e(value)
    return _e(json.dumps(value, ensure_ascii=False, default=str))
