"""The notebook views: the HTML fragment keeps its styles to itself and carries the choice, intervals and curve; the
DataFrame holds what results.json holds, in points."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bertwise.report.notebook import SCOPE, render_notebook_html, results_frame
from tests.report.conftest import VARIANTS, full_results, hostile_labels, no_learning_curve


def test_the_fragment_shows_the_choice_every_strategy_with_its_interval_and_the_curve() -> None:
    results = full_results()
    fragment = render_notebook_html(results)
    chosen = results["recommendation"]["strategy"]
    assert re.search(rf'<p class="choice">.*{re.escape(chosen)}</p>', fragment)
    for entry in results["strategies"]:
        assert entry["name"] in fragment
        low, high = (100 * bound for bound in entry["metrics_interval"]["macro_f1"])
        assert f"[{low:.1f}, {high:.1f}]" in fragment
    assert 'id="learning-curve"' in fragment and "<svg" in fragment


def test_the_fragment_styles_only_itself() -> None:
    fragment = render_notebook_html(full_results())
    assert fragment.startswith(f'<div class="{SCOPE}">') and fragment.endswith("</div>")
    style = re.search(r"<style>(.*?)</style>", fragment, re.S)
    assert style is not None
    selectors = [rule.split("{")[0] for rule in style.group(1).split("}") if "{" in rule]
    for selector_list in selectors:
        for selector in selector_list.split(","):
            assert selector.strip().startswith(f".{SCOPE}"), selector  # a bare `table` would restyle the notebook
    assert "<html" not in fragment and "<body" not in fragment


def test_no_learning_curve_means_no_empty_curve_section() -> None:
    fragment = render_notebook_html(no_learning_curve())
    assert "Learning curves" not in fragment and "Results on the test set" in fragment


def test_user_text_is_escaped() -> None:
    fragment = render_notebook_html(hostile_labels())
    assert "<script" not in fragment.lower()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_renders(name: str) -> None:
    assert render_notebook_html(VARIANTS[name]()).count(f'class="{SCOPE}"') == 1


def test_the_frame_has_a_row_per_strategy_in_points_with_interval_bounds() -> None:
    results = full_results()
    frame = results_frame(results)
    assert list(frame.index) == [entry["name"] for entry in results["strategies"]]
    chosen = results["recommendation"]["strategy"]
    assert frame["recommended"].sum() == 1 and bool(frame.loc[chosen, "recommended"])
    for entry in results["strategies"]:
        row = frame.loc[entry["name"]]
        assert row["macro_f1"] == pytest.approx(100 * entry["metrics"]["macro_f1"], abs=0.01)
        low, high = entry["metrics_interval"]["macro_f1"]
        assert (row["macro_f1_low"], row["macro_f1_high"]) == pytest.approx((100 * low, 100 * high), abs=0.01)
        assert row["fit_seconds"] == entry["cost"]["fit_seconds"]
        assert row["runs"] == len(entry["runs"])


def test_a_failed_strategy_is_a_row_without_scores() -> None:
    results: dict[str, Any] = VARIANTS["failed-finetune"]()
    frame = results_frame(results)
    assert frame.loc["finetune", "status"] != "ok"
    assert frame[["macro_f1", "macro_f1_low"]].loc["finetune"].isna().all()
