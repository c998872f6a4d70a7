"""The setfit strategy: seeded pairs linear in the texts, a body that embeds as bertwise's encoder does, the seed
taken for real, and a model folder of safetensors that predicts what the fitted model did."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bertwise.artifact.folder import load, save_model
from bertwise.data.dataset import LabeledTexts
from bertwise.exceptions import ConfigError
from bertwise.strategies import SetFitClassifier
from bertwise.strategies.cost import Calibration, FitWork
from bertwise.strategies.registry import default_strategy_names, strategy_tags
from bertwise.strategies.setfit import draw_pairs, pair_count
from tests.conftest import toy_data

FAST = {"num_iterations": 1, "batch_size": 8, "device": "cpu"}


def test_pairs_are_one_positive_and_one_negative_per_text_and_iteration() -> None:
    codes = np.repeat(np.arange(4), [1, 3, 5, 11])  # a singleton class, and unequal ones
    pairs = draw_pairs(codes, num_iterations=3, max_pairs=None, seed=0)
    assert len(pairs) == pair_count(len(codes), 3, None) == 2 * 3 * len(codes)
    same = pairs[:, 2] == 1
    assert same.sum() == (~same).sum() == 3 * len(codes)
    np.testing.assert_array_equal(codes[pairs[same, 0]] == codes[pairs[same, 1]], True)
    np.testing.assert_array_equal(codes[pairs[~same, 0]] != codes[pairs[~same, 1]], True)
    # Every text anchors num_iterations pairs of each kind; a positive partner is another text unless it is alone.
    np.testing.assert_array_equal(np.bincount(pairs[same, 0], minlength=len(codes)), 3)
    crowded = codes[pairs[same, 0]] != 0
    assert np.all(pairs[same][crowded, 0] != pairs[same][crowded, 1])
    assert np.all(pairs[same][~crowded, 0] == pairs[same][~crowded, 1])


def test_pairs_follow_the_seed_and_the_cap() -> None:
    codes = np.arange(60) % 3
    first, again = draw_pairs(codes, 4, None, seed=1), draw_pairs(codes, 4, None, seed=1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, draw_pairs(codes, 4, None, seed=2))
    assert len(draw_pairs(codes, 4, 100, seed=1)) == pair_count(60, 4, 100) == 100


def test_pairs_grow_linearly_with_the_texts() -> None:
    # 200,000 texts: the n(n+1)/2 candidates setfit's sampler enumerates would be 2e10 pairs, hundreds of GB.
    codes = np.arange(200_000) % 77
    pairs = draw_pairs(codes, num_iterations=2, max_pairs=None, seed=0)
    assert len(pairs) == 800_000
    assert pairs.nbytes <= 800_000 * 3 * 8


@pytest.fixture(scope="module")
def fitted(tiny_bert: str) -> SetFitClassifier:
    texts, labels = toy_data()
    return SetFitClassifier(model=tiny_bert, seed=3, max_pairs=30, **FAST).fit(texts, labels)


class StopAtStep:
    """A comparison's monitor as SetFit sees it: ``step_stop`` asked after every step (a deadline)."""

    def __init__(self, at: int) -> None:
        self.at, self.asked = at, []

    def step_stop(self, step: int, total_steps: int) -> str | None:
        self.asked.append((step, total_steps))
        return "stopped: the budget's time is spent" if step >= self.at else None


def test_a_deadline_ends_the_body_training_and_the_head_is_fitted_on_the_body_as_it_is(tiny_bert: str) -> None:
    texts, labels = toy_data()
    whole = SetFitClassifier(model=tiny_bert, seed=3, max_pairs=80, **FAST).fit(texts, labels)
    planned = whole.fit_details()["planned_steps"]
    assert whole.fit_details()["optimizer_steps"] == planned == 5  # 40 pairs (2 per text) in batches of 8
    assert "stopped_by" not in whole.fit_details()

    monitor = StopAtStep(3)
    stopped = SetFitClassifier(model=tiny_bert, seed=3, max_pairs=80, **FAST)
    stopped.monitor = monitor
    stopped.fit(texts, labels)
    details = stopped.fit_details()
    assert monitor.asked == [(1, planned), (2, planned), (3, planned)]
    assert (details["optimizer_steps"], details["planned_steps"], details["stopped_at_step"]) == (3, planned, 3)
    assert details["stopped_by"] == "stopped: the budget's time is spent"
    assert stopped.predict(texts).shape == (len(texts),)
    assert not np.allclose(stopped.predict_proba(texts), whole.predict_proba(texts))  # fewer steps, another body


def test_the_seed_is_passed_through(tiny_bert: str, fitted: SetFitClassifier) -> None:
    texts, labels = toy_data()
    first = fitted.predict_proba(texts)
    again = SetFitClassifier(model=tiny_bert, seed=3, max_pairs=30, **FAST).fit(texts, labels).predict_proba(texts)
    other = SetFitClassifier(model=tiny_bert, seed=4, max_pairs=30, **FAST).fit(texts, labels).predict_proba(texts)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-6


