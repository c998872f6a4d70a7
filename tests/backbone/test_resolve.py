from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bertwise.backbone import resolve
from bertwise.backbone.resolve import DEFAULT_MODEL_SHA256, resolve_backbone, weights_sha256
from bertwise.exceptions import ModelError


def test_embedded_default_is_checked_and_described() -> None:
    backbone = resolve_backbone(None)
    assert backbone.embedded
    assert backbone.sha256 == DEFAULT_MODEL_SHA256
    assert backbone.pooling == "mean"  # from 1_Pooling/config.json
    assert backbone.max_length == 256  # from sentence_bert_config.json
    assert backbone.normalize


def test_tampered_embedded_weights_are_refused(tiny_bert: str) -> None:
    with pytest.raises(ModelError, match="embedded model's weights .* have sha256 .*expected 53aa5117"):
        resolve._describe(tiny_bert, "embedded", True, "auto")


def test_plain_bert_defaults_to_mean_pooling_and_its_position_limit(tiny_bert: str) -> None:
    backbone = resolve_backbone(tiny_bert)
    assert (backbone.pooling, backbone.max_length, backbone.normalize, backbone.embedded) == ("mean", 64, False, False)
    assert resolve_backbone(tiny_bert, pooling="cls").pooling == "cls"


@pytest.mark.parametrize(
    ("settings", "pooling"),
    [
        ({"pooling_mode_cls_token": True}, "cls"),  # sentence-transformers 2.x to 5.x
        ({"embedding_dimension": 32, "pooling_mode": "cls"}, "cls"),  # 6.x
        ({"pooling_mode": "max"}, "max"),
        ({"pooling_mode": ["mean", "max"]}, "mean+max"),
        ({"pooling_mode_cls_token": False}, "mean"),  # no mode set: sentence-transformers' default
    ],
)
def test_sentence_transformers_pooling_is_read(
    tiny_bert: str, tmp_path: Path, settings: dict[str, object], pooling: str
) -> None:
    copy = Path(shutil.copytree(tiny_bert, tmp_path / "st"))
    (copy / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (copy / "1_Pooling").mkdir()
    (copy / "1_Pooling" / "config.json").write_text(json.dumps(settings))
    backbone = resolve_backbone(str(copy))
    assert (backbone.pooling, backbone.normalize, backbone.dense) == (pooling, False, ())


def test_plain_checkpoints_take_any_pooling_asked(tiny_bert: str) -> None:
    assert resolve_backbone(tiny_bert, pooling="max").pooling == "max"
    with pytest.raises(ModelError, match="pooling must be one of auto, cls, max, mean"):
        resolve_backbone(tiny_bert, pooling="sum")  # type: ignore[arg-type]


def test_pickle_only_checkpoints_are_refused(tiny_bert: str, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_bert, tmp_path / "pickled"))
    (copy / "model.safetensors").rename(copy / "pytorch_model.bin")
    with pytest.raises(ModelError, match="no \\*.safetensors weights \\(found only pytorch_model.bin\\)"):
        resolve_backbone(str(copy))


def test_a_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="is a file; expected a model directory"):
        resolve_backbone(str(path))


def test_unreachable_hub_id_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="neither a local directory nor a model that could be fetched"):
        resolve_backbone("someone/no-such-model-here")


def test_weights_hash_changes_with_content(tiny_bert: str, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_bert, tmp_path / "changed"))
    before = weights_sha256(copy)
    with (copy / "model.safetensors").open("ab") as handle:
        handle.write(b"\0")
    assert weights_sha256(copy) != before
