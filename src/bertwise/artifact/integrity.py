"""What a model folder must pass before any library parses it: a content hash over its manifest, an optional keyed
signature, and checks of each listed file's place, kind, size and format.

The manifest's ``content_sha256`` maps every other top-level key to the sha256 of its value (canonical JSON: sorted
keys, ASCII, no spaces), or, for a key holding an object, each of that object's fields to the sha256 of the field's
value: together they cover every byte of meaning, so an edit to any setting, score, label or file hash is refused with
the field it touched ('backbone.max_length', 'metrics.macro_f1').
That hash lives in the same folder as what it covers: it catches accidental and casual edits, not someone who
recomputes it. With ``BERTWISE_MODEL_KEY`` set, saving also writes an HMAC-SHA256 of the whole manifest under that key
and loading refuses any folder without a valid one, which someone without the key cannot forge (docs/model-folder.md).

File checks run after every sha256 matched, so they only ever refuse files that were written (or re-hashed) by hand:
they turn what the parsing libraries would raise (SafetensorError, JSONDecodeError, a tokenizer's panic) into one
line that names the file, and refuse weights holding NaN or infinite values, which would predict the first class for
every text without a word.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bertwise.exceptions import ModelError

SEAL = "content_sha256"
SIGNATURE = "signature"
KEY_ENV = "BERTWISE_MODEL_KEY"
# The first format_version whose manifests carry a content_sha256: one without it is refused, an older one warned of.
SEALED_SINCE = 2
# Far above any manifest bertwise writes (a few kB; tens of kB with thousands of classes), far below harm.
MANIFEST_MAX_BYTES = 16 * 2**20
# Config, tokenizer and vocabulary files: tokenizer.json of the largest multilingual vocabularies is about 20 MB.
TEXT_MAX_BYTES = 256 * 2**20
# Fields of a transformers config.json that size the network: a string or a negative number there fails deep inside
# the model's constructor.
_CONFIG_SIZES = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "num_labels",
)
_REMEDY = "train or save the model again"
# Pickled weights (torch.load, joblib) and code: reading them can run anything. transformers would not read a pickle
# here (bertwise loads with use_safetensors=True), but a folder that lists one was not written by bertwise.
_UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".py", ".pyc", ".so", ".dll")


class UnverifiedManifestWarning(UserWarning):
    """A model folder written before manifests carried a content hash: its settings could not be checked."""


def canonical_sha256(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON: the same whatever the key order or indentation of its file."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest`` (parsed JSON) with its ``content_sha256`` and, when ``BERTWISE_MODEL_KEY`` is set, its signature."""
    sealed = {key: value for key, value in manifest.items() if key not in (SEAL, SIGNATURE)}
    sealed[SEAL] = {key: _digests(value) for key, value in sealed.items()}
    key = os.environ.get(KEY_ENV)
    if key:
        sealed[SIGNATURE] = {"hmac_sha256": _hmac(key, sealed)}
    return sealed


