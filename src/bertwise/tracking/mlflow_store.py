"""Writes :class:`~bertwise.tracking.records.RunRecord` runs into an MLflow tracking store through ``MlflowClient``,
which takes its tracking URI as an argument, so nothing of mlflow's process-wide state (tracking URI, active run,
active experiment) changes."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bertwise.exceptions import ConfigError
from bertwise.tracking.records import RunRecord

INSTALL_HINT = "pip install 'bertwise[mlflow]'"
# The files of a results folder that go with the comparison's run (the test predictions stay in the folder).
COMPARISON_ARTIFACTS = ("results.json", "report.html", "summary.md")
# MLflow's limits on one log_batch call and on a parameter's or tag's text (mlflow.utils.validation).
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_PARAM_LENGTH = 6000
_TAG_LENGTH = 8000
# How long to wait for a tracking server's first answer: mlflow's own client retries a refused connection for
# minutes (seven retries with backoff) before it gives up, which is too long to learn that a URI is wrong.
PROBE_SECONDS = 10.0


def require_mlflow() -> None:
    """Refuse, in one line and before any work, tracking without the mlflow package."""
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(f"tracking with MLflow needs the mlflow package: {INSTALL_HINT}")


def client(tracking_uri: str | None) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (None: mlflow's own default, $MLFLOW_TRACKING_URI or
    sqlite:///mlflow.db in the working folder)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def resolved_uri(tracking_uri: str | None) -> str:
    """The tracking URI runs go to, for messages: the given one, else mlflow's default."""
    import mlflow

    return tracking_uri if tracking_uri is not None else str(mlflow.get_tracking_uri())


def unreachable(tracking_uri: str) -> str | None:
    """Why the tracking server at an http(s) URI cannot be reached, in one line; None when it answers (whatever its
    answer: an error status is for mlflow's client to explain) or when the URI names no server (sqlite, a folder)."""
    from urllib.parse import urlparse

    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return None
    import requests

    try:
        requests.get(tracking_uri, timeout=PROBE_SECONDS)
    except requests.Timeout:
        return f"cannot reach the tracking server: no answer in {PROBE_SECONDS:.0f} s"
    except requests.RequestException as error:
        # requests wraps the socket's own words ("[Errno 111] Connection refused") in three layers of repr.
        found = re.search(r"\[Errno -?\d+\] ([^)\"'\]]+)", str(error))
        return f"cannot reach the tracking server: {found.group(1).strip() if found else one_line(error, 160)}"
    return None


def check_reachable(tracking_uri: str) -> None:
    """Raise, at once, when the tracking server cannot be reached (see :func:`unreachable`)."""
    reason = unreachable(tracking_uri)
    if reason is not None:
        raise ConnectionError(reason)


def experiment_id(mlflow_client: Any, name: str) -> str:
    """The id of experiment ``name``, created (with the store's default artifact location) when it is new."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise ConfigError(f"MLflow experiment {name!r} is deleted; restore it or choose another --experiment")
        return str(found.experiment_id)
    return str(mlflow_client.create_experiment(name))


def log_comparison(
    mlflow_client: Any, experiment: str, parent: RunRecord, children: Sequence[RunRecord], folder: Path
) -> str:
    """The comparison's run with one nested run per child and the results folder's files as its artifacts; its id.

    A run that an error interrupts is marked FAILED rather than left RUNNING in the store.
    """
    experiment_key = experiment_id(mlflow_client, experiment)
    with run(mlflow_client, experiment_key, parent) as parent_id:
        for child in children:
            with run(mlflow_client, experiment_key, child, parent_id=parent_id):
                pass
        for name in COMPARISON_ARTIFACTS:
            if (folder / name).is_file():
                mlflow_client.log_artifact(parent_id, str(folder / name))
    return parent_id


@contextmanager
def run(mlflow_client: Any, experiment_key: str, record: RunRecord, *, parent_id: str | None = None) -> Iterator[str]:
    """A run holding ``record``'s parameters, metrics and tags (nested under ``parent_id``), finished on leaving:
    FINISHED, or FAILED when the block raised."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = {key: value[:_TAG_LENGTH] for key, value in record.tags.items()}
    if parent_id is not None:
        tags[MLFLOW_PARENT_RUN_ID] = parent_id
    created = mlflow_client.create_run(experiment_key, run_name=record.name, tags=tags)
    run_id = str(created.info.run_id)
    try:
        log_record(mlflow_client, run_id, record)
        yield run_id
    except BaseException:
        _finish_quietly(mlflow_client, run_id, "FAILED")
        raise
    mlflow_client.set_terminated(run_id, "FINISHED")


def log_record(mlflow_client: Any, run_id: str, record: RunRecord) -> None:
    """``record``'s parameters and metrics, in batches of the sizes MLflow accepts."""
    import time

    from mlflow.entities import Metric, Param

    params = [Param(key, value[:_PARAM_LENGTH]) for key, value in record.params.items()]
    now = int(time.time() * 1000)
    metrics = [Metric(point.key, point.value, now, point.step) for point in record.metrics]
    for start in range(0, len(params), _PARAMS_PER_BATCH):
        mlflow_client.log_batch(run_id, params=params[start : start + _PARAMS_PER_BATCH])
    for start in range(0, len(metrics), _METRICS_PER_BATCH):
        mlflow_client.log_batch(run_id, metrics=metrics[start : start + _METRICS_PER_BATCH])


def _finish_quietly(mlflow_client: Any, run_id: str, status: str) -> None:
    # The store may be what failed: marking the run is worth a try, never an error of its own.
    try:
        mlflow_client.set_terminated(run_id, status)
    except Exception:
        pass


def one_line(error: BaseException, limit: int = 300) -> str:
    """An error as one short line: MLflow's messages about an unreachable server run to many lines."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
