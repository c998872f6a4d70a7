"""The model folder on tiny random BERTs: save -> load gives the same probabilities, moved or not; bad folders are
refused with a message that names what was expected, what was found and which file."""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.artifact.folder import FORMAT, FORMAT_VERSION, MANIFEST, load, save_model, verify_model_folder
from bertwise.data.dataset import LabeledTexts
from bertwise.exceptions import ConfigError, ModelError
from tests.conftest import toy_data

UNSEEN = ["the striker scored a late goal", "cold rain tonight", "fry the onions in butter", "an unrelated sentence"]


def toy(labels: list[Any] | None = None) -> LabeledTexts:
    texts, names = toy_data()
    return LabeledTexts(tuple(texts), tuple(labels or names), source="toy.csv")


def fit_and_save(estimator: Any, folder: Path, data: LabeledTexts | None = None) -> Any:
    data = data or toy()
    estimator.fit(list(data.texts), list(data.labels))
    save_model(estimator, folder, training=data)
    return estimator


@pytest.fixture(scope="module")
def probe_folder(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from bertwise.strategies.probe import ProbeClassifier

    folder = tmp_path_factory.mktemp("probe") / "model"
    return fit_and_save(ProbeClassifier(model=tiny_bert, device="cpu"), folder), folder


@pytest.fixture()
def probe_copy(probe_folder: tuple[Any, Path], tmp_path: Path) -> Path:
    """A copy of the saved probe that a test may damage."""
    return Path(shutil.copytree(probe_folder[1], tmp_path / "copy"))


# Round trips ---------------------------------------------------------------------------------------------------------


def test_a_loaded_probe_gives_the_fitted_probes_probabilities_exactly(probe_folder: tuple[Any, Path]) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    fitted, folder = probe_folder
    loaded = load(folder, device="cpu")
    texts = list(toy().texts) + UNSEEN
    assert isinstance(loaded, ProbeClassifier)
    assert loaded.classes_.tolist() == ["cooking", "sports", "weather"]
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), rtol=0, atol=1e-12)
    assert loaded.predict(texts).tolist() == fitted.predict(texts).tolist()
    assert loaded.C_ == fitted.C_
    assert loaded.manifest_["strategy"] == "probe" and loaded.folder_ == folder.resolve()


