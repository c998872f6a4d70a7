"""The report view: one lenient reading of results.json that the terminal table, Markdown and HTML all render."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from bertwise.report.format import confidence_label, metric_heading, metric_phrase, p_value, scored
from bertwise.report.markdown import render_markdown
from bertwise.report.plots import strategy_color
from bertwise.report.table import print_comparison
from bertwise.report.view import Score, build_view, curve_sizes
from bertwise.strategies.registry import strategy_names
from tests.report.conftest import VARIANTS, full_results


def terminal(results: Any) -> str:
    buffer = io.StringIO()
    print_comparison(results, Console(file=buffer, width=160, color_system=None))
    return buffer.getvalue()


def test_the_view_reads_scores_intervals_costs_and_the_choice() -> None:
    view = build_view(full_results())
    assert [strategy.name for strategy in view.strategies] == ["zero-shot", "probe", "finetune"]
    probe = view.strategies[1]
    assert probe.ok and probe.runs == 3
    assert probe.score("macro_f1").value == pytest.approx(0.897)
    assert probe.score("macro_f1").interval is not None
    assert probe.fit_seconds == pytest.approx(3.2)
    assert view.chosen == "probe" and view.recommendation is not None
    assert view.recommendation.runner_up == "finetune"
    assert view.confidence == pytest.approx(0.95)
    assert view.curve is not None and view.curve.crossover is not None


@pytest.mark.parametrize("broken", [None, [], "text", {"strategies": "x", "paired": 3, "learning_curve": [1]}])
def test_a_malformed_results_dict_reads_as_missing_parts(broken: Any) -> None:
    view = build_view(broken)
    assert view.strategies == () and view.paired == () and view.curve is None and view.chosen is None
    assert view.protocol is None and view.budget is None and view.dataset.train is None


def test_a_failed_strategy_keeps_its_error_and_has_no_scores() -> None:
    failed = next(s for s in build_view(VARIANTS["failed-finetune"]()).strategies if s.name == "finetune")
    assert not failed.ok
    assert failed.error.startswith("CUDA out of memory")
    assert failed.score("macro_f1") == Score(None, None)


def test_curve_rows_are_measured_sizes_then_extrapolated_ones_beyond_them() -> None:
    curve = build_view(full_results()).curve
    assert curve is not None
    measured, guessed = curve_sizes(curve.columns)
    assert measured == sorted(measured) and guessed == sorted(guessed)
    assert guessed and min(guessed) > max(measured)


def test_shared_formatting_says_what_is_missing_the_same_way() -> None:
    assert scored(None, (0.1, 0.2)) == "–"
    assert scored(0.877, (0.81, 0.9)) == "87.7 [81.0, 90.0]"
    assert p_value(0.0001) == "< 0.001" and p_value("x") == "–"
    assert confidence_label(None) == "95 %" and confidence_label(0.9) == "90 %"
    assert metric_heading("macro_f1") == "Macro-F1" and metric_phrase("macro_f1") == "macro-F1"
    assert metric_heading("other") == "other" and metric_phrase(None) == ""


def test_the_terminal_table_renders_a_results_dict() -> None:
    text = terminal(full_results())
    assert "probe *" in text and "89.7" in text
    assert "recommendation (--priority balanced): probe, runner-up finetune" in text
    assert "learning curve: " in text


def test_the_terminal_table_marks_a_failed_strategy_and_survives_missing_parts() -> None:
    text = terminal(VARIANTS["failed-finetune"]())
    assert any("finetune" in line and "failed" in line for line in text.splitlines())
    assert "bertwise compare" in terminal({})


def test_the_terminal_table_and_the_summary_agree_on_the_scores() -> None:
    results = full_results()
    summary = render_markdown(results)
    for strategy in build_view(results).strategies:
        shown = f"{strategy.score('macro_f1').value * 100:.1f}"  # type: ignore[operator]
        assert shown in terminal(results) and shown in summary


def test_colours_follow_the_registry_order_and_stay_stable_for_unknown_names() -> None:
    colors = [strategy_color(name) for name in strategy_names()]
    assert len(set(colors)) == len(colors)
    assert strategy_color("not-a-strategy") == strategy_color("not-a-strategy")


def test_the_other_pairs_crossings_are_read_when_a_lead_changed_hands_or_may_yet() -> None:
    results = full_results()
    results["learning_curve"]["crossovers"] = [
        {"status": "observed", "from_first_point": False, "text": "fine-tuning overtakes SetFit at about 30"},
        {"status": "observed", "from_first_point": True, "text": "SetFit scores above the probe from the first"},
        {"status": "extrapolated", "from_first_point": False, "text": "the probe would overtake SetFit at 900"},
        {"status": "none", "from_first_point": False, "text": "the fitted curves do not cross"},
        "not a crossing",
    ]
    curve = build_view(results).curve
    assert curve is not None
    assert curve.crossings == ("fine-tuning overtakes SetFit at about 30", "the probe would overtake SetFit at 900")
    assert build_view(full_results()).curve.crossings == ()  # type: ignore[union-attr]
