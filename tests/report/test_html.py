"""The HTML report: every variant renders, user text is escaped, nothing is fetched, the plots are there and a
browser draws the page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bertwise.report.html import render_html, write_html
from bertwise.report.plots import per_class_selection
from tests.report.conftest import VARIANTS, full_results, many_classes

Page = Callable[[str], str]

PLOT_IDS = (
    "learning-curve",
    "score-cost",
    "per-class-f1",
    "confusion-zero-shot",
    "confusion-probe",
    "confusion-finetune",
)


@pytest.fixture
def full_page(html_page: Page) -> str:
    return html_page("full")


def figure(page: str, ident: str) -> str | None:
    """The markup of one plot figure, or None when the page has no such figure."""
    match = re.search(rf'<figure class="plot[^"]*" id="{re.escape(ident)}">(.*?)</figure>', page, flags=re.DOTALL)
    return match.group(1) if match else None


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_renders_a_whole_page_with_nothing_external(name: str, html_page: Page) -> None:
    page = html_page(name)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == page.count("</svg>")
    assert 'id="recommendation"' in page and 'id="results-table"' in page
    recommended = VARIANTS[name]()["recommendation"]["strategy"]
    assert f"</span>{recommended}</p>" in page
    # Self-contained: no fetched resource of any kind, no scripts.
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", page, flags=re.IGNORECASE) == []
    assert re.findall(r"""url\(\s*["']?\s*(?:[a-z]+:)?//""", page, flags=re.IGNORECASE) == []
    assert "@import" not in page and "<link" not in page and "<script" not in page and "<iframe" not in page


def test_sections_come_in_the_documented_order(full_page: str) -> None:
    anchors = [
        "<h1",
        'id="recommendation"',
        'id="results"',
        'id="paired"',
        'id="learning"',
        'id="cost"',
        'id="diagnostics"',
        'id="per-class"',
        'id="confusion"',
        'id="protocol"',
        'id="machine"',
    ]
    positions = [full_page.index(anchor) for anchor in anchors]
    assert positions == sorted(positions)


def test_all_plots_are_inline_svg_figures(full_page: str) -> None:
    for ident in PLOT_IDS:
        markup = figure(full_page, ident)
        assert markup is not None, ident
        assert markup.lstrip().startswith("<svg"), ident
    # Inline SVG carries no XML prolog, doctype or matplotlib metadata.
    assert "<?xml" not in full_page and "<!DOCTYPE svg" not in full_page and "<metadata" not in full_page


def test_element_ids_are_unique_across_plots(full_page: str) -> None:
    ids = Counter(re.findall(r'\bid="([^"]+)"', full_page))
    assert [ident for ident, count in ids.items() if count > 1] == []
    # And every internal reference points at an element of the page.
    for reference in set(re.findall(r'(?:href="#|url\(#)([^")]+)', full_page)):
        assert reference in ids, reference


def test_numbers_are_in_points_with_intervals(full_page: str) -> None:
    table = full_page[
        full_page.index('id="results-table"') : full_page.index("</table>", full_page.index('id="results-table"'))
    ]
    assert "89.7" in table and "[85.7, 92.9]" in table  # probe macro-F1 0.897 [0.857, 0.929]
    assert "3.5 min" in table and "1.4 GB" in table  # finetune fit 212.4 s, 1430 MB
    assert "+1.2" in full_page and "[-1.1, +3.5]" in full_page  # the probe - finetune difference


def test_learning_curve_says_the_extrapolation_is_one(full_page: str) -> None:
    assert "extrapolation" in (figure(full_page, "learning-curve") or "")
    assert "are an extrapolation" in full_page
    assert "fine-tuning overtakes the probe at about 56 examples per class" in full_page
    assert '<span class="badge">extrapolated</span>' in full_page


def test_user_text_is_escaped(html_page: Page) -> None:
    page = html_page("hostile-labels")
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # the label, shown as typed in the plots
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # A label with two dollar signs would be mathtext to matplotlib; it must come out as typed.
    assert "costs $5 &amp; $10" in page


def test_missing_parts_give_a_note_instead_of_a_plot(html_page: Page) -> None:
    no_curve = html_page("no-learning-curve")
    assert figure(no_curve, "learning-curve") is None and "No learning curve in these results" in no_curve

    failed = html_page("failed-finetune")
    assert "failed: CUDA out of memory while training &lt;batch 16&gt; &amp; &#x27;adamw&#x27;" in failed
    assert figure(failed, "confusion-finetune") is None and figure(failed, "confusion-probe") is not None
    assert figure(failed, "learning-curve") is not None

    alone = html_page("zero-shot-only")
    assert figure(alone, "learning-curve") is None and figure(alone, "score-cost") is not None
    assert 'id="paired-table"' not in alone and "No paired comparison" in alone
    assert "<dt>Cuts</dt><dd>none</dd>" in alone


@pytest.mark.parametrize(
    "results",
    [
        {},
        {"schema_version": 2},
        {"schema_version": 1, "strategies": [{"name": "probe", "status": "failed"}]},
        {"strategies": "nonsense", "paired": None, "learning_curve": [], "diagnostics": 3, "budget": "x"},
        {
            "strategies": [
                {
                    "name": "probe",
                    "status": "ok",
                    "metrics": {"macro_f1": None},
                    "cost": {},
                    "confusion_matrix": {"labels": ["a", "b"], "matrix": [[1, 2]]},
                    "per_class": {"a": {}},
                }
            ],
            "learning_curve": {
                "strategies": {"probe": [{"per_class": 0, "macro_f1": 0.5}]},
                "fit": None,
                "crossover": {"status": "observed", "per_class": "x"},
            },
        },
    ],
)
def test_partial_or_malformed_results_do_not_crash(results: dict[str, Any]) -> None:
    page = render_html(results)
    assert page.startswith("<!DOCTYPE html>")
    if results.get("schema_version") != 2:
        assert "this report reads version 2" in page


def test_many_classes_stay_readable(html_page: Page) -> None:
    results = many_classes()
    page = html_page("77-classes")
    shown, caption = per_class_selection(results["strategies"], results["dataset"]["classes"])
    assert len(shown) == 40 and "40 of 77 classes" in caption
    assert "Showing the 40 of 77 classes with the largest F1 spread between strategies" in page
    # The per-class plot labels exactly the shown classes.
    bars = figure(page, "per-class-f1") or ""
    assert sum(f">{label}</text>" in bars for label in results["dataset"]["classes"]) == 40
    # No per-cell numbers above 30 classes: only the tick labels, title and colour bar are text.
    assert (figure(page, "confusion-probe") or "").count("<text") < 77 * 3
    assert (figure(html_page("full"), "confusion-probe") or "").count("<text") >= 10 * 10


def test_write_html_creates_the_folder(tmp_path: Path, html_page: Page) -> None:
    path = write_html(VARIANTS["zero-shot-only"](), str(tmp_path / "out" / "report.html"))
    assert path == tmp_path / "out" / "report.html"
    # Also checks that rendering is deterministic (fixed SVG hash salt, no timestamps).
    assert path.read_text(encoding="utf-8") == html_page("zero-shot-only")


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = (
        "import sys\nimport bertwise.report.html, bertwise.report.markdown, bertwise.report.plots\n"
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_the_page_renders_in_a_headless_browser(tmp_path: Path, full_page: str) -> None:
    chromium = browser()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is missing: .ci/run installs it with apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium); with CI set this test fails instead")
    import numpy as np
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(full_page, encoding="utf-8")
    shot = tmp_path / "report.png"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"

    image = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(np.int64)
    assert image.shape[0] == 1280 * 2400
    # Colours packed into one integer: np.unique on rows is many times slower.
    packed, counts = np.unique((image[:, 0] << 16) | (image[:, 1] << 8) | image[:, 2], return_counts=True)
    colors = np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], axis=1)
    assert 1 - counts.max() / image.shape[0] > 0.05, "the page is (almost) all background"
    assert len(colors) > 200, "too few colours for text, tables and plots"

    def near(color: tuple[int, int, int]) -> int:
        return int(counts[(np.abs(colors - np.array(color)) <= 12).all(axis=1)].sum())

    # The strategy colours show that the inline SVG plots were drawn, not just the text.
    assert near((0x1F, 0x77, 0xB4)) > 1000, "probe blue is missing"
    assert near((0xFF, 0x7F, 0x0E)) > 500, "finetune orange is missing"


