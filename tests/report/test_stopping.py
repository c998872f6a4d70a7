"""What the protocol skipped, and why (issue 14): read from results.json's stopping records and shown the same way in
the HTML page, the Markdown summary and the terminal; a file without the records renders as it did."""

from __future__ import annotations

import copy
import html
import io
from typing import Any

import pytest
from rich.console import Console

from bertwise.report.html import render_html
from bertwise.report.markdown import render_markdown
from bertwise.report.stopping import NOTHING_SKIPPED, SECTION_TITLE
from bertwise.report.table import print_comparison
from bertwise.report.view import build_view
from tests.report.conftest import BUDGET_SKIP, CURVE_STOP, FINETUNE_STOP, full_results, sequential_stopped

PROTOCOL_LINE = (
    "sequential: work on a strategy stopped once it could not change the recommendation at the 5 % error rate shared "
    "among 6 looks"
)
TRAINING_STOP = "finetune: training stopped at step 40: validation macro-F1 trails the probe by 20 points"


def terminal(results: Any) -> str:
    buffer = io.StringIO()
    print_comparison(results, Console(file=buffer, width=400, color_system=None))
    return buffer.getvalue()


def markdown_text(markdown: str) -> str:
    """The summary with Markdown's backslash escapes taken out, as a reader sees it."""
    return markdown.replace("\\", "")


def test_the_view_reads_every_stopping_key() -> None:
    view = build_view(sequential_stopped())
    stopping = view.stopping
    assert stopping is not None and stopping.recorded
    assert stopping.protocol == "sequential" and stopping.error_rate == pytest.approx(0.05)
    assert stopping.tolerance_points == 1.0 and stopping.looks_planned == 6
    assert stopping.confidence_per_look == pytest.approx(0.991667) and stopping.rule is not None
    assert stopping.stopped == (FINETUNE_STOP, CURVE_STOP, TRAINING_STOP)
    assert stopping.skipped_for_budget == (BUDGET_SKIP,)
    assert stopping.seconds_to_recommendation == 110.0
    zero_shot, probe, finetune = view.strategies
    assert finetune.stopping is not None and finetune.stopping.planned_runs == 3 and finetune.stopping.runs == 1
    assert finetune.stopping.stopped_after == "seed 1 of 3" and finetune.stopping.skipped == "seeds 2 and 3"
    assert finetune.stopping.looks[0]["decision"] == "behind" and finetune.stopping.stopped_at_step == 40
    assert finetune.runs_out_of_planned == "1 of 3 runs"
    assert zero_shot.runs_out_of_planned is None and probe.runs_out_of_planned is None  # every planned run ran
    assert view.curve is not None and view.curve.stopping is not None
    assert view.curve.stopping.stopped == (CURVE_STOP,) and view.curve.stopping.skipped_for_budget == (BUDGET_SKIP,)
    assert view.time_to_recommendation == "110 s to the recommendation, of 3.0 min in all"


def test_the_whole_runs_time_is_read_where_recorded_rather_than_the_budgets_measured_parts() -> None:
    # A domain adaptation, loading and calibration are no strategy's part: only the recorded total has them.
    results = sequential_stopped()
    results["stopping"]["seconds_in_all"] = 400.0
    assert build_view(results).time_to_recommendation == "110 s to the recommendation, of 6.7 min in all"


def test_the_html_page_says_what_was_skipped_and_why() -> None:
    page = render_html(sequential_stopped())
    section = page[page.index('id="skipped"') : page.index('id="paired"')]
    assert html.escape(SECTION_TITLE) in section and html.escape(PROTOCOL_LINE) in section
    for line in (FINETUNE_STOP, CURVE_STOP, TRAINING_STOP, BUDGET_SKIP):
        assert f"<li>{html.escape(line)}</li>" in section
    assert "110 s to the recommendation, of 3.0 min in all" in section
    assert NOTHING_SKIPPED not in section
    finetune_row = next(row for row in page.split("<tr") if "finetune</td>" in row and 'class="num"' in row)
    assert '<td class="num">1 of 3 runs</td>' in finetune_row


def test_the_summary_says_what_was_skipped_and_why() -> None:
    text = markdown_text(render_markdown(sequential_stopped()))
    assert f"## {SECTION_TITLE}" in text
    assert f"**Protocol**: {PROTOCOL_LINE} (each look at 99.17 % confidence)." in text
    for line in (FINETUNE_STOP, CURVE_STOP, TRAINING_STOP, BUDGET_SKIP):
        assert f"- {line}" in text
    assert "| finetune (1 of 3 runs) |" in text and "| probe |" in text
    assert "Time: 110 s to the recommendation, of 3.0 min in all." in text
    # The section comes after the strategies table and before the paired differences.
    assert text.index("## Strategies") < text.index(SECTION_TITLE) < text.index("## Paired differences")


