"""The model folder: one fitted strategy saved with everything needed to predict, checked before it is loaded.

Layout (described for users in docs/model-folder.md)::

    manifest.json            what the model is, how it was trained, what it scored, sha256 of every other file
    backbone/                probe and zero-shot: a copy of the frozen backbone (config, tokenizer, model.safetensors)
    head.safetensors         probe: the logistic regression's coef and intercept, and its class indices
    model/                   finetune: the fine-tuned network and its tokenizer, as save_pretrained writes them

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

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

MANIFEST = "manifest.json"
FORMAT = "bertwise-model"
# 2: the manifest carries content_sha256 (every other key's hash) and file_bytes; 1 loads with a warning.
FORMAT_VERSION = 2
BACKBONE_DIR = "backbone"
MODEL_DIR = "model"
HEAD_FILE = "head.safetensors"
# Where each strategy keeps its network: the folder that a file added by hand could change the loading of.
WEIGHTS_DIR = {"probe": BACKBONE_DIR, "zero-shot": BACKBONE_DIR, "finetune": MODEL_DIR}
# What a hub download of a backbone fetches (see backbone.resolve), minus code and pickled weights: config, tokenizer
# and safetensors files at the top, and the sentence-transformers module settings (1_Pooling/config.json) below it.
_BACKBONE_SUFFIXES = (".json", ".safetensors", ".txt", ".model")
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
    """Write fitted ``estimator`` (a probe, fine-tuned or zero-shot classifier) as a model folder at ``out``.

    ``training`` is what it was fitted on (fingerprinted, never stored), ``metrics`` what it scored (None when it was
    not evaluated), ``trained_on`` says in words which rows trained it, ``notes`` what reading the data had to say,
    ``extra`` adds top-level manifest keys.
    ``out`` may be new, an empty folder or an earlier model folder (replaced); a folder holding anything else is
    refused. Returns the manifest.
    """
    from bertwise import __version__

    tags = getattr(type(estimator), "tags", None)
    name = getattr(tags, "name", None)
    if name not in WEIGHTS_DIR:
        raise ConfigError(f"cannot save a {type(estimator).__name__}: expected a probe, finetune or zero-shot model")
    if not hasattr(estimator, "classes_"):
        raise ConfigError(f"cannot save an unfitted {type(estimator).__name__}: call fit first")
    target = Path(out)
    check_output_folder(target)
    writer, state = _WRITERS[name](estimator)
    manifest: dict[str, Any] = {
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
        "backbone": _backbone_record(estimator),
        "precision": _precision(estimator),
        "weights_dir": WEIGHTS_DIR[name],
        name.replace("-", "_"): state,
        "details": _details(estimator),
        **dict(extra or {}),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the destination, so the final rename never crosses file systems; hidden, so no one mistakes it for it.
    staging = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        writer(staging)
        listed = _listed_files(staging)
        manifest["files"] = {relative: sha256_file(staging / relative) for relative in listed}
        # Checked before any hashing at load: a file grown to gigabytes is refused without reading it.
        manifest["file_bytes"] = {relative: (staging / relative).stat().st_size for relative in listed}
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
    temporary = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, folder / MANIFEST)
    finally:
        temporary.unlink(missing_ok=True)
    return text


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
    entries = (p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file() or p.is_symlink())
    foreign = sorted(entry for entry in entries if entry != MANIFEST and entry not in listed and not _hidden(entry))
    if foreign:
        raise ConfigError(
            f"the model folder '{target}' holds files its manifest does not list ({_list(foreign)}); expected only "
            "what bertwise saved there; refusing to overwrite them: move them away or choose another folder"
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


def _write_probe(estimator: Any) -> tuple[Callable[[Path], None], dict[str, Any]]:
    from safetensors.numpy import save_file

    head = estimator.head_
    backbone = _backbone_path(estimator)
    # The labels ride along inside the hashed head file, so an edited manifest cannot silently rename its columns.
    labels = json.dumps([_plain(label) for label in estimator.classes_.tolist()], ensure_ascii=True)

    def write(folder: Path) -> None:
        _copy_backbone(backbone, folder / BACKBONE_DIR)
        save_file(
            {
                # In the dtype they were fitted in (float32, like the embeddings): widening them would change the
                # probabilities in their last digits.
                "coef": np.ascontiguousarray(head.coef_),
                "intercept": np.ascontiguousarray(head.intercept_),
                # Columns of predict_proba: which of the model's classes each of the head's rows scores.
                "classes": np.ascontiguousarray(head.classes_, dtype=np.int64),
            },
            str(folder / HEAD_FILE),
            metadata={"classes": labels},
        )

    state = {
        "head_file": HEAD_FILE,
        "C": float(estimator.C_),
        "iterations": int(np.max(head.n_iter_)),
    }
    return write, state


def _write_zero_shot(estimator: Any) -> tuple[Callable[[Path], None], dict[str, Any]]:
    from bertwise.strategies.zero_shot import EMBEDDING_TEMPERATURE

    backbone = _backbone_path(estimator)

    def write(folder: Path) -> None:
        _copy_backbone(backbone, folder / BACKBONE_DIR)

    state = {
        "mode": estimator.mode_,
        "template": estimator.template,
        "descriptions": list(estimator.descriptions_),
        "temperature": EMBEDDING_TEMPERATURE if estimator.mode_ == "embedding" else None,
    }
    return write, state


def _write_finetune(estimator: Any) -> tuple[Callable[[Path], None], dict[str, Any]]:
    network, tokenizer = estimator.network_, estimator.tokenizer_

    def write(folder: Path) -> None:
        directory = folder / MODEL_DIR
        from bertwise.backbone.loading import quiet_loading

        # transformers 5 writes safetensors only (its save_pretrained has no other format to choose).
        with quiet_loading():  # its "Writing model shards" bar
            network.save_pretrained(directory)
            tokenizer.save_pretrained(directory)
        pickled = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
        if pickled or not any(directory.glob("*.safetensors")):
            raise ModelError(
                f"saving the fine-tuned network wrote {', '.join(pickled) or 'no *.safetensors file'}; expected "
                "safetensors weights only"
            )

    state = {"max_length": int(estimator.max_length_), "num_labels": int(network.config.num_labels)}
    return write, state


_WRITERS: dict[str, Callable[[Any], tuple[Callable[[Path], None], dict[str, Any]]]] = {
    "probe": _write_probe,
    "zero-shot": _write_zero_shot,
    "finetune": _write_finetune,
}


def _backbone_path(estimator: Any) -> Path:
    backbone = getattr(estimator, "backbone_", None)
    if backbone is None:
        from bertwise.backbone.resolve import resolve_backbone

        backbone = resolve_backbone(estimator.model, pooling=estimator.pooling)
    return Path(backbone.path)


def _copy_backbone(source: Path, destination: Path) -> None:
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


def _params(estimator: Any) -> dict[str, Any]:
    from bertwise.evaluation.runner import _jsonable

    params = {key: _jsonable(value) for key, value in estimator.get_params().items()}
    for machine_bound in ("progress", "device"):
        params.pop(machine_bound, None)
    loaded = getattr(estimator, "manifest_", None)
    if loaded is not None and estimator.tags.name != "finetune":
        # A loaded probe or zero-shot points at its folder's copy of the backbone; the record keeps the original id.
        params["model"] = loaded["params"].get("model")
    return params


def _backbone_record(estimator: Any) -> dict[str, Any]:
    loaded = getattr(estimator, "manifest_", None)
    if loaded is not None:
        return dict(loaded["backbone"])
    backbone = getattr(estimator, "backbone_", None)
    if backbone is None:
        from bertwise.backbone.resolve import resolve_backbone

        backbone = resolve_backbone(estimator.model, pooling=estimator.pooling)
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
    from bertwise.backbone.device import precision_name, resolve_device

    device = getattr(estimator, "device_", None) or resolve_device(estimator.device)
    return precision_name(device, estimator.precision)


def _details(estimator: Any) -> dict[str, Any]:
    from bertwise.evaluation.runner import _details as strategy_details

    details = strategy_details(estimator)
    loaded = getattr(estimator, "manifest_", None)
    if loaded is not None and isinstance(loaded.get("details"), dict):
        # A loaded model lacks what fitting decided (its validation history, say): saving it again keeps the record.
        return {**loaded["details"], **details}
    return details


# Loading -----------------------------------------------------------------------------------------------------------


def load(path: str | Path, *, device: str = "auto", precision: str | None = None, runtime: str = "torch") -> Any:
    """The fitted classifier saved in model folder ``path``, after checking every file against its manifest.

    Returns a :class:`~bertwise.ProbeClassifier`, :class:`~bertwise.FinetuneClassifier` or
    :class:`~bertwise.ZeroShotClassifier` with ``classes_``, ``predict`` and ``predict_proba``, the parsed manifest in
    ``manifest_`` and the folder in ``folder_``. ``device`` picks where it runs; ``precision`` defaults to the one it
    was trained with ("auto" unless set). Its encoder remembers nothing: predicting any number of texts, in chunks,
    keeps memory flat and writes nothing to the embedding cache. ``runtime="onnx"`` predicts through the folder's
    ONNX export instead (``bertwise export DIR --onnx``; CPU, float32 or int8), with the same interface.
    """
    if runtime == "onnx":
        from bertwise.onnx.export import load_onnx

        return load_onnx(path)
    if runtime != "torch":
        raise ConfigError(f"runtime must be 'torch' or 'onnx'; got {runtime!r}")
    folder = Path(path)
    manifest = verify_model_folder(folder)
    chosen_precision = precision if precision is not None else str(manifest["params"].get("precision", "auto"))
    with unloadable_as_model_error(folder):
        estimator = _LOADERS[manifest["strategy"]](folder, manifest, device, chosen_precision)
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
    weights = WEIGHTS_DIR[strategy]
    required = [f"{weights}/config.json"] + ([HEAD_FILE] if strategy == "probe" else [])
    for relative in required:
        if relative not in files:
            raise ModelError(
                f"{folder / MANIFEST} lists no '{relative}'; a {strategy} model folder needs it (save the model again)"
            )
    if not any(name.startswith(f"{weights}/") and name.endswith(".safetensors") for name in files):
        raise ModelError(
            f"{folder / MANIFEST} lists no {weights}/*.safetensors weights; a {strategy} model folder needs them "
            "(save the model again)"
        )
    sizes: dict[str, Any] = manifest.get("file_bytes") or {}
    paths = {relative: check_listed_file(folder, relative, sizes.get(relative)) for relative in files}
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


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed manifest of model folder ``path``, its structure checked (file hashes are not: see ``load``)."""
    from bertwise import __version__
    from bertwise.strategies.registry import strategy_names

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
    expected_types: dict[str, type] = {"params": dict, "files": dict, "backbone": dict, "training_data": dict}
    section = strategy.replace("-", "_")
    expected_types[section] = dict
    for key, kind in expected_types.items():
        if not isinstance(manifest.get(key), kind):
            raise ModelError(f"{file}: '{key}' is {_kind(manifest.get(key))}; expected a JSON {_json_kind(kind)}")
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
        raise ModelError(f"{file}: 'file_bytes' is {_kind(sizes)}; expected a JSON object of file sizes in bytes")
    _check_state(file, manifest)
    return manifest