def test_numpy_values_are_read_like_json_values() -> None:
    import numpy as np

    from bertwise.report.plots import confusion_matrix_svg, score_cost_svg

    probe = full_results()["strategies"][1]
    probe["confusion_matrix"]["matrix"] = np.array(probe["confusion_matrix"]["matrix"])
    probe["metrics"]["macro_f1"] = np.float64(0.897)
    probe["metrics_interval"]["macro_f1"] = np.array([0.857, 0.929])
    probe["cost"]["fit_seconds"] = np.float32(3.2)
    assert confusion_matrix_svg(probe).startswith("<svg")
    assert "89.7 pts, fit 3.2 s" in score_cost_svg([probe])


def test_resumed_stages_are_named_only_when_there_are_some() -> None:
    results = full_results()
    assert 'id="resumed"' not in render_html({**results, "resumed": []})
    page = render_html({**results, "resumed": ["calibration", "learning curve"]})
    assert "Resumed: calibration, learning curve: reused from the run cache" in page


def test_the_other_pairs_crossings_are_listed_escaped_under_the_crossover() -> None:
    from bertwise.report.html_analysis import learning_curve
    from bertwise.report.view import build_view

    results = full_results()
    results["learning_curve"]["crossovers"] = [
        {"status": "observed", "from_first_point": False, "text": "fine-tuning overtakes <SetFit> at about 30"}
    ]
    section = learning_curve(build_view(results).curve, "95%")
    assert "<strong>Other crossings:</strong>" in section
    assert "<ul><li>fine-tuning overtakes &lt;SetFit&gt; at about 30</li></ul>" in section
