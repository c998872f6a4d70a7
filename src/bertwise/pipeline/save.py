"""The save stage: results.json, each finished strategy's test predictions, report.html and summary.md, each file
written whole or not at all (:mod:`bertwise.util.atomic`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bertwise.data.dataset import DataSplit
from bertwise.evaluation.records import write_predictions
from bertwise.evaluation.runner import StrategyResult
from bertwise.exceptions import ConfigError
from bertwise.report.html import render_html
from bertwise.report.markdown import render_markdown
from bertwise.util import atomic


class ResultsWriter:
    """Writes a comparison's files into a folder; results.json is rewritten after every stage, while each
    predictions file needs writing only once, so the writer remembers which it wrote."""

    def __init__(self, split: DataSplit) -> None:
        self.split = split
        self._written: set[tuple[str, str]] = set()  # (folder, strategy) predictions saved

    def save(
        self, out: str | Path, data: Mapping[str, Any], results: Sequence[StrategyResult], *, report: bool = True
    ) -> Path:
        """Write ``data`` (results.json's content), the finished ``results``' predictions and, with ``report``, the
        reports into ``out``; the path of results.json."""
        directory = Path(out)
        try:
            return self._write(directory, data, results, report=report)
        except OSError as err:
            # compare checked the folder before starting; this is a disk that filled up or changed since.
            where = f" ('{err.filename}')" if err.filename else ""
            raise ConfigError(
                f"cannot write the results to '{directory}': {err.strerror or err}{where}; the stages that finished "
                "are kept in the run cache (unless --no-cache): rerun with a writable --out to get them back"
            ) from None

    def _write(
        self, directory: Path, data: Mapping[str, Any], results: Sequence[StrategyResult], *, report: bool
    ) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        atomic.remove_leftovers(directory)  # the temporary files of a run killed while writing here
        for result in results:
            key = (str(directory.resolve()), result.name)
            if result.status == "ok" and key not in self._written:
                write_predictions(directory / f"predictions-{result.name}.csv", self.split, result)
                self._written.add(key)
        path = directory / "results.json"
        # Each file whole or not at all: a run killed while writing leaves the previous version.
        atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        if report:
            # Written after results.json, so a failure while drawing can never lose the numbers.
            atomic.write_text(directory / "report.html", render_html(data))
            atomic.write_text(directory / "summary.md", render_markdown(data))
        return path
