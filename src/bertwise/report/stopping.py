"""What the protocol skipped, and why: the ``stopping`` records of results.json, read leniently and worded once for
the terminal, the Markdown summary and the HTML page.

Files written before the sequential protocol have none of these keys; every reader then gives None (or an empty
tuple) and the renderers show nothing, so an older file renders as it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bertwise.report.format import as_number, mapping, seconds, sequence, text, texts

SECTION_TITLE = "What the protocol skipped, and why"
NOTHING_SKIPPED = "Nothing was skipped: no strategy's result was decided before its planned runs were done."


@dataclass(frozen=True)
class StrategyStopping:
    """One strategy's ``stopping`` record, and a fine-tuning fit stopped inside its schedule (its fit details)."""

    planned_runs: int | None
    runs: int | None
    looks: tuple[Mapping[str, Any], ...]  # Look.to_dict() records, in order
    stopped: str | None  # the stop's text ("fine-tuning stopped after seed 1 of 3: ...")
    stopped_after: str | None  # "seed 1 of 3"
    skipped: str | None  # "seeds 2 and 3"
    skipped_for_budget: str | None
    stopped_by: str | None  # why a fine-tuning fit stopped inside its schedule (its fit details)
    stopped_at_step: int | None

    @property
    def runs_fraction(self) -> str | None:
        """Runs done of those planned ("1 of 3") where fewer were done; None otherwise."""
        if self.planned_runs is None or self.runs is None or self.runs >= self.planned_runs:
            return None
        return f"{self.runs} of {self.planned_runs}"

    @property
    def runs_text(self) -> str | None:
        """The same with its unit ("1 of 3 runs"); None where every planned run was done."""
        return f"{self.runs_fraction} runs" if self.runs_fraction is not None else None

    @property
    def training_stop(self) -> str | None:
        """Why a fit stopped inside its schedule ("training stopped at step 40: <why>"); None otherwise."""
        if self.stopped_by is None:
            return None
        at = f" at step {self.stopped_at_step}" if self.stopped_at_step is not None else ""
        return f"training stopped{at}: {self.stopped_by}"


@dataclass(frozen=True)
class CurveStopping:
    looks: tuple[Mapping[str, Any], ...]
    stopped: tuple[str, ...]  # each stop's text
    skipped_for_budget: tuple[str, ...]


@dataclass(frozen=True)
class Stopping:
    """The run's stopping record: which protocol ran, under what rule, and every stop and budget skip in order."""

    protocol: str | None  # "sequential", "full", or None where the file does not say
    tolerance_points: float | None
    error_rate: float | None
    looks_planned: float | None
    confidence_per_look: float | None
    rule: str | None
    stopped: tuple[str, ...]
    skipped_for_budget: tuple[str, ...]
    seconds_to_recommendation: float | None
    seconds_in_all: float | None  # the whole run's time, where recorded (older results: the budget's measured parts)
    recorded: bool  # results.json has the top-level "stopping" (else only config.protocol or per-part records)

    @property
    def nothing_skipped(self) -> bool:
        """A recorded sequential run that stopped nothing early and skipped nothing for the budget."""
        return self.recorded and self.protocol == "sequential" and not self.stopped and not self.skipped_for_budget

    def protocol_text(self) -> str | None:
        """The protocol in one line: what the sequential one stops, or that the full one runs everything."""
        if self.protocol == "full":
            return "full: every planned run"
        if self.protocol != "sequential":
            return self.protocol
        rate = f"the {self.error_rate * 100:g} % error rate" if self.error_rate is not None else "the stated error rate"
        looks = f"{self.looks_planned:g} looks" if self.looks_planned is not None else "the planned looks"
        line = f"sequential: work on a strategy stopped once it could not change the recommendation at {rate} shared "
        line += f"among {looks}"
        if self.confidence_per_look is not None:
            line += f" (each look at {self.confidence_per_look * 100:.4g} % confidence)"
        return line

    def time_text(self, total_seconds: float | None) -> str | None:
        """The time to the recommendation, beside the run's total where known; None when it was not recorded."""
        if self.seconds_to_recommendation is None:
            return None
        shown = f"{seconds(self.seconds_to_recommendation)} to the recommendation"
        total = self.seconds_in_all if self.seconds_in_all is not None else total_seconds
        return shown + (f", of {seconds(total)} in all" if total is not None else "")


