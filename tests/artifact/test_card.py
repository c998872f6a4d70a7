"""The model card on tiny random BERTs: every saved folder has a README.md that huggingface_hub parses, whose metadata
holds the manifest's labels, backbone and scores; editing it never stops loading, and a save over the folder keeps
the user's edits rather than overwriting them."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.artifact.card import CARD, card_data, hub_model_id, render_model_card
from bertwise.artifact.folder import MANIFEST, load, save_model, verify_model_folder
from bertwise.data.dataset import LabeledTexts
from bertwise.exceptions import ConfigError
from tests.conftest import toy_data

QUICK = {"device": "cpu", "learning_curve": False, "bootstrap_resamples": 200, "seeds": 1, "report": False}


def toy() -> LabeledTexts:
    texts, labels = toy_data()
    return LabeledTexts(tuple(texts), tuple(labels), source="toy.csv")


def parsed(text_or_path: str | Path) -> Any:
    from huggingface_hub import ModelCard

    if isinstance(text_or_path, Path):
        return ModelCard.load(text_or_path)
    return ModelCard(text_or_path)


def metric_values(card: Any) -> dict[str, float]:
    return {result.metric_type: result.metric_value for result in card.data.eval_results or []}


@pytest.fixture(scope="module")
def trained(data_folder: Path, tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder from ``bertwise.train`` of the probe, scored on test.csv."""
    from bertwise.training import train

    folder = tmp_path_factory.mktemp("trained") / "model"
    train(data_folder, strategy="probe", out=folder, model=tiny_bert, device="cpu")
    return folder


@pytest.fixture()
def trained_copy(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "model"))


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


# What the card holds -------------------------------------------------------------------------------------------------


def test_a_trained_folder_has_a_card_whose_metadata_is_the_manifests(trained: Path) -> None:
    manifest = manifest_of(trained)
    card = parsed(trained / CARD)
    assert card.data.library_name == "bertwise" and card.data.pipeline_tag == "text-classification"
    assert card.data.bertwise["labels"] == manifest["classes"] == ["cooking", "sports", "weather"]
    assert card.data.bertwise["strategy"] == "probe" and "bertwise-probe" in card.data.tags
    assert card.data.bertwise["training_data_sha256"] == manifest["training_data"]["sha256"]
    assert metric_values(card) == {"f1": manifest["metrics"]["macro_f1"], "accuracy": manifest["metrics"]["accuracy"]}
    (macro_f1,) = [result for result in card.data.eval_results if result.metric_type == "f1"]
    assert macro_f1.metric_args == {"average": "macro"} and macro_f1.dataset_split == "test"
    assert macro_f1.dataset_name == "test.csv" and card.data.model_name == "model"
    assert card.data.base_model is None  # the tiny BERT is a local folder, which the Hub would refuse as a base model


def test_the_card_text_gives_what_train_measured(trained: Path) -> None:
    manifest = manifest_of(trained)
    text = parsed(trained / CARD).text
    low, high = manifest["metrics"]["interval"]["macro_f1"]
    assert f"| macro-F1 | {manifest['metrics']['macro_f1'] * 100:.1f} | [{low * 100:.1f}, {high * 100:.1f}] |" in text
    assert "18 rows of" in text and "test.csv" in text and "bertwise train" in text
    assert f"sha256 `{manifest['training_data']['sha256']}`" in text
    assert "| `cooking` | 12 |" in text  # training rows per class
    assert f"{manifest['cost']['fit_seconds']:,.1f} s (this training)" in text
    assert f"{manifest['cost']['peak_memory_mb']:,.0f} MB" in text
    assert "only the first 64 tokens" in text  # the tiny BERT's max_length
    assert "mean pooling; its network is in this folder (`backbone/`)" in text
    assert "none: `probe` trains the same model whatever the seed" in text
    assert "bertwise predict model texts.csv" in text and 'bertwise.load("model")' in text


def test_the_card_is_not_among_the_hashed_files_but_its_sha256_is_recorded(trained: Path) -> None:
    import hashlib

    manifest = manifest_of(trained)
    assert CARD not in manifest["files"] and CARD not in manifest["file_bytes"]
    assert manifest["model_card"] == {
        "file": CARD,
        "sha256": hashlib.sha256((trained / CARD).read_bytes()).hexdigest(),
        "covered_by_hashes": False,
        "base_model": None,
    }


