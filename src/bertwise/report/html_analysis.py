"""The HTML report's analysis sections: learning curves, domain diagnostics, per-class F1, confusion matrices, and
the protocol and budget; each renders part of the report view, with the plots drawn from the recorded parts."""

from __future__ import annotations

from collections.abc import Callable

from bertwise.report.curve_plot import learning_curve_svg
from bertwise.report.format import MISSING, count, fixed, interval_text, mapping, percent, points, seconds, sequence
from bertwise.report.html_markup import ci, escape, facts, list_items, swatch
from bertwise.report.plots import confusion_matrix_svg, ok_strategies, per_class_f1_svg, per_class_selection, slug
from bertwise.report.view import Budget, Curve, Diagnostics, ProtocolEntry, ReportView, TokenizerSide, curve_sizes


def learning_curve(curve: Curve | None, confidence: str) -> str:
    head = '<h2 id="learning">Learning curves</h2>'
    svg = learning_curve_svg(curve.record) if curve is not None else ""
    if curve is None or not svg:
        return (
            head + '\n<p class="note">No learning curve in these results (it was not run, or no trained strategy '
            "finished).</p>"
        )
    lines = [
        head,
        f'<figure class="plot" id="learning-curve">\n{svg}\n'
        "<figcaption>Macro-F1 on the same test set after training on "
        f"growing subsets; shaded: {escape(confidence)} interval.</figcaption>\n</figure>",
    ]
    if curve.crossover is not None:
        status = curve.crossover_status
        badge = f'<span class="badge">{escape(status)}</span>' if status is not None else ""
        lines.append(f"<p><strong>Crossover:</strong> {escape(curve.crossover)}{badge}</p>")
    if curve.crossings:
        lines.append(f"<p><strong>Other crossings:</strong></p>\n<ul>{list_items(curve.crossings)}</ul>")
    if curve.fitted:
        form = f" (<code>{escape(', '.join(curve.forms))}</code>)" if curve.forms else ""
        lines.append(
            f'<p class="note">Dashed lines continue a curve fitted to the measured points{form} for '
            f"{escape(', '.join(curve.fitted))}. Beyond the largest measured size they are an extrapolation: a guess "
            "at the trend, not a measurement.</p>"
        )
    table = _curve_table(curve)
    if table:
        lines.append(table)
    return "\n".join(lines)


def _curve_table(curve: Curve) -> str:
    if not curve.columns:
        return ""
    measured, guessed = curve_sizes(curve.columns)
    header = "".join(f'<th class="num">{swatch(column.name)}{escape(column.name)}</th>' for column in curve.columns)
    rows = []
    for size in measured + guessed:
        is_guess = size in guessed
        cells = []
        for column in curve.columns:
            point = (column.extrapolated if is_guess else column.measured).get(size)
            if point is None:
                cells.append(f'<td class="num">{MISSING}</td>')
            else:
                cells.append(f'<td class="num">{points(point.value)}{ci(point.interval, inline=True)}</td>')
        label = f"{size:g}" + (' <span class="badge">extrapolated</span>' if is_guess else "")
        rows.append(f"<tr><td>{label}</td>{''.join(cells)}</tr>")
    references = [
        f"{escape(name)} (no training): {points(score.value)} {interval_text(score.interval)}"
        for name, score in curve.references
    ]
    note = f'<p class="note">Reference: {"; ".join(references)}.</p>' if references else ""
    return (
        '<table class="compact" id="learning-curve-table">\n<thead><tr><th>Examples per class</th>'
        f"{header}</tr></thead>\n<tbody>\n" + "\n".join(rows) + f"\n</tbody>\n</table>\n{note}"
    )


def diagnostics(found: Diagnostics | None) -> str:
    head = '<h2 id="diagnostics">Domain diagnostics</h2>'
    if found is None:
        return head + '\n<p class="note">No diagnostics in these results.</p>'
    lines = [head]
    if found.user is not None or found.reference is not None:
        lines += _tokenizer(found)
    if found.fragmented:
        rows = "\n".join(
            f"<tr><td>{escape(entry.word)}</td>"
            f"<td>{' '.join(f'<code>{escape(piece)}</code>' for piece in entry.pieces)}</td>"
            f'<td class="num">{count(entry.count)}</td></tr>'
            for entry in found.fragmented
        )
        lines.append(
            '<h3>Most fragmented words</h3>\n<table class="compact" id="fragmented-table">\n<thead><tr><th>Word</th>'
            f'<th>Pieces</th><th class="num">Count</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>'
        )
    gap = found.zero_shot_gap_points
    if gap is not None:
        lines.append(
            f"<p><strong>Zero-shot gap:</strong> the best trained strategy scores {gap:+.1f} macro-F1 points against "
            "zero-shot.</p>"
        )
    if found.summary:
        lines.append(f'<h3>Summary</h3>\n<ul id="diagnostics-summary">{list_items(found.summary)}</ul>')
    return "\n".join(lines)


