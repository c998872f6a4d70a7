"""The sequential protocol end to end, on strategies defined here whose scores are known in advance: a clearly losing
seed-dependent strategy stops after its first seed and says why; one that cannot be told apart from its rival runs every
seed; ``protocol="full"`` runs every seed and writes the same keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest

from bertwise import compare
from bertwise.data.dataset import Label
from bertwise.strategies import registry
from bertwise.strategies.base import Strategy, StrategyTags
from bertwise.strategies.cost import Calibration, FitWork

if TYPE_CHECKING:
    from bertwise.config import CompareConfig

CLASSES = ("apple", "banana", "cherry")


class _Known(Strategy):
    """Predicts the word a text starts with (each text starts with its label), right on ``accuracy`` of them."""

    accuracy: ClassVar[float] = 1.0

    def __init__(self, *, seed: int = 0, progress: bool = False) -> None:
        self.seed = seed
        self.progress = progress

    @classmethod
    def from_config(cls, config: CompareConfig, *, progress: bool = False) -> _Known:
        return cls(seed=config.seed, progress=progress)

    def _fit(self, texts: list[str], labels: list[Label]) -> None:
        self.fitted_ = True

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        index = {label: position for position, label in enumerate(self.classes_.tolist())}
        probabilities = np.zeros((len(texts), len(self.classes_)))
        for row, text in enumerate(texts):
            truth = index.get(text.split()[0], 0)  # the runner's warm-up text names no class
            guess = truth if rng.random() < self.accuracy else int(rng.integers(len(self.classes_)))
            probabilities[row, guess] = 1.0
        return probabilities


class Oracle(_Known):
    tags: ClassVar[StrategyTags] = StrategyTags(
        name="oracle", trains_backbone=False, uses_labels_for_training=True, seed_dependent=False
    )


class Guesser(_Known):
    """Seed-dependent and right on a third of the texts: chance."""

    accuracy: ClassVar[float] = 0.0
    tags: ClassVar[StrategyTags] = StrategyTags(
        name="guesser",
        trains_backbone=False,
        uses_labels_for_training=True,
        seed_dependent=True,
        run_spread_points=3.0,
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        return 100.0 + super().fit_seconds(work, calibration)  # dearer than the oracle: it runs second


class Twin(Guesser):
    """As good as the oracle, but seed-dependent: no interval can show them apart, nor equivalent."""

    accuracy: ClassVar[float] = 1.0
    tags: ClassVar[StrategyTags] = StrategyTags(
        name="twin", trains_backbone=False, uses_labels_for_training=True, seed_dependent=True, run_spread_points=3.0
    )


class Reader(_Known):
    """Costs a second a test row (by its cost model; it really takes none): a budget must cut the test set."""

    tags: ClassVar[StrategyTags] = StrategyTags(
        name="reader", trains_backbone=False, uses_labels_for_training=True, seed_dependent=False
    )

    @classmethod
    def fit_seconds(cls, work: FitWork, calibration: Calibration) -> float:
        return float(work.test_rows)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    for strategy in (Oracle, Guesser, Twin, Reader):
        registry.register(strategy)
    yield
    for strategy in (Oracle, Guesser, Twin, Reader):
        registry.unregister(strategy.tags.name)


def _data(folder: Path, test_rows: int = 90) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["text,label"]
    for part, count in (("train", 60), ("test", test_rows)):
        lines = [*rows, *(f"{CLASSES[i % 3]} item {i},{CLASSES[i % 3]}" for i in range(count))]
        (folder / f"{part}.csv").write_text("\n".join(lines) + "\n")
    return folder


def _run(
    tmp_path: Path, tiny_bert: str, strategies: tuple[str, ...], test_rows: int = 90, **options: Any
) -> dict[str, Any]:
    out = tmp_path / "out"
    compare(
        _data(tmp_path, test_rows),
        strategies=strategies,
        model=tiny_bert,
        out=out,
        learning_curve=False,
        cache=False,
        report=False,
        bootstrap_resamples=200,
        device="cpu",
        **options,
    )
    return dict(json.loads((out / "results.json").read_text()))


def test_a_clearly_losing_strategy_stops_after_its_first_seed(tmp_path: Path, tiny_bert: str) -> None:
    saved = _run(tmp_path, tiny_bert, ("guesser", "oracle"))
    assert [s["name"] for s in saved["strategies"]] == ["oracle", "guesser"]  # cheapest first
    guesser = saved["strategies"][1]
    assert len(guesser["runs"]) == 1
    stopping = guesser["stopping"]
    assert (stopping["planned_runs"], stopping["runs"]) == (3, 1)
    assert stopping["looks"][0]["decision"] == "behind"
    assert stopping["stopped"]["skipped"] == "seeds 2 and 3"
    text = stopping["stopped"]["text"]
    assert text.startswith("guesser stopped after seed 1 of 3: it trails oracle by ")
    assert saved["stopping"]["stopped"] == [text]
    assert saved["stopping"]["protocol"] == "sequential"
    assert saved["recommendation"]["strategy"] == "oracle"


def test_strategies_that_cannot_be_told_apart_run_every_seed(tmp_path: Path, tiny_bert: str) -> None:
    saved = _run(tmp_path, tiny_bert, ("twin", "oracle"))
    twin = saved["strategies"][1]
    assert twin["name"] == "twin" and len(twin["runs"]) == 3
    assert [look["decision"] for look in twin["stopping"]["looks"]] == [None, None]
    assert twin["stopping"]["stopped"] is None and saved["stopping"]["stopped"] == []


def test_the_full_protocol_runs_every_seed_and_writes_the_same_keys(tmp_path: Path, tiny_bert: str) -> None:
    full = _run(tmp_path / "full", tiny_bert, ("guesser", "oracle"), protocol="full")
    sequential = _run(tmp_path / "sequential", tiny_bert, ("guesser", "oracle"))
    assert [s["name"] for s in full["strategies"]] == ["guesser", "oracle"]  # the order asked for
    assert len(full["strategies"][0]["runs"]) == 3
    assert full["stopping"]["protocol"] == "full" and full["stopping"]["stopped"] == []
    assert full["config"]["protocol"] == "full"
    assert set(full) == set(sequential)
    assert set(full["stopping"]) == set(sequential["stopping"])


def test_a_budget_too_small_for_every_test_row_tests_fewer_and_says_so(tmp_path: Path, tiny_bert: str) -> None:
    saved = _run(tmp_path, tiny_bert, ("reader",), test_rows=1200, budget=700.0)
    kept = saved["protocol"]["test_rows"]
    assert 300 <= kept < 700  # the most rows whose estimate (a second each) fits 700 s, less the calibration's
    assert f"test set cut to {kept} of 1200 rows (stratified)" in " ".join(saved["budget"]["cuts"])
    assert any(f"the budget kept {kept} of the 1200 test rows" in note for note in saved["dataset"]["notes"])
    assert saved["dataset"]["test"]["rows"] == kept
    reader = saved["strategies"][0]
    assert [row["support"] for row in reader["per_class"].values()] == [kept // 3] * 3  # each class its share
    assert reader["metrics"]["macro_f1"] == 1.0
    predictions = (tmp_path / "out" / "predictions-reader.csv").read_text().splitlines()
    assert len(predictions) == kept + 1
