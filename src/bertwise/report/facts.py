"""Facts about a run that both reports state, worded once: where the test set came from, and which settings mattered.

A setting that did not take part in the run is left out rather than shown with its default: ``test_size`` is shown
only when a share was held out, never next to a test file (the report said ``test_size 0.2`` for a run on a test
file, which reads as if a fifth of the data had been held out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe_test_set(results: Mapping[str, Any]) -> str | None:
    """Where the test set came from, in words; None when results.json does not say."""
    dataset, config = _map(results.get("dataset")), _map(results.get("config"))
    test, protocol = _map(dataset.get("test")), _map(results.get("protocol"))
    origin = test.get("origin")
    if origin == "file":
        source = test.get("source")
        return f"the test file {source}" if isinstance(source, str) and source else "a test file"
    if origin == "held-out":
        share = config.get("test_size")
        held = f"{share * 100:g} % of the data" if isinstance(share, int | float) else "a share of the data"
        return f"{held}, held out (stratified)"
    if origin == "cross-validation":
        folds = protocol.get("folds") or config.get("folds")
        if isinstance(folds, int | float) and not isinstance(folds, bool):
            return f"{folds:g}-fold cross-validation: every row tested once"
        return "cross-validation"
    return None


def shown_config(results: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as recorded, less the settings this run's test set made irrelevant, plus the test set."""
    config = dict(_map(results.get("config")))
    origin = _map(_map(results.get("dataset")).get("test")).get("origin")
    if origin is None:
        return config  # an older results.json: nothing to tell which settings applied
    if origin != "held-out":
        config.pop("test_size", None)
    if origin != "cross-validation":
        config.pop("folds", None)
    if origin == "file":
        config.pop("cross_validation_below", None)
    described = describe_test_set(results)
    if described is not None:
        config["test set"] = described
    return config


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
