"""Several backbones in one comparison: every strategy on every backbone, compared, reported and saved as pairs."""

from __future__ import annotations

import json
from pathlib import Path

from bertwise import compare, load
from bertwise.strategies import registry
from tests.conftest import _write_tiny_bert


def test_every_strategy_runs_on_every_backbone_and_the_best_pair_is_saved(
    tiny_bert: str, toy_csv: Path, tmp_path: Path
) -> None:
    other = str(_write_tiny_bert(tmp_path / "wider", seed=1))
    first = Path(tiny_bert).name
    comparison = compare(
        toy_csv,
        strategies=["zero-shot", "probe"],
        model=[tiny_bert, other],
        out=tmp_path / "out",
        save_best=tmp_path / "best",
        learning_curve=False,
        cache=False,
        device="cpu",
        bootstrap_resamples=200,
    )
    pairs = {f"zero-shot@{first}", f"probe@{first}", "zero-shot@wider", "probe@wider"}
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {entry["name"] for entry in saved["strategies"]} == pairs
    assert saved["config"]["model"] == tiny_bert and saved["config"]["other_models"] == [other]
    # Every pair against every other on the same rows; the recommendation names a pair and speaks of its backbone.
    assert len(saved["paired"]) == 6
    chosen = saved["recommendation"]["strategy"]
    assert chosen in pairs
    report = (tmp_path / "out" / "report.html").read_text()
    assert all(pair in report for pair in pairs)
    # The saved model is the chosen pair's strategy on the chosen pair's backbone, loadable with no grid registered.
    assert not pairs & set(registry.strategy_names())
    manifest = json.loads((tmp_path / "best" / "manifest.json").read_text())
    strategy, backbone = chosen.split("@")
    assert manifest["strategy"] == strategy
    assert manifest["params"]["model"] == (tiny_bert if backbone == first else other)
    model = load(tmp_path / "best")
    assert model.predict(["the match ended in a draw"]).shape == (1,)
    assert comparison.recommendation is not None


def test_adapt_domain_adds_the_adapted_backbone_and_records_what_it_cost(
    tiny_bert: str, toy_csv: Path, tmp_path: Path
) -> None:
    compare(
        toy_csv,
        strategies=["probe"],
        model=tiny_bert,
        adapt_domain=True,
        unlabeled=["the striker scored twice", "rain and wind tonight"],
        out=tmp_path / "out",
        learning_curve=False,
        device="cpu",
        bootstrap_resamples=200,
    )
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    first = Path(tiny_bert).name
    assert [entry["name"] for entry in saved["strategies"]] == [f"probe@{first}", f"probe@{first}+domain"]
    adaptation = saved["model"]["domain_adaptation"]
    assert adaptation["base_model"] == tiny_bert and adaptation["steps"] >= 1 and adaptation["unlabeled_texts"] == 2
    assert saved["config"]["other_models"] == [adaptation["path"]]
    assert "read the texts (never the labels) of rows it is later tested on" in adaptation["note"]
    [paired] = saved["paired"]  # with and without adaptation, on the same rows: whether it helped
    assert {paired["a"], paired["b"]} == {f"probe@{first}", f"probe@{first}+domain"}


def test_the_curves_of_one_strategy_on_two_backbones_are_compared_both_ways(
    tiny_bert: str, toy_csv: Path, tmp_path: Path
) -> None:
    other = str(_write_tiny_bert(tmp_path / "wider", seed=1))
    first = f"probe@{Path(tiny_bert).name}"
    compare(
        toy_csv,
        strategies=["probe"],
        model=[tiny_bert, other],
        out=tmp_path / "out",
        cache=False,
        device="cpu",
        bootstrap_resamples=200,
    )
    curve = json.loads((tmp_path / "out" / "results.json").read_text())["learning_curve"]
    assert set(curve["strategies"]) == {first, "probe@wider"}
    assert curve["crossover"] is None  # no pair of a trained and a frozen strategy: the main crossover has none
    asked = {(entry["a"], entry["b"]) for entry in curve["crossovers"]}
    assert asked == {(first, "probe@wider"), ("probe@wider", first)}
    assert all(entry["status"] in ("observed", "extrapolated", "none", "unknown") for entry in curve["crossovers"])
    assert sum(entry["status"] == "observed" for entry in curve["crossovers"]) == 1  # the leader at the data's size
