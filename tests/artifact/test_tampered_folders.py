"""Tampered model folders, as a hostile or careless user leaves them: each is refused with one line naming the file or
the manifest field, never loaded with settings or scores that differ from what was saved, never a library traceback.

Three kinds of edit, each a table of cases run on real folders saved from tiny random BERTs:
- casual: manifest.json edited by hand, its content_sha256 left as it was (the settings, metrics, labels, hashes);
- re-hashed: a file damaged and its sha256, size and the manifest's content hash recomputed to match, as someone who
  knows the format would do: what the file checks behind the hashes must still refuse with one line;
- damaged places: missing files, links, folders and pipes where files were, files added beside the weights.
A few changes are harmless and load (documented in docs/model-folder.md): they are listed in HARMLESS.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.artifact.folder import MANIFEST, load, save_model
from bertwise.artifact.integrity import KEY_ENV, SEAL, UnverifiedManifestWarning, seal
from bertwise.data.dataset import LabeledTexts
from bertwise.exceptions import ModelError
from tests.conftest import toy_data

TEXTS = ["the striker scored a late goal", "cold rain tonight", "fry the onions in butter"]
METRICS = {"macro_f1": 0.912, "accuracy": 0.917, "interval": [0.85, 0.97]}
STRATEGIES = ("probe", "finetune", "zero-shot", "zero-shot-nli")


def toy() -> LabeledTexts:
    texts, labels = toy_data()
    return LabeledTexts(tuple(texts), tuple(labels), source="toy.csv")


@pytest.fixture(scope="module")
def saved(tiny_bert: str, tiny_nli_bert: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per strategy, saved with metrics (zero-shot NLI without: the 'metrics: null' case)."""
    from bertwise.strategies.finetune import FinetuneClassifier
    from bertwise.strategies.probe import ProbeClassifier
    from bertwise.strategies.zero_shot import ZeroShotClassifier

    estimators = {
        "probe": ProbeClassifier(model=tiny_bert, cv=2, device="cpu"),
        "finetune": FinetuneClassifier(model=tiny_bert, device="cpu").set_params(
            min_steps=2, min_epochs=1, max_epochs=1, batch_size=8
        ),
        "zero-shot": ZeroShotClassifier(model=tiny_bert, mode="embedding", device="cpu"),
        "zero-shot-nli": ZeroShotClassifier(model=tiny_nli_bert, mode="nli", device="cpu"),
    }
    root = tmp_path_factory.mktemp("saved")
    folders = {}
    data = toy()
    for name, estimator in estimators.items():
        estimator.fit(list(data.texts), list(data.labels))
        metrics = None if name == "zero-shot-nli" else METRICS
        save_model(estimator, root / name, training=data, metrics=metrics)
        folders[name] = root / name
    return folders


# Ways to tamper -------------------------------------------------------------------------------------------------------