def require_key_to_rewrite(file: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse to rewrite a signed manifest without the key: the folder would lose its signature without a word."""
    if SIGNATURE in manifest and not os.environ.get(KEY_ENV):
        raise ModelError(
            f"{file} is signed under {KEY_ENV}, which is not set here; rewriting it would drop the signature, and "
            f"the folder would no longer load where the key is required: set {KEY_ENV} to the key it was signed "
            "with and run again"
        )


def check_seal(file: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse a manifest edited since it was written (naming the fields that changed), or unsigned under a key."""
    recorded = manifest.get(SEAL)
    key = os.environ.get(KEY_ENV)
    if recorded is None and int(manifest["format_version"]) < SEALED_SINCE:
        _accept_unsealed(file, manifest, key)
        return
    if not isinstance(recorded, dict) or not _well_formed(recorded):
        raise ModelError(
            f"{file} was edited after it was written: its '{SEAL}' is {_shown(recorded)}; expected the sha256 of "
            f"every other key, as bertwise writes it; refusing to load it ({_REMEDY})"
        )
    changes = _changes(manifest, recorded)
    if changes:
        more = f" (and {len(changes) - 1} more: {', '.join(changes[1:4])})" if changes[1:] else ""
        raise ModelError(
            f"{file} was edited after it was written: {changes[0]}{more}, so its {SEAL} no longer matches; refusing "
            f"to load it ({_REMEDY})"
        )
    if key:
        _check_signature(file, manifest, key)


def _accept_unsealed(file: Path, manifest: Mapping[str, Any], key: str | None) -> None:
    """A manifest of a format older than content hashes: loaded with a warning, unless a key demands a signature."""
    if "file_bytes" in manifest:  # written by a bertwise that seals: its content_sha256 was removed and the version cut
        raise ModelError(
            f"{file} was edited after it was written: '{SEAL}' removed and format_version set to "
            f"{manifest['format_version']}, but it lists file_bytes, which only sealed manifests have; refusing to "
            f"load it ({_REMEDY})"
        )
    if key:
        raise ModelError(
            f"{file} has no signature (format_version {manifest['format_version']}, written before bertwise "
            f"signed manifests); {KEY_ENV} is set, so only folders saved under that key load: {_REMEDY} with it"
        )
    warnings.warn(
        f"{file} has no {SEAL} (format_version {manifest['format_version']}): its files are checked, but an "
        f"edit to its settings or scores would go unnoticed; {_REMEDY} to get one",
        UnverifiedManifestWarning,
        stacklevel=6,  # the caller of bertwise.load
    )


def _digests(value: Any) -> str | dict[str, str]:
    """The sha256 of ``value``, or of each field of a non-empty object, so that an edit is named down to its field."""
    if isinstance(value, dict) and value:
        return {field: canonical_sha256(inner) for field, inner in value.items()}
    return canonical_sha256(value)


def _well_formed(recorded: Any) -> bool:
    def digest(value: Any) -> bool:
        return isinstance(value, str) and len(value) == 64

    return isinstance(recorded, dict) and all(
        digest(value) or (isinstance(value, dict) and all(digest(inner) for inner in value.values()))
        for value in recorded.values()
    )


def _changes(manifest: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[str]:
    """Each field that differs from what ``recorded`` hashed, in words: "'backbone.max_length' was changed"."""
    changes: list[str] = []
    covered = [name for name in manifest if name not in (SEAL, SIGNATURE)]
    for name in covered + [name for name in recorded if name not in manifest]:
        expected, value = recorded.get(name), manifest.get(name)
        if name not in recorded:
            changes.append(f"'{_escaped(name)}' was added")
        elif name not in manifest:
            changes.append(f"'{_escaped(name)}' was removed")
        elif isinstance(expected, dict) and isinstance(value, dict) and value:
            found = {field: canonical_sha256(inner) for field, inner in value.items()}
            for field in [*found, *(f for f in expected if f not in found)]:
                if field not in expected:
                    changes.append(f"'{_escaped(name)}.{_escaped(field)}' was added")
                elif field not in found:
                    changes.append(f"'{_escaped(name)}.{_escaped(field)}' was removed")
                elif found[field] != expected[field]:
                    changes.append(f"'{_escaped(name)}.{_escaped(field)}' was changed")
        elif isinstance(expected, dict) or canonical_sha256(value) != expected:
            changes.append(f"'{_escaped(name)}' was changed")
    return changes


def _escaped(name: str) -> str:
    """``name`` as JSON writes it inside quotes: a key holding a line break or control character stays on one line."""
    return json.dumps(str(name))[1:-1][:80]


def _check_signature(file: Path, manifest: Mapping[str, Any], key: str) -> None:
    signature = manifest.get(SIGNATURE)
    found = signature.get("hmac_sha256") if isinstance(signature, dict) else None
    if not isinstance(found, str):
        raise ModelError(
            f"{file} is not signed; {KEY_ENV} is set, so only folders saved under that key load ({_REMEDY} with it)"
        )
    unsigned = {name: value for name, value in manifest.items() if name != SIGNATURE}
    if not hmac.compare_digest(found, _hmac(key, unsigned)):
        raise ModelError(
            f"{file}: its signature does not match under {KEY_ENV}: it was edited after it was signed, or signed with "
            f"another key; refusing to load it ({_REMEDY} under this key)"
        )


def _hmac(key: str, manifest: Mapping[str, Any]) -> str:
    text = json.dumps(manifest, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hmac.new(key.encode("utf-8"), text.encode("ascii"), hashlib.sha256).hexdigest()


# Files ---------------------------------------------------------------------------------------------------------------


def check_listed_name(file: Path, relative: str) -> None:
    """Refuse a listed pickle or code file: bertwise saves safetensors, JSON, text and ONNX, never what runs code."""
    if Path(relative).suffix.lower() in _UNSAFE_SUFFIXES:
        raise ModelError(
            f"{file} lists '{_escaped(relative)}', a pickle or code file that loading it could run; expected "
            f"safetensors weights and JSON settings only, as bertwise saves them (remove it and {_REMEDY})"
        )


def check_listed_file(folder: Path, relative: str, size: Any) -> Path:
    """The listed file's path once it is a regular file inside ``folder`` and of the recorded ``size`` (if any).

    Decided from the file system alone, before a byte is read: a symbolic link out of the folder, a named pipe that
    would block a reader, a device or a file grown to gigabytes is refused at once.
    """
    path = folder / relative
    if not path.exists() and not path.is_symlink():
        raise ModelError(
            f"model folder '{folder}' is incomplete: '{relative}' is missing (manifest.json lists it); copy the whole "
            f"folder, or {_REMEDY}"
        )
    try:
        real = path.resolve()
        inside = real.is_relative_to(folder.resolve())
        mode = real.stat().st_mode if inside else 0
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise ModelError(f"'{path}' cannot be followed ({error}); expected the file bertwise saved there") from None
    if not inside:
        raise ModelError(
            f"'{path}' is a symbolic link to '{real}', outside the model folder; expected the file itself (copy the "
            "folder with its files, not links to them)"
        )
    if not stat.S_ISREG(mode):
        raise ModelError(f"'{path}' is {_file_kind(mode)}; expected the regular file bertwise saved there")
    if isinstance(size, int) and not isinstance(size, bool):
        found = real.stat().st_size
        if found != size:
            raise ModelError(
                # A size that differs means a sha256 that differs, found without reading the file.
                f"'{path}' has sha256 unlike its record: it is {found:,} bytes but manifest.json expects {size:,}, so "
                f"it was changed, cut short or damaged after saving; refusing to load it (copy the folder again, or "
                f"{_REMEDY})"
            )
    return path


def check_file_contents(path: Path, relative: str) -> None:
    """Refuse a listed file that its parser would choke on: by suffix, JSON, text and safetensors files."""
    if path.suffix == ".safetensors":
        _check_safetensors(path)
    elif path.suffix in (".json", ".txt"):
        data = _read_bounded(path, TEXT_MAX_BYTES)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = f"{error.reason} at byte {error.start}"
            raise ModelError(f"'{path}' is not UTF-8 text ({reason}); {_EXPECTED}") from None
        if path.suffix == ".json":
            value = parse_json(path, text)
            if relative.count("/") == 1 and path.name == "config.json":  # the network's, not a module's settings
                _check_config(path, value)


_EXPECTED = f"expected the file as bertwise saved it ({_REMEDY})"


def parse_json(path: Path, text: str) -> Any:
    """``text`` parsed, refusing what ``json.loads`` would raise or accept silently (a key given twice)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # Counted once: list.count per key was quadratic, 26 s on the 30,522 keys of a BERT tokenizer.json.
        twice = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        if twice:
            raise ModelError(f"'{path}' gives the key {twice[0]!r} twice; {_EXPECTED}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as error:
        raise ModelError(
            f"'{path}' is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); {_EXPECTED}"
        ) from None
    except RecursionError:
        raise ModelError(f"'{path}' nests JSON too deeply to read; {_EXPECTED}") from None


def read_bounded_text(path: Path, limit: int) -> str:
    """The UTF-8 text of ``path``, refused before reading when it is larger than ``limit`` bytes."""
    data = _read_bounded(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ModelError(
            f"{path} is not UTF-8 text ({error.reason}); expected the JSON manifest bertwise wrote"
        ) from None


def _read_bounded(path: Path, limit: int) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise ModelError(f"'{path}' is {size:,} bytes; expected at most {limit:,} for this kind of file")
    with open(path, "rb") as handle:
        return handle.read(limit + 1)


def _check_config(path: Path, config: Any) -> None:
    if not isinstance(config, dict):
        raise ModelError(f"'{path}' holds a JSON {_json_kind(config)}; expected a transformers config object")
    for name in _CONFIG_SIZES:
        value = config.get(name)
        if name in config and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ModelError(f"'{path}': {name} is {_shown(value)}; expected a whole number above 0 ({_REMEDY})")
    if not isinstance(config.get("model_type", ""), str):
        raise ModelError(f"'{path}': model_type is {_shown(config.get('model_type'))}; expected a string")


def _check_safetensors(path: Path) -> None:
    """Open through safetensors itself (header, offsets and length are its own checks), then scan every float."""
    import torch
    from safetensors import SafetensorError, safe_open

    floats = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    try:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                tensor = handle.get_tensor(name)
                if tensor.dtype in floats and not bool(torch.isfinite(tensor).all()):
                    bad = int((~torch.isfinite(tensor)).sum())
                    raise ModelError(
                        f"'{path}': tensor '{name}' holds {bad:,} NaN or infinite value{'s' if bad != 1 else ''}; "
                        "a model with them predicts nothing meaningful, so it is refused "
                        f"({_REMEDY})"
                    )
    except ModelError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ModelError(f"'{path}' cannot be read as safetensors ({reason}); {_EXPECTED}") from None


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    return "missing" if value is None else f"a {_json_kind(value)} ({json.dumps(value, default=str)[:60]})"
