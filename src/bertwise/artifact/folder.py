"""The model folder: one fitted strategy saved with everything needed to predict, checked before it is loaded.

Layout (described for users in docs/model-folder.md)::

    manifest.json            what the model is, how it was trained, what it scored, sha256 of every other file
    README.md                the model card (Hugging Face format) written from the manifest; not hashed
    ...                      what the strategy's ``save_state`` wrote (its weights, a copy of its backbone)

This module handles what every model folder shares: the manifest, hashing and integrity checks, the classes and
parameters, the move into place. What is particular to a strategy is its class's (found by the manifest's strategy
name in :mod:`bertwise.strategies.registry`): ``save_state``, ``from_state``, ``saved_files`` and ``check_state``.

Weights are safetensors only, never pickle: loading a folder cannot run code. A folder is written under a temporary
name beside its destination and renamed into place, so a crash leaves the old folder or none, never half of one.
Loading refuses a folder whose manifest is missing, unreadable, of an unknown format or edited since it was written
(its content_sha256, :mod:`bertwise.artifact.integrity`), or whose files are missing, links out of the folder, changed
(size, sha256), malformed, or joined by unlisted files in a weights folder, each with one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.artifact.card import card_was_edited, recorded_card, write_model_card
from bertwise.artifact.integrity import (
    MANIFEST_MAX_BYTES,
    check_file_contents,
    check_listed_file,
    check_listed_name,
    check_seal,
    parse_json,
    read_bounded_text,
    require_key_to_rewrite,
    seal,
)
from bertwise.data.dataset import Label, LabeledTexts
from bertwise.exceptions import BertwiseError, ConfigError, ModelError
from bertwise.strategies.base import Strategy
from bertwise.strategies.registry import strategy_class, strategy_names
from bertwise.strategies.state import describe_json, json_kind, jsonable
from bertwise.util import atomic
from bertwise.util.version import __version__

MANIFEST = "manifest.json"
FORMAT = "bertwise-model"
# 2: the manifest carries content_sha256 (every other key's hash) and file_bytes; 1 loads with a warning.
FORMAT_VERSION = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHOWN_FILES = 8


# Saving ------------------------------------------------------------------------------------------------------------


def save_model(
    estimator: Any,
    out: str | Path,
    *,
    training: LabeledTexts,
    metrics: Mapping[str, Any] | None = None,
    trained_on: str | None = None,
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write fitted ``estimator`` (any registered strategy) as a model folder at ``out``.

    ``training`` is what it was fitted on (fingerprinted, never stored), ``metrics`` what it scored (None when it was
    not evaluated), ``trained_on`` says in words which rows trained it, ``notes`` what reading the data had to say,
    ``extra`` adds top-level manifest keys.
    ``out`` may be new, an empty folder or an earlier model folder (replaced); a folder holding anything else is
    refused. Returns the manifest.
    """
    tags = getattr(type(estimator), "tags", None)
    name = getattr(tags, "saved_as", "") or getattr(tags, "name", None)
    if not isinstance(estimator, Strategy) or name not in strategy_names():
        raise ConfigError(
            f"cannot save a {type(estimator).__name__}: expected a model of a registered strategy "
            f"({', '.join(strategy_names())})"
        )
    if not hasattr(estimator, "classes_"):
        raise ConfigError(f"cannot save an unfitted {type(estimator).__name__}: call fit first")
    target = Path(out)
    check_output_folder(target)
    common: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bertwise_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "strategy": name,
        "params": _params(estimator),
        "classes": [_plain(label) for label in estimator.classes_.tolist()],
        "metrics": dict(metrics) if metrics is not None else None,
        "trained_on": trained_on or f"all {len(training)} rows of {training.source}",
        "training_data": {**describe_training_data(training), "notes": list(notes)},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the destination, so the final rename never crosses file systems; hidden, so no one mistakes it for it.
    staging = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        # The strategy's own entries (its backbone, its state) sit between the common ones and what it decided.
        own = estimator.save_state(staging)
        manifest = {**common, **own, "details": _details(estimator), **dict(extra or {})}
        listed = _listed_files(staging)
        manifest["files"] = {relative: sha256_file(staging / relative) for relative in listed}
        # Checked before any hashing at load: a file grown to gigabytes is refused without reading it.
        manifest["file_bytes"] = {relative: (staging / relative).stat().st_size for relative in listed}
        # Written after the files are listed, so not among them: editing the card never stops the model loading.
        manifest["model_card"] = write_model_card(staging, manifest, name=target.resolve().name)
        text = write_manifest(staging, manifest)
        check_output_folder(target)  # again: something may have been put there while the weights were written
        _move_into_place(staging, target)
    except BaseException:  # Ctrl-C included: no half folder is left behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return json.loads(text)  # exactly what a later load reads


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> str:
    """Write ``manifest`` sealed (content_sha256, and a signature under BERTWISE_MODEL_KEY) into ``folder``, replaced
    in one rename; returns the text written.

    Sealed as a later load parses it (numpy values made plain JSON first), so the hashes match what load recomputes.
    """
    require_key_to_rewrite(folder / MANIFEST, manifest)
    plain = json.loads(json.dumps(manifest, default=_json_default))
    text = json.dumps(seal(plain), indent=2, ensure_ascii=False) + "\n"
    atomic.write_text(folder / MANIFEST, text)
    return text


