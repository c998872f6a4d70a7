"""A comparison's hyperparameters by strategy (``{"finetune": {"learning_rate": 5e-5}}``), checked before any work.

A strategy's parameters are its constructor's (scikit-learn's ``get_params``), and their kinds its annotations, so a
new strategy needs nothing here. The parameters a comparison sets itself (the backbone, the seed of each run, the
device) are refused: setting them per strategy would undo ``--model`` or make every seed the same run. The checked
values are applied by :func:`bertwise.strategies.registry.build_strategy` after ``from_config``.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bertwise.exceptions import ConfigError
from bertwise.strategies.registry import strategy_class, strategy_names
from bertwise.strategies.variants import SEPARATOR
from bertwise.util.typecheck import TypeMismatch, conform, describe

# Parameter -> where the comparison sets it for every strategy.
COMPARISON_OWNED = {
    "model": "--model ([compare] model)",
    "seed": "--seed ([compare] seed; each further run counts up from it)",
    "device": "--device ([compare] device)",
    "precision": "--precision ([compare] precision)",
    "progress": "--progress ([compare] progress)",
}

# Where a key is, as the user wrote it: (strategy, parameter or None) -> "--set finetune.learning_rate".
Place = Callable[[str, str | None], str]


def tunable_params(strategy: str) -> dict[str, Any]:
    """The parameters of ``strategy`` a comparison may set, each with its annotation."""
    hints = typing.get_type_hints(strategy_class(strategy).__init__)
    return {name: hint for name, hint in hints.items() if name != "return" and name not in COMPARISON_OWNED}


def check_params(params: Mapping[str, Any], place: Place) -> dict[str, dict[str, Any]]:
    """``params`` checked against the strategies' own parameters and their kinds, values in the annotated form
    (an integer where a float is expected becomes a float, an array where a tuple is expected a tuple).

    Unknown strategies and parameters, parameters the comparison sets itself and values of the wrong kind raise a
    one-line :class:`ConfigError` that starts with ``place`` of the key."""
    checked: dict[str, dict[str, Any]] = {}
    for strategy, values in params.items():
        _check_strategy(strategy, place)
        if not isinstance(values, Mapping):
            raise ConfigError(f"{place(strategy, None)}: expected a table of parameters, found {describe(values)}")
        accepted = tunable_params(strategy)
        checked[strategy] = {}
        for name, value in values.items():
            if name in COMPARISON_OWNED:
                raise ConfigError(
                    f"{place(strategy, name)}: the comparison sets {name} for every strategy; use "
                    f"{COMPARISON_OWNED[name]}"
                )
            if name not in accepted:
                raise ConfigError(
                    f"{place(strategy, name)}: {strategy} has no parameter {name!r}{did_you_mean(name, accepted)}; "
                    f"it has: {', '.join(accepted)}"
                )
            try:
                checked[strategy][name] = conform(value, accepted[name])
            except TypeMismatch as mismatch:
                raise ConfigError(f"{place(strategy, name)}: {mismatch}") from None
        _check_ranges(strategy, checked[strategy], place)
    return checked


def _check_ranges(strategy: str, values: dict[str, Any], place: Place) -> None:
    """The strategy's own range checks (a learning rate above 0), now rather than when it starts to train."""
    try:
        strategy_class(strategy)().set_params(**values).check_params()
    except ConfigError as error:
        # The parameter the strategy names, when it is one set here; else the error is the combination's.
        wrong = next((name for name in values if repr(name) in str(error)), None)
        raise ConfigError(f"{place(strategy, wrong)}: {error}") from None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'learning_rate'?)`` for a near miss of a known name, else nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def merge_params(*layers: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Later layers' parameters over earlier ones', key by key (a file's learning rate and the command line's
    epochs both stay)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for strategy, values in (layer or {}).items():
            merged.setdefault(strategy, {}).update(values)
    return merged


def _check_strategy(strategy: str, place: Place) -> None:
    if strategy in strategy_names():
        return
    base = strategy.split(SEPARATOR, 1)[0]
    if SEPARATOR in strategy and base in strategy_names():
        raise ConfigError(
            f"{place(strategy, None)}: parameters are set per strategy and apply on every backbone; use {base!r}"
        )
    raise ConfigError(
        f"{place(strategy, None)}: unknown strategy {strategy!r}; expected one of {', '.join(strategy_names())}"
    )
