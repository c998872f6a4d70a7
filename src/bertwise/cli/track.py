"""``--track``, ``--tracking-uri`` and ``--experiment`` of ``bertwise compare`` and ``bertwise train`` (their help is
in :mod:`bertwise.cli.help_texts`): the tracker they ask for, and the one line that says where the runs went."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from bertwise.tracking.mlflow_tracking import tracking_option

if TYPE_CHECKING:
    from bertwise.pipeline.tracked import Tracked
    from bertwise.tracking.mlflow_tracking import MlflowTracking


def tracker(track: str | None, tracking_uri: str | None, experiment: str | None) -> MlflowTracking | None:
    """The tracker the options ask for, checked (a known tracker, its package installed) before any work starts; a
    server that does not answer now is worth a warning, not a refusal: it may be back when the work is done."""
    chosen = tracking_option(track, tracking_uri, experiment)
    reason = chosen.unreachable() if chosen is not None else None
    if chosen is not None and reason is not None:
        typer.echo(f"bertwise: warning: --track: {reason} at {chosen.uri}; tracking is tried again when done", err=True)
    return chosen


def say_tracked(tracked: Tracked | None) -> bool:
    """Print where the runs went (stdout) or why they did not (stderr, one line); whether tracking failed."""
    if tracked is None:
        return False
    if tracked.error is not None:
        typer.echo(f"bertwise: error: --track: {tracked.message}", err=True)
        return True
    typer.echo(tracked.message)
    return False