def _check_classes(file: Path, classes: Any) -> None:
    if not isinstance(classes, list) or len(classes) < 2:
        raise ModelError(f"{file}: 'classes' is {_kind(classes)}; expected a list of at least 2 labels")
    strings = all(isinstance(label, str) for label in classes)
    integers = all(isinstance(label, int) and not isinstance(label, bool) for label in classes)
    if not (strings or integers):
        raise ModelError(f"{file}: 'classes' mixes kinds ({classes[:5]!r}...); expected all strings or all integers")
    if len(set(classes)) != len(classes):
        raise ModelError(f"{file}: 'classes' lists a label twice; expected distinct labels")


def _check_state(file: Path, manifest: dict[str, Any]) -> None:
    strategy = manifest["strategy"]
    state = manifest[strategy.replace("-", "_")]
    backbone = manifest["backbone"]
    if strategy in ("probe", "zero-shot"):
        from bertwise.backbone.modules import DenseLayer, pooling_modes

        try:
            pooling_modes(backbone.get("pooling"))
            if not isinstance(backbone.get("max_length"), int) or not isinstance(backbone.get("dense", []), list):
                raise ValueError("expected its max_length and a list of Dense layers")
            for layer in backbone.get("dense", []):
                parts = Path(DenseLayer.from_record(layer).path).parts
                if not parts or Path(layer["path"]).is_absolute() or ".." in parts:
                    raise ValueError(f"a Dense layer's path is {layer['path']!r}; expected a folder inside backbone/")
        except ValueError as error:
            raise ModelError(f"{file}: 'backbone' is {_kind(backbone)}: {error}") from None
    if strategy == "probe" and not isinstance(state.get("C"), int | float):
        raise ModelError(f"{file}: 'probe' is {state!r}; expected the chosen C")
    if strategy == "zero-shot":
        descriptions = state.get("descriptions")
        if state.get("mode") not in ("nli", "embedding") or not (
            isinstance(descriptions, list)
            and len(descriptions) == len(manifest["classes"])
            and all(isinstance(d, str) for d in descriptions)
        ):
            raise ModelError(
                f"{file}: 'zero_shot' is {state!r}; expected its mode ('nli' or 'embedding') and one description "
                "per class"
            )
    if strategy == "finetune" and not isinstance(state.get("max_length"), int):
        raise ModelError(f"{file}: 'finetune' is {state!r}; expected its max_length")


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