def test_a_binary_probe_with_integer_labels_round_trips_exactly(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    texts, names = toy_data()
    keep = [i for i, name in enumerate(names) if name != "cooking"]
    data = LabeledTexts(
        tuple(texts[i] for i in keep), tuple(1 if names[i] == "sports" else 0 for i in keep), source="binary"
    )
    fitted = fit_and_save(ProbeClassifier(model=tiny_bert, device="cpu"), tmp_path / "model", data)
    loaded = load(tmp_path / "model", device="cpu")
    assert loaded.manifest_["classes"] == [0, 1]  # integer labels stay integers
    assert loaded.classes_.tolist() == [0, 1] and all(type(label) is int for label in loaded.predict(UNSEEN).tolist())
    assert loaded.head_.coef_.shape == (1, 32)  # scikit-learn's single row of weights for two classes
    np.testing.assert_allclose(loaded.predict_proba(UNSEEN), fitted.predict_proba(UNSEEN), rtol=0, atol=1e-12)


def test_a_loaded_finetuned_model_gives_the_same_probabilities(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.finetune import FinetuneClassifier

    estimator = FinetuneClassifier(model=tiny_bert, device="cpu").set_params(
        min_steps=2, min_epochs=1, max_epochs=1, batch_size=8
    )
    fitted = fit_and_save(estimator, tmp_path / "model")
    loaded = load(tmp_path / "model", device="cpu")
    assert isinstance(loaded, FinetuneClassifier)
    assert sorted(loaded.manifest_["files"]) == sorted(
        f"model/{p.name}" for p in (tmp_path / "model" / "model").iterdir()
    )
    assert not list((tmp_path / "model").rglob("*.bin"))  # safetensors only
    np.testing.assert_allclose(loaded.predict_proba(UNSEEN), fitted.predict_proba(UNSEEN), rtol=0, atol=1e-7)
    assert loaded.manifest_["params"]["max_epochs"] == 1 and loaded.manifest_["finetune"]["max_length"] == 64


def test_a_loaded_zero_shot_model_gives_the_same_probabilities(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.zero_shot import ZeroShotClassifier

    descriptions = {"sports": "A text about a sports game."}
    fitted = fit_and_save(
        ZeroShotClassifier(model=tiny_bert, mode="embedding", label_descriptions=descriptions, device="cpu"),
        tmp_path / "model",
    )
    loaded = load(tmp_path / "model", device="cpu")
    assert loaded.manifest_["zero_shot"]["mode"] == "embedding"
    assert loaded.manifest_["zero_shot"]["descriptions"][1] == "A text about a sports game."
    np.testing.assert_allclose(loaded.predict_proba(UNSEEN), fitted.predict_proba(UNSEEN), rtol=0, atol=1e-12)


def test_a_zero_shot_nli_model_round_trips(tiny_nli_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.zero_shot import ZeroShotClassifier

    fitted = fit_and_save(ZeroShotClassifier(model=tiny_nli_bert, device="cpu"), tmp_path / "model")
    loaded = load(tmp_path / "model", device="cpu")
    assert loaded.mode_ == "nli" and loaded.model == str((tmp_path / "model" / "backbone").resolve())
    np.testing.assert_allclose(loaded.predict_proba(UNSEEN), fitted.predict_proba(UNSEEN), rtol=0, atol=1e-6)


def test_a_moved_folder_loads_and_predicts_the_same(probe_folder: tuple[Any, Path], tmp_path: Path) -> None:
    fitted, folder = probe_folder
    moved = Path(shutil.copytree(folder, tmp_path / "elsewhere" / "renamed"))
    shutil.move(str(moved), tmp_path / "final")  # a second move: nothing may point back at either earlier place
    loaded = load(tmp_path / "final", device="cpu")
    assert loaded.encoder_.backbone.path == str((tmp_path / "final" / "backbone").resolve())
    assert str(folder) not in json.dumps(loaded.manifest_["files"])
    np.testing.assert_allclose(loaded.predict_proba(UNSEEN), fitted.predict_proba(UNSEEN), rtol=0, atol=1e-12)


def test_the_manifest_says_what_the_model_is(probe_folder: tuple[Any, Path], tiny_bert: str) -> None:
    from bertwise.artifact.folder import data_sha256
    from bertwise.backbone.resolve import resolve_backbone

    _, folder = probe_folder
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["format_version"] == FORMAT_VERSION
    assert manifest["strategy"] == "probe" and manifest["metrics"] is None
    assert {"device", "progress"}.isdisjoint(manifest["params"]) and manifest["params"]["cv"] == 5
    assert manifest["training_data"]["rows"] == 18 and manifest["training_data"]["classes"] == 3
    texts, labels = toy_data()
    assert manifest["training_data"]["sha256"] == data_sha256(texts, labels)
    assert manifest["backbone"]["sha256"] == resolve_backbone(tiny_bert).sha256
    assert manifest["backbone"]["pooling"] == "mean"
    assert manifest["probe"]["C"] > 0 and manifest["precision"] in ("float32", "bfloat16")
    listed = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST, "README.md"}
    assert set(manifest["files"]) == listed  # every file but the model card (tests/artifact/test_card.py)
    for relative, digest in manifest["files"].items():
        assert hashlib.sha256((folder / relative).read_bytes()).hexdigest() == digest
        assert manifest["file_bytes"][relative] == (folder / relative).stat().st_size
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.joblib"))


def test_the_content_hash_covers_every_key_down_to_each_field(probe_folder: tuple[Any, Path]) -> None:
    from bertwise.artifact.integrity import SEAL, canonical_sha256

    manifest = json.loads((probe_folder[1] / MANIFEST).read_text())
    recorded = manifest[SEAL]
    assert set(recorded) == set(manifest) - {SEAL} and "signature" not in manifest
    assert recorded["backbone"]["max_length"] == canonical_sha256(manifest["backbone"]["max_length"])
    assert recorded["classes"] == canonical_sha256(manifest["classes"])  # a list: hashed whole, order included
    assert recorded["metrics"] == canonical_sha256(None)  # saved without metrics: null is covered too
    assert (
        canonical_sha256({"a": 1, "b": [1.0]})
        == canonical_sha256({"b": [1.0], "a": 1})
        != canonical_sha256({"a": 1, "b": [1]})
    )


def test_the_training_data_fingerprint_keeps_text_and_integer_labels_apart() -> None:
    from bertwise.artifact.folder import data_sha256

    assert data_sha256(["a", "b"], ["1", "2"]) != data_sha256(["a", "b"], [1, 2])
    assert data_sha256(["a", "b"], [1, 2]) != data_sha256(["b", "a"], [2, 1])  # order matters


# Inference remembers nothing ----------------------------------------------------------------------------------------


def test_a_loaded_model_streams_without_memo_or_disk_cache(
    probe_folder: tuple[Any, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    from bertwise.backbone import encoder as encoder_module

    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "cache"))
    shared_before = dict(encoder_module._ENCODERS)
    loaded = load(probe_folder[1], device="cpu")
    words = sorted({word for text in toy().texts for word in text.split()})
    rng = np.random.default_rng(0)

    def chunk(size: int) -> list[str]:  # unique texts, so no cache could ever have served them
        return [" ".join(rng.choice(words, size=8)) + f" {i}" for i in range(size)]

    process = psutil.Process()
    loaded.predict_proba(chunk(500))  # warm-up: allocator pools, thread start-up
    gc.collect()
    before = process.memory_info().rss
    for _ in range(6):
        loaded.predict_proba(chunk(500))
    gc.collect()
    grown_mb = (process.memory_info().rss - before) / 1e6
    assert loaded.encoder_._memo == {}
    assert not (tmp_path / "cache").exists()  # not a single user text reached the disk cache
    assert encoder_module._ENCODERS == shared_before  # nor did loading touch the shared, remembering encoders
    assert grown_mb < 25, f"memory grew by {grown_mb:.1f} MB over 3,000 texts"
    assert loaded.encoder_.cache_stats.computed == 3_500


def test_a_refit_after_loading_uses_the_shared_encoder_again(probe_folder: tuple[Any, Path]) -> None:
    loaded = load(probe_folder[1], device="cpu")
    texts, labels = toy_data()
    loaded.fit(texts, labels)
    assert not hasattr(loaded, "encoder_")
    assert loaded.predict(texts).shape == (18,)


# Refusals ------------------------------------------------------------------------------------------------------------


def edit_manifest(folder: Path, change: Any) -> None:
    """Change the manifest and seal it again, as someone who knows the format would: what the checks behind the content
    hash must still refuse (tests/artifact/test_tampered_folders.py covers edits that leave the hash as it was)."""
    from bertwise.artifact.integrity import seal

    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(seal(manifest)))


def test_tampered_weights_are_refused(probe_copy: Path) -> None:
    weights = probe_copy / "backbone" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match=r"model\.safetensors' has sha256 \w+\.\.\. but manifest\.json expects"):
        load(probe_copy, device="cpu")


def test_a_tampered_head_is_refused(probe_copy: Path) -> None:
    (probe_copy / "head.safetensors").write_bytes((probe_copy / "head.safetensors").read_bytes() + b" ")
    with pytest.raises(ModelError, match=r"head\.safetensors' has sha256 .* refusing to load it"):
        load(probe_copy, device="cpu")


def test_a_missing_file_is_refused(probe_copy: Path) -> None:
    (probe_copy / "backbone" / "vocab.txt").unlink()
    with pytest.raises(ModelError, match=r"is incomplete: 'backbone/vocab\.txt' is missing"):
        load(probe_copy, device="cpu")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["files"].pop("head.safetensors"), r"lists no 'head\.safetensors'; a probe model folder needs it"),
        (lambda m: m.update(format="something-else"), r"format is 'something-else'; expected 'bertwise-model'"),
        (
            lambda m: m.update(format_version=FORMAT_VERSION + 1),
            rf"format_version {FORMAT_VERSION + 1} was written by .* reads format_version {FORMAT_VERSION}; upgrade",
        ),
        (
            lambda m: m.update(strategy="magic"),
            r"strategy is 'magic'; expected one of zero-shot, probe, finetune, lora, setfit",
        ),
        (lambda m: m.update(classes=["only"]), r"'classes' is a array .*; expected a list of at least 2 labels"),
        (
            lambda m: m["files"].update({"../outside": "0" * 64}),
            r"lists the file '\.\./outside'; expected a path inside",
        ),
        (lambda m: m["files"].update({"head.safetensors": "abc"}), r"sha256 of 'head\.safetensors' is 'abc'; expected"),
        (lambda m: m.update(classes=["weather", "sports", "cooking"]), r"was trained for the classes .* manifest"),
        (lambda m: m["params"].update(magic=1), r"params name 'magic', unknown to this bertwise's ProbeClassifier"),
    ],
)
def test_a_bad_manifest_is_refused_with_what_was_expected(probe_copy: Path, change: Any, message: str) -> None:
    edit_manifest(probe_copy, change)
    with pytest.raises(ModelError, match=message):
        load(probe_copy, device="cpu")


