"""``Tracked``: what an experiment tracker did with a comparison or a model folder (no heavy import, so the CLI's
tracking options load nothing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tracked:
    """What a tracker did with a comparison (``compare(track=...)``) or a model folder: one line saying where the runs
    went or why they could not go."""

    message: str
    run_id: str | None = None  # the comparison's (parent) run in the tracking store
    error: str | None = None  # set when nothing, or not everything, reached the tracking store
    model_uri: str | None = None  # a logged model's URI (mlflow.pyfunc.load_model reads it)