def test_save_best_writes_a_card_with_the_comparisons_scores(data_folder: Path, tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.pipeline.comparison import compare

    compare(
        data_folder,
        strategies=["probe"],
        model=tiny_bert,
        out=tmp_path / "results",
        save_best=tmp_path / "best",
        # Not in the session's run cache: tests/test_training.py runs this very comparison and checks that its model
        # was kept from the run, not refit from a cached result.
        cache=False,
        **QUICK,
    )
    manifest = manifest_of(tmp_path / "best")
    result = json.loads((tmp_path / "results" / "results.json").read_text())["strategies"][0]
    card = parsed(tmp_path / "best" / CARD)
    assert metric_values(card) == {"f1": result["metrics"]["macro_f1"], "accuracy": result["metrics"]["accuracy"]}
    assert manifest["metrics"]["per_run"] == [
        {"seed": 0, **{k: result["metrics"][k] for k in ("macro_f1", "accuracy")}}
    ]
    assert manifest["cost"]["fit_seconds"] == result["cost"]["fit_seconds"]
    assert manifest["metrics"]["per_class_f1"] == {label: v["f1"] for label, v in result["per_class"].items()}
    assert "recommended `probe` because:" in card.text and "(fixed-test, 1 run)" in card.text
    assert "(the comparison's first fit)" in card.text
    assert card.data.bertwise["labels"] == manifest["classes"]
    found = "(the comparison found 0 of its training texts and 0 of its test texts longer than that)"
    assert manifest["comparison"]["truncated"]["max_length"] == 64 and found in card.text
    manifest["comparison"]["truncated"]["backbone_sha256"] = "0" * 64  # counted with another backbone: not this model's
    assert "the rest is ignored.\n" in render_model_card(manifest, name="best")


# Editing the card ----------------------------------------------------------------------------------------------------


def test_an_edited_card_loads_and_predicts_the_same(trained: Path, trained_copy: Path) -> None:
    (trained_copy / CARD).write_text("---\nlicense: mit\n---\n# My classifier\n", encoding="utf-8")
    verify_model_folder(trained_copy)
    texts = list(toy().texts)
    np.testing.assert_array_equal(
        load(trained_copy, device="cpu").predict_proba(texts), load(trained, device="cpu").predict_proba(texts)
    )
    (trained_copy / CARD).unlink()
    verify_model_folder(trained_copy)  # nor does a removed one


def test_saving_over_a_folder_keeps_an_edited_card_and_replaces_bertwises(trained_copy: Path) -> None:
    model = load(trained_copy, device="cpu")
    (trained_copy / CARD).write_text("my notes on this model", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"README\.md' was edited since bertwise wrote it; refusing to overwrite"):
        save_model(model, trained_copy, training=toy())
    assert (trained_copy / CARD).read_text(encoding="utf-8") == "my notes on this model"
    (trained_copy / CARD).unlink()
    save_model(model, trained_copy, training=toy())  # a removed card is no edit to keep
    save_model(model, trained_copy, training=toy())  # bertwise's own card is replaced like every file it wrote
    assert manifest_of(trained_copy)["training_data"]["rows"] == 18
    assert "all 18 rows of toy.csv" in parsed(trained_copy / CARD).text


def test_a_card_that_cannot_be_rendered_costs_the_card_not_the_model(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bertwise.artifact.card as card_module
    from bertwise.artifact.card import ModelCardWarning

    def broken(manifest: Any, *, name: str) -> str:
        raise ValueError("a bug")

    monkeypatch.setattr(card_module, "render_model_card", broken)
    model = load(trained, device="cpu")
    with pytest.warns(ModelCardWarning, match=r"could not be written \(ValueError: a bug\); the model is saved"):
        save_model(model, tmp_path / "model", training=toy())
    assert not (tmp_path / "model" / CARD).exists() and manifest_of(tmp_path / "model")["model_card"] is None
    load(tmp_path / "model", device="cpu")


# Rendering from manifests --------------------------------------------------------------------------------------------


def test_base_model_is_the_backbones_hub_id_and_never_a_local_path(tmp_path: Path) -> None:
    def manifest(model_id: str, embedded: bool = False) -> dict[str, Any]:
        return {"backbone": {"id": model_id, "embedded": embedded}}

    assert hub_model_id(manifest("sentence-transformers/all-MiniLM-L6-v2", embedded=True)) == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert hub_model_id(manifest("bert-base-uncased")) == "bert-base-uncased"
    (tmp_path / "org" / "bert").mkdir(parents=True)
    assert hub_model_id(manifest(str(tmp_path / "org" / "bert"))) is None
    assert hub_model_id(manifest("/abs/path")) is None and hub_model_id(manifest("a/b/c")) is None
    assert hub_model_id({}) is None  # a strategy without a backbone
    # Written again elsewhere (an export on another machine), a card keeps what was decided where the backbone was.
    moved = {**manifest("org/bert"), "model_card": {"file": CARD, "base_model": None}}
    assert hub_model_id(moved) is None and hub_model_id(manifest("org/bert")) == "org/bert"


def test_an_embedded_backbone_is_the_cards_base_model(trained: Path) -> None:
    manifest = manifest_of(trained)
    manifest["backbone"] = {**manifest["backbone"], "id": "sentence-transformers/all-MiniLM-L6-v2", "embedded": True}
    manifest.pop("model_card")  # as at saving, before the card's record exists
    card = parsed(render_model_card(manifest, name="model"))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "the embedded copy bertwise ships" in card.text


def test_what_was_not_measured_is_said_so(trained: Path) -> None:
    manifest = manifest_of(trained)
    for key in ("metrics", "cost", "fit_seconds"):
        manifest.pop(key)
    card = parsed(render_model_card(manifest, name="model"))
    assert card.data.eval_results is None and "model-index" not in card.data.to_dict()
    assert "Not measured: the model was saved without a test set" in card.text
    assert (
        "**Training time**: not measured" in card.text
        and "**Peak memory** (resident, whole process): not measured" in card.text
    )


def test_fine_tunings_validation_score_is_in_the_text_but_not_the_model_index(trained: Path) -> None:
    manifest = manifest_of(trained)
    manifest["strategy"] = "finetune"
    manifest["metrics"] = {
        "validation_macro_f1": 0.8123,
        "validation_rows": 9,
        "evaluated_by": "an optimistic estimate",
    }
    card = parsed(render_model_card(manifest, name="model"))
    assert card.data.eval_results is None
    assert "Test scores: not measured (no test set)" in card.text and "9 validation rows" in card.text
    assert "81.2" in card.text


def test_the_seed_to_seed_spread_comes_from_each_runs_score(trained: Path) -> None:
    manifest = manifest_of(trained)
    manifest["strategy"] = "finetune"
    manifest["metrics"]["per_run"] = [{"seed": s, "macro_f1": f} for s, f in enumerate([0.80, 0.84, 0.82])]
    text = parsed(render_model_card(manifest, name="model")).text
    assert "macro-F1 over 3 runs with different seeds ranged from 80.0 to 84.0 (standard deviation 2.0 points)" in text
    manifest["metrics"]["per_run"] = manifest["metrics"]["per_run"][:1]
    assert "not measured (one run; `bertwise compare --seeds N` measures it)" in render_model_card(manifest, name="m")


def test_zero_shot_and_small_classes_are_named_among_the_limits(trained: Path) -> None:
    manifest = manifest_of(trained)
    few = copy.deepcopy(manifest)
    few["training_data"]["class_counts"] = {"cooking": 3, "sports": 40, "weather": 9}
    text = parsed(render_model_card(few, name="model")).text
    assert "(fewer than 10 training rows): `cooking` (3), `weather` (9)" in text
    zero = copy.deepcopy(manifest)
    zero["strategy"] = "zero-shot"
    zero["zero_shot"] = {"mode": "embedding", "descriptions": ["About food.", "About sport.", "About weather."]}
    text = parsed(render_model_card(zero, name="model")).text
    assert "no labeled example trained it" in text and '`sports`: "About sport."' in text
    assert "Zero-shot learns nothing from these rows" in text and "fewer than 10" not in text


def test_integer_labels_stay_integers_in_the_metadata(trained: Path) -> None:
    manifest = manifest_of(trained)
    manifest["classes"] = [0, 1, 2]
    manifest["training_data"]["class_counts"] = {"0": 12, "1": 12, "2": 12}
    assert card_data(manifest, name="m").bertwise["labels"] == [0, 1, 2]
    assert parsed(render_model_card(manifest, name="m")).data.bertwise["labels"] == [0, 1, 2]


def test_a_label_with_a_pipe_or_a_line_break_keeps_the_tables_whole(trained: Path) -> None:
    manifest = manifest_of(trained)
    manifest["classes"] = ["yes | no", "two\nlines", "`code`"]
    manifest["training_data"]["class_counts"] = {"yes | no": 12, "two\nlines": 12, "`code`": 12}
    card = parsed(render_model_card(manifest, name="m"))
    assert (
        "| `yes \\| no` | 12 |" in card.text
        and "| `two lines` | 12 |" in card.text
        and "| `'code'` | 12 |" in card.text
    )
    assert card.data.bertwise["labels"] == manifest["classes"]  # the metadata keeps them exactly


def test_the_commands_quote_a_folder_name_with_spaces(trained: Path) -> None:
    text = render_model_card(manifest_of(trained), name="my model")
    assert "bertwise predict 'my model' texts.csv" in text and 'bertwise.load("my model")' in text
