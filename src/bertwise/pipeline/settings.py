"""A comparison's settings from a config file and the command line: command line > config file > defaults.

A config file is TOML (``bertwise.toml``, read with the standard library's tomllib): a ``[compare]`` table holding
:func:`~bertwise.pipeline.comparison.compare`'s options by their keyword names, and ``[params.<strategy>]`` tables of
hyperparameters. results.json records the settings a run used, after precedence, in the same form
(``effective_config``), so ``bertwise compare --config results.json`` runs that comparison again. Every key and
value is checked before any work: an unknown key or a value of the wrong kind is one line naming the file and the
key's path.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar, cast

from bertwise.backbone.device import PRECISION_CHOICES
from bertwise.backbone.resolve import POOLING_CHOICES
from bertwise.config import PRIORITIES, PROTOCOLS
from bertwise.exceptions import ConfigError
from bertwise.strategies.params import check_params, did_you_mean, merge_params
from bertwise.util.typecheck import TypeMismatch, conform, describe

# results.json's record of the settings a run used, in a config file's form.
RESULTS_KEY = "effective_config"
SECTIONS = ("compare", "params")


def _one_of(choices: Sequence[str]) -> Any:
    return Literal.__getitem__(tuple(choices))


# [compare]: compare()'s keywords, as a TOML file can write them (paths as strings; a list or a comma-separated
# string of strategies; one model or an array of them). Options a file cannot hold (callbacks, tables in memory)
# are Python's only.
OPTIONS: dict[str, Any] = {
    "data": str,
    "test": str,
    "out": str,
    "save_best": str,
    "strategies": list[str] | str,
    "model": str | list[str],
    "seed": int,
    "device": str,
    "precision": _one_of(PRECISION_CHOICES),
    "text_col": str,
    "label_col": str,
    "test_size": float,
    "pooling": _one_of(POOLING_CHOICES),
    "zero_shot_mode": _one_of(("auto", "nli", "embedding")),
    "zero_shot_template": str,
    "label_descriptions": str | dict[str, str],
    "priority": _one_of(PRIORITIES),
    "seeds": int,
    "folds": int,
    "cross_validation_below": int,
    "learning_curve": bool,
    "curve_repeats": dict[str, int],
    "bootstrap_resamples": int,
    "confidence": float,
    "budget": str | float,
    "protocol": _one_of(PROTOCOLS),
    "report": bool,
    "progress": bool,
    "cache": bool,
    "adapt_domain": bool,
    "unlabeled": str,
}
# Read from the config file's folder when relative, and recorded whole in results.json, so a rerun finds them from
# anywhere (label descriptions only when given as a file's path).
PATH_OPTIONS = ("data", "test", "out", "save_best", "unlabeled", "label_descriptions")


def read_config(path: str | Path) -> dict[str, Any]:
    """The settings in config file ``path`` as ``compare`` keywords (``params`` among them), every one checked.

    A ``.json`` file is a results.json (its ``effective_config``) or a JSON object of the TOML file's form."""
    file = Path(path)
    tables = _parse(file)
    unknown = [key for key in tables if key not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"{file}: unknown table [{unknown[0]}]; expected [compare] (the options) and [params.<strategy>]"
        )
    options = _table(file, tables, "compare")
    settings: dict[str, Any] = {}
    for key, value in options.items():
        if key not in OPTIONS:
            raise ConfigError(
                f"{file}: [compare] {key}: unknown option{did_you_mean(key, OPTIONS)}; expected one of "
                f"{', '.join(OPTIONS)}"
            )
        try:
            settings[key] = conform(value, OPTIONS[key])
        except TypeMismatch as mismatch:
            raise ConfigError(f"{file}: [compare] {key}: {mismatch}") from None
    if isinstance(settings.get("strategies"), str):
        settings["strategies"] = [name.strip() for name in settings["strategies"].split(",") if name.strip()]
    for key in PATH_OPTIONS:
        if isinstance(settings.get(key), str):
            settings[key] = str(file.parent / Path(settings[key]).expanduser())
    if "model" in settings:
        settings["model"] = _models_from(file.parent, settings["model"])
    params = check_params(_table(file, tables, "params"), lambda strategy, name: _place(file, strategy, name))
    if params:
        settings["params"] = params
    return settings