def read_strategy_stopping(entry: Mapping[str, Any]) -> StrategyStopping | None:
    """A strategy entry's ``stopping`` record and its fit details' early stop; None when it has neither."""
    record, details = mapping(entry.get("stopping")), mapping(entry.get("details"))
    stopped_by = _string(details.get("stopped_by"))
    if not record and stopped_by is None:
        return None
    stopped = mapping(record.get("stopped"))
    return StrategyStopping(
        planned_runs=_whole(record.get("planned_runs")),
        runs=_whole(record.get("runs")),
        looks=_looks(record.get("looks")),
        stopped=_string(stopped.get("text")),
        stopped_after=_string(stopped.get("after")),
        skipped=_string(stopped.get("skipped")),
        skipped_for_budget=_string(record.get("skipped_for_budget")),
        stopped_by=stopped_by,
        stopped_at_step=_whole(details.get("stopped_at_step")) if stopped_by else None,
    )


def read_curve_stopping(curve: Mapping[str, Any]) -> CurveStopping | None:
    record = mapping(curve.get("stopping"))
    if not record:
        return None
    return CurveStopping(
        looks=_looks(record.get("looks")),
        stopped=tuple(text(stop.get("text")) for stop in sequence(record.get("stopped")) if isinstance(stop, Mapping)),
        skipped_for_budget=texts(record.get("skipped_for_budget")),
    )


def read_stopping(
    results: Mapping[str, Any],
    strategies: Sequence[tuple[str, StrategyStopping | None]],
    curve: CurveStopping | None,
) -> Stopping | None:
    """The top-level ``stopping`` record; where it is missing, the stops the strategies and the curve recorded.

    ``strategies`` pairs each strategy's name with its record. A fine-tuning fit stopped inside its schedule is
    added unless a recorded stop already gives its reason."""
    record = mapping(results.get("stopping"))
    protocol = record.get("protocol", mapping(results.get("config")).get("protocol"))
    stopped = list(texts(record.get("stopped")))
    skipped = list(texts(record.get("skipped_for_budget")))
    if not record:
        stopped = [stop.stopped for _, stop in strategies if stop and stop.stopped]
        stopped += [line for line in (curve.stopped if curve else ()) if line]
        skipped = [stop.skipped_for_budget for _, stop in strategies if stop and stop.skipped_for_budget]
        skipped += list(curve.skipped_for_budget if curve else ())
    for name, stop in strategies:
        if stop is not None and stop.stopped_by is not None and not any(stop.stopped_by in line for line in stopped):
            stopped.append(f"{name}: {stop.training_stop}")
    if not record and not stopped and not skipped and not isinstance(protocol, str):
        return None
    return Stopping(
        protocol=protocol if isinstance(protocol, str) else None,
        tolerance_points=as_number(record.get("tolerance_points")),
        error_rate=as_number(record.get("error_rate")),
        looks_planned=as_number(record.get("looks_planned")),
        confidence_per_look=as_number(record.get("confidence_per_look")),
        rule=_string(record.get("rule")),
        stopped=tuple(stopped),
        skipped_for_budget=tuple(skipped),
        seconds_to_recommendation=as_number(record.get("seconds_to_recommendation")),
        seconds_in_all=as_number(record.get("seconds_in_all")),
        recorded=bool(record),
    )


def _whole(value: Any) -> int | None:
    number = as_number(value)
    return int(number) if number is not None else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _looks(value: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(look for look in sequence(value) if isinstance(look, Mapping))