def _configured(estimator: Any, manifest: Mapping[str, Any], **overrides: Any) -> Any:
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
            expected = "a whole number of at least 1" if key == "batch_size" else f"a JSON {_json_kind(kinds[-1])}"
            raise ModelError(
                f"manifest.json: params.{key} is {json.dumps(value, default=str)[:60]}; expected {expected} like its "
                f"default {json.dumps(default, default=str)}: save the model again"
            )


def _saved_backbone(folder: Path, manifest: Mapping[str, Any]) -> Any:
    from bertwise.backbone.modules import DenseLayer
    from bertwise.backbone.resolve import Backbone

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


def _load_probe(folder: Path, manifest: dict[str, Any], device: str, precision: str) -> Any:
    from bertwise.backbone.encoder import Encoder
    from bertwise.strategies.probe import ProbeClassifier

    backbone = _saved_backbone(folder, manifest)
    estimator = _configured(
        ProbeClassifier(), manifest, model=backbone.path, device=device, precision=precision, progress=False
    )
    encoder = Encoder(backbone, device=device, precision=precision, remember=False)
    params = {"max_iter": estimator.max_iter, "random_state": estimator.seed}
    head = read_probe_head(folder, manifest, encoder.dimension, **params)
    estimator.classes_ = classes_array(manifest)
    estimator.head_ = head
    estimator.C_ = float(manifest["probe"]["C"])
    details = manifest.get("details")
    estimator.cv_scores_ = dict(details.get("cv_macro_f1_by_C") or {}) if isinstance(details, dict) else {}
    estimator.backbone_ = backbone
    estimator.encoder_ = encoder
    return estimator