def test_the_terminal_prints_the_stops_after_the_recommendation_s_reasons() -> None:
    lines = terminal(sequential_stopped()).splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("recommendation"))
    after = lines[start:]
    assert f"  stopped: {FINETUNE_STOP}" in after and f"  stopped: {CURVE_STOP}" in after
    assert f"  stopped: {TRAINING_STOP}" in after and f"  skipped for the budget: {BUDGET_SKIP}" in after
    assert after.index(f"  stopped: {FINETUNE_STOP}") > max(
        index for index, line in enumerate(after) if line.startswith("  would change:")
    )
    assert "  time: 110 s to the recommendation, of 3.0 min in all" in after
    assert any("finetune" in line and " 1 of 3 " in line for line in lines)  # the table's runs column


def test_a_file_without_the_records_renders_as_before() -> None:
    results = full_results()
    assert build_view(results).stopping is None
    assert 'id="skipped"' not in render_html(results)
    assert SECTION_TITLE not in render_markdown(results) and "of 3 runs" not in render_markdown(results)
    printed = terminal(results)
    assert "stopped:" not in printed and "skipped for the budget" not in printed and "time:" not in printed


def test_a_sequential_run_that_skipped_nothing_says_so_in_one_line() -> None:
    results = sequential_stopped()
    results["stopping"].update(stopped=[], skipped_for_budget=[])
    for entry in results["strategies"]:
        entry.pop("stopping")
        entry["details"] = {}
    results["learning_curve"].pop("stopping")
    summary = markdown_text(render_markdown(results))
    assert NOTHING_SKIPPED in summary and "Stopped early" not in summary
    assert html.escape(NOTHING_SKIPPED) in render_html(results)
    assert "  sequential protocol: nothing was skipped" in terminal(results).splitlines()


def test_the_full_protocol_states_itself_and_claims_nothing_about_skips() -> None:
    results = full_results()
    results["config"]["protocol"] = "full"
    results["stopping"] = {
        "protocol": "full",
        "tolerance_points": 1.0,
        "error_rate": 0.05,
        "looks_planned": 0,
        "confidence_per_look": 0.95,
        "rule": "every planned run",
        "stopped": [],
        "skipped_for_budget": [],
        "seconds_to_recommendation": 665.0,
    }
    summary = markdown_text(render_markdown(results))
    assert "**Protocol**: full: every planned run." in summary and NOTHING_SKIPPED not in summary
    assert "sequential protocol: nothing was skipped" not in terminal(results)


def test_without_the_top_level_record_the_parts_stops_are_gathered_once() -> None:
    results = sequential_stopped()
    del results["stopping"]
    stopping = build_view(results).stopping
    assert stopping is not None and not stopping.recorded and stopping.protocol == "sequential"  # config.protocol
    assert stopping.stopped == (FINETUNE_STOP, CURVE_STOP, TRAINING_STOP)
    assert stopping.skipped_for_budget == (BUDGET_SKIP,) and not stopping.nothing_skipped


def test_a_training_stop_already_in_a_recorded_text_is_not_repeated() -> None:
    results = sequential_stopped()
    why = results["strategies"][2]["details"]["stopped_by"]
    results["stopping"]["stopped"] = [f"fine-tuning seed 1 stopped at step 40 of 80: {why}"]
    stopping = build_view(results).stopping
    assert stopping is not None and len(stopping.stopped) == 1


@pytest.mark.parametrize(
    "broken",
    [
        {"stopping": "x"},
        {"stopping": {"stopped": "text", "looks_planned": "six", "error_rate": None}},
        {"strategies": [{"name": "probe", "status": "ok", "stopping": {"runs": "1", "planned_runs": None}}]},
        {"learning_curve": {"stopping": {"stopped": ["not a mapping", {"text": None}], "skipped_for_budget": 3}}},
    ],
)
def test_malformed_records_do_not_crash(broken: dict[str, Any]) -> None:
    results = copy.deepcopy(broken)
    assert render_html(results).startswith("<!DOCTYPE html>")
    assert render_markdown(results).startswith("# bertwise report")
    assert "bertwise compare" in terminal(results)
