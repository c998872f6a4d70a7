"""Domain-adaptive pre-training: the adapted folder is a backbone like the original, trained, cached, reproducible."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bertwise.backbone.adapt import RECORD, AdaptedBackbone, adapt_backbone
from bertwise.backbone.resolve import resolve_backbone
from bertwise.exceptions import ConfigError, DataError
from tests.conftest import _write_tiny_bert, toy_data

TEXTS = toy_data()[0] * 3
FAST = {"steps": 60, "learning_rate": 3e-3, "batch_size": 8, "device": "cpu"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # On a shared, loaded CPU two OpenMP threads per tiny matrix product wait on each other (50x slower measured).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def adapted(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> AdaptedBackbone:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return adapt_backbone(tiny_bert, TEXTS, cache_dir=tmp_path_factory.mktemp("adapt-cache"), **FAST)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)


def tensors(folder: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def test_mlm_loss_goes_down_and_the_encoder_changes(adapted: AdaptedBackbone, tiny_bert: str) -> None:
    assert adapted.train_loss_before is not None and adapted.train_loss_after is not None
    assert adapted.train_loss_after < adapted.train_loss_before - 0.2
    assert adapted.steps == 60 and adapted.texts + adapted.held_out == len(TEXTS) and adapted.held_out == 5
    assert adapted.fresh_head and not adapted.cached and adapted.seconds > 0 and adapted.peak_memory_mb > 0
    base, new = tensors(tiny_bert), tensors(adapted.path)
    assert set(base) == set(new)  # the same tensors under the same names: no MLM head added
    changed = {key for key in base if not np.array_equal(base[key], new[key])}
    assert "encoder.layer.0.attention.self.query.weight" in changed
    assert "embeddings.word_embeddings.weight" in changed  # tied to the head's decoder, so trained by it
    assert not any(key.startswith("pooler.") for key in changed)  # not part of the MLM model: kept as it was


def test_the_adapted_folder_loads_as_a_backbone_and_a_probe_fits_on_it(
    adapted: AdaptedBackbone, tiny_bert: str
) -> None:
    from bertwise.backbone.encoder import load_encoder
    from bertwise.strategies.probe import ProbeClassifier

    base, backbone = resolve_backbone(tiny_bert), resolve_backbone(adapted.path)
    assert (backbone.pooling, backbone.max_length, backbone.normalize) == (base.pooling, base.max_length, False)
    assert backbone.sha256 != base.sha256
    for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        assert (Path(adapted.path) / name).read_bytes() == (Path(tiny_bert) / name).read_bytes()
    texts, labels = toy_data()
    vectors = load_encoder(adapted.path, device="cpu").encode(texts[:4])
    original = load_encoder(tiny_bert, device="cpu").encode(texts[:4])
    assert vectors.shape == original.shape and not np.allclose(vectors, original)
    probe = ProbeClassifier(model=adapted.path, device="cpu", cv=2).fit(texts, labels)
    assert probe.predict(texts).shape == (18,)


def test_a_second_call_returns_the_cached_folder_without_training(
    adapted: AdaptedBackbone, tiny_bert: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bertwise.backbone.adapt as module

    def no_training(*args: object, **kwargs: object) -> int:
        raise AssertionError("trained again")

    monkeypatch.setattr(module, "_train", no_training)
    cache = Path(adapted.path).parents[1]
    again = adapt_backbone(tiny_bert, TEXTS, cache_dir=cache, **FAST)  # type: ignore[arg-type]
    assert again.cached and again.path == adapted.path and again.fingerprint == adapted.fingerprint
    assert again.train_loss_after == adapted.train_loss_after
    with pytest.raises(AssertionError, match="trained again"):  # any other setting or text is a new adaptation
        adapt_backbone(tiny_bert, TEXTS, cache_dir=cache, **{**FAST, "learning_rate": 1e-3})  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="trained again"):
        adapt_backbone(tiny_bert, TEXTS, unlabeled=["one more text"], cache_dir=cache, **FAST)  # type: ignore[arg-type]
    # --out with a cached adaptation: a copy of the cached folder, still without training.
    copy = adapt_backbone(tiny_bert, TEXTS, cache_dir=cache, out=cache / "mine", **FAST)  # type: ignore[arg-type]
    assert copy.cached and copy.path == str(cache / "mine") and (cache / "mine" / "model.safetensors").is_file()


def test_a_damaged_cached_folder_is_trained_again(tiny_bert: str, tmp_path: Path) -> None:
    settings = {**FAST, "steps": 3}
    first = adapt_backbone(tiny_bert, TEXTS, cache_dir=tmp_path, **settings)  # type: ignore[arg-type]
    weights = Path(first.path) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    again = adapt_backbone(tiny_bert, TEXTS, cache_dir=tmp_path, **settings)  # type: ignore[arg-type]
    assert not again.cached and again.path == first.path
    assert [p.name for p in (tmp_path / "adapted").iterdir()] == [Path(first.path).name]  # no temporary left


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(tiny_bert: str, tmp_path: Path) -> None:
    settings = {**FAST, "steps": 8}
    runs = [
        adapt_backbone(tiny_bert, TEXTS, seed=seed, cache_dir=tmp_path / name, **settings)  # type: ignore[arg-type]
        for name, seed in (("a", 1), ("b", 1), ("c", 2))
    ]
    a, b, c = (tensors(run.path)["encoder.layer.1.output.dense.weight"] for run in runs)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert runs[0].fingerprint == runs[1].fingerprint != runs[2].fingerprint


def test_a_checkpoint_without_a_head_gets_a_fresh_one_tied_to_the_word_embeddings(tiny_bert: str) -> None:
    from transformers import AutoModelForMaskedLM

    assert not any(key.startswith("cls.") for key in tensors(tiny_bert))  # the fixture is an encoder only
    network, info = AutoModelForMaskedLM.from_pretrained(tiny_bert, output_loading_info=True)
    assert network.get_output_embeddings().weight is network.get_input_embeddings().weight
    assert {key.split(".")[0] for key in info["missing_keys"]} == {"cls"}


def test_a_checkpoint_with_its_own_head_trains_that_head(tmp_path: Path) -> None:
    import torch
    from transformers import BertForMaskedLM

    folder = _write_tiny_bert(tmp_path / "plain")
    torch.manual_seed(0)
    BertForMaskedLM.from_pretrained(folder).save_pretrained(tmp_path / "mlm")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(folder / name, tmp_path / "mlm" / name)
    result = adapt_backbone(str(tmp_path / "mlm"), TEXTS, cache_dir=tmp_path / "cache", **{**FAST, "steps": 5})  # type: ignore[arg-type]
    assert not result.fresh_head
    base, new = tensors(tmp_path / "mlm"), tensors(result.path)
    assert set(base) == set(new) and any(k.startswith("cls.") for k in base)
    assert not np.array_equal(
        base["cls.predictions.transform.dense.weight"], new["cls.predictions.transform.dense.weight"]
    )


def test_a_sentence_transformers_checkpoint_keeps_its_modules(tiny_bert: str, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_bert, tmp_path / "st"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (copy / "modules.json").write_text(json.dumps(modules))
    (copy / "1_Pooling").mkdir()
    (copy / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode": "cls"}))
    (copy / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40, "do_lower_case": False}))
    result = adapt_backbone(str(copy), TEXTS, cache_dir=tmp_path / "cache", **{**FAST, "steps": 3})  # type: ignore[arg-type]
    backbone = resolve_backbone(result.path)
    assert (backbone.pooling, backbone.normalize, backbone.max_length) == ("cls", True, 40)
    assert result.settings["max_length"] == 40  # trained at the length it encodes at
    record = json.loads((Path(result.path) / RECORD).read_text())
    assert record["fingerprint"] == result.fingerprint and record["base_model"] == str(copy)


def test_bad_input_is_one_clear_error(tiny_bert: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 2 non-empty texts; got 1"):
        adapt_backbone(tiny_bert, ["only one", "  "], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="max_length 100 is over what .* encodes \\(64 tokens\\)"):
        adapt_backbone(tiny_bert, TEXTS, max_length=100, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="a single string"):
        adapt_backbone(tiny_bert, "one text", cache_dir=tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not an adapted model folder"):
        adapt_backbone(tiny_bert, TEXTS, out=tmp_path / "taken", **{**FAST, "steps": 1})  # type: ignore[arg-type]


def test_with_the_cache_off_out_is_needed_and_enough(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.backbone.cache import use_cache_dir

    with use_cache_dir(None):
        with pytest.raises(ConfigError, match="the bertwise cache is off .* pass out="):
            adapt_backbone(tiny_bert, TEXTS, **{**FAST, "steps": 1})  # type: ignore[arg-type]
        result = adapt_backbone(tiny_bert, TEXTS, out=tmp_path / "here", **{**FAST, "steps": 1})  # type: ignore[arg-type]
    assert result.path == str(tmp_path / "here") and resolve_backbone(result.path).sha256
