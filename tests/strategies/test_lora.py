"""LoRA (tiny random BERTs): only adapters and head train, a model folder keeps only them, and loads on its own base."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open

from bertwise.artifact.folder import folder_size, load, save_model
from bertwise.data.dataset import LabeledTexts
from bertwise.exceptions import ConfigError, ModelError
from bertwise.strategies.cost import Calibration, FitWork
from bertwise.strategies.finetune import FinetuneClassifier
from bertwise.strategies.lora import TRAIN_TIME_FACTOR, LoraClassifier
from bertwise.strategies.registry import default_strategy_names, strategy_tags
from tests.conftest import _write_tiny_bert, toy_data

FAST = {"min_steps": 6, "max_epochs": 3, "min_epochs": 1, "batch_size": 8, "device": "cpu"}


@pytest.fixture(scope="module")
def fitted(tiny_bert: str) -> LoraClassifier:
    texts, labels = toy_data()
    return LoraClassifier(model=tiny_bert, **FAST).fit(texts, labels)


def _saved(estimator: Any, out: Path) -> Path:
    texts, labels = toy_data()
    save_model(estimator, out, training=LabeledTexts(tuple(texts), tuple(labels), source="toy"))
    return out


def test_only_the_adapters_and_the_head_train_and_the_backbone_is_untouched(fitted: LoraClassifier, tiny_bert: str):
    trained = [name for name, p in fitted.network_.named_parameters() if p.requires_grad]
    # After a fit the network is kept for prediction; what trained is what peft marked trainable.
    assert trained and all(".lora_" in name or ".modules_to_save." in name for name in trained)
    assert any(".classifier." in name for name in trained) and any(".pooler." in name for name in trained)
    details = fitted.fit_details()
    assert 0 < details["trainable_parameters"] < details["total_parameters"]
    assert details["adapter_bytes"] == 4 * details["trainable_parameters"]  # float32, nothing else
    with safe_open(str(Path(tiny_bert) / "model.safetensors"), "pt") as base:
        original = base.get_tensor(next(k for k in base.keys() if k.endswith("layer.0.attention.self.query.weight")))
    state = fitted.network_.state_dict()
    frozen = next(v for k, v in state.items() if k.endswith("layer.0.attention.self.query.base_layer.weight"))
    assert np.array_equal(frozen.numpy(), original.numpy())


def test_its_loop_is_fine_tunings_with_a_larger_default_rate(fitted: LoraClassifier) -> None:
    details = fitted.fit_details()
    assert details["learning_rate"] == 5e-4
    assert details["optimizer_steps"] == details["planned_steps"] >= 6
    assert [entry["step"] for entry in details["validation_history"]]


def test_the_seed_decides_the_fit(fitted: LoraClassifier, tiny_bert: str) -> None:
    texts, labels = toy_data()
    first = fitted.predict_proba(texts)
    again = LoraClassifier(model=tiny_bert, seed=0, **FAST).fit(texts, labels).predict_proba(texts)
    other = LoraClassifier(model=tiny_bert, seed=1, **FAST).fit(texts, labels).predict_proba(texts)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_round_trip_keeps_adapters_and_head_only_and_predicts_the_same(
    fitted: LoraClassifier, tiny_bert: str, tmp_path: Path
) -> None:
    texts, _ = toy_data()
    folder = _saved(fitted, tmp_path / "model")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "manifest.json"]
    assert "not in this folder: loading reads it from" in (folder / "README.md").read_text(encoding="utf-8")
    assert folder_size(folder) < folder_size(tiny_bert) / 2  # no copy of the backbone
    loaded = load(folder, device="cpu")
    assert isinstance(loaded, LoraClassifier)
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)
    assert loaded.manifest_["backbone"]["sha256"] == fitted.backbone_.sha256
    assert loaded.manifest_["details"]["trainable_parameters"] == fitted.fit_details()["trainable_parameters"]
    again = _saved(loaded, tmp_path / "again")  # a loaded model saves again, to the same weights
    assert (again / "adapter/adapter_model.safetensors").read_bytes() == (
        folder / "adapter/adapter_model.safetensors"
    ).read_bytes()


def test_a_different_base_model_is_refused(tiny_bert: str, tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_bert, base)
    texts, labels = toy_data()
    folder = _saved(LoraClassifier(model=str(base), **FAST).fit(texts, labels), tmp_path / "model")
    _write_tiny_bert(base, seed=1)  # the same folder, other weights
    with pytest.raises(ModelError, match=r"LoRA adapters trained on .* weights sha256 .* now has weights sha256"):
        load(folder, device="cpu")


def test_missing_peft_is_one_clear_line(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft raises ImportError
    texts, labels = toy_data()
    expected = r"^the lora strategy needs the peft package: pip install 'bertwise\[lora\]'$"
    with pytest.raises(ConfigError, match=expected):
        LoraClassifier(model=tiny_bert, **FAST).fit(texts, labels)


def test_unknown_target_modules_are_a_config_error(tiny_bert: str) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match="target_modules .* expected names of its linear layers"):
        LoraClassifier(model=tiny_bert, target_modules=("nowhere",), **FAST).fit(texts, labels)


def test_the_monitor_stops_it_as_it_stops_fine_tuning(tiny_bert: str) -> None:
    texts, labels = toy_data()
    strategy = LoraClassifier(model=tiny_bert, **{**FAST, "min_steps": 12, "max_epochs": 6})
    strategy.monitor = lambda progress: "enough"
    details = strategy.fit(texts, labels).fit_details()
    assert details["stopped_by"] == "enough" and details["optimizer_steps"] < details["planned_steps"]


def test_tags_and_cost_are_fine_tunings_scaled_and_it_is_opt_in() -> None:
    tags = strategy_tags("lora")
    assert (tags.seed_dependent, tags.trains_backbone, tags.has_training_schedule) == (True, True, True)
    assert not tags.compared_by_default and "lora" not in default_strategy_names()
    assert tags.in_words == "LoRA"
    calibration = Calibration(encode_texts_per_second=200.0, train_examples_per_second=40.0, probe_seconds_per_row=0.0)
    work = FitWork(train_rows=400, test_rows=150, n_classes=10, encode_train=True)
    full = FinetuneClassifier.fit_seconds(work, calibration)
    lora = LoraClassifier.fit_seconds(work, calibration)
    training = FinetuneClassifier.schedule().planned_steps(400) * 32 / 40.0
    assert lora == pytest.approx(full - training * (1 - TRAIN_TIME_FACTOR))
    assert LoraClassifier.shortened_schedule(0.5) == FinetuneClassifier.shortened_schedule(0.5)


def test_a_manifest_without_its_base_hash_or_lora_section_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "manifest.json"
    with pytest.raises(ModelError, match="'backbone' has no sha256"):
        LoraClassifier.check_state(file, {"backbone": {"id": "x"}, "lora": {"max_length": 64}})
    with pytest.raises(ModelError, match="'lora' is missing; expected a JSON object"):
        LoraClassifier.check_state(file, {"backbone": {"sha256": "0" * 64}})
    LoraClassifier.check_state(file, {"backbone": {"sha256": "0" * 64}, "lora": {"max_length": 64}})
