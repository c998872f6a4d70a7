"""ONNX export: the exported graphs compute what bertwise's torch path computes, on tiny BERTs and the real model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from bertwise.backbone.encoder import Encoder, load_tokenizer, tokenize  # noqa: E402
from bertwise.backbone.resolve import resolve_backbone  # noqa: E402
from bertwise.onnx.export import (  # noqa: E402
    DEFAULT_SAMPLE_TEXTS,
    ONNX_FILE,
    OnnxClassifier,
    OnnxEncoder,
    OnnxExportError,
    OnnxParityError,
    OnnxRunner,
    OnnxUnavailableError,
    default_check_texts,
    export_classifier_onnx,
    export_encoder_onnx,
    export_model_folder,
    load_onnx,
    quantize_onnx,
    read_check_texts,
    require_onnx,
    softmax,
)
from tests.conftest import TOY_TEXTS, _write_tiny_bert  # noqa: E402

# Mixed lengths, so that length-sorted batches pad differently; one text longer than the tiny model's 64 tokens, so
# truncation is exercised; one empty text ([CLS] [SEP] only).
MIXED_TEXTS = [
    "the team won",
    "heavy rain is expected tomorrow and a sunny and warm afternoon ahead",
    "",
    " ".join(example for examples in TOY_TEXTS.values() for example in examples),  # about 110 tokens
    "bake the bread",
    "the coach praised the players after the game",
    "snow",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def tiny_encoder_onnx(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_encoder_onnx(tiny_bert, tmp_path_factory.mktemp("onnx") / "encoder.onnx")


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny-cls"), id2label={0: "cooking", 1: "sports", 2: "weather"})


def test_encoder_matches_torch_float32(tiny_bert: str, tiny_encoder_onnx: Path) -> None:
    torch_vectors = Encoder(resolve_backbone(tiny_bert), device="cpu", precision="float32").encode(
        MIXED_TEXTS, cache=False
    )
    # batch_size 3: several batches of different widths, so order restoration and padding are both exercised.
    onnx_vectors = OnnxEncoder(tiny_encoder_onnx, tiny_bert, batch_size=3).encode(MIXED_TEXTS)
    assert onnx_vectors.dtype == np.float32
    assert onnx_vectors.shape == torch_vectors.shape == (len(MIXED_TEXTS), 32)
    assert cosines(onnx_vectors, torch_vectors).min() >= 0.9999
    np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=1e-5)


def test_encoder_graph_takes_ids_and_mask_with_dynamic_axes(tiny_encoder_onnx: Path, tiny_bert: str) -> None:
    runner = OnnxEncoder(tiny_encoder_onnx, tiny_bert)
    inputs = runner.session.get_inputs()
    assert [graph_input.name for graph_input in inputs] == ["input_ids", "attention_mask"]
    assert all(graph_input.shape == ["batch", "sequence"] for graph_input in inputs)
    assert runner.session.get_outputs()[0].shape == ["batch", 32]
    assert runner.dimension == 32
    backbone = resolve_backbone(tiny_bert)
    assert runner.metadata["kind"] == "encoder"
    assert runner.metadata["pooling"] == backbone.pooling
    assert runner.metadata["max_length"] == str(backbone.max_length)
    assert runner.max_length == backbone.max_length


def test_one_text_and_no_text(tiny_encoder_onnx: Path, tiny_bert: str) -> None:
    runner = OnnxEncoder(tiny_encoder_onnx, tiny_bert)
    assert runner.encode([]).shape == (0, 32)
    single = runner.encode(["the team won"])
    batched = runner.encode(["the team won", MIXED_TEXTS[3]])
    # A text padded inside a wider batch gets the vector it gets alone: padding is masked out of the graph too.
    np.testing.assert_allclose(single[0], batched[0], atol=1e-5)


def test_cls_pooling_follows_the_override(tiny_bert: str, tmp_path: Path) -> None:
    path = export_encoder_onnx(tiny_bert, tmp_path / "cls.onnx", pooling="cls")
    torch_vectors = Encoder(resolve_backbone(tiny_bert, pooling="cls"), device="cpu", precision="float32").encode(
        MIXED_TEXTS, cache=False
    )
    onnx_runner = OnnxEncoder(path, tiny_bert)
    assert onnx_runner.metadata["pooling"] == "cls"
    np.testing.assert_allclose(onnx_runner.encode(MIXED_TEXTS), torch_vectors, atol=1e-5)


def test_classifier_logits_match_torch(tiny_classifier: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertwise.strategies.finetune_loop import batched_logits

    path = export_classifier_onnx(tiny_classifier, tmp_path / "classifier.onnx")
    network = AutoModelForSequenceClassification.from_pretrained(tiny_classifier, use_safetensors=True)
    tokenizer = load_tokenizer(str(tiny_classifier))
    ids = tokenize(tokenizer, MIXED_TEXTS, resolve_backbone(str(tiny_classifier)).max_length).input_ids
    torch_logits = batched_logits(network, ids, tokenizer.pad_token_id or 0, torch.device("cpu"), 4, None)

    runner = OnnxClassifier(path, tiny_classifier, batch_size=2)
    onnx_logits = runner.logits(MIXED_TEXTS)
    assert onnx_logits.shape == (len(MIXED_TEXTS), 3)
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    probabilities = runner.predict_proba(MIXED_TEXTS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert (probabilities.argmax(axis=1) == torch_logits.argmax(axis=1)).all()
    assert runner.metadata["labels"] == "cooking,sports,weather"


def test_softmax_is_stable_for_large_logits() -> None:
    probabilities = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(probabilities, [[1.0, 0.0], [0.5, 0.5]], atol=1e-12)


def test_quantized_encoder_keeps_shape_and_metadata(tiny_encoder_onnx: Path, tiny_bert: str, tmp_path: Path) -> None:
    path = quantize_onnx(tiny_encoder_onnx, tmp_path / "int8.onnx")
    runner = OnnxEncoder(path, tiny_bert)
    assert runner.metadata["quantized"] == "int8-dynamic"
    assert runner.metadata["pooling"] == resolve_backbone(tiny_bert).pooling
    vectors = runner.encode(MIXED_TEXTS)
    assert vectors.shape == (len(MIXED_TEXTS), 32) and np.isfinite(vectors).all()
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # None in sys.modules makes the import fail
    with pytest.raises(OnnxUnavailableError, match=r"pip install 'bertwise\[onnx\]'"):
        require_onnx()


def test_missing_and_broken_files_are_clear_errors(tiny_bert: str, tmp_path: Path) -> None:
    with pytest.raises(OnnxExportError, match="does not exist"):
        OnnxEncoder(tmp_path / "absent.onnx", tiny_bert)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(OnnxExportError, match="cannot load"):
        OnnxEncoder(broken, tiny_bert)


@pytest.mark.integration
def test_embedded_model_matches_torch_float32(embedded_model_path: str, tmp_path: Path) -> None:
    texts = [
        "how do I activate my card?",
        "What is the exchange rate for a transfer to Europe?",
        "ok",
        "Patients with chronic heart failure were randomised to receive either the drug or placebo for 12 weeks; "
        "the primary end point was the change in left ventricular ejection fraction measured by echocardiography, "
        "and secondary end points included hospitalisation, exercise capacity and quality of life. " * 4,
        "my card payment was declined twice at the same shop",
    ]
    path = export_encoder_onnx(embedded_model_path, tmp_path / "minilm.onnx")
    torch_vectors = Encoder(resolve_backbone(embedded_model_path), device="cpu", precision="float32").encode(
        texts, cache=False
    )
    onnx_vectors = OnnxEncoder(path, embedded_model_path, batch_size=2).encode(texts)
    assert onnx_vectors.shape == (len(texts), 384)
    assert cosines(onnx_vectors, torch_vectors).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)  # normalised like the model


# Model folders ------------------------------------------------------------------------------------------------------

UNSEEN = ["the striker scored a late goal", "cold rain tonight", "fry the onions in butter", "an unrelated sentence"]


def _toy() -> Any:
    from bertwise.data.dataset import LabeledTexts
    from tests.conftest import toy_data

    texts, labels = toy_data()
    return LabeledTexts(tuple(texts), tuple(labels), source="toy.csv")


def _save(estimator: Any, folder: Path) -> Path:
    from bertwise.artifact.folder import save_model

    data = _toy()
    estimator.fit(list(data.texts), list(data.labels))
    save_model(estimator, folder, training=data)
    return folder


@pytest.fixture(scope="module")
def probe_folder(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bertwise.strategies.probe import ProbeClassifier

    return _save(ProbeClassifier(model=tiny_bert, device="cpu"), tmp_path_factory.mktemp("probe") / "model")


@pytest.fixture()
def probe_copy(probe_folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(probe_folder, tmp_path / "copy"))


def _state(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_probe_folder_exports_and_predicts_like_torch(probe_copy: Path) -> None:
    from bertwise.artifact.folder import load, sha256_file, verify_model_folder

    summary = export_model_folder(probe_copy, check_texts=MIXED_TEXTS + UNSEEN, check_source="test texts")
    assert summary.path == probe_copy / ONNX_FILE and summary.path.is_file() and not summary.quantized
    assert summary.parity.passed and summary.parity.agreement == 1.0
    assert summary.parity.max_probability_difference < 1e-4
    manifest = verify_model_folder(probe_copy)  # the new file is listed and its sha256 checks
    assert manifest["files"][ONNX_FILE] == sha256_file(probe_copy / ONNX_FILE)
    assert manifest["onnx"]["kind"] == "encoder" and manifest["onnx"]["quantized"] is None
    # 10 of the 11: the empty text is not checked (predict gives blank rows no label).
    assert manifest["onnx"]["parity"]["agreement"] == 1.0 and manifest["onnx"]["parity"]["texts"] == 10
    assert not [p for p in probe_copy.iterdir() if p.name.startswith(".")]  # no staging folder left behind

    torch_model = load(probe_copy, device="cpu", precision="float32")  # the torch path still loads
    onnx_model = load_onnx(probe_copy)
    texts = list(_toy().texts) + UNSEEN
    assert onnx_model.classes_.tolist() == torch_model.classes_.tolist()
    np.testing.assert_allclose(onnx_model.predict_proba(texts), torch_model.predict_proba(texts), atol=1e-5)
    assert onnx_model.predict(texts).tolist() == torch_model.predict(texts).tolist()
    assert onnx_model.manifest_["onnx"]["file"] == ONNX_FILE and onnx_model.folder_ == probe_copy.resolve()
    assert onnx_model.predict_proba([]).shape == (0, 3) and onnx_model.predict([]).tolist() == []


def test_a_finetuned_folder_exports_and_predicts_like_torch(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.artifact.folder import load
    from bertwise.strategies.finetune import FinetuneClassifier

    estimator = FinetuneClassifier(model=tiny_bert, device="cpu").set_params(
        min_steps=2, min_epochs=1, max_epochs=1, batch_size=8
    )
    folder = _save(estimator, tmp_path / "model")
    summary = export_model_folder(folder)  # the bundled sample: long paragraphs are truncated at 64 tokens here
    assert summary.parity.passed and summary.parity.texts == DEFAULT_SAMPLE_TEXTS
    onnx_model = load_onnx(folder)
    torch_model = load(folder, device="cpu", precision="float32")
    assert onnx_model.manifest_["onnx"]["kind"] == "classifier"
    np.testing.assert_allclose(onnx_model.predict_proba(UNSEEN), torch_model.predict_proba(UNSEEN), atol=1e-5)
    assert onnx_model.predict(UNSEEN).tolist() == torch_model.predict(UNSEEN).tolist()


def test_a_zero_shot_folder_is_refused(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.strategies.zero_shot import ZeroShotClassifier

    folder = _save(ZeroShotClassifier(model=tiny_bert, mode="embedding", device="cpu"), tmp_path / "model")
    before = _state(folder)
    with pytest.raises(
        OnnxExportError, match="holds a zero-shot model; ONNX export covers probe, setfit, finetune, lora"
    ):
        export_model_folder(folder)
    assert _state(folder) == before


def test_a_lora_folder_exports_with_its_adapters_merged_and_predicts_like_torch(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.artifact.folder import load
    from bertwise.strategies.lora import LoraClassifier

    # A learning rate high enough that the adapters move the logits: a merge that dropped them would show.
    estimator = LoraClassifier(model=tiny_bert, device="cpu", learning_rate=5e-2, seed=1).set_params(
        min_steps=6, min_epochs=1, max_epochs=3, batch_size=8
    )
    folder = _save(estimator, tmp_path / "model")
    summary = export_model_folder(folder, check_texts=MIXED_TEXTS + UNSEEN, check_source="test texts")
    assert summary.parity.passed and summary.parity.max_probability_difference < 1e-4
    onnx_model, torch_model = load_onnx(folder), load(folder, device="cpu", precision="float32")
    assert onnx_model.manifest_["onnx"]["kind"] == "classifier"
    texts = list(_toy().texts) + UNSEEN
    np.testing.assert_allclose(onnx_model.predict_proba(texts), torch_model.predict_proba(texts), atol=1e-5)
    # The adapters moved the predictions, so a graph that left them out would fail the check above.
    assert not np.allclose(_base_probabilities(torch_model, texts), onnx_model.predict_proba(texts), atol=1e-3)


def _base_probabilities(lora_model: Any, texts: list[str]) -> np.ndarray:
    """What the LoRA model predicts with its adapters switched off (the base weights and its trained head)."""
    with lora_model.network_.disable_adapter():
        return np.asarray(lora_model.predict_proba(texts))


def test_a_setfit_folder_exports_its_trained_body_and_predicts_like_torch(tiny_bert: str, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from bertwise.artifact.folder import load
    from bertwise.strategies.setfit import SetFitClassifier

    estimator = SetFitClassifier(model=tiny_bert, seed=3, max_pairs=30, num_iterations=1, batch_size=8, device="cpu")
    folder = _save(estimator, tmp_path / "model")
    summary = export_model_folder(folder, check_texts=MIXED_TEXTS + UNSEEN, check_source="test texts")
    assert summary.parity.passed and summary.parity.agreement == 1.0
    onnx_model, torch_model = load_onnx(folder), load(folder, device="cpu", precision="float32")
    assert onnx_model.manifest_["onnx"]["kind"] == "encoder"
    texts = list(_toy().texts) + UNSEEN
    np.testing.assert_allclose(onnx_model.predict_proba(texts), torch_model.predict_proba(texts), atol=1e-5)
    assert onnx_model.predict(texts).tolist() == torch_model.predict(texts).tolist()


def test_a_failed_parity_check_leaves_the_folder_as_it_was(probe_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _state(probe_copy)
    run = OnnxRunner.run
    # An export that mixes up rows: every text gets another text's vector, so labels differ.
    monkeypatch.setattr(OnnxRunner, "run", lambda self, texts: run(self, texts)[::-1])
    with pytest.raises(OnnxParityError, match=r"failed its parity check: labels agree on .*expected at least 100%"):
        export_model_folder(probe_copy, check_texts=list(_toy().texts), check_source="toy")
    assert _state(probe_copy) == before
    assert not [p for p in probe_copy.iterdir() if p.name.startswith(".")]


def test_a_quantized_export_is_recorded_as_int8(probe_copy: Path) -> None:
    summary = export_model_folder(probe_copy, quantize=True, min_agreement=0.0)
    assert summary.quantized and summary.parity.min_agreement == 0.0
    manifest = load_onnx(probe_copy).manifest_
    assert manifest["onnx"]["quantized"] == "int8-dynamic"
    assert load_onnx(probe_copy).runner_.metadata["quantized"] == "int8-dynamic"
    # Exporting again (float32) replaces the int8 file and its record.
    export_model_folder(probe_copy, check_texts=UNSEEN, check_source="unseen")
    assert load_onnx(probe_copy).manifest_["onnx"]["quantized"] is None


def test_a_changed_onnx_file_is_refused(probe_copy: Path) -> None:
    from bertwise.exceptions import ModelError

    export_model_folder(probe_copy, check_texts=UNSEEN, check_source="unseen")
    with open(probe_copy / ONNX_FILE, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="model.onnx' has sha256 .* but manifest.json expects"):
        load_onnx(probe_copy)


def test_the_model_card_tells_of_the_export_unless_the_user_edited_it(probe_copy: Path, tmp_path: Path) -> None:
    import hashlib

    from bertwise.artifact.folder import verify_model_folder

    export_model_folder(probe_copy, check_texts=UNSEEN, check_source="unseen")
    card = (probe_copy / "README.md").read_text(encoding="utf-8")
    assert f"An ONNX export is in `onnx/model.onnx` (float32; on {len(UNSEEN)} texts (unseen) it gave the" in card
    assert "`bertwise predict copy texts.csv --runtime onnx`" in card
    manifest = verify_model_folder(probe_copy)
    assert manifest["model_card"]["sha256"] == hashlib.sha256((probe_copy / "README.md").read_bytes()).hexdigest()

    (probe_copy / "README.md").write_text("# my own card\n", encoding="utf-8")
    export_model_folder(probe_copy, quantize=True, min_agreement=0.0)
    assert (probe_copy / "README.md").read_text(encoding="utf-8") == "# my own card\n"
    assert verify_model_folder(probe_copy)["model_card"] == manifest["model_card"]


def test_a_folder_without_an_export_says_how_to_make_one(probe_folder: Path) -> None:
    with pytest.raises(OnnxExportError, match=r"has no ONNX export .*bertwise export .* --onnx"):
        load_onnx(probe_folder)


def test_saving_over_an_exported_folder_replaces_it(probe_copy: Path, tiny_bert: str) -> None:
    from bertwise.strategies.probe import ProbeClassifier

    export_model_folder(probe_copy, check_texts=UNSEEN, check_source="unseen")
    _save(ProbeClassifier(model=tiny_bert, device="cpu"), probe_copy)  # not refused as foreign content
    assert not (probe_copy / ONNX_FILE).exists()


def test_the_bundled_sample_mixes_sentences_and_paragraphs() -> None:
    texts = default_check_texts()
    words = sorted(len(text.split()) for text in texts)
    assert len(texts) == DEFAULT_SAMPLE_TEXTS == len(set(texts))
    assert words[0] < 15 and words[-1] > 200  # short sentences and paragraphs past 256 tokens


def test_check_texts_are_read_from_a_file_and_spread_over_it(tmp_path: Path) -> None:
    from bertwise.exceptions import DataError

    path = tmp_path / "texts.csv"
    path.write_text("id,body\n" + "".join(f"{i},text number {i}\n" for i in range(10)) + "10,\n")
    assert read_check_texts(path, text_col="body", limit=5) == [f"text number {i}" for i in (0, 2, 4, 6, 8)]
    assert len(read_check_texts(path, text_col="body")) == 10  # the empty row is left out
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": ""}\n{"text": "  "}\n')
    with pytest.raises(DataError, match="no non-empty text"):
        read_check_texts(empty)


# The command ----------------------------------------------------------------------------------------------------------


def test_the_command_exports_and_reports_parity(probe_copy: Path, toy_csv: Path) -> None:
    result = bertwise_cli("export", str(probe_copy), "--onnx", "--check-data", str(toy_csv))
    assert result.returncode == 0, result.stderr
    assert f"wrote {probe_copy / ONNX_FILE}" in result.stdout
    assert "parity on 18 texts" in result.stdout and "labels agree on 100.0% (18/18" in result.stdout
    assert (probe_copy / ONNX_FILE).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs a format: pass --onnx"),
        (("--onnx", "--min-agreement", "101"), "--min-agreement is a percentage between 0 and 100"),
        (("--onnx", "--check-rows", "0"), "--check-rows must be at least 1"),
    ],
)
def test_the_command_refuses_bad_options(probe_folder: Path, args: tuple[str, ...], message: str) -> None:
    result = bertwise_cli("export", str(probe_folder), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_command_names_a_missing_folder(tmp_path: Path) -> None:
    result = bertwise_cli("export", str(tmp_path / "absent"), "--onnx")
    assert result.returncode == 2 and "model folder not found" in result.stderr


def bertwise_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bertwise", *args], capture_output=True, text=True, timeout=600)


def test_load_and_predict_take_the_onnx_runtime(probe_copy: Path, tmp_path: Path) -> None:
    import bertwise
    from bertwise.exceptions import ConfigError
    from bertwise.inference.predict_file import predict_file

    export_model_folder(probe_copy, check_texts=MIXED_TEXTS, check_source="test texts")
    model = bertwise.load(probe_copy, runtime="onnx")
    assert type(model).__name__ == "OnnxModel"
    torch_labels = bertwise.load(probe_copy, device="cpu", precision="float32").predict(UNSEEN).tolist()
    assert model.predict(UNSEEN).tolist() == torch_labels

    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(UNSEEN) + "\n")
    predict_file(probe_copy, source, tmp_path / "out.csv", runtime="onnx")
    rows = (tmp_path / "out.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == [str(label) for label in torch_labels]

    with pytest.raises(ConfigError, match="runtime must be 'torch' or 'onnx'; got 'tensorrt'"):
        bertwise.load(probe_copy, runtime="tensorrt")