def read_probe_head(folder: Path, manifest: Mapping[str, Any], dimension: int, **params: Any) -> Any:
    """The probe's saved logistic regression (``params`` go to its constructor), its arrays checked against the
    manifest's classes and the encoder's ``dimension``: what ``bertwise.load`` and the ONNX runtime predict with."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file
    from sklearn.linear_model import LogisticRegression

    classes = manifest["classes"]
    head_file = folder / HEAD_FILE
    try:
        arrays = load_file(str(head_file))
        with safe_open(str(head_file), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelError(f"'{head_file}' cannot be read as safetensors ({error}); save the model again") from None
    if "classes" in metadata and _json_or_none(metadata["classes"]) != classes:
        raise ModelError(
            f"'{head_file}' was trained for the classes {metadata['classes'][:200]}, but manifest.json lists "
            f"{json.dumps(classes)[:200]}; was the manifest edited? Save the model again"
        )
    coef, intercept, head_classes = arrays.get("coef"), arrays.get("intercept"), arrays.get("classes")
    seen = len(head_classes) if head_classes is not None and head_classes.ndim == 1 else len(classes)
    rows = 1 if seen == 2 else seen  # scikit-learn keeps one row of weights for two classes
    if (
        coef is None
        or intercept is None
        or head_classes is None
        or head_classes.dtype.kind not in "iu"
        or head_classes.ndim != 1
        or not 2 <= len(head_classes) <= len(classes)
        or head_classes.min() < 0
        or head_classes.max() >= len(classes)
        or np.any(np.diff(head_classes) <= 0)  # each column a different class, in order, as sklearn keeps them
        or coef.dtype not in (np.float32, np.float64)
        or intercept.dtype != coef.dtype
        or coef.shape != (rows, dimension)
        or intercept.shape != (rows,)
    ):
        shapes = {key: f"{value.dtype}{list(value.shape)}" for key, value in arrays.items()}
        raise ModelError(
            f"'{head_file}' holds {shapes}; expected float coef [{rows}, {dimension}], intercept [{rows}] and "
            f"increasing int classes [{seen}] for {len(classes)} classes and the backbone's {dimension} dimensions"
        )
    state = manifest["probe"]
    # A LogisticRegression with the saved fitted attributes computes predict_proba with sklearn's own code, so the
    # probabilities equal those of the model that was saved, bit for bit.
    head = LogisticRegression(C=float(state["C"]), **params)
    head.coef_ = coef
    head.intercept_ = intercept
    head.classes_ = head_classes
    head.n_features_in_ = dimension
    head.n_iter_ = np.array([int(state.get("iterations") or 0)], dtype=np.int32)
    return head


def _load_zero_shot(folder: Path, manifest: dict[str, Any], device: str, precision: str) -> Any:
    from bertwise.backbone.encoder import Encoder
    from bertwise.strategies.zero_shot import ZeroShotClassifier

    backbone = _saved_backbone(folder, manifest)
    estimator = _configured(
        ZeroShotClassifier(), manifest, model=backbone.path, device=device, precision=precision, progress=False
    )
    state = manifest["zero_shot"]
    estimator.classes_ = classes_array(manifest)
    estimator.mode_ = state["mode"]
    estimator.descriptions_ = list(state["descriptions"])
    estimator.backbone_ = backbone
    if state["mode"] == "embedding":
        estimator.encoder_ = Encoder(backbone, device=device, precision=precision, remember=False)
    else:
        _check_nli_labels(folder / BACKBONE_DIR)
        # The NLI network loads on first use: one text now, so a damaged network is refused here, with one line,
        # rather than with a library's traceback in the middle of a prediction.
        estimator.predict_proba(["a"])
    return estimator


def _check_nli_labels(directory: Path) -> None:
    from transformers import AutoConfig

    from bertwise.strategies.zero_shot import entailment_index

    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=False)
    if entailment_index(config) is None:
        # The zero-shot pipeline would warn in a log line and score with the last label: predictions without meaning.
        raise ModelError(
            f"'{directory / 'config.json'}' names no 'entailment' label (it has {sorted(config.label2id)}); a "
            "zero-shot NLI model needs one: save the model again"
        )


def _load_finetune(folder: Path, manifest: dict[str, Any], device: str, precision: str) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertwise.backbone.device import autocast_dtype, resolve_device
    from bertwise.backbone.encoder import load_tokenizer
    from bertwise.backbone.loading import quiet_loading
    from bertwise.strategies.finetune import FinetuneClassifier

    directory = folder / MODEL_DIR
    estimator = _configured(FinetuneClassifier(), manifest, device=device, precision=precision, progress=False)
    classes = classes_array(manifest)
    target = resolve_device(device)
    try:
        with quiet_loading():
            network, info = AutoModelForSequenceClassification.from_pretrained(
                str(directory),
                use_safetensors=True,
                trust_remote_code=False,
                dtype=torch.float32,
                output_loading_info=True,
                # Reported in ``info`` instead of raised as "look at the above report", which quiet_loading hides.
                ignore_mismatched_sizes=True,
            )
        tokenizer = load_tokenizer(str(directory))
    except (OSError, ValueError) as error:
        raise ModelError(
            f"'{directory}' cannot be loaded as a fine-tuned network ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}); save the model again"
        ) from None
    _check_loading_info(directory, info)
    if int(network.config.num_labels) != len(classes):
        raise ModelError(
            f"'{directory / 'config.json'}' has {network.config.num_labels} labels; expected {len(classes)}, one per "
            "class in manifest.json"
        )
    trained_for = [str(network.config.id2label.get(i, "")) for i in range(len(classes))]
    if trained_for != [str(label) for label in manifest["classes"]]:
        raise ModelError(
            f"'{directory / 'config.json'}' was trained for the classes {trained_for}, but manifest.json lists "
            f"{manifest['classes']}; was the manifest edited? Save the model again"
        )
    network.to(target).eval()
    estimator.classes_ = classes
    estimator.network_ = network
    estimator.tokenizer_ = tokenizer
    estimator.max_length_ = int(manifest["finetune"]["max_length"])
    estimator.device_ = target
    estimator.amp_ = autocast_dtype(target, precision)
    return estimator


def _check_loading_info(directory: Path, info: Mapping[str, Any]) -> None:
    """Refuse weights that transformers would fill with random values, saying so only in a log line we silence."""
    mismatched = sorted(info.get("mismatched_keys") or (), key=str)
    if mismatched:
        name, saved, expected = (list(mismatched[0]) + ["?", "?"])[:3]
        raise ModelError(
            f"'{directory / 'model.safetensors'}' holds '{name}' of shape {list(saved)} but config.json makes it "
            f"{list(expected)}{f' (and {len(mismatched) - 1} more)' if len(mismatched) > 1 else ''}; expected the "
            "weights of the network its config.json describes: save the model again"
        )
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ModelError(
            f"'{directory}' lacks {len(missing)} of the network's weights ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); expected every weight of the fine-tuned network: save the model "
            "again"
        )


_LOADERS: dict[str, Callable[[Path, dict[str, Any], str, str], Any]] = {
    "probe": _load_probe,
    "zero-shot": _load_zero_shot,
    "finetune": _load_finetune,
}


# Small helpers -----------------------------------------------------------------------------------------------------


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


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


def _kind(value: Any) -> str:
    return "missing" if value is None else f"a {_json_kind(type(value))} ({json.dumps(value, default=str)[:60]})"


def _json_kind(kind: type) -> str:
    return {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        kind, kind.__name__
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} into manifest.json")
