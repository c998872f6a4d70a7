"""sentence-transformers checkpoints are encoded as sentence-transformers 6.2 encodes them, or refused by name.

Small checkpoints are built on the spot from a tiny BERT with sentence-transformers' own modules and saved as it saves
them (safetensors), then bertwise's float32 vectors are compared with ``SentenceTransformer(path).encode``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.backbone.cache import model_fingerprint
from bertwise.backbone.encoder import Encoder
from bertwise.backbone.resolve import PoolingOverrideWarning, resolve_backbone
from bertwise.exceptions import ModelError
from tests.conftest import TOY_TEXTS, toy_data

sentence_transformers = pytest.importorskip("sentence_transformers")

# Lengths from 3 to past the tiny model's 64 tokens, in one batch, so padding (and truncation) matter.
TEXTS = [
    "bake the bread",
    "Heavy Rain is expected TOMORROW and a sunny and warm afternoon ahead",
    "snow",
    " ".join(example for examples in TOY_TEXTS.values() for example in examples),
    "the coach praised the players after the game",
    "",
]


def build(
    base: str,
    directory: Path,
    pooling: Any = "mean",
    *,
    dense: bool = False,
    normalize: bool = False,
    residual_dense: bool = False,
    **transformer: Any,
) -> str:
    """A sentence-transformers checkpoint on ``base``, saved as sentence-transformers saves it.

    ``residual_dense``: Dropout, then a 32 -> 24 GELU Dense with a projected residual, then Dropout again.
    """
    import torch
    from sentence_transformers import SentenceTransformer, models

    modules: list[Any] = [models.Transformer(base, **transformer)]
    modules.append(models.Pooling(32, pooling_mode=pooling))
    torch.manual_seed(1)
    if dense:
        modules.append(models.Dense(modules[-1].get_embedding_dimension(), 16, activation_function=torch.nn.Tanh()))
    if residual_dense:
        width = modules[-1].get_embedding_dimension()
        modules.append(models.Dropout(0.5))
        modules.append(models.Dense(width, 24, activation_function=torch.nn.GELU(), use_residual=True))
        modules.append(models.Dropout(0.5))
    if normalize:
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(directory), safe_serialization=True)
    return str(directory)


def reference(path: str, texts: list[str] = TEXTS) -> np.ndarray:
    return np.asarray(sentence_transformers.SentenceTransformer(path, device="cpu").encode(texts))


def ours(path: str, texts: list[str] = TEXTS, **resolve: Any) -> np.ndarray:
    encoder = Encoder(resolve_backbone(path, **resolve), device="cpu", precision="float32", remember=False)
    return encoder.encode(texts)


def least_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


@pytest.fixture(scope="module")
def built(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_variants(tiny_bert, tmp_path_factory.mktemp("st"))


def build_variants(tiny_bert: str, root: Path) -> dict[str, str]:
    """Every checkpoint of :data:`VARIANTS` on ``tiny_bert``, saved under ``root`` (benchmarks/st_parity.py too)."""
    models = {
        mode: build(tiny_bert, root / mode, mode)
        for mode in ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
    }
    models["cls+mean+max"] = build(tiny_bert, root / "concat", ["cls", "mean", "max"])
    models["max+dense+normalize"] = build(tiny_bert, root / "dense", "max", dense=True, normalize=True)
    models["weightedmean+dropout+residual-dense"] = build(
        tiny_bert, root / "residual", "weightedmean", residual_dense=True
    )
    # A cased tokenizer under a Transformer that says do_lower_case, cut at 16 tokens by max_seq_length.
    cased = Path(shutil.copytree(tiny_bert, root / "cased-bert"))
    tokenizer_file = json.loads((cased / "tokenizer.json").read_text())
    tokenizer_file["normalizer"]["lowercase"] = False
    (cased / "tokenizer.json").write_text(json.dumps(tokenizer_file))
    config = json.loads((cased / "tokenizer_config.json").read_text())
    (cased / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    # sentence-transformers 6.2 saves neither setting there, but reads both, as older versions wrote them.
    lower = Path(build(str(cased), root / "lower", "cls"))
    settings = json.loads((lower / "sentence_bert_config.json").read_text())
    (lower / "sentence_bert_config.json").write_text(
        json.dumps({**settings, "max_seq_length": 16, "do_lower_case": True})
    )
    models["lowercase+max_seq_length"] = str(lower)
    return models


VARIANTS = [
    "cls",
    "max",
    "mean",
    "mean_sqrt_len_tokens",
    "weightedmean",
    "lasttoken",
    "cls+mean+max",
    "max+dense+normalize",
    "weightedmean+dropout+residual-dense",
    "lowercase+max_seq_length",
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_module_stack_matches_sentence_transformers(built: dict[str, str], variant: str) -> None:
    expected, found = reference(built[variant]), ours(built[variant])
    assert found.shape == expected.shape
    assert least_cosine(found, expected) >= 0.9999
    # Scale too: a probe's regularisation sees it (mean_sqrt_len_tokens differs from mean by length only).
    np.testing.assert_allclose(np.linalg.norm(found, axis=1), np.linalg.norm(expected, axis=1), rtol=1e-4)


def test_the_module_stack_is_described(built: dict[str, str]) -> None:
    backbone = resolve_backbone(built["max+dense+normalize"])
    assert (backbone.pooling, backbone.normalize, len(backbone.dense)) == ("max", True, 1)
    layer = backbone.dense[0]
    assert (layer.path, layer.in_features, layer.out_features, layer.bias, layer.residual) == (
        "2_Dense",
        32,
        16,
        True,
        False,
    )
    assert layer.activation == "torch.nn.modules.activation.Tanh" and len(layer.sha256) == 64
    assert backbone.describe() == "max pooling, Dense 32->16 (Tanh), normalised"
    assert resolve_backbone(built["cls+mean+max"]).pooling == "cls+mean+max"
    residual = resolve_backbone(built["weightedmean+dropout+residual-dense"])  # the Dropout modules are skipped
    assert [(d.path, d.out_features, d.residual) for d in residual.dense] == [("3_Dense", 24, True)]
    assert residual.describe() == "weightedmean pooling, Dense 32->24 (GELU)"
    assert resolve_backbone(built["lowercase+max_seq_length"]).max_length == 16


def test_lowercasing_is_applied_as_the_checkpoint_says(built: dict[str, str]) -> None:
    path = built["lowercase+max_seq_length"]  # its tokenizer alone is cased: "Bake" would be [UNK]
    np.testing.assert_allclose(ours(path, ["Bake The Bread"]), ours(path, ["bake the bread"]), atol=1e-6)


def test_an_explicit_other_pooling_warns_and_is_used(built: dict[str, str]) -> None:
    with pytest.warns(PoolingOverrideWarning, match="cls pooling; pooling with mean as asked"):
        backbone = resolve_backbone(built["cls"], pooling="mean")
    assert backbone.pooling == "mean"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_backbone(built["cls"], pooling="cls").pooling == "cls"  # the checkpoint's own: no warning
    np.testing.assert_allclose(ours(built["cls"], pooling="mean"), ours(built["mean"]), atol=1e-6)


def test_an_other_pooling_cannot_change_what_a_dense_layer_takes(built: dict[str, str], tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    copy = Path(shutil.copytree(built["max+dense+normalize"], tmp_path / "two-modes"))
    (copy / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 32, "pooling_mode": ["cls", "max"]})
    )
    dense = json.loads((copy / "2_Dense" / "config.json").read_text())
    (copy / "2_Dense" / "config.json").write_text(json.dumps({**dense, "in_features": 64}))
    weights = {"linear.weight": np.ones((16, 64), np.float32), "linear.bias": np.zeros(16, np.float32)}
    save_file(weights, str(copy / "2_Dense" / "model.safetensors"))
    assert resolve_backbone(str(copy)).pooling == "cls+max"
    with pytest.raises(ModelError, match="would change the width of what .* Dense layer takes \\(cls\\+max pooling"):
        resolve_backbone(str(copy), pooling="mean")


def test_the_cache_key_covers_the_dense_weights(built: dict[str, str], tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    before = model_fingerprint(resolve_backbone(built["max+dense+normalize"]), precision="float32", device_type="cpu")[
        0
    ]
    copy = Path(shutil.copytree(built["max+dense+normalize"], tmp_path / "copy"))

    weights = load_file(str(copy / "2_Dense" / "model.safetensors"))
    weights["linear.bias"] = weights["linear.bias"] + 1
    save_file(weights, str(copy / "2_Dense" / "model.safetensors"))
    after = model_fingerprint(resolve_backbone(str(copy)), precision="float32", device_type="cpu")[0]
    assert before != after


def _edit_modules(path: str, destination: Path, change: Any) -> Path:
    copy = Path(shutil.copytree(path, destination))
    modules = json.loads((copy / "modules.json").read_text())
    (copy / "modules.json").write_text(json.dumps(change(modules)))
    return copy


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("sentence_transformers.models.LayerNorm", "lists the module sentence_transformers.models.LayerNorm"),
        ("sentence_transformers.models.CNN", "lists the module sentence_transformers.models.CNN"),
        ("sentence_transformers.models.WordEmbeddings", "lists the module sentence_transformers.models.WordEmbeddings"),
        ("sentence_transformers.sentence_transformer.modules.StaticEmbedding", "StaticEmbedding"),
        ("sentence_transformers.base.modules.router.Router", "lists the module .*Router"),
        ("my_package.modules.Pooling", "lists the module my_package.modules.Pooling"),
    ],
)
def test_a_module_bertwise_cannot_run_is_refused_by_name(
    built: dict[str, str], tmp_path: Path, module: str, message: str
) -> None:
    extra = {"idx": 2, "name": "2", "path": "2_Extra", "type": module}
    copy = _edit_modules(built["mean"], tmp_path / "copy", lambda modules: [*modules, extra])
    with pytest.raises(ModelError, match=message) as caught:
        resolve_backbone(str(copy))
    assert "\n" not in str(caught.value)
    assert "Transformer, Pooling, Dense, Normalize" in str(caught.value)


def test_other_things_that_would_encode_differently_are_refused(built: dict[str, str], tmp_path: Path) -> None:
    pickled = Path(shutil.copytree(built["max+dense+normalize"], tmp_path / "pickled"))
    (pickled / "2_Dense" / "model.safetensors").rename(pickled / "2_Dense" / "pytorch_model.bin")
    with pytest.raises(ModelError, match="Dense module .* has no model.safetensors \\(found only pytorch_model.bin\\)"):
        resolve_backbone(str(pickled))

    after_normalize = _edit_modules(
        built["max+dense+normalize"],
        tmp_path / "order",
        lambda modules: [modules[0], modules[1], modules[3], modules[2]],
    )
    with pytest.raises(ModelError, match="a Dense module after Normalize"):
        resolve_backbone(str(after_normalize))

    prompted = Path(shutil.copytree(built["mean"], tmp_path / "prompted"))
    settings = json.loads((prompted / "config_sentence_transformers.json").read_text())
    settings.update(prompts={"query": "query: "}, default_prompt_name="query")
    (prompted / "config_sentence_transformers.json").write_text(json.dumps(settings))
    with pytest.raises(ModelError, match="sets a default prompt"):
        resolve_backbone(str(prompted))

    def elsewhere(modules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [modules[0], {**modules[1], "path": "../1_Pooling"}, *modules[2:]]

    outside = _edit_modules(built["mean"], tmp_path / "outside", elsewhere)
    with pytest.raises(ModelError, match="keeps its Pooling module in '../1_Pooling'; expected a subfolder"):
        resolve_backbone(str(outside))

    custom = Path(shutil.copytree(built["max+dense+normalize"], tmp_path / "custom"))
    dense = json.loads((custom / "2_Dense" / "config.json").read_text())
    (custom / "2_Dense" / "config.json").write_text(json.dumps({**dense, "activation_function": "evil.Act"}))
    with pytest.raises(ModelError, match="names the activation 'evil.Act'"):
        resolve_backbone(str(custom))


def test_legacy_pooling_settings_are_read_in_sentence_transformers_order(built: dict[str, str], tmp_path: Path) -> None:
    copy = Path(shutil.copytree(built["cls+mean+max"], tmp_path / "legacy"))
    legacy = {
        "word_embedding_dimension": 32,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": True,
        "pooling_mode_max_tokens": True,
    }
    (copy / "1_Pooling" / "config.json").write_text(json.dumps(legacy))
    assert resolve_backbone(str(copy)).pooling == "cls+max+mean"
    assert least_cosine(ours(str(copy)), reference(str(copy))) >= 0.9999


def test_a_saved_probe_on_a_dense_checkpoint_predicts_like_the_live_one(built: dict[str, str], tmp_path: Path) -> None:
    from bertwise.artifact.folder import load, save_model
    from bertwise.data.dataset import LabeledTexts
    from bertwise.strategies.probe import ProbeClassifier

    texts, labels = toy_data()
    probe = ProbeClassifier(model=built["max+dense+normalize"], device="cpu", precision="float32").fit(texts, labels)
    assert probe.head_.coef_.shape[1] == 16
    save_model(probe, tmp_path / "model", training=LabeledTexts(tuple(texts), tuple(labels), source="toy"))
    assert (tmp_path / "model" / "backbone" / "2_Dense" / "model.safetensors").is_file()
    loaded = load(tmp_path / "model", device="cpu", precision="float32")
    assert loaded.manifest_["backbone"]["dense"][0]["out_features"] == 16
    unseen = [*texts, "the striker scored a late goal", "cold rain tonight"]
    np.testing.assert_allclose(loaded.predict_proba(unseen), probe.predict_proba(unseen), rtol=0, atol=1e-12)
    assert loaded.predict(unseen).tolist() == probe.predict(unseen).tolist()
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        return
    from bertwise.onnx.export import export_model_folder, load_onnx

    # The folder's ONNX export runs the Dense layer and Normalize too, and says so in its metadata.
    assert export_model_folder(tmp_path / "model", check_texts=unseen).parity.agreement == 1.0
    exported = load_onnx(tmp_path / "model")
    assert exported.runner_.metadata["dense"] == "32->16" and exported.runner_.metadata["normalize"] == "true"
    np.testing.assert_allclose(exported.predict_proba(unseen), probe.predict_proba(unseen), atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_strategies_encode_as_sentence_transformers_does(built: dict[str, str], variant: str) -> None:
    from bertwise.backbone.encoder import load_encoder
    from bertwise.strategies.probe import ProbeClassifier
    from bertwise.strategies.zero_shot import EMBEDDING_TEMPERATURE, ZeroShotClassifier

    path = built[variant]
    texts, labels = toy_data()
    expected = reference(path)
    # The shared encoder the probe and zero-shot fetch for their settings (memo and disk cache included).
    assert least_cosine(load_encoder(path, "auto", "cpu", "float32").encode(TEXTS), expected) >= 0.9999
    probe = ProbeClassifier(model=path, device="cpu", precision="float32").fit(texts, labels)
    np.testing.assert_allclose(probe.predict_proba(TEXTS), probe.head_.predict_proba(expected), atol=1e-4)
    zero_shot = ZeroShotClassifier(model=path, mode="embedding", device="cpu", precision="float32").fit(texts, labels)
    vectors = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    descriptions = reference(path, zero_shot.descriptions_)
    descriptions /= np.linalg.norm(descriptions, axis=1, keepdims=True)
    logits = vectors @ descriptions.T / EMBEDDING_TEMPERATURE
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(zero_shot.predict_proba(TEXTS), probabilities, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_onnx_encoder_runs_the_same_module_stack(built: dict[str, str], tmp_path: Path, variant: str) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from bertwise.onnx.export import OnnxEncoder, export_encoder_onnx

    path = built[variant]
    graph = export_encoder_onnx(path, tmp_path / "encoder.onnx")
    exported = OnnxEncoder(graph, path).encode(TEXTS)
    assert exported.shape == reference(path).shape
    assert least_cosine(exported, reference(path)) >= 0.9999