def read(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def write(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    """Edit manifest.json by hand, leaving its content_sha256 as it was."""

    def tamper(folder: Path) -> None:
        manifest = read(folder)
        change(manifest)
        write(folder, manifest)

    return tamper


def resealed(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    """Edit manifest.json and recompute its content hash: what the structural checks behind the hash must refuse."""

    def tamper(folder: Path) -> None:
        manifest = read(folder)
        change(manifest)
        write(folder, seal(manifest))

    return tamper


def rehash(folder: Path, *relatives: str) -> None:
    """Record the files' current sha256 and size in the manifest and seal it again: a forged 'matching hash'."""
    manifest = read(folder)
    for relative in relatives:
        data = (folder / relative).read_bytes()
        manifest["files"][relative] = hashlib.sha256(data).hexdigest()
        manifest["file_bytes"][relative] = len(data)
    write(folder, seal(manifest))


def replaced(relative: str, make: Callable[[bytes], bytes], *, forge: bool = True) -> Callable[[Path], None]:
    """Replace a listed file's bytes with ``make(old bytes)``; ``forge``: re-hash it in the manifest."""

    def tamper(folder: Path) -> None:
        path = folder / relative
        path.write_bytes(make(path.read_bytes()))
        if forge:
            rehash(folder, relative)

    return tamper


def json_file(relative: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    """Edit a listed JSON file and re-hash it: ``change`` returns the new value (or None after editing in place)."""

    def make(old: bytes) -> bytes:
        value = json.loads(old)
        changed = change(value)
        return json.dumps(value if changed is None else changed).encode()

    return replaced(relative, make)


def safetensors_file(relative: str, change: Callable[[dict[str, np.ndarray]], Any]) -> Callable[[Path], None]:
    """Rewrite a listed safetensors file's tensors (a valid file, but not the saved one) and re-hash it."""

    def tamper(folder: Path) -> None:
        from safetensors import safe_open
        from safetensors.numpy import load_file, save_file

        path = folder / relative
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata()
        arrays = load_file(str(path))
        change(arrays)
        save_file(arrays, str(path), metadata=metadata)
        rehash(folder, relative)

    return tamper


def swap(first: str, second: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        a, b = folder / first, folder / second
        data = a.read_bytes()
        a.write_bytes(b.read_bytes())
        b.write_bytes(data)

    return tamper


def first_tensor(arrays: dict[str, np.ndarray], prefix: str = "") -> str:
    return sorted(name for name in arrays if name.startswith(prefix) and arrays[name].ndim == 2)[0]


def drop_tensor(prefix: str) -> Callable[[dict[str, np.ndarray]], None]:
    return lambda arrays: arrays.pop(first_tensor(arrays, prefix))


def widen_tensor(arrays: dict[str, np.ndarray]) -> None:
    name = first_tensor(arrays)
    arrays[name] = np.concatenate([arrays[name], arrays[name][:1]], axis=0)


def nan_in(name: str) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = arrays[name].copy()
        arrays[name].flat[0] = np.nan

    return change


def garbage(_: bytes) -> bytes:
    return bytes(range(256)) * 8


def pickled_head(_: bytes) -> bytes:
    class Payload:  # what a pickle-based attack ships: an object whose loading runs code
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pickled code ran",))

    return pickle.dumps({"coef": Payload()})


def remove(relative: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        path = folder / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return tamper


def folder_instead(relative: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        (folder / relative).unlink()
        (folder / relative).mkdir()

    return tamper


def link_outside(relative: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        outside = folder.parent / f"outside-{Path(relative).name}"
        shutil.copyfile(folder / relative, outside)  # the same bytes: only where it lives is wrong
        (folder / relative).unlink()
        (folder / relative).symlink_to(outside)

    return tamper


def pipe_instead(relative: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        (folder / relative).unlink()
        os.mkfifo(folder / relative)  # a reader would wait forever for a writer

    return tamper


def added(relative: str, data: bytes, *, listed: bool = False) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
        if listed:
            rehash(folder, relative)

    return tamper


def signed_then(change: Callable[[dict[str, Any]], Any] | None, key_at_load: str) -> Callable[[Path], None]:
    """Sign the manifest under key 'saved-key', then (optionally) edit and reseal it without the key."""

    def tamper(folder: Path) -> None:
        os.environ[KEY_ENV] = "saved-key"
        try:
            write(folder, seal(read(folder)))
        finally:
            del os.environ[KEY_ENV]
        if change is not None:
            resealed(change)(folder)
        os.environ[KEY_ENV] = key_at_load  # the test's monkeypatch removes it afterwards

    return tamper


def text_edit(make: Callable[[str], str]) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
        (folder / MANIFEST).write_text(make(text), encoding="utf-8")

    return tamper


def legacy_under_key(folder: Path) -> None:
    """A format 1 folder (no content hash: loads with a warning) where BERTWISE_MODEL_KEY demands a signature."""
    manifest = read(folder)
    for key in (SEAL, "file_bytes"):
        manifest.pop(key)
    write(folder, {**manifest, "format_version": 1})
    os.environ[KEY_ENV] = "saved-key"


def downgraded(manifest: dict[str, Any]) -> None:
    manifest.pop(SEAL)
    manifest["format_version"] = 1
    manifest["backbone"]["max_length"] = 8


def set_in(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda manifest: manifest[section].__setitem__(key, value)


def reorder_classes(manifest: dict[str, Any]) -> None:
    manifest["classes"] = manifest["classes"][::-1]


def rename_classes(manifest: dict[str, Any]) -> None:
    manifest["classes"] = [f"{label}!" for label in manifest["classes"]]


def weights_path(folder: Path) -> Path:
    """The network's weights: model/ for a fine-tuned model, backbone/ for the others."""
    directory = folder / "model" if (folder / "model").is_dir() else folder / "backbone"
    return directory / "model.safetensors"


def relative_to(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()


def cut_weights(folder: Path, *, forge: bool) -> None:
    path = weights_path(folder)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    if forge:
        rehash(folder, relative_to(folder, path))


def nan_weights(folder: Path) -> None:
    relative = relative_to(folder, weights_path(folder))
    safetensors_file(relative, lambda arrays: nan_in(first_tensor(arrays))(arrays))(folder)


def damage_config(folder: Path, make: Callable[[bytes], bytes]) -> None:
    replaced(relative_to(folder, weights_path(folder).with_name("config.json")), make)(folder)


def edit_config(folder: Path, **values: Any) -> None:
    json_file(relative_to(folder, weights_path(folder).with_name("config.json")), lambda c: c.update(values))(folder)


def unsigned_under_key() -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        os.environ[KEY_ENV] = "saved-key"  # the folder was saved without one

    return tamper


def outside_dense_layer() -> dict[str, Any]:
    return {
        "path": "../../elsewhere",
        "in_features": 32,
        "out_features": 8,
        "bias": True,
        "activation": "torch.nn.modules.activation.Tanh",
        "residual": False,
        "sha256": "0" * 64,
    }


# The table ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    strategies: tuple[str, ...]
    tamper: Callable[[Path], None]
    message: str  # a regular expression the one-line ModelError must match


ALL = STRATEGIES
FROZEN = ("probe", "zero-shot", "zero-shot-nli")  # a copied backbone/ folder
EDITED = r"manifest\.json was edited after it was written: "

CASES = [
    # Casual edits of manifest.json: content_sha256 left as it was.
    Case(
        "max_length", FROZEN, edit(set_in("backbone", "max_length", 8)), EDITED + r"'backbone\.max_length' was changed"
    ),
    Case(
        "pooling",
        ("probe", "zero-shot"),
        edit(set_in("backbone", "pooling", "cls")),
        r"'backbone\.pooling' was changed",
    ),
    Case(
        "normalize", ("probe", "zero-shot"), edit(set_in("backbone", "normalize", True)), r"'backbone\.normalize' was"
    ),
    Case("finetune-length", ("finetune",), edit(set_in("finetune", "max_length", 8)), r"'finetune\.max_length' was"),
    Case(
        "metric", ("probe", "finetune", "zero-shot"), edit(set_in("metrics", "macro_f1", 0.99)), r"'metrics\.macro_f1'"
    ),
    Case("interval", ("probe",), edit(set_in("metrics", "interval", [0.95, 0.99])), r"'metrics\.interval' was changed"),
    Case("metric-added", ("probe",), edit(set_in("metrics", "f1_weighted", 0.99)), r"'metrics\.f1_weighted' was added"),
    Case(
        "metric-dropped", ("probe",), edit(lambda m: m["metrics"].pop("accuracy")), r"'metrics\.accuracy' was removed"
    ),
    Case("metrics-forged", ("zero-shot-nli",), edit(lambda m: m.update(metrics={"macro_f1": 1.0})), r"'metrics' was"),
    Case("metrics-erased", ("probe",), edit(lambda m: m.update(metrics=None)), r"'metrics' was changed"),
    Case("labels-renamed", ALL, edit(rename_classes), EDITED + r"'classes' was changed"),
    Case("labels-reordered", ALL, edit(reorder_classes), EDITED + r"'classes' was changed"),
    Case("label-dropped", ("probe",), edit(lambda m: m["classes"].pop()), r"'classes' was changed"),
    Case("C", ("probe",), edit(set_in("probe", "C", 1000.0)), r"'probe\.C' was changed"),
    Case("param", ("probe", "finetune"), edit(set_in("params", "seed", 7)), r"'params\.seed' was changed"),
    Case("descriptions", ("zero-shot",), edit(lambda m: m["zero_shot"]["descriptions"].reverse()), r"'zero_shot\.desc"),
    Case("mode", ("zero-shot",), edit(set_in("zero_shot", "mode", "nli")), r"'zero_shot\.mode' was changed"),
    Case("precision", ("probe",), edit(lambda m: m.update(precision="float16")), r"'precision' was changed"),
    Case("strategy", ("probe",), edit(lambda m: m.update(strategy="finetune")), r"'strategy' was changed"),
    Case("file-hash", ("probe",), edit(set_in("files", "head.safetensors", "0" * 64)), r"'files\.head\.safetensors'"),
    Case("file-size", ("probe",), edit(set_in("file_bytes", "backbone/vocab.txt", 1)), r"'file_bytes\.backbone/vocab"),
    Case("file-unlisted", ("probe",), edit(lambda m: m["files"].pop("backbone/vocab.txt")), r"'files\.backbone/vocab"),
    Case("training-data", ("probe",), edit(set_in("training_data", "rows", 10_000)), r"'training_data\.rows' was"),
    Case("key-added", ("probe",), edit(lambda m: m.update(note="trust me")), EDITED + r"'note' was added"),
    Case("key-removed", ("probe",), edit(lambda m: m.pop("details")), EDITED + r"'details' was removed"),
    Case("field-added", ("probe",), edit(set_in("backbone", "lowercase", False)), r"'backbone\.lowercase' was added"),
    Case("seal-removed", ("probe",), edit(lambda m: m.pop(SEAL)), r"its 'content_sha256' is missing"),
    Case("seal-garbage", ("probe",), edit(lambda m: m.update({SEAL: "ok"})), r"its 'content_sha256' is a string"),
    Case("seal-entry", ("probe",), edit(lambda m: m[SEAL].update(classes="f" * 64)), r"'classes' was changed"),
    Case("version-lowered", ("probe",), edit(lambda m: m.update(format_version=1)), r"'format_version' was changed"),
    Case("downgrade", FROZEN, edit(downgraded), r"'content_sha256' removed and format_version set to 1"),
    Case("version-newer", ("probe",), edit(lambda m: m.update(format_version=3)), r"format_version 3 was written by"),
    Case("version-text", ("probe",), edit(lambda m: m.update(format_version="2")), r"format_version is '2'; expected"),
    Case("version-zero", ("probe",), edit(lambda m: m.update(format_version=0)), r"format_version is 0; expected"),
    Case(
        "format", ("probe",), edit(lambda m: m.update(format="other")), r"format is 'other'; expected 'bertwise-model'"
    ),
    # manifest.json itself damaged.
    Case(
        "manifest-cut", ALL, text_edit(lambda t: t[: len(t) // 2]), r"manifest\.json' is not valid JSON \(.* line \d+"
    ),
    Case("manifest-empty", ("probe",), text_edit(lambda t: ""), r"manifest\.json' is not valid JSON"),
    Case("manifest-array", ("probe",), text_edit(lambda t: f"[{t}]"), r"holds a JSON list; expected the object"),
    Case(
        "manifest-twice",
        ("probe",),
        text_edit(lambda t: t.replace("{", '{"strategy": "probe",', 1)),
        r"'strategy' twice",
    ),
    Case("manifest-binary", ("probe",), lambda f: (f / MANIFEST).write_bytes(b"\xff\xfe{\x00"), r"is not UTF-8 text"),
    Case("manifest-missing", ("probe",), remove(MANIFEST), r"has no manifest\.json; expected a model folder"),
    Case("manifest-folder", ("probe",), folder_instead(MANIFEST), r"manifest\.json' is a folder; expected the regular"),
    Case("manifest-link", ("probe",), link_outside(MANIFEST), r"manifest\.json' is a symbolic link to .*, outside"),
    # Structural edits with the content hash recomputed (as test_folder.py's edit_manifest does, more of them here).
    Case("path-outside", ("probe",), resealed(set_in("files", "../x", "0" * 64)), r"lists the file '\.\./x'; expected"),
    Case("duplicate-label", ("probe",), resealed(lambda m: m.update(classes=["a", "a", "b"])), r"lists a label twice"),
    Case("listed-pickle", ("probe",), added("backbone/pytorch_model.bin", b"x", listed=True), r"a pickle or code file"),
    Case(
        "dense-record", ("probe",), resealed(lambda m: m["backbone"].update(dense=[1])), r"a Dense layer is 1; expected"
    ),
    Case(
        "dense-path",
        ("zero-shot",),
        resealed(lambda m: m["backbone"].update(dense=[outside_dense_layer()])),
        r"a Dense layer's path is '\.\./\.\./elsewhere'; expected a folder inside backbone/",
    ),
    Case(
        "param-kind",
        ("probe", "finetune"),
        resealed(set_in("params", "seed", "x")),
        r"params\.seed is \"x\"; expected a JSON number like its default 0",
    ),
    Case(
        "batch-size",
        ("finetune", "zero-shot"),
        resealed(set_in("params", "batch_size", 0)),
        r"params\.batch_size is 0; expected a whole number of at least 1",
    ),
    # Files whose sha256 no longer matches the manifest (nothing forged).
    Case(
        "bit-flip",
        FROZEN,
        replaced("backbone/model.safetensors", lambda b: b[:-1] + bytes([b[-1] ^ 1]), forge=False),
        r"model\.safetensors' has sha256 \w+\.\.\. but manifest\.json expects",
    ),
    Case(
        "cut-short",
        ALL,
        lambda f: cut_weights(f, forge=False),
        r"has sha256 unlike its record: it is [\d,]+ bytes but manifest\.json expects [\d,]+",
    ),
    Case(
        "swapped",
        ("probe",),
        swap("backbone/tokenizer_config.json", "backbone/config.json"),
        r"config\.json' has sha256 unlike",
    ),
    # Files damaged and re-hashed: the forged hash matches, the file checks refuse them.
    Case("weights-cut", ALL, lambda f: cut_weights(f, forge=True), r"cannot be read as safetensors"),
    Case("weights-garbage", FROZEN, replaced("backbone/model.safetensors", garbage), r"cannot be read as safetensors"),
    Case(
        "weights-empty", ("finetune",), replaced("model/model.safetensors", lambda b: b""), r"cannot be read as safet"
    ),
    Case("head-garbage", ("probe",), replaced("head.safetensors", garbage), r"head\.safetensors' cannot be read as"),
    Case(
        "head-empty", ("probe",), replaced("head.safetensors", lambda b: b""), r"head\.safetensors' cannot be read as"
    ),
    Case("head-pickled", ("probe",), replaced("head.safetensors", pickled_head), r"head\.safetensors' cannot be read"),
    Case(
        "head-shape", ("probe",), safetensors_file("head.safetensors", widen_tensor), r"holds .*; expected float coef"
    ),
    Case(
        "head-nan", ("probe",), safetensors_file("head.safetensors", nan_in("coef")), r"'coef' holds 1 NaN or infinite"
    ),
    Case(
        "head-columns",
        ("probe",),
        safetensors_file("head.safetensors", lambda a: a.update(classes=a["classes"][::-1])),
        r"increasing int classes",
    ),
    Case(
        "weights-shape",
        FROZEN,
        safetensors_file("backbone/model.safetensors", widen_tensor),
        r"passed its file checks but cannot be loaded \(RuntimeError: ",
    ),
    Case("weights-nan", ("zero-shot",), nan_weights, r"NaN or infinite"),
    Case(
        "weight-missing",
        ("finetune",),
        safetensors_file("model/model.safetensors", drop_tensor("bert.encoder")),
        r"model' lacks 1 of the network's weights \(bert\.encoder",
    ),
    Case("config-not-json", ALL, lambda f: damage_config(f, lambda b: b[:-5]), r"config\.json' is not valid JSON"),
    Case("config-array", ("probe",), json_file("backbone/config.json", lambda c: [c]), r"holds a JSON array; expected"),
    Case(
        "config-size",
        FROZEN,
        lambda f: edit_config(f, hidden_size="32"),
        r"hidden_size is a string .*; expected a whole",
    ),
    Case(
        "config-vocab",
        ("probe",),
        json_file("backbone/config.json", lambda c: c.update(vocab_size=0)),
        r"vocab_size is a number \(0\); expected a whole number above 0",
    ),
    Case(
        "config-labels",
        ("finetune",),
        json_file("model/config.json", lambda c: c["id2label"].update({"0": "x"})),
        r"was trained for the classes \['x', .*, but manifest\.json lists",
    ),
    Case(
        "config-num-labels",
        ("finetune",),
        lambda f: edit_config(f, id2label={"0": "a", "1": "b"}),
        r"'classifier\.bias' of shape \[3\] but config\.json makes it \[2\] \(and 1 more\)",
    ),
    Case(
        "config-no-entailment",
        ("zero-shot-nli",),
        lambda f: edit_config(f, id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2}),
        r"names no 'entailment' label",
    ),
    Case(
        "tokenizer-not-json",
        FROZEN,
        replaced("backbone/tokenizer.json", lambda b: b"{"),
        r"tokenizer\.json' is not val",
    ),
    Case(
        "tokenizer-wrong",
        ("probe",),
        replaced("backbone/tokenizer.json", lambda b: b'{"model": 1}'),
        r"passed its file checks but cannot be loaded \(KeyError: 'added_tokens'\)",
    ),
    Case(
        "vocab-binary",
        ("probe",),
        replaced("backbone/vocab.txt", lambda b: b"\xff\xfe" + b),
        r"vocab\.txt' is not UTF-8",
    ),
    # Damaged places.
    Case(
        "file-missing", ALL, lambda f: weights_path(f).unlink(), r"is incomplete: '\w+/model\.safetensors' is missing"
    ),
    Case(
        "tokenizer-missing",
        ("probe", "finetune"),
        lambda f: weights_path(f).with_name("tokenizer.json").unlink(),
        r"/tokenizer\.json' is missing",
    ),
    Case(
        "weights-folder", ("probe",), folder_instead("backbone/model.safetensors"), r"model\.safetensors' is a folder"
    ),
    Case("weights-link", ("probe",), link_outside("backbone/model.safetensors"), r"is a symbolic link to .*, outside"),
    Case("config-pipe", ("probe",), pipe_instead("backbone/config.json"), r"config\.json' is a named pipe"),
    Case(
        "extra-weights", FROZEN, added("backbone/pytorch_model.bin", b"\x80\x04."), r"pytorch_model\.bin' is not listed"
    ),
    Case(
        "extra-finetune",
        ("finetune",),
        added("model/model-2.safetensors", b"x"),
        r"model-2\.safetensors' is not listed",
    ),
    # Signed folders (BERTWISE_MODEL_KEY): a recomputed content hash no longer passes.
    Case("unsigned", ("probe",), unsigned_under_key(), r"is not signed; BERTWISE_MODEL_KEY is set"),
    Case("legacy-under-key", ("probe",), legacy_under_key, r"has no signature \(format_version 1, written before"),
    Case("other-key", ("probe",), signed_then(None, key_at_load="another-key"), r"signature does not match under"),
    Case(
        "resealed-signed", ("probe",), signed_then(set_in("backbone", "max_length", 8), "saved-key"), r"is not signed"
    ),
]


def _params() -> list[Any]:
    return [pytest.param(case, strategy, id=f"{case.id}-{strategy}") for case in CASES for strategy in case.strategies]


@pytest.mark.parametrize(("case", "strategy"), _params())
def test_a_tampered_folder_is_refused_with_one_line(
    case: Case, strategy: str, saved: dict[str, Path], tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(saved[strategy], tmp_path / "model"))
    try:
        case.tamper(folder)
        with pytest.raises(ModelError) as refused:
            load(folder, device="cpu")
    finally:
        os.environ.pop(KEY_ENV, None)
    message = str(refused.value)
    assert "\n" not in message and "Traceback" not in message
    assert re.search(case.message, message), message


def test_the_table_tries_at_least_forty_kinds_of_damage_on_every_strategy() -> None:
    assert len(CASES) >= 40 and len(_params()) >= 100
    assert {strategy for case in CASES for strategy in case.strategies} == set(STRATEGIES)


# Harmless changes: they load, and predict exactly what the folder as saved predicts -----------------------------------


def reformatted(folder: Path) -> None:
    """manifest.json re-indented with its keys sorted, as an editor or a JSON formatter leaves it."""
    (folder / MANIFEST).write_text(json.dumps(read(folder), indent=4, sort_keys=True), encoding="utf-8")


def crlf(folder: Path) -> None:
    text = (folder / MANIFEST).read_text(encoding="utf-8")
    (folder / MANIFEST).write_bytes(text.replace("\n", "\r\n").encode("utf-8"))


HARMLESS = {
    "manifest-reformatted": reformatted,
    "manifest-crlf": crlf,
    "model-card-edited": added("README.md", b"---\nlicense: mit\n---\n# Trained on the March export\n"),
    "notes-beside-the-model": added("NOTES.md", b"trained on the March export"),
    "hidden-file-in-weights": added("backbone/.DS_Store", b"\x00\x00\x00\x01Bud1"),
    "onnx-folder-unlisted": added("onnx/notes.txt", b"not an export"),
}


@pytest.mark.parametrize("change", list(HARMLESS.values()), ids=list(HARMLESS))
def test_a_harmless_change_loads_and_predicts_the_same(
    change: Callable[[Path], None], saved: dict[str, Path], tmp_path: Path
) -> None:
    original = load(saved["probe"], device="cpu").predict_proba(TEXTS)
    folder = Path(shutil.copytree(saved["probe"], tmp_path / "model"))
    change(folder)
    np.testing.assert_array_equal(load(folder, device="cpu").predict_proba(TEXTS), original)


def test_a_folder_from_before_content_hashes_loads_with_a_warning(saved: dict[str, Path], tmp_path: Path) -> None:
    folder = Path(shutil.copytree(saved["probe"], tmp_path / "model"))
    manifest = read(folder)
    for key in (SEAL, "file_bytes"):  # what format_version 1 did not write
        manifest.pop(key)
    write(folder, {**manifest, "format_version": 1})
    with pytest.warns(UnverifiedManifestWarning, match=r"has no content_sha256 \(format_version 1\): its files are"):
        loaded = load(folder, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), load(saved["probe"], device="cpu").predict_proba(TEXTS))


def test_a_folder_signed_under_a_key_loads_under_it(
    saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    monkeypatch.setenv(KEY_ENV, "saved-key")
    texts, labels = toy_data()
    probe = ProbeClassifier(model=str(saved["probe"] / "backbone"), cv=2, device="cpu").fit(texts, labels)
    manifest = save_model(probe, tmp_path / "model", training=toy())
    assert set(manifest["signature"]) == {"hmac_sha256"}
    np.testing.assert_array_equal(
        load(tmp_path / "model", device="cpu").predict_proba(TEXTS), probe.predict_proba(TEXTS)
    )
    monkeypatch.delenv(KEY_ENV)
    load(tmp_path / "model", device="cpu")  # without the key, the content hash alone is checked


def test_a_signed_manifest_is_not_rewritten_without_its_key(
    saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertwise.artifact.folder import read_manifest, write_manifest

    folder = Path(shutil.copytree(saved["probe"], tmp_path / "model"))
    unsigned = read_manifest(folder)
    monkeypatch.setenv(KEY_ENV, "saved-key")
    write_manifest(folder, unsigned)  # as bertwise export rewrites it to list its ONNX file: signed now
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ModelError, match=r"is signed under BERTWISE_MODEL_KEY, which is not set here; rewriting it"):
        write_manifest(folder, read_manifest(folder))
    monkeypatch.setenv(KEY_ENV, "saved-key")
    write_manifest(folder, {**read_manifest(folder), "note": "kept signed"})
    assert load(folder, device="cpu").manifest_["note"] == "kept signed"


def test_a_loaded_nli_model_was_warmed_inside_the_checks(saved: dict[str, Path]) -> None:
    loaded = load(saved["zero-shot-nli"], device="cpu")
    assert loaded.pipeline_ is not None  # its network loaded (and would have been refused) before load returned
    assert loaded.predict_proba(TEXTS).shape == (3, 3)


# The same refusals through the server and the command line ---------------------------------------------------------


def tampered_copy(saved: dict[str, Path], tmp_path: Path, strategy: str, case_id: str) -> tuple[Path, Case]:
    case = next(case for case in CASES if case.id == case_id)
    folder = Path(shutil.copytree(saved[strategy], tmp_path / "model"))
    case.tamper(folder)
    return folder, case


def test_the_server_refuses_a_tampered_folder_before_serving(saved: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from bertwise.serve import create_app

    folder, case = tampered_copy(saved, tmp_path, "probe", "head-pickled")
    with pytest.raises(ModelError, match=case.message):
        create_app(folder, device="cpu")


@pytest.mark.parametrize(
    ("command", "case_id"),
    [
        (["predict", "{folder}", "{input}", "--out", "{out}", "--device", "cpu"], "max_length"),
        (["predict", "{folder}", "{input}", "--device", "cpu"], "weights-cut"),
        (["serve", "{folder}", "--port", "0", "--device", "cpu"], "metric"),
        (["export", "{folder}", "--onnx"], "head-pickled"),
    ],
    ids=["predict-edited-setting", "predict-forged-weights", "serve-edited-metric", "export-pickled-head"],
)
def test_the_cli_prints_one_line_and_exits_2(
    command: list[str], case_id: str, saved: dict[str, Path], tmp_path: Path
) -> None:
    folder, case = tampered_copy(saved, tmp_path, "probe", case_id)
    (tmp_path / "input.csv").write_text("text\n" + "\n".join(TEXTS) + "\n")
    paths = {"folder": str(folder), "input": str(tmp_path / "input.csv"), "out": str(tmp_path / "out.csv")}
    argv = [sys.executable, "-m", "bertwise", *(part.format(**paths) for part in command)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert lines[-1].startswith("bertwise: error: ") and re.search(case.message, lines[-1]), done.stderr
    assert not (tmp_path / "out.csv").exists()
