"""The comparison in a notebook: an HTML fragment (recommendation, results table, learning curve) and a DataFrame.

The fragment reuses the report page's sections but not its stylesheet, which styles the whole page (``body``,
``h2``, ``table``): inside a notebook that would restyle every other cell. Its own rules are scoped under one class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bertwise.report import html_analysis, html_summary
from bertwise.report.format import confidence_label
from bertwise.report.view import build_view

if TYPE_CHECKING:
    import pandas as pd

SCOPE = "bertwise-notebook"

_CSS = f"""
.{SCOPE} {{ font-size: 14px; line-height: 1.5; max-width: 1100px; }}
.{SCOPE} h2 {{ font-size: 17px; margin: 18px 0 6px; }}
.{SCOPE} h3 {{ font-size: 13px; margin: 10px 0 2px; font-weight: 600; opacity: 0.75; }}
.{SCOPE} .note, .{SCOPE} figcaption {{ opacity: 0.75; font-size: 13px; }}
.{SCOPE} .recommendation {{ padding: 10px 16px; border: 1px solid rgba(127, 127, 127, 0.3);
  border-left: 6px solid #1f77b4; border-radius: 6px; margin: 6px 0; }}
.{SCOPE} .recommendation .label {{ text-transform: uppercase; letter-spacing: 0.08em; font-size: 11px; margin: 0;
  opacity: 0.75; }}
.{SCOPE} .recommendation .choice {{ font-size: 22px; font-weight: 700; margin: 0 0 4px; }}
.{SCOPE} .recommendation .meta {{ font-size: 13px; opacity: 0.75; margin: 0; }}
.{SCOPE} .recommendation ul {{ margin: 2px 0; padding-left: 20px; }}
.{SCOPE} table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0; }}
.{SCOPE} th, .{SCOPE} td {{ padding: 4px 10px; text-align: left; vertical-align: top;
  border-bottom: 1px solid rgba(127, 127, 127, 0.25); }}
.{SCOPE} th.num, .{SCOPE} td.num {{ text-align: right; white-space: nowrap; }}
.{SCOPE} td .ci {{ display: block; font-size: 11px; opacity: 0.7; }}
.{SCOPE} td .ci.inline {{ display: inline; margin-left: 6px; }}
.{SCOPE} tr.chosen td:first-child {{ font-weight: 700; }}
.{SCOPE} tr.failed td {{ color: #9b1c1c; }}
.{SCOPE} .swatch {{ display: inline-block; width: 10px; height: 10px; border-radius: 3px; margin-right: 6px; }}
.{SCOPE} .badge {{ font-size: 11px; padding: 0 6px; border-radius: 8px; border: 1px solid rgba(127, 127, 127, 0.4);
  margin-left: 6px; }}
.{SCOPE} figure.plot {{ margin: 8px 0; }}
.{SCOPE} figure.plot svg {{ display: block; max-width: 720px; height: auto; }}
"""

# One row per strategy; the interval bounds sit beside their score, in points as the reports print them.
_METRICS = ("macro_f1", "accuracy")
_COSTS = ("fit_seconds", "predict_ms_per_text", "peak_memory_mb")


def render_notebook_html(results: Mapping[str, Any]) -> str:
    """The recommendation, the results table with intervals and the learning curve (inline SVG) of a results dict."""
    view = build_view(results)
    confidence = confidence_label(view.confidence)
    parts = [
        html_summary.recommendation(view),
        html_summary.results_table(view, confidence),
        html_summary.skipped(view),
        html_analysis.learning_curve(view.curve, confidence) if view.curve is not None else "",
    ]
    body = "\n".join(part for part in parts if part)
    return f'<div class="{SCOPE}">\n<style>{_CSS}</style>\n{body}\n</div>'


def results_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per strategy: status, runs, macro-F1 and accuracy (points) with interval bounds, costs, the choice."""
    import pandas as pd

    chosen = (results.get("recommendation") or {}).get("strategy")
    rows = [_frame_row(entry, chosen) for entry in results.get("strategies") or []]
    columns = ["strategy", "status", "recommended", "runs"]
    for metric in _METRICS:
        columns += [metric, f"{metric}_low", f"{metric}_high"]
    columns += list(_COSTS)
    return pd.DataFrame(rows, columns=columns).set_index("strategy")


def _frame_row(entry: Mapping[str, Any], chosen: str | None) -> dict[str, Any]:
    metrics = entry.get("metrics") or {}
    intervals = entry.get("metrics_interval") or {}
    cost = entry.get("cost") or {}
    row: dict[str, Any] = {
        "strategy": entry.get("name"),
        "status": entry.get("status"),
        "recommended": entry.get("name") == chosen,
        "runs": len(entry.get("runs") or []),
    }
    for metric in _METRICS:
        value, bounds = metrics.get(metric), intervals.get(metric)
        row[metric] = _points(value)
        row[f"{metric}_low"] = _points(bounds[0]) if bounds else None
        row[f"{metric}_high"] = _points(bounds[1]) if bounds else None
    for key in _COSTS:
        row[key] = cost.get(key)
    return row


def _points(value: Any) -> float | None:
    return None if value is None else round(100 * float(value), 2)
