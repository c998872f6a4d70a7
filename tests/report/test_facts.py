"""The configuration the reports show says how the test set was made: test_size only for a hold-out, else the file."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bertwise.report.facts import describe_test_set, shown_config
from bertwise.report.html import render_html
from bertwise.report.markdown import render_markdown
from tests.report.conftest import full_results


def with_test(origin: str | None, **config: Any) -> dict[str, Any]:
    """The full results on a test set of this origin, with the settings a real CompareConfig records."""
    results = full_results()
    results["config"].update({"test_size": 0.2, "folds": 5, "cross_validation_below": 5000, **config})
    results["dataset"]["test"]["source"] = "data/test.csv" if origin == "file" else "data/all.csv"
    if origin is None:
        del results["dataset"]["test"]["origin"]
    else:
        results["dataset"]["test"]["origin"] = origin
    results["protocol"]["folds"] = 5 if origin == "cross-validation" else None
    return results


def config_panel(page: str) -> str:
    found = re.search(r'<dl[^>]*id="config-facts".*?</dl>', page, re.S)
    assert found, "no configuration panel"
    return found.group(0)


def test_a_test_file_shows_the_file_and_no_test_size() -> None:
    results = with_test("file")
    assert describe_test_set(results) == "the test file data/test.csv"
    assert "test_size" not in shown_config(results) and "folds" not in shown_config(results)
    panel = config_panel(render_html(results))
    assert "test_size" not in panel and "0.2" not in panel
    assert "the test file data/test.csv" in panel
    assert "test set: the test file data/test.csv" in render_markdown(results)


def test_a_hold_out_shows_its_size() -> None:
    results = with_test("held-out", test_size=0.25)
    assert describe_test_set(results) == "25 % of the data, held out (stratified)"
    panel = config_panel(render_html(results))
    assert "test_size" in panel and "0.25" in panel
    assert "25 % of the data, held out" in panel
    assert "test set: 25 % of the data, held out (stratified)" in render_markdown(results)


def test_cross_validation_shows_the_folds_and_no_test_size() -> None:
    results = with_test("cross-validation")
    assert describe_test_set(results) == "5-fold cross-validation: every row tested once"
    shown = shown_config(results)
    assert "test_size" not in shown and shown["folds"] == 5
    panel = config_panel(render_html(results))
    assert "test_size" not in panel
    assert "5-fold cross-validation" in render_markdown(results)


@pytest.mark.parametrize("origin", [None, "file"])
def test_results_that_do_not_say_keep_their_configuration_as_recorded(origin: str | None) -> None:
    results = with_test(origin)
    if origin is None:
        assert shown_config(results) == results["config"]
        assert describe_test_set(results) is None
    else:
        assert set(shown_config(results)) == set(results["config"]) - {
            "test_size",
            "folds",
            "cross_validation_below",
        } | {"test set"}
