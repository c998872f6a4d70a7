"""What strategies share about their saved state: parameters read back from a manifest, and the backbone copy.

Every strategy's ``from_state`` restores its parameters with :func:`configured`; the strategies that run a BERT record
it with :func:`backbone_entries`, and those that keep it frozen (the probe, zero-shot) save a copy of it with
:func:`copy_backbone` and describe it again with :func:`saved_backbone`. The model folder itself (manifest, hashes,
integrity) is :mod:`bertwise.artifact.folder`'s.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertwise.backbone.device import precision_name, resolve_device
from bertwise.backbone.modules import DenseLayer, pooling_modes
from bertwise.backbone.resolve import Backbone, resolve_backbone
from bertwise.exceptions import ModelError

if TYPE_CHECKING:
    from bertwise.backbone.resolve import Backbone

BACKBONE_DIR = "backbone"
# What a hub download of a backbone fetches (see backbone.resolve), minus code and pickled weights: config, tokenizer
# and safetensors files at the top, and the sentence-transformers module settings (1_Pooling/config.json) below it.
_BACKBONE_SUFFIXES = (".json", ".safetensors", ".txt", ".model")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made plain and tuples made lists, as JSON keeps them."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    return value


def recorded_attributes(estimator: Any, names: Mapping[str, str]) -> dict[str, Any]:
    """``{key: attribute's value}`` for each ``attribute -> key`` of ``names`` the fitted estimator has (JSON-able)."""
    return {
        key: jsonable(getattr(estimator, attribute))
        for attribute, key in names.items()
        if hasattr(estimator, attribute)
    }


# Reading parameters back ---------------------------------------------------------------------------------------------


def classes_array(manifest: Mapping[str, Any]) -> np.ndarray:
    classes = manifest["classes"]
    # As Strategy.fit builds it: object for text labels (no fixed-width truncation), integers as such.
    return np.array(classes, dtype=object if isinstance(classes[0], str) else None)


def set_recorded_params(
    estimator: Any, params: Mapping[str, Any], unknown_error: Callable[[str, str], Exception]
) -> Any:
    """``set_params`` with parameters read back from JSON (a manifest, a results.json).

    Names the estimator does not have raise ``unknown_error(unknown names, valid names)``; JSON has no tuples, so the
    probe's C grid comes back as a list and is made a tuple again.
    """
    valid = estimator.get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise unknown_error(", ".join(map(repr, unknown)), ", ".join(sorted(valid)))
    return estimator.set_params(
        **{key: tuple(value) if key == "Cs" and isinstance(value, list) else value for key, value in params.items()}
    )


def configured(estimator: Any, manifest: Mapping[str, Any], **overrides: Any) -> Any:
    """``estimator`` with the parameters its manifest recorded (then ``overrides``), each checked first."""
    name = type(estimator).__name__
    _check_param_kinds(estimator, manifest["params"])
    return set_recorded_params(
        estimator,
        {**manifest["params"], **overrides},
        lambda unknown, valid: ModelError(
            f"manifest.json params name {unknown}, unknown to this bertwise's {name}; expected some of {valid} "
            "(saved by a newer bertwise?)"
        ),
    )


def _check_param_kinds(estimator: Any, params: Mapping[str, Any]) -> None:
    """Refuse a recorded parameter of another JSON kind than the estimator's default (a number where text was), and a
    batch size below 1: either would fail only later, inside a prediction, with a library's traceback."""
    defaults = estimator.get_params()
    for key, value in params.items():
        default = defaults.get(key)
        if default is None or (value is None and key not in ("batch_size", "precision")):
            continue  # a parameter whose default is None takes several kinds; unknown names are refused after this
        # int and float alike: JSON does not keep 1 and 1.0 apart, and a user may have passed either.
        kinds: tuple[type, ...] = {bool: (bool,), int: (int, float), float: (int, float), str: (str,)}.get(
            type(default), (list,) if isinstance(default, tuple | list) else (type(default),)
        )
        wrong_kind = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if key == "batch_size":
            wrong_kind = not (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        if wrong_kind:
            expected = "a whole number of at least 1" if key == "batch_size" else f"a JSON {json_kind(kinds[-1])}"
            raise ModelError(
                f"manifest.json: params.{key} is {json.dumps(value, default=str)[:60]}; expected {expected} like its "
                f"default {json.dumps(default, default=str)}: save the model again"
            )


def describe_json(value: Any) -> str:
    """How a manifest value reads in an error: ``missing`` or ``a string ("...")``."""
    return "missing" if value is None else f"a {json_kind(type(value))} ({json.dumps(value, default=str)[:60]})"


def json_kind(kind: type) -> str:
    return {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        kind, kind.__name__
    )


def require_section(file: Path, manifest: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The manifest's ``key`` entry, refused unless it is a JSON object."""
    value = manifest.get(key)
    if not isinstance(value, dict):
        raise ModelError(f"{file}: '{key}' is {describe_json(value)}; expected a JSON object")
    return value


# The backbone ---------------------------------------------------------------------------------------------------------


def backbone_entries(estimator: Any, weights_dir: str) -> dict[str, Any]:
    """The manifest entries of a strategy running a BERT: what backbone, in which precision, its network's folder."""
    return {"backbone": _backbone_record(estimator), "precision": _precision(estimator), "weights_dir": weights_dir}


def _backbone_record(estimator: Any) -> dict[str, Any]:
    loaded = getattr(estimator, "manifest_", None)
    if loaded is not None:
        return dict(loaded["backbone"])
    backbone = fitted_backbone(estimator)
    return {
        "id": backbone.model_id,
        "sha256": backbone.sha256,
        "embedded": backbone.embedded,
        "pooling": backbone.pooling,
        "max_length": backbone.max_length,
        "normalize": backbone.normalize,
        "dense": [layer.to_record() for layer in backbone.dense],
    }


def _precision(estimator: Any) -> str:
    """The dtype its backbone computed in (fine-tuning: the autocast dtype over float32 weights)."""
    device = getattr(estimator, "device_", None) or resolve_device(estimator.device)
    return str(precision_name(device, estimator.precision))


def fitted_backbone(estimator: Any) -> Backbone:
    """The backbone ``estimator`` was fitted with (resolved again from its parameters when it kept none)."""
    backbone = getattr(estimator, "backbone_", None)
    if backbone is None:
        backbone = resolve_backbone(estimator.model, pooling=estimator.pooling)
    return backbone


def copy_backbone(source: Path, destination: Path) -> None:
    """Copy what loading a backbone reads (config, tokenizer, safetensors, module settings); never code or pickles."""
    destination.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix in _BACKBONE_SUFFIXES:
            # copyfile follows symlinks: a hub snapshot's files are links into its blob store.
            shutil.copyfile(path, destination / path.name)
        elif path.is_dir():
            # Module folders: 1_Pooling's settings, 2_Dense's settings and safetensors weights.
            for settings in sorted(p for p in path.iterdir() if p.suffix in (".json", ".safetensors")):
                (destination / path.name).mkdir(exist_ok=True)
                shutil.copyfile(settings, destination / path.name / settings.name)


def saved_backbone(folder: Path, manifest: Mapping[str, Any]) -> Backbone:
    """The backbone copied into model folder ``folder``, described by its manifest."""
    record = manifest["backbone"]
    # Described from the manifest rather than resolved again: pooling, Dense layers, length and normalisation are those
    # it was trained with, and the weights were already checked against their sha256.
    return Backbone(
        model_id=str(record.get("id")),
        path=str((folder / BACKBONE_DIR).resolve()),
        sha256=str(record.get("sha256")),
        pooling=record["pooling"],
        max_length=int(record["max_length"]),
        normalize=bool(record.get("normalize", False)),
        embedded=False,
        # A manifest written before Dense layers were run has none: its backbone was encoded without them.
        dense=tuple(DenseLayer.from_record(layer) for layer in record.get("dense", [])),
    )


def check_frozen_backbone(file: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse a manifest whose backbone record a frozen-backbone strategy could not encode with."""
    backbone = manifest["backbone"]
    try:
        pooling_modes(backbone.get("pooling"))
        if not isinstance(backbone.get("max_length"), int) or not isinstance(backbone.get("dense", []), list):
            raise ValueError("expected its max_length and a list of Dense layers")
        for layer in backbone.get("dense", []):
            parts = Path(DenseLayer.from_record(layer).path).parts
            if not parts or Path(layer["path"]).is_absolute() or ".." in parts:
                raise ValueError(f"a Dense layer's path is {layer['path']!r}; expected a folder inside backbone/")
    except ValueError as error:
        raise ModelError(f"{file}: 'backbone' is {describe_json(backbone)}: {error}") from None
