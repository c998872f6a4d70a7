from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bertwise.exceptions import ConfigError, ModelError
from bertwise.strategies import ZeroShotClassifier
from bertwise.strategies.zero_shot import humanize_label, load_label_descriptions, rank_labels
from tests.conftest import toy_data


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("card_arrival", "card arrival"),
        ("OtherEffect", "other effect"),
        ("top-up", "top up"),
        ("NASA", "NASA"),
        (7, "7"),
    ],
)
def test_labels_read_as_words(label: str | int, expected: str) -> None:
    assert humanize_label(label) == expected


def test_plain_bert_uses_embedding_mode_with_templated_descriptions(tiny_bert: str) -> None:
    texts, labels = toy_data()
    model = ZeroShotClassifier(model=tiny_bert, device="cpu").fit(texts, labels)
    assert model.mode_ == "embedding"
    assert model.descriptions_ == [
        "This text is about cooking.",
        "This text is about sports.",
        "This text is about weather.",
    ]


def test_nli_mode_on_a_model_without_entailment_label_is_refused(tiny_bert: str) -> None:
    texts, labels = toy_data()
    with pytest.raises(ModelError, match="needs a model trained on natural language inference.*randomly initialised"):
        ZeroShotClassifier(model=tiny_bert, mode="nli", device="cpu").fit(texts, labels)


def test_nli_checkpoint_is_scored_like_the_transformers_pipeline(tiny_nli_bert: str) -> None:
    """Parity with the transformers zero-shot pipeline on a tiny locally built NLI-labelled model."""
    from transformers import pipeline

    texts, labels = toy_data()
    model = ZeroShotClassifier(model=tiny_nli_bert, device="cpu").fit(texts, labels)
    assert model.mode_ == "nli"
    ours = model.predict_proba(texts[:4])
    reference = pipeline("zero-shot-classification", model=tiny_nli_bert, device="cpu")
    for row, text in enumerate(texts[:4]):
        result = reference(text, candidate_labels=model.descriptions_, hypothesis_template="{}")
        expected = dict(zip(result["labels"], result["scores"], strict=True))
        np.testing.assert_allclose(ours[row], [expected[d] for d in model.descriptions_], atol=1e-5)


def test_user_descriptions_replace_the_template(tiny_bert: str) -> None:
    texts, labels = toy_data()
    model = ZeroShotClassifier(
        model=tiny_bert, device="cpu", label_descriptions={"sports": "A report on a game or match."}
    ).fit(texts, labels)
    assert model.descriptions_[1] == "A report on a game or match."


def test_descriptions_for_unknown_labels_are_refused(tiny_bert: str) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match="label descriptions name labels that are not in the data: 'sport'"):
        ZeroShotClassifier(model=tiny_bert, device="cpu", label_descriptions={"sport": "x"}).fit(texts, labels)


def test_template_without_placeholder_is_refused(tiny_bert: str) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match="must contain '\\{label\\}'"):
        ZeroShotClassifier(model=tiny_bert, template="About {}.", device="cpu").fit(texts, labels)


def test_rank_labels_is_shaped_like_the_pipeline_output(tiny_bert: str) -> None:
    ranking = rank_labels("bake the bread", ["cooking", " sports", "weather"], model=tiny_bert, device="cpu")
    assert ranking["sequence"] == "bake the bread"
    assert sorted(ranking["labels"]) == ["cooking", "sports", "weather"]
    assert ranking["scores"] == sorted(ranking["scores"], reverse=True)
    assert sum(ranking["scores"]) == pytest.approx(1.0, abs=1e-4)


def test_rank_labels_needs_two_distinct_labels(tiny_bert: str) -> None:
    with pytest.raises(ConfigError, match="at least 2 candidate labels"):
        rank_labels("text", ["only"], model=tiny_bert)
    with pytest.raises(ConfigError, match="must be distinct"):
        rank_labels("text", ["a", "a"], model=tiny_bert)


def test_label_descriptions_file(tmp_path: Path) -> None:
    good = tmp_path / "d.json"
    good.write_text(json.dumps({"a": "About A.", "b": "About B."}))
    assert load_label_descriptions(good) == {"a": "About A.", "b": "About B."}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object mapping each label"):
        load_label_descriptions(bad)
    with pytest.raises(ConfigError, match="label descriptions file not found"):
        load_label_descriptions(tmp_path / "missing.json")
