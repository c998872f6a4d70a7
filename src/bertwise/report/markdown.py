"""A short Markdown summary of a results.json (schema version 2) dict, for a pull request, an issue or a terminal.

It carries the decision and the numbers behind it, not the plots; the HTML report has those. Free text from the
results is escaped so that a label such as ``<b>x</b>`` or ``a|b`` shows as typed and cannot break a table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bertwise.report.facts import describe_test_set
from bertwise.report.plots import as_interval, as_number
from bertwise.util.formatting import duration

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that would change the rendering
# anywhere in a line. An underscore inside a word never starts emphasis, so snake_case labels stay readable.
_SPECIAL = re.compile(r"([\\`*\[\]<|&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# These only matter at the start of a line (a heading, a quote).
_LEADING = re.compile(r"^([#>])")
_METRIC_NAMES = {
    "macro_f1": "macro-F1",
    "accuracy": "accuracy",
    "weighted_f1": "weighted F1",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
}


# Stages results.json lists under "resumed" were not computed in this run.
RESUMED_NOTE = (
    "reused from the run cache, where an earlier run with the same data, settings and model left them; "
    "their costs are the ones measured then"
)


def render_markdown(results: Mapping[str, Any]) -> str:
    """The summary as Markdown text."""
    results = results if isinstance(results, Mapping) else {}
    confidence = _confidence(results)
    sections = [
        _title(results),
        _recommendation(results.get("recommendation")),
        _strategies(results.get("strategies"), confidence),
        _paired(results.get("paired"), confidence),
        _learning_curve(results.get("learning_curve")),
        _diagnostics(results.get("diagnostics")),
        _protocol(results.get("protocol"), confidence, describe_test_set(results)),
        _budget(results.get("budget")),
        _resumed(results.get("resumed")),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def write_markdown(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write the summary to ``path`` (parent folders are created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_markdown(results), encoding="utf-8")
    return target


def _title(results: Mapping[str, Any]) -> str:
    dataset, model = _map(results.get("dataset")), _map(results.get("model"))
    train = _map(dataset.get("train"))
    parts = []
    if isinstance(train.get("source"), str):
        parts.append(_md(Path(train["source"]).name))
    if isinstance(model.get("id"), str):
        parts.append(_md(model["id"]))
    title = "# bertwise report" + (": " + " with ".join(parts) if parts else "")
    facts = []
    test = _map(dataset.get("test"))
    if as_number(train.get("rows")) is not None and as_number(test.get("rows")) is not None:
        facts.append(f"{_int(train['rows'])} train / {_int(test['rows'])} test texts")
    classes = _seq(dataset.get("classes"))
    if classes:
        facts.append(f"{len(classes)} classes")
    lines = [title]
    if facts:
        lines.append("\n\n" + ", ".join(facts) + ".")
    return "".join(lines)


def _recommendation(recommendation: Any) -> str:
    recommendation = _map(recommendation)
    chosen = recommendation.get("strategy")
    lines = ["## Recommendation", ""]
    if not isinstance(chosen, str) or not chosen:
        lines.append("**None.**")
    else:
        extra = []
        if isinstance(recommendation.get("runner_up"), str):
            extra.append(f"runner-up: {_md(recommendation['runner_up'])}")
        if isinstance(recommendation.get("priority"), str):
            extra.append(f"priority: {_md(recommendation['priority'])}")
        lines.append(f"**{_md(chosen)}**" + (f" ({'; '.join(extra)})" if extra else ""))
    reasons = _bullets(recommendation.get("reasons"))
    if reasons:
        lines += ["", *reasons]
    changes = _bullets(recommendation.get("would_change"))
    if changes:
        lines += ["", "What would change it:", "", *changes]
    return "\n".join(lines)


def _strategies(strategies: Any, confidence: str) -> str:
    entries = [entry for entry in _seq(strategies) if isinstance(entry, Mapping)]
    if not entries:
        return "## Strategies\n\nNo strategy results."
    rows = [
        f"| strategy | macro-F1 [{confidence} interval] | accuracy [{confidence} interval] | fit time |",
        "|---|--:|--:|--:|",
    ]
    for entry in entries:
        name = _md(entry.get("name", "?"))
        if entry.get("status") != "ok":
            rows.append(f"| {name} | failed: {_md(entry.get('error') or 'no reason given')} | | |")
            continue
        metrics, intervals = _map(entry.get("metrics")), _map(entry.get("metrics_interval"))
        cost = _map(entry.get("cost"))
        rows.append(
            f"| {name} | {_scored(metrics.get('macro_f1'), intervals.get('macro_f1'))} "
            f"| {_scored(metrics.get('accuracy'), intervals.get('accuracy'))} | {_duration(cost.get('fit_seconds'))} |"
        )
    return "## Strategies\n\nScores in points (0-100).\n\n" + "\n".join(rows)


def _paired(paired: Any, confidence: str) -> str:
    entries = [entry for entry in _seq(paired) if isinstance(entry, Mapping)]
    if not entries:
        return ""
    rows = [
        f"| comparison | metric | difference (points) [{confidence} interval] | p | significant |",
        "|---|---|--:|--:|---|",
    ]
    for entry in entries:
        difference = as_number(entry.get("difference"))
        shown = "–" if difference is None else f"{difference * 100:+.1f}"
        interval = as_interval(entry.get("interval"))
        if interval is not None:
            shown += f" [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]"
        significant = entry.get("significant")
        metric = _METRIC_NAMES.get(str(entry.get("metric")), entry.get("metric"))
        rows.append(
            f"| {_md(entry.get('a'))} − {_md(entry.get('b'))} | {_md(metric)} | {shown} "
            f"| {_p_value(entry.get('p_value'))} "
            f"| {'yes' if significant is True else 'no' if significant is False else '–'} |"
        )
    methods = sorted({str(entry["method"]) for entry in entries if isinstance(entry.get("method"), str)})
    note = f"\n\nMethod: {_md('; '.join(methods))}." if methods else ""
    return "## Paired differences\n\n" + "\n".join(rows) + note


def _learning_curve(curve: Any) -> str:
    curve = _map(curve)
    strategies = {
        str(name): {
            size: point
            for point in _seq(points)
            if isinstance(point, Mapping) and (size := as_number(point.get("per_class"))) is not None
        }
        for name, points in _map(curve.get("strategies")).items()
    }
    strategies = {name: points for name, points in strategies.items() if points}
    if not strategies:
        return ""
    extrapolated = {
        name: {
            size: point
            for point in _seq(_map(fit).get("extrapolation"))
            if isinstance(point, Mapping) and (size := as_number(point.get("per_class"))) is not None
        }
        for name, fit in _map(curve.get("fit")).items()
        if name in strategies
    }
    measured = sorted({size for points in strategies.values() for size in points})
    guessed = sorted({size for points in extrapolated.values() for size in points} - set(measured))
    names = list(strategies)
    rows = [
        "| examples per class | " + " | ".join(_md(name) for name in names) + " |",
        "|---|" + "--:|" * len(names),
    ]
    for size in measured + guessed:
        is_guess = size in guessed
        cells = []
        for name in names:
            point = (extrapolated.get(name, {}) if is_guess else strategies[name]).get(size)
            cells.append("–" if point is None else _scored(point.get("macro_f1"), point.get("interval")))
        rows.append(f"| {size:g}{' (extrapolated)' if is_guess else ''} | " + " | ".join(cells) + " |")
    lines = ["## Learning curve", "", "Macro-F1 in points [interval] by labeled examples per class.", "", *rows]
    references = [
        f"{_md(name)} (no training): {_scored(entry.get('macro_f1'), entry.get('interval'))}"
        for name, entry in _map(curve.get("reference")).items()
        if isinstance(entry, Mapping) and as_number(entry.get("macro_f1")) is not None
    ]
    if references:
        lines += ["", "Reference: " + "; ".join(references) + "."]
    if guessed:
        lines += [
            "",
            "Extrapolated rows come from a fitted curve, beyond the measured sizes: a trend, not a measurement.",
        ]
    crossover = _map(curve.get("crossover"))
    if isinstance(crossover.get("text"), str) and crossover["text"]:
        status = f" ({_md(crossover['status'])})" if isinstance(crossover.get("status"), str) else ""
        lines += ["", f"Crossover{status}: {_md(crossover['text'])}"]
    return "\n".join(lines)


def _diagnostics(diagnostics: Any) -> str:
    diagnostics = _map(diagnostics)
    lines = []
    tokenizer = _map(diagnostics.get("tokenizer"))
    user, reference = _map(tokenizer.get("user")), _map(tokenizer.get("reference"))
    user_ppw, reference_ppw = as_number(user.get("pieces_per_word")), as_number(reference.get("pieces_per_word"))
    if user_ppw is not None:
        line = f"- Tokenizer: {user_ppw:.2f} pieces per word on your texts"
        if reference_ppw is not None:
            name = _md(reference["name"]) if isinstance(reference.get("name"), str) else "the reference"
            line += f" vs {reference_ppw:.2f} on {name}"
        ratio = as_number(tokenizer.get("pieces_per_word_ratio"))
        if ratio is not None:
            line += f" ({ratio:.2f}×)"
        lines.append(line + ".")
    words = [
        f"{_md(entry.get('word'))} ({' '.join(_md(piece) for piece in _seq(entry.get('pieces')))})"
        for entry in _seq(tokenizer.get("most_fragmented"))
        if isinstance(entry, Mapping)
    ]
    if words:
        lines.append("- Most fragmented words: " + ", ".join(words) + ".")
    gap = as_number(diagnostics.get("zero_shot_gap_points"))
    if gap is not None:
        lines.append(f"- Zero-shot gap: best trained strategy {gap:+.1f} macro-F1 points against zero-shot.")
    lines += _bullets(diagnostics.get("summary"))
    return "## Diagnostics\n\n" + "\n".join(lines) if lines else ""


def _protocol(protocol: Any, confidence: str, tested_on: str | None) -> str:
    protocol = _map(protocol)
    if not protocol:
        return f"**Test set**: {_md(tested_on)}." if tested_on else ""
    scheme = _md(protocol.get("scheme", "unknown"))
    folds = as_number(protocol.get("folds"))
    if folds is not None:
        scheme += f" ({folds:g} folds)"
    parts = [f"**Protocol**: {scheme}"]
    seeds = _seq(protocol.get("seeds"))
    if seeds:
        parts.append("seeds " + ", ".join(_md(seed) for seed in seeds))
    if as_number(protocol.get("test_rows")) is not None:
        parts.append(f"{_int(protocol['test_rows'])} test rows")
    if tested_on:
        parts.append(f"test set: {_md(tested_on)}")
    line = ", ".join(parts)
    if isinstance(protocol.get("why"), str):
        line += f" ({_md(protocol['why'])})"
    line += "."
    if isinstance(protocol.get("interval"), str):
        line += f" Intervals ({confidence}): {_md(protocol['interval'])}."
    return line


def _budget(budget: Any) -> str:
    budget = _map(budget)
    if not budget:
        return ""
    limit = as_number(budget.get("limit_seconds"))
    line = "**Budget**: " + ("no limit" if limit is None else f"limit {_duration(limit)}")
    if as_number(budget.get("estimated_seconds")) is not None:
        line += f", estimated {_duration(budget['estimated_seconds'])}"
        if as_number(budget.get("estimated_seconds_uncut")) not in (None, as_number(budget["estimated_seconds"])):
            line += f" ({_duration(budget['estimated_seconds_uncut'])} without cuts)"
    cuts = _bullets(budget.get("cuts"))
    return line + (".\n\nCuts to fit the budget:\n\n" + "\n".join(cuts) if cuts else "; nothing was cut.")


def _resumed(resumed: Any) -> str:
    stages = [str(stage) for stage in _seq(resumed) if stage]
    if not stages:
        return ""
    return f"**Resumed**: {_md(', '.join(stages))}: {_md(RESUMED_NOTE)}."


# -- helpers -------------------------------------------------------------------------------------------------------


def _md(value: Any, line_start: bool = False) -> str:
    text = _SPECIAL.sub(r"\\\1", " ".join(str("" if value is None else value).split()))
    return _LEADING.sub(r"\\\1", text) if line_start else text


def _bullets(values: Any) -> list[str]:
    return [f"- {_md(value, line_start=True)}" for value in _seq(values) if value not in (None, "")]


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else []


def _confidence(results: Mapping[str, Any]) -> str:
    confidence = as_number(_map(results.get("protocol")).get("confidence"))
    return f"{(confidence if confidence is not None else 0.95) * 100:g} %"


def _scored(value: Any, interval: Any) -> str:
    number = as_number(value)
    if number is None:
        return "–"
    bounds = as_interval(interval)
    return f"{number * 100:.1f}" + (f" [{bounds[0] * 100:.1f}, {bounds[1] * 100:.1f}]" if bounds else "")


def _int(value: Any) -> str:
    number = as_number(value)
    return "–" if number is None else f"{number:,.0f}"


def _duration(value: Any) -> str:
    seconds = as_number(value)
    return "–" if seconds is None else duration(seconds)


def _p_value(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return "–"
    return "< 0.001" if number < 0.001 else f"{number:.3f}"