def refresh_model_card(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``folder``'s model card again from ``manifest`` (changed since, by an export) and record it there, unless
    the user edited or removed the card bertwise wrote: their version is kept. Call before ``write_manifest``."""
    name = recorded_card(manifest)
    if name is None or not (folder / name).is_file() or card_was_edited(folder, manifest):
        return
    staging = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        record = write_model_card(staging, manifest, name=folder.resolve().name)
        if record is not None:
            os.replace(staging / name, folder / name)
            manifest["model_card"] = record
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_output_folder(target: Path) -> None:
    """Refuse an output path that holds something other than a bertwise model folder (which would be replaced).

    Replaceable: a new path, an empty folder, or a folder whose manifest says bertwise-model and which holds nothing
    its manifest does not list (hidden files such as .DS_Store aside). Anything else, hidden files included, is the
    user's and is never deleted.
    """
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise ConfigError(
            f"the model folder '{target}' is a file; expected a new or empty folder, or a model folder to replace"
        )
    top = sorted(p.name for p in target.iterdir())
    if not top:
        return
    manifest = _read_json_object(target / MANIFEST) if (target / MANIFEST).is_file() else None
    if manifest is None or manifest.get("format") != FORMAT:
        # Decided from the top level alone: --out pointed at a home folder must not walk all of it.
        raise ConfigError(
            f"'{target}' exists and is not a bertwise model folder (it holds {_list(top)}); expected a new or empty "
            "folder, or a model folder to replace; refusing to overwrite it: choose another folder"
        )
    files = manifest.get("files")
    listed: dict[str, Any] = files if isinstance(files, dict) else {}
    own = {MANIFEST, recorded_card(manifest)}
    entries = (p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file() or p.is_symlink())
    foreign = sorted(entry for entry in entries if entry not in own and entry not in listed and not _hidden(entry))
    if foreign:
        raise ConfigError(
            f"the model folder '{target}' holds files its manifest does not list ({_list(foreign)}); expected only "
            "what bertwise saved there; refusing to overwrite them: move them away or choose another folder"
        )
    if card_was_edited(target, manifest):
        raise ConfigError(
            f"the model card '{target / str(recorded_card(manifest))}' was edited since bertwise wrote it; refusing "
            "to overwrite your edits: move it out of the folder (or choose another folder) and run again"
        )


def describe_training_data(data: LabeledTexts) -> dict[str, Any]:
    """Rows, class counts and a fingerprint of the texts and labels in order (the texts themselves are not kept)."""
    counts = data.class_counts()
    return {
        "source": data.source,
        "rows": len(data),
        "classes": len(counts),
        "class_counts": {str(label): count for label, count in counts.items()},
        "sha256": data_sha256(data.texts, data.labels),
    }


def data_sha256(texts: tuple[str, ...] | list[str], labels: tuple[Label, ...] | list[Label]) -> str:
    """sha256 of (text, label) rows in order, serialised as the run cache does, so "1" and 1 stay apart."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(json.dumps([text, _plain(label)]).encode("ascii") + b"\n")
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def folder_size(path: str | Path) -> int:
    """Bytes of every file in the folder."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    # A folder cannot be renamed over a non-empty one: the old model steps aside first and is deleted after.
    old = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old"
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _listed_files(folder: Path) -> list[str]:
    relative = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(name for name in relative if name != MANIFEST)


def _params(estimator: Any) -> dict[str, Any]:
    params = {key: jsonable(value) for key, value in estimator.get_params().items()}
    for machine_bound in ("progress", "device"):
        params.pop(machine_bound, None)
    loaded, folder = getattr(estimator, "manifest_", None), getattr(estimator, "folder_", None)
    model = params.get("model")
    if loaded is not None and folder is not None and isinstance(model, str) and Path(model).is_relative_to(folder):
        # A loaded model that points at its folder's copy of the backbone: the record keeps the original id.
        params["model"] = loaded["params"].get("model")
    return params


def _details(estimator: Strategy) -> dict[str, Any]:
    details = estimator.fit_details()
    loaded = getattr(estimator, "manifest_", None)
    if loaded is not None and isinstance(loaded.get("details"), dict):
        # A loaded model lacks what fitting decided (its validation history, say): saving it again keeps the record.
        return {**loaded["details"], **details}
    return details


# Loading -----------------------------------------------------------------------------------------------------------


def load(path: str | Path, *, device: str = "auto", precision: str | None = None) -> Any:
    """The fitted strategy saved in model folder ``path``, after checking every file against its manifest.

    Its class (read from the manifest's ``strategy``) rebuilds it with ``from_state``; it comes back with the parsed
    manifest in ``manifest_`` and the folder in ``folder_``. ``device`` picks where it runs; ``precision`` defaults to
    the one it was trained with ("auto" unless set).
    """
    folder = Path(path)
    manifest = verify_model_folder(folder)
    chosen_precision = precision if precision is not None else str(manifest["params"].get("precision", "auto"))
    cls = strategy_class(manifest["strategy"])
    with unloadable_as_model_error(folder):
        estimator = cls.from_state(folder, manifest, device=device, precision=chosen_precision)
    estimator.manifest_ = manifest
    estimator.folder_ = folder.resolve()
    return estimator


@contextmanager
def unloadable_as_model_error(folder: Path) -> Iterator[None]:
    """Turn what a library raises on files that passed every check (so written or re-hashed by hand) into one line.

    The checks of :mod:`bertwise.artifact.integrity` name the usual damage precisely; this is the net under them, for
    what only the library's own parser finds (a tokenizer.json of the wrong structure, say).
    """
    try:
        yield
    except (BertwiseError, MemoryError):
        raise
    except Exception as error:
        if type(error).__name__ == "OutOfMemoryError":  # torch's, on an accelerator: the machine's, not the folder's
            raise
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no message"
        if "ignore_mismatched_sizes" in reason:  # transformers points at a report that quiet_loading silenced
            reason = "the shapes of its weights differ from those its config.json gives"
        raise ModelError(
            f"the model in '{folder}' passed its file checks but cannot be loaded ({type(error).__name__}: {reason}); "
            "expected the files as bertwise saved them: train or save the model again"
        ) from error


def verify_model_folder(path: str | Path) -> dict[str, Any]:
    """The manifest of model folder ``path`` once its format, content hash, required files and every file's place,
    size, sha256 and format are checked (the cheap checks of every file first, so nothing large is read in vain)."""
    folder = Path(path)
    if not folder.exists():
        raise ModelError(
            f"model folder not found: '{folder}'; expected a folder written by bertwise train or compare --save-best"
        )
    if not folder.is_dir():
        raise ModelError(f"'{folder}' is a file; expected a model folder written by bertwise train or --save-best")
    manifest = read_manifest(folder)
    strategy = manifest["strategy"]
    files: dict[str, str] = manifest["files"]
    layout = strategy_class(strategy).saved_files()
    for relative in layout.required:
        if relative not in files:
            raise ModelError(
                f"{folder / MANIFEST} lists no '{relative}'; a {strategy} model folder needs it (save the model again)"
            )
    weights = layout.weights_dir
    if weights is not None and not any(
        name.startswith(f"{weights}/") and name.endswith(".safetensors") for name in files
    ):
        raise ModelError(
            f"{folder / MANIFEST} lists no {weights}/*.safetensors weights; a {strategy} model folder needs them "
            "(save the model again)"
        )
    sizes: dict[str, Any] = manifest.get("file_bytes") or {}
    paths = {relative: check_listed_file(folder, relative, sizes.get(relative)) for relative in files}
    if weights is not None:
        _refuse_unlisted(folder, weights, files)
    for relative, expected in files.items():
        found = sha256_file(paths[relative])
        if found != expected:
            raise ModelError(
                f"'{paths[relative]}' has sha256 {found[:12]}... but manifest.json expects {expected[:12]}...: it was "
                "changed or damaged after saving; refusing to load it (copy the folder again, or save the model again)"
            )
    for relative, file in paths.items():
        check_file_contents(file, relative)
    return manifest


def _refuse_unlisted(folder: Path, weights: str, files: Mapping[str, str]) -> None:
    unlisted = [
        p.relative_to(folder).as_posix()
        for p in sorted((folder / weights).rglob("*"))
        if (p.is_file() or p.is_symlink()) and not _hidden(p.relative_to(folder).as_posix())
    ]
    unlisted = [relative for relative in unlisted if relative not in files]
    if unlisted:
        raise ModelError(
            f"'{folder / unlisted[0]}' is not listed in manifest.json, and a file added to the {weights}/ folder could "
            f"change what loads (unlisted: {_list(unlisted)}); remove it, or save the model again"
        )


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed manifest of model folder ``path``, its structure checked (file hashes are not: see ``load``)."""
    folder = Path(path)
    file = folder / MANIFEST
    if file.exists() or file.is_symlink():
        check_listed_file(folder, MANIFEST, None)  # a link out of the folder, a pipe, a folder: refused unread
    if not file.is_file():
        found = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
        raise ModelError(
            f"'{folder}' has no {MANIFEST}; expected a model folder written by bertwise train or compare --save-best "
            f"(found: {_list(found) if found else 'nothing'})"
        )
    manifest = parse_json(file, read_bounded_text(file, MANIFEST_MAX_BYTES))
    if not isinstance(manifest, dict):
        raise ModelError(f"{file} holds a JSON {type(manifest).__name__}; expected the object bertwise wrote")
    if manifest.get("format") != FORMAT:
        raise ModelError(f"{file}: format is {manifest.get('format')!r}; expected {FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelError(f"{file}: format_version is {version!r}; expected a whole number such as {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ModelError(
            f"{file}: format_version {version} was written by bertwise {manifest.get('bertwise_version', '?')}; "
            f"this bertwise ({__version__}) reads format_version {FORMAT_VERSION}; upgrade bertwise to load it"
        )
    check_seal(file, manifest)
    strategy = manifest.get("strategy")
    if strategy not in strategy_names():
        raise ModelError(f"{file}: strategy is {strategy!r}; expected one of {', '.join(strategy_names())}")
    _check_classes(file, manifest.get("classes"))
    for key in ("params", "files", "training_data"):
        if not isinstance(manifest.get(key), dict):
            raise ModelError(
                f"{file}: '{key}' is {describe_json(manifest.get(key))}; expected a JSON {json_kind(dict)}"
            )
    strategy_class(strategy).check_state(file, manifest)
    for relative, digest in manifest["files"].items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ModelError(f"{file}: the sha256 of '{relative}' is {digest!r}; expected 64 lowercase hex digits")
        parts = Path(relative).parts
        if Path(relative).is_absolute() or ".." in parts or relative in ("", MANIFEST) or "\\" in relative:
            raise ModelError(f"{file}: lists the file {relative!r}; expected a path inside the model folder")
        check_listed_name(file, relative)
    sizes = manifest.get("file_bytes")
    if sizes is not None and not (
        isinstance(sizes, dict) and all(type(size) is int and size >= 0 for size in sizes.values())
    ):
        raise ModelError(
            f"{file}: 'file_bytes' is {describe_json(sizes)}; expected a JSON object of file sizes in bytes"
        )
    return manifest


def _check_classes(file: Path, classes: Any) -> None:
    if not isinstance(classes, list) or len(classes) < 2:
        raise ModelError(f"{file}: 'classes' is {describe_json(classes)}; expected a list of at least 2 labels")
    strings = all(isinstance(label, str) for label in classes)
    integers = all(isinstance(label, int) and not isinstance(label, bool) for label in classes)
    if not (strings or integers):
        raise ModelError(f"{file}: 'classes' mixes kinds ({classes[:5]!r}...); expected all strings or all integers")
    if len(set(classes)) != len(classes):
        raise ModelError(f"{file}: 'classes' lists a label twice; expected distinct labels")


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _list(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_FILES])
    return shown + (f", and {len(names) - _SHOWN_FILES} more" if len(names) > _SHOWN_FILES else "")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} into manifest.json")
