"""(backbone, strategy) pairs: named for their backbone, built on it, costed by its size, registered while asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.base import clone

from bertwise.config import CompareConfig
from bertwise.exceptions import ConfigError
from bertwise.strategies import registry
from bertwise.strategies.cost import Calibration, FitWork
from bertwise.strategies.probe import ProbeClassifier
from bertwise.strategies.variants import backbone_grid, labels_for, on_backbone
from tests.conftest import _write_tiny_bert, toy_data

CALIBRATION = Calibration(encode_texts_per_second=100.0, train_examples_per_second=10.0, probe_seconds_per_row=0.01)


def test_labels_name_each_backbone_once() -> None:
    assert labels_for([None, "org/plain-encoder", "/models/finbert/"]) == [
        "all-MiniLM-L6-v2",
        "plain-encoder",
        "finbert",
    ]
    assert labels_for(["a/encoder", "b/encoder"]) == ["encoder-1", "encoder-2"]


def test_a_pair_is_its_strategy_on_its_own_backbone(tiny_bert: str) -> None:
    pair = on_backbone("probe", tiny_bert, "tiny", weight_ratio=3.0)
    assert issubclass(pair, ProbeClassifier)
    assert (pair.tags.name, pair.tags.in_words, pair.tags.saved_as) == ("probe@tiny", "the probe on tiny", "probe")
    assert pair.tags.seed_dependent == ProbeClassifier.tags.seed_dependent
    assert not pair.tags.compared_by_default
    estimator = pair.from_config(CompareConfig(model="some/other-model", device="cpu"))
    assert estimator.model == tiny_bert  # the pair's backbone, whatever the comparison's first one is
    work = FitWork(train_rows=100, test_rows=50, n_classes=3, encode_train=True)
    assert pair.fit_seconds(work, CALIBRATION) == pytest.approx(3.0 * ProbeClassifier.fit_seconds(work, CALIBRATION))
    texts, labels = toy_data()
    fitted = estimator.fit(texts, labels)
    assert clone(fitted).get_params() == fitted.get_params()


def test_the_grid_registers_every_pair_for_the_block_only(tiny_bert: str, tmp_path: Path) -> None:
    other = str(_write_tiny_bert(tmp_path / "wider", seed=1))
    with backbone_grid(("zero-shot", "probe"), [tiny_bert, other]) as names:
        first = Path(tiny_bert).name
        assert names == (f"zero-shot@{first}", f"probe@{first}", "zero-shot@wider", "probe@wider")
        assert set(names) <= set(registry.strategy_names())
        assert registry.strategy_class("probe@wider").from_config(CompareConfig()).model == other
    assert not set(names) & set(registry.strategy_names())
    with pytest.raises(ConfigError, match="a model is listed twice"), backbone_grid(("probe",), [other, other]):
        pass
