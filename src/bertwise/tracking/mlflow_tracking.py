"""``MlflowTracking``: where a comparison or a trained model goes in MLflow, and the two ways of sending it there.

Tracking consumes what bertwise already saved (results.json and the reports; a model folder), after the work is
done: it decides none of the numbers (so it is no part of CompareConfig), and a store that cannot be reached costs
one line, never the results.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bertwise.exceptions import ConfigError
from bertwise.pipeline.tracked import Tracked
from bertwise.tracking import mlflow_store
from bertwise.tracking.records import comparison_runs

if TYPE_CHECKING:
    from bertwise.pipeline.results import Comparison

TRACKERS = ("mlflow",)
DEFAULT_EXPERIMENT = "bertwise"


@dataclass(frozen=True)
class MlflowTracking:
    """Log to MLflow: ``tracking_uri`` (None: $MLFLOW_TRACKING_URI, else mlflow's default, sqlite:///mlflow.db in the
    working folder) and the experiment's name (created when new).

    ``bertwise.compare(..., track=MlflowTracking(...))`` logs the comparison when it is done; ``log_model(folder)``
    logs a model folder (``bertwise train``'s) as an MLflow pyfunc model. Creating one checks that mlflow is
    installed, so a missing package is refused before any work starts.
    """

    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT

    def __post_init__(self) -> None:
        mlflow_store.require_mlflow()
        if not self.experiment.strip():
            raise ConfigError("the MLflow experiment name is empty; expected a name such as 'bertwise'")

    @property
    def uri(self) -> str:
        """The tracking URI the runs go to: ``tracking_uri``, else mlflow's default."""
        return mlflow_store.resolved_uri(self.tracking_uri)

    def unreachable(self) -> str | None:
        """Why the tracking server cannot be reached now (one line), or None: the CLI warns before long work."""
        return mlflow_store.unreachable(self.uri)

    def track_comparison(self, comparison: Comparison, folder: Path | None) -> Tracked:
        """Log the comparison saved in ``folder`` (:meth:`log_results`); without a folder, its results.json and
        reports are written to a temporary one first. Never raises."""
        if folder is not None:
            return self.log_results(folder)
        try:
            with tempfile.TemporaryDirectory(prefix="bertwise-track-") as scratch:
                comparison.save(scratch)
                return self.log_results(scratch, kept="the Comparison returned holds them")
        except Exception as error:  # the temporary folder could not be written
            return self._failed(error, "the Comparison returned holds the results")

    def log_results(self, folder: str | Path, *, kept: str | None = None) -> Tracked:
        """One parent run for the comparison whose results.json is in ``folder`` (results.json, report.html and
        summary.md as its artifacts) and a nested run per (backbone, strategy) result. Never raises: a failure is
        the returned :class:`Tracked`'s ``error``, and ``kept`` (default: the folder) says where the results are."""
        where = Path(folder)
        try:
            results = json.loads((where / "results.json").read_text(encoding="utf-8"))
            parent, children = comparison_runs(results)
            uri = self.uri
            mlflow_store.check_reachable(uri)
            run_id = mlflow_store.log_comparison(mlflow_store.client(uri), self.experiment, parent, children, where)
        except Exception as error:
            return self._failed(error, kept or f"the results are kept in {where}")
        return Tracked(
            message=f"mlflow: run {run_id} with {len(children)} nested strategy runs in experiment "
            f"'{self.experiment}' at {uri}",
            run_id=run_id,
        )

    def log_model(self, folder: str | Path) -> Tracked:
        """One run for the trained model folder at ``folder`` (its parameters and scores from the manifest) with the
        folder logged as an MLflow model with a pyfunc flavour: ``mlflow.pyfunc.load_model(uri).predict(df)``
        predicts the labels of ``df``'s "text" column as ``bertwise.load(folder).predict`` does. Never raises."""
        from bertwise.tracking.model_runs import log_model_folder

        try:
            uri = self.uri
            mlflow_store.check_reachable(uri)
            run_id, model_uri = log_model_folder(mlflow_store.client(uri), uri, self.experiment, Path(folder))
        except Exception as error:
            return self._failed(error, f"the model folder {folder} is kept")
        return Tracked(
            message=f"mlflow: run {run_id} in experiment '{self.experiment}' at {uri}; load the model with "
            f"mlflow.pyfunc.load_model('{model_uri}')",
            run_id=run_id,
            model_uri=model_uri,
        )

    def _failed(self, error: Exception, kept: str) -> Tracked:
        where = self.tracking_uri or "the default tracking URI"  # resolving it may be what failed
        reason = mlflow_store.one_line(error)
        return Tracked(message=f"MLflow tracking at {where} failed: {reason}; {kept}", error=reason)


def tracking_option(track: str | None, tracking_uri: str | None, experiment: str | None) -> MlflowTracking | None:
    """The CLI's ``--track``, ``--tracking-uri`` and ``--experiment`` as a tracker (None without ``--track``)."""
    if track is None:
        given = [name for name, value in (("--tracking-uri", tracking_uri), ("--experiment", experiment)) if value]
        if given:
            named = " and ".join(given)
            raise ConfigError(
                f"{named} {'needs' if len(given) == 1 else 'need'} --track mlflow; add it or drop {named}"
            )
        return None
    if track not in TRACKERS:
        raise ConfigError(f"--track must be one of {', '.join(TRACKERS)}; got {track!r}")
    return MlflowTracking(tracking_uri=tracking_uri, experiment=experiment or DEFAULT_EXPERIMENT)
