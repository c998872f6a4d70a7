"""The comparison as one self-contained HTML page: inline CSS and SVG, no scripts, no network; formats, never computes.

It reads a results.json (schema version 2) dict through the report view (:mod:`bertwise.report.view`). Any part may
be missing or partial (a failed strategy, no learning curve, zero-shot alone): a section then says so in a line
instead of failing. The sections are in :mod:`bertwise.report.html_summary` and :mod:`bertwise.report.html_analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bertwise.report import html_analysis, html_summary
from bertwise.report.format import confidence_label
from bertwise.report.html_markup import CSS, escape
from bertwise.report.view import build_view


def render_html(results: Mapping[str, Any]) -> str:
    """The whole report page for one results dict, as a string."""
    view = build_view(results)
    confidence = confidence_label(view.confidence)
    parts = [
        html_summary.header(view),
        html_summary.recommendation(view),
        html_summary.results_table(view, confidence),
        html_summary.skipped(view),
        html_summary.paired(view.paired, confidence),
        html_analysis.learning_curve(view.curve, confidence),
        html_summary.score_cost(view),
        html_analysis.diagnostics(view.diagnostics),
        html_analysis.per_class(view),
        html_analysis.confusions(view),
        html_analysis.protocol_budget(view.protocol, view.budget),
        html_summary.resumed(view.resumed),
        html_summary.machine_config(view),
        html_summary.footer(view),
    ]
    title = "bertwise report"
    dataset = (view.dataset.train.file_name if view.dataset.train else None) or ""
    model = (view.model.id if view.model else None) or ""
    if dataset or model:
        title += ": " + " with ".join(part for part in (dataset, model) if part)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in parts if part)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_html(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report page to ``path`` (parent folders are created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(results), encoding="utf-8")
    return target