def test_fit_details_count_the_pairs_and_steps(fitted: SetFitClassifier) -> None:
    details = fitted.fit_details()
    assert details["training_pairs"] == 30  # 36 drawn, capped
    assert details["optimizer_steps"] == 4  # ceil(30 / 8)


@pytest.mark.parametrize("pooling", ["auto", "cls"])
def test_the_untrained_body_embeds_as_bertwises_encoder(tiny_bert: str, pooling: str) -> None:
    import torch

    from bertwise.backbone.encoder import Encoder
    from bertwise.backbone.resolve import resolve_backbone
    from bertwise.strategies.setfit import encode, load_body

    texts, _ = toy_data()
    backbone = resolve_backbone(tiny_bert, pooling=pooling)  # type: ignore[arg-type]
    body = load_body(backbone, torch.device("cpu"))
    expected = Encoder(backbone, device="cpu", precision="float32", remember=False).encode(texts)
    np.testing.assert_allclose(encode(body, texts, 8, False), expected, atol=1e-5)


def test_a_saved_model_predicts_what_the_fitted_one_did(
    fitted: SetFitClassifier, tiny_bert: str, tmp_path: Path
) -> None:
    texts, labels = toy_data()
    model = fitted
    before = model.predict_proba(texts)
    manifest = save_model(model, tmp_path / "model", training=LabeledTexts(tuple(texts), tuple(labels)))
    files = set(manifest["files"])
    assert {"head.safetensors", "backbone/model.safetensors", "backbone/modules.json"} <= files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pkl", ".joblib"))]
    assert manifest["setfit"]["head_file"] == "head.safetensors" and manifest["precision"] == "float32"
    assert manifest["backbone"]["id"] == tiny_bert and manifest["params"]["num_iterations"] == 1
    loaded = load(tmp_path / "model", device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(texts), before)
    assert loaded.predict(texts).tolist() == model.predict(texts).tolist()


def test_a_head_saved_for_other_classes_is_refused(fitted: SetFitClassifier, tmp_path: Path) -> None:
    from bertwise.artifact.folder import write_manifest
    from bertwise.exceptions import ModelError

    texts, labels = toy_data()
    manifest = save_model(fitted, tmp_path / "model", training=LabeledTexts(tuple(texts), tuple(labels)))
    manifest["classes"] = ["a", "b", "c"]
    write_manifest(tmp_path / "model", manifest)
    with pytest.raises(ModelError, match="trained for the classes"):
        load(tmp_path / "model", device="cpu")


def test_a_missing_package_is_one_clear_line(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # None in sys.modules makes the import fail
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match=r"needs the setfit package: pip install 'bertwise\[setfit\]'"):
        SetFitClassifier(model=tiny_bert, **FAST).fit(texts, labels)


@pytest.mark.parametrize(("param", "value"), [("num_iterations", 0), ("max_pairs", 0), ("C", 0.0), ("epochs", 0)])
def test_out_of_range_parameters_are_refused(tiny_bert: str, param: str, value: float) -> None:
    texts, labels = toy_data()
    with pytest.raises(ConfigError, match=f"the '{param}' parameter of SetFitClassifier is out of range"):
        SetFitClassifier(model=tiny_bert, **{**FAST, param: value}).fit(texts, labels)


def test_tags_make_it_an_opt_in_seeded_trainer() -> None:
    tags = strategy_tags("setfit")
    assert tags.seed_dependent and tags.trains_backbone and tags.has_training_schedule
    assert not tags.compared_by_default and "setfit" not in default_strategy_names()
    assert tags.in_words == "SetFit" and tags.run_spread_points > 0


def test_cost_grows_linearly_and_a_shortened_schedule_costs_less() -> None:
    calibration = Calibration(encode_texts_per_second=100.0, train_examples_per_second=20.0, probe_seconds_per_row=1e-4)

    def seconds(rows: int, scale: float = 1.0) -> float:
        work = FitWork(train_rows=rows, test_rows=0, n_classes=10, encode_train=True, schedule_scale=scale)
        return SetFitClassifier.fit_seconds(work, calibration)

    growth = [seconds(2 * rows) - seconds(rows) for rows in (100, 200, 400)]
    assert growth[1] == pytest.approx(2 * growth[0]) and growth[2] == pytest.approx(2 * growth[1])
    assert seconds(400, scale=0.5) < 0.6 * seconds(400)
    assert SetFitClassifier.shortened_schedule(1.0) == {}
    assert SetFitClassifier.shortened_schedule(0.25) == {"num_iterations": 5}
    assert json.dumps(SetFitClassifier().get_params())  # recorded in manifests and results.json as they are
