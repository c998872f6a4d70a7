"""examples/compare.ipynb runs top to bottom with the embedded model, and its outputs are the comparison's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.integration
def test_the_example_notebook_runs_and_shows_the_comparison(tmp_path: Path) -> None:
    # Run in a copy: the notebook writes its results beside itself.
    shutil.copy(EXAMPLES / "compare.ipynb", tmp_path)
    shutil.copytree(EXAMPLES / "banking77_sample", tmp_path / "banking77_sample")
    notebook = nbformat.read(tmp_path / "compare.ipynb", as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()

    outputs = [cell.get("outputs", []) for cell in notebook.cells if cell.cell_type == "code"]
    errors = [output for cell in outputs for output in cell if output.get("output_type") == "error"]
    assert errors == []
    results = json.loads((tmp_path / "notebook-results" / "results.json").read_text())
    chosen = results["recommendation"]["strategy"]
    shown = [output["data"] for cell in outputs for output in cell if "data" in output]
    fragments = [data["text/html"] for data in shown if "text/html" in data]
    assert any('class="bertwise-notebook"' in html and chosen in html for html in fragments)  # the comparison cell
    assert any("macro_f1_low" in html for html in fragments)  # the DataFrame cell
    assert (tmp_path / "notebook-results" / "model" / "manifest.json").is_file()
    last = shown[-1]["text/plain"]
    assert last.startswith("array(") and all(label in results["dataset"]["classes"] for label in array_labels(last))


def array_labels(text: str) -> list[str]:
    """The labels in numpy's repr of an array of strings: array(['a', 'b'], dtype=object)."""
    inside = text[text.index("[") + 1 : text.index("]")]
    return [part.strip().strip("'\"") for part in inside.split(",")]