def parse_sets(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set strategy.parameter=value`` items as params, checked; each value is read as a TOML value (5e-5 a float,
    3 an integer, true a boolean, [0.1, 1.0] an array, "text" or plain text a string)."""
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, equals, raw = item.partition("=")
        strategy, dot, name = key.strip().partition(".")
        if not equals or not dot or not strategy or not name.strip():
            raise ConfigError(f"--set {item}: expected strategy.parameter=value, such as finetune.learning_rate=5e-5")
        params.setdefault(strategy, {})[name.strip()] = toml_value(raw.strip())
    return check_params(params, lambda strategy, name: f"--set {strategy}" + (f".{name}" if name else ""))


def toml_value(raw: str) -> Any:
    """``raw`` read as a TOML value; text that is not one (a template, a word) is the string itself."""
    if "\n" in raw or "\r" in raw:
        return raw
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def layered(defaults: Mapping[str, Any], config: str | Path | None, explicit: Mapping[str, Any]) -> dict[str, Any]:
    """``compare`` keywords: ``explicit`` ones (the command line's, or those a Python caller passed) over the config
    file's over ``defaults``; params merge key by key, so a file's learning rate and the command line's epochs both
    stay."""
    from_file = read_config(config) if config is not None else {}
    merged = {**defaults, **from_file, **explicit}
    params = merge_params(defaults.get("params"), from_file.get("params"), explicit.get("params"))
    if params or "params" in merged:
        merged["params"] = params
    return merged


P = ParamSpec("P")
R = TypeVar("R")


def with_config_file(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` (compare) taking a ``config`` file: the keywords a caller passes win over the file's, which win
    over the function's defaults. Only a wrapper sees which keywords were passed rather than left at their default."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        config = cast("str | Path | None", kwargs.pop("config", None))
        if config is None:
            return function(*args, **kwargs)
        explicit = dict(kwargs)
        if args:
            explicit["data"] = args[0]
        merged = layered({}, config, explicit)
        data = merged.pop("data", None)
        return function(data, *args[1:], **merged)  # type: ignore[arg-type]

    return wrapper


def effective_config(
    arguments: Mapping[str, Any], strategies: Sequence[str], params: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """What results.json records of a comparison's settings: ``arguments`` (compare's, after precedence) in a config
    file's form, paths made absolute; what a file cannot hold (a table in memory, texts) is left out."""
    recorded: dict[str, Any] = {}
    for key in OPTIONS:
        value = arguments.get(key)
        if key in PATH_OPTIONS and isinstance(value, str | Path):
            value = str(Path(value).expanduser().resolve())
        elif key in PATH_OPTIONS and key != "label_descriptions":
            continue  # a DataFrame or Dataset, or texts in a list: given again on the command line to rerun
        if key == "progress" and not isinstance(value, bool):
            continue  # a callback
        if value is None or (key == "label_descriptions" and not value):
            continue  # TOML has no null: an option left out takes its default
        recorded[key] = _plain(value)
    recorded["strategies"] = list(strategies)
    if "model" in recorded:
        recorded["model"] = _models_from(Path.cwd(), recorded["model"])
    return {"compare": recorded, "params": _plain(params)}


def _parse(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file '{file}' not found; expected a bertwise.toml or a results.json") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file '{file}' cannot be read: {error}") from None
    if file.suffix.lower() == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{file}: not valid JSON ({error})") from None
        if isinstance(content, dict) and RESULTS_KEY in content:
            content = content[RESULTS_KEY]  # a results.json: the settings it ran with
        elif isinstance(content, dict) and "strategies" in content and "compare" not in content:
            raise ConfigError(
                f"{file}: a results.json without '{RESULTS_KEY}' (written by an older bertwise); expected one that "
                "records its settings, or a bertwise.toml"
            )
    else:
        try:
            content = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{file}: not valid TOML ({error})") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{file}: expected a table of settings, found {describe(content)}")
    return content


def _table(file: Path, tables: Mapping[str, Any], name: str) -> dict[str, Any]:
    table = tables.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: {name}: expected a table ([{name}]), found {describe(table)}")
    return table


def _place(file: Path, strategy: str, name: str | None) -> str:
    return f"{file}: [params.{strategy}]" + (f" {name}" if name is not None else "")


def _models_from(folder: Path, model: str | list[str]) -> str | list[str]:
    """Backbones named by a folder relative to ``folder`` made whole; hub ids and "default" as written."""

    def one(name: str) -> str:
        candidate = folder / Path(name).expanduser()
        return str(candidate.resolve()) if name != "default" and candidate.is_dir() else name

    return one(model) if isinstance(model, str) else [one(name) for name in model]


def _plain(value: Any) -> Any:
    """``value`` as JSON keeps it: tuples as lists, paths as strings."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value