_TOKENIZER_MEASURES: tuple[tuple[str, str, Callable[[float | None], str]], ...] = (
    ("texts", "Texts", count),
    ("words", "Words", count),
    ("pieces_per_word", "Word pieces per word", lambda value: fixed(value, 2)),
    ("share_words_3plus", "Words split into 3+ pieces", percent),
    ("unknown_rate", "Unknown-token rate", percent),
)


def _tokenizer(found: Diagnostics) -> list[str]:
    user, reference = found.user, found.reference

    def measure(side: TokenizerSide | None, key: str) -> float | None:
        value: float | None = getattr(side, key) if side is not None else None
        return value

    rows = "\n".join(
        f'<tr><td>{label}</td><td class="num">{show(measure(user, key))}</td>'
        f'<td class="num">{show(measure(reference, key))}</td></tr>'
        for key, label, show in _TOKENIZER_MEASURES
    )
    lines = [
        '<h3>Tokenizer fragmentation</h3>\n<table class="compact" id="tokenizer-table">\n'
        "<thead><tr><th>Measure</th>"
        f'<th class="num">Your data</th><th class="num">Reference</th></tr></thead>\n<tbody>\n{rows}\n'
        "</tbody>\n</table>"
    ]
    if reference is not None and reference.name is not None:
        # The name can be a whole sentence; as a column header it would stretch the table.
        lines.append(f'<p class="note">Reference: {escape(reference.name)}.</p>')
    if found.ratio is not None:
        lines.append(
            f"<p>Your texts split into <strong>{found.ratio:.2f}×</strong> as many pieces per word as the "
            "reference.</p>"
        )
    return lines


def per_class(view: ReportView) -> str:
    head = '<h2 id="per-class">Per-class F1</h2>'
    classes = list(view.dataset.classes)
    svg = per_class_f1_svg(view.strategy_records, classes)
    if not svg:
        return head + '\n<p class="note">No per-class scores in these results.</p>'
    _, caption = per_class_selection(view.strategy_records, classes)
    caption = caption or "F1 per class for each finished strategy, in points."
    return (
        f'{head}\n<figure class="plot" id="per-class-f1">\n{svg}\n<figcaption>{escape(caption)}</figcaption>\n</figure>'
    )


def confusions(view: ReportView) -> str:
    head = '<h2 id="confusion">Confusion matrices</h2>'
    figures, used = [], set()
    classes = 0
    for entry in ok_strategies(view.strategy_records):
        svg = confusion_matrix_svg(entry)
        if not svg:
            continue
        classes = max(classes, len(sequence(mapping(entry.get("confusion_matrix")).get("labels"))))
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


def protocol_budget(protocol: ProtocolEntry | None, budget: Budget | None) -> str:
    lines = ['<h2 id="protocol">Protocol and budget</h2>']
    if protocol is not None:
        lines.append("<h3>Protocol</h3>\n" + facts(_protocol_facts(protocol), "protocol-facts"))
    else:
        lines.append('<p class="note">No protocol recorded.</p>')
    if budget is not None:
        limit = budget.limit_seconds
        shown = [("Limit", "none" if limit is None else seconds(limit))]
        if budget.estimated_seconds is not None:
            shown.append(("Estimated", seconds(budget.estimated_seconds)))
        if budget.estimated_seconds_uncut is not None:
            shown.append(("Estimated without cuts", seconds(budget.estimated_seconds_uncut)))
        if budget.calibration:
            rates = ", ".join(
                f"{escape(key.replace('_', ' '))}: {fixed(value, 0)}" for key, value in budget.calibration
            )
            shown.append(("Calibration", rates))
        shown.append(("Cuts", f"<ul>{list_items(budget.cuts)}</ul>" if budget.cuts else "none"))
        lines.append("<h3>Budget</h3>\n" + facts(shown, "budget-facts"))
    return "\n".join(lines)


def _protocol_facts(protocol: ProtocolEntry) -> list[tuple[str, str]]:
    scheme = str(protocol.scheme)
    if protocol.folds is not None:
        scheme += f", {protocol.folds:g} folds"
    shown = [("Scheme", escape(scheme))]
    if protocol.why is not None:
        shown.append(("Why", escape(protocol.why)))
    if protocol.seeds:
        shown.append(("Seeds", escape(", ".join(str(seed) for seed in protocol.seeds))))
    if protocol.test_rows is not None:
        shown.append(("Test rows", count(protocol.test_rows)))
    if protocol.interval is not None:
        confidence, resamples = protocol.confidence, protocol.bootstrap_resamples
        extra = [
            f"{confidence * 100:g} % confidence" if confidence is not None else "",
            f"{resamples:g} bootstrap resamples" if resamples is not None else "",
        ]
        extra_text = "; ".join(part for part in extra if part)
        shown.append(("Intervals", escape(protocol.interval) + (f" ({extra_text})" if extra_text else "")))
    return shown
