"""The Markdown summary: every variant renders, numbers are in points, user text cannot become markup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bertwise.report.markdown import render_markdown, write_markdown
from tests.report.conftest import VARIANTS, full_results, hostile_labels

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def tables(text: str) -> list[list[str]]:
    """Each Markdown table in the text as its list of lines."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def test_every_variant_renders(variant: tuple[str, dict[str, Any]]) -> None:
    name, results = variant
    text = render_markdown(results)
    assert text.startswith("# bertwise report")
    assert f"**{results['recommendation']['strategy']}**" in text, name
    # Every row of a table has as many cells as its header, whatever the user text held.
    for table in tables(text):
        widths = {len(UNESCAPED_PIPE.findall(line)) for line in table}
        assert len(widths) == 1, table


def test_full_summary_has_the_numbers() -> None:
    text = render_markdown(full_results())
    assert "**probe** (runner-up: finetune; priority: balanced)" in text
    assert "- probe fits in 3.2 s, 66x faster than finetune (212 s)" in text
    assert "| probe | 89.7 [85.7, 92.9] | 90.0 [86.5, 93.0] | 3.2 s |" in text
    assert "| probe − finetune | macro-F1 | +1.2 [-1.1, +3.5] | 0.310 | no |" in text
    assert "| 8 | 74.0 [65.0, 83.0] | 55.0 [46.0, 64.0] |" in text
    assert "| 80 (extrapolated) | 92.5 [89.0, 95.0] | – |" in text
    assert "a trend, not a measurement" in text
    assert "Crossover (extrapolated): if both trends hold" in text
    assert "1.31 pieces per word on your texts vs 1.12" in text
    assert "**Protocol**: fixed-test, seeds 0, 1, 2, 150 test rows" in text
    assert "- finetune seeds 3 -> 1 on the learning curve" in text
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Recommendation",
        "## Strategies",
        "## Paired differences",
        "## Learning curve",
        "## Diagnostics",
    ]


def test_user_text_cannot_become_markup() -> None:
    text = render_markdown(hostile_labels())
    assert re.findall(r"(?<!\\)<[A-Za-z/]", text) == []
    assert r"\<script>alert(1)\</script>" in text


def test_a_pipe_in_an_error_keeps_the_table_shape() -> None:
    results = VARIANTS["failed-finetune"]()
    results["strategies"][2]["error"] = "shape mismatch | got [3] | expected [4]"
    text = render_markdown(results)
    assert r"shape mismatch \| got \[3\] \| expected \[4\]" in text


def test_missing_parts_are_left_out() -> None:
    alone = render_markdown(VARIANTS["zero-shot-only"]())
    assert "## Paired differences" not in alone and "## Learning curve" not in alone
    assert "**Budget**: no limit, estimated 1.2 s; nothing was cut." in alone
    assert "## Learning curve" not in render_markdown(VARIANTS["no-learning-curve"]())
    failed = render_markdown(VARIANTS["failed-finetune"]())
    assert "| finetune | failed: CUDA out of memory" in failed


@pytest.mark.parametrize("results", [{}, {"strategies": "x", "learning_curve": [], "budget": None}])
def test_partial_results_do_not_crash(results: dict[str, Any]) -> None:
    text = render_markdown(results)
    assert "## Recommendation" in text and "**None.**" in text


def test_write_markdown_creates_the_folder(tmp_path: Path) -> None:
    results = full_results()
    path = write_markdown(results, tmp_path / "nested" / "summary.md")
    assert path.read_text(encoding="utf-8") == render_markdown(results)


def test_resumed_stages_are_named_only_when_there_are_some() -> None:
    results = full_results()
    assert "Resumed" not in render_markdown({**results, "resumed": []})
    text = render_markdown({**results, "resumed": ["calibration", "probe"]})
    assert "**Resumed**: calibration, probe: reused from the run cache" in text


def test_the_other_pairs_crossings_are_listed_under_the_crossover() -> None:
    results = full_results()
    results["learning_curve"]["crossovers"] = [
        {"status": "observed", "from_first_point": False, "text": "fine-tuning overtakes SetFit at about 30 (measured)"}
    ]
    text = render_markdown(results)
    assert "Other crossings:\n\n- fine-tuning overtakes SetFit at about 30 (measured)" in text
    assert "Other crossings" not in render_markdown(full_results())