def test_a_manifest_that_is_not_json_is_refused(probe_copy: Path) -> None:
    (probe_copy / MANIFEST).write_text('{"format": "bertwise-model", ')
    with pytest.raises(ModelError, match=r"manifest\.json' is not valid JSON \(.* at line 1, column \d+\)"):
        load(probe_copy, device="cpu")


def test_a_folder_without_a_manifest_is_refused(probe_copy: Path, tmp_path: Path) -> None:
    (probe_copy / MANIFEST).unlink()
    with pytest.raises(
        ModelError, match=r"has no manifest\.json; expected a model folder .* \(found: README\.md, backbone, head"
    ):
        load(probe_copy, device="cpu")
    with pytest.raises(ModelError, match=r"model folder not found: '.*nowhere'"):
        load(tmp_path / "nowhere")


def test_an_unlisted_file_in_the_weights_folder_is_refused(probe_copy: Path) -> None:
    (probe_copy / "backbone" / "model-extra.safetensors").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"model-extra\.safetensors' is not listed in manifest\.json"):
        verify_model_folder(probe_copy)
    (probe_copy / "backbone" / "model-extra.safetensors").unlink()
    (probe_copy / "README.md").write_text("notes beside the model are fine")
    verify_model_folder(probe_copy)


# Writing the folder ------------------------------------------------------------------------------------------------


