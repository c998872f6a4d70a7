"""The HTML report's stylesheet and the small pieces of markup its sections share; values are escaped here.

Everything that came from the user's data or from free text in the results (labels, words, reasons, errors, file
names) goes through :func:`escape`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

from bertwise.report.format import interval_text
from bertwise.report.plots import strategy_color

CSS = """
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


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def list_items(values: Iterable[str]) -> str:
    return "".join(f"<li>{escape(value)}</li>" for value in values)


def swatch(name: str) -> str:
    # The colour comes from a fixed palette, never from the data, so it is safe in a style attribute.
    return f'<span class="swatch" style="background: {strategy_color(name)}"></span>'


def ci(interval: tuple[float, float] | None, inline: bool = False) -> str:
    """An interval under (or beside) its score."""
    if interval is None:
        return ""
    return f'<span class="ci{" inline" if inline else ""}">{interval_text(interval)}</span>'


def facts(items: Sequence[tuple[str, str]], ident: str) -> str:
    """A definition list; keys and values arrive already escaped (some values hold markup such as lists)."""
    entries = "".join(f"<dt>{key}</dt><dd>{value}</dd>" for key, value in items)
    return f'<dl class="facts" id="{ident}">{entries}</dl>'


def fact_value(value: Any) -> str:
    """A recorded setting as text: strings as they are, anything else as JSON, null as "none"."""
    if value is None:
        return '<span class="note">none</span>'
    if isinstance(value, str):
        return escape(value)
    return escape(json.dumps(value, ensure_ascii=False, default=str))