def test_foreign_content_is_never_overwritten(probe_folder: tuple[Any, Path], tmp_path: Path) -> None:
    fitted, _ = probe_folder
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"'.*mine' exists and is not a bertwise model folder \(it holds thesis"):
        save_model(fitted, tmp_path / "mine", training=toy())
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"the model folder '.*file' is a file; expected a new or empty folder"):
        save_model(fitted, tmp_path / "file", training=toy())


def test_an_earlier_model_folder_is_replaced_but_not_files_added_to_it(
    probe_folder: tuple[Any, Path], tmp_path: Path, tiny_bert: str
) -> None:
    from bertwise.strategies.zero_shot import ZeroShotClassifier

    fitted, _ = probe_folder
    target = tmp_path / "model"
    target.mkdir()  # an empty folder is fine
    save_model(fitted, target, training=toy())
    zero_shot = fit_and_save(ZeroShotClassifier(model=tiny_bert, mode="embedding", device="cpu"), target)
    assert load(target, device="cpu").manifest_["strategy"] == "zero-shot" and zero_shot.mode_ == "embedding"
    assert not (target / "head.safetensors").exists()  # nothing of the old model is left
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging or old folder left behind
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds files its manifest does not list \(notes\.txt\)"):
        save_model(fitted, target, training=toy())


def test_a_failed_save_leaves_no_half_folder(
    probe_folder: tuple[Any, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertwise.strategies import probe as probe_module

    def broken_copy(source: Path, destination: Path) -> None:
        destination.mkdir(parents=True)
        (destination / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(probe_module, "copy_backbone", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        save_model(probe_folder[0], tmp_path / "model", training=toy())
    assert list(tmp_path.iterdir()) == []


def test_an_unfitted_model_cannot_be_saved(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    with pytest.raises(ConfigError, match="cannot save an unfitted ProbeClassifier"):
        save_model(ProbeClassifier(model=tiny_bert), tmp_path / "model", training=toy())


def test_the_package_exports_load_and_train() -> None:
    import bertwise
    from bertwise.inference.loading import load as load_any_runtime
    from bertwise.inference.predict_file import predict_file
    from bertwise.onnx.export import export_model_folder
    from bertwise.training import train

    assert bertwise.load is load_any_runtime and bertwise.train is train
    assert bertwise.predict_file is predict_file and bertwise.export_onnx is export_model_folder
    assert {"load", "train", "predict_file", "export_onnx"} <= set(bertwise.__all__)
    assert callable(bertwise.serve.serve) and callable(bertwise.serve.create_app)


@pytest.mark.integration
def test_the_embedded_model_round_trips_self_contained(embedded_model_path: str, tmp_path: Path) -> None:
    from bertwise.artifact.folder import folder_size
    from bertwise.backbone.resolve import DEFAULT_MODEL_ID, DEFAULT_MODEL_SHA256
    from bertwise.strategies.probe import ProbeClassifier

    fitted = fit_and_save(ProbeClassifier(cv=2, device="cpu"), tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / MANIFEST).read_text())
    assert manifest["backbone"]["id"] == DEFAULT_MODEL_ID and manifest["backbone"]["sha256"] == DEFAULT_MODEL_SHA256
    assert manifest["files"]["backbone/model.safetensors"] == DEFAULT_MODEL_SHA256  # a byte-exact copy
    assert {"backbone/modules.json", "backbone/1_Pooling/config.json"} <= set(manifest["files"])
    assert manifest["backbone"]["pooling"] == "mean" and manifest["backbone"]["normalize"] is True
    assert 90e6 < folder_size(tmp_path / "model") < 100e6
    moved = Path(shutil.move(str(tmp_path / "model"), tmp_path / "moved"))
    loaded = load(moved, device="cpu")
    assert loaded.encoder_.backbone.path.startswith(str(moved.resolve()))
    np.testing.assert_allclose(loaded.predict_proba(UNSEEN), fitted.predict_proba(UNSEEN), rtol=0, atol=1e-12)


def test_a_folder_holding_only_hidden_files_is_not_replaced(probe_folder: tuple[Any, Path], tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / ".git" / "HEAD").write_text("ref: refs/heads/main")
    with pytest.raises(ConfigError, match=r"'.*repo' exists and is not a bertwise model folder \(it holds \.git\)"):
        save_model(probe_folder[0], tmp_path / "repo", training=toy())
    assert (tmp_path / "repo" / ".git" / "HEAD").exists()
