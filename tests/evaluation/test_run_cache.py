"""The run cache's entries and keys, without running a comparison (tests/test_comparison.py runs whole ones)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, LabeledTexts
from bertwise.evaluation.learning_curve import CurvePlan
from bertwise.evaluation.protocol import choose_protocol
from bertwise.evaluation.run_cache import RunCache, RunCacheWarning, data_fingerprint
from bertwise.evaluation.runner import Fit, StrategyResult
from bertwise.strategies.cost import Calibration


def split_of(labels: list[Any], origin: str = "file") -> DataSplit:
    part = LabeledTexts(tuple(f"text {i}" for i in range(len(labels))), tuple(labels), source="memory.csv")
    return DataSplit(train=part, test=part, test_origin=origin)


SPLIT = split_of(["a", "b", "c", "a", "b", "c"])


def finished(name: str = "probe") -> tuple[StrategyResult, list[list[np.ndarray]]]:
    """A result shaped as evaluate_strategy returns one: 2 runs of 1 fold over SPLIT's 6 test rows."""
    rng = np.random.default_rng(0)
    folds = [[rng.dirichlet(np.ones(3), size=6)] for _ in range(2)]
    run_predictions = np.stack([run[0].argmax(axis=1) for run in folds])
    result = StrategyResult(
        name=name,
        status="ok",
        params={"C": None, "Cs": [0.1, 1.0], "device": "cpu"},
        details={"chosen_C": 1.0, "cv_macro_f1_by_C": {"0.1": 0.5, "1.0": 0.6666666666666666}},
        metrics={"accuracy": 0.5, "macro_f1": 0.4444},
        metrics_interval={"accuracy": [0.1667, 0.8333], "macro_f1": [0.1, 0.8]},
        per_class={"a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "f1_interval": [0.0, 1.0], "support": 2}},
        confusion_matrix={"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 1, 1], [1, 0, 1]]},
        runs=[{"seed": 0, "fit_seconds": 0.123, "metrics": {"accuracy": 0.5}}],
        cost={"fit_seconds": 0.123, "predict_seconds": 0.01, "fits": 2, "total_seconds": 0.3},
        predictions=np.array(SPLIT.classes, dtype=object)[run_predictions[0]],
        probabilities=folds[0][0],
        run_predictions=run_predictions,
    )
    return result, folds


@pytest.fixture()
def cache(tmp_path: Path) -> RunCache:
    return RunCache(tmp_path / "runs" / "0123", "0123")


def strategy_key(cache: RunCache, name: str = "probe", **overrides: Any) -> str:
    return cache.strategy_key(name, choose_protocol(SPLIT, CompareConfig()), (0,), overrides)


def test_from_dict_round_trips_what_to_dict_writes_and_rebuilds_the_labels() -> None:
    result, _ = finished()
    written = json.loads(json.dumps(result.to_dict()))  # as results.json and the cache hold it
    back = StrategyResult.from_dict(
        written, classes=SPLIT.classes, probabilities=result.probabilities, run_predictions=result.run_predictions
    )
    assert back.to_dict() == result.to_dict()
    assert back.predictions is not None and back.predictions.tolist() == result.predictions.tolist()  # type: ignore[union-attr]
    failed = StrategyResult(name="finetune", status="failed", error="out of memory")
    assert StrategyResult.from_dict(failed.to_dict()).to_dict() == failed.to_dict()
    integers = StrategyResult.from_dict(written, classes=[10, 20, 30], run_predictions=np.array([[2, 0]]))
    assert integers.predictions is not None and integers.predictions.tolist() == [30, 10]  # labels keep their type


def test_from_dict_refuses_what_is_not_a_result() -> None:
    with pytest.raises(ValueError, match="'runs' should be a list"):
        StrategyResult.from_dict({**finished()[0].to_dict(), "runs": {}})
    with pytest.raises(ValueError, match="'name' should be a str"):
        StrategyResult.from_dict({"status": "ok"})


def test_a_kept_strategy_comes_back_exactly(cache: RunCache) -> None:
    result, folds = finished()
    key = strategy_key(cache)
    cache.save_strategy(key, result, folds)
    loaded = cache.load_strategy("probe", key, SPLIT)
    assert loaded is not None
    back, back_folds = loaded
    assert back.to_dict() == result.to_dict()
    assert np.array_equal(back.run_predictions, result.run_predictions)  # type: ignore[arg-type]
    assert np.array_equal(back.probabilities, result.probabilities)  # type: ignore[arg-type]
    assert len(back_folds) == 2 and all(np.array_equal(a[0], b[0]) for a, b in zip(back_folds, folds, strict=True))
    assert sorted(path.suffix for path in cache.directory.iterdir()) == [".json", ".npz"]  # no temporary left


def test_a_failed_strategy_and_a_partly_failed_curve_are_never_kept(cache: RunCache) -> None:
    cache.save_strategy(strategy_key(cache), StrategyResult(name="probe", status="failed", error="boom"), [])
    cache.save_curve("f" * 64, {"strategies": {}, "failed": {"finetune": "boom"}})
    assert not cache.directory.exists() or not list(cache.directory.iterdir())


@pytest.mark.parametrize(
    ("damage", "suffix"),
    [
        (lambda path: path.write_text(path.read_text()[:40]), ".json"),  # cut short
        (lambda path: path.write_bytes(path.read_bytes()[:-10] + b"0123456789"), ".npz"),  # altered
        (lambda path: path.unlink(), ".npz"),  # half an entry
        (
            lambda path: path.write_text(path.read_text().replace('"name": "probe"', '"name": "zero-shot"')),
            ".json",
        ),  # another's
    ],
)
def test_a_damaged_entry_is_ignored_with_a_warning(cache: RunCache, damage: Any, suffix: str) -> None:
    result, folds = finished()
    key = strategy_key(cache)
    cache.save_strategy(key, result, folds)
    (path,) = cache.directory.glob(f"*{suffix}")
    damage(path)
    with pytest.warns(RunCacheWarning, match="ignoring the run-cache entry .*damaged"):
        assert cache.load_strategy("probe", key, SPLIT) is None


def test_an_entry_that_does_not_fit_the_data_is_ignored(cache: RunCache) -> None:
    result, folds = finished()
    key = strategy_key(cache)
    cache.save_strategy(key, result, folds)
    with pytest.warns(RunCacheWarning, match="do not fit"):
        assert cache.load_strategy("probe", key, split_of(["a", "b"] * 4)) is None


def test_the_calibration_is_kept_unrounded_and_the_curve_as_written(cache: RunCache) -> None:
    calibration = Calibration(1234.56789123, 98.7654321, 1.23456789e-5)
    assert cache.load_calibration() is None
    cache.save_calibration(calibration)
    assert cache.load_calibration() == calibration
    curve = {"per_class_points": [2, 4, 5.0], "strategies": {"probe": [{"macro_f1": 0.5}]}, "fit": {"probe": None}}
    cache.save_curve("c" * 64, curve)
    assert cache.load_curve("c" * 64) == curve
    assert cache.load_curve("d" * 64) is None


def test_a_cache_that_cannot_be_written_warns_once_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("a file where the folder should be")
    cache = RunCache(tmp_path / "runs" / "0123", "0123")
    with pytest.warns(RunCacheWarning, match="cannot write the run cache") as caught:
        cache.save_calibration(Calibration(1.0, 1.0, 1.0))
        cache.save_strategy(strategy_key(cache), *finished())
    assert len(caught) == 1
    assert cache.load_calibration() is None


def test_stage_keys_follow_the_plan(cache: RunCache) -> None:
    protocol = choose_protocol(SPLIT, CompareConfig())
    key = cache.strategy_key("finetune", protocol, (0, 1, 2), {})
    assert key == cache.strategy_key("finetune", protocol, (0, 1, 2), {})
    assert key != cache.strategy_key("finetune", protocol, (0, 1), {})  # a budget cut the seeds
    assert key != cache.strategy_key("finetune", protocol, (0, 1, 2), {"min_steps": 100})  # or shortened training
    assert key != cache.strategy_key("probe", protocol, (0, 1, 2), {})
    assert key != RunCache(cache.directory, "4567").strategy_key("finetune", protocol, (0, 1, 2), {})
    refolded = dataclasses.replace(protocol, folds=protocol.folds[:1] * 2)
    assert key != cache.strategy_key("finetune", refolded, (0, 1, 2), {})

    plan = CurvePlan(points=(2, 4), full_per_class=6.0, repeats={"probe": 2}, strategies=("probe",))
    runs = {"probe": np.array([[0, 1, 2, 0, 1, 2]])}
    curve = cache.curve_key(plan, protocol, {"finetune": {}}, runs, {})
    assert curve != cache.curve_key(dataclasses.replace(plan, repeats={"probe": 1}), protocol, {}, runs, {})
    assert curve != cache.curve_key(plan, protocol, {"finetune": {}}, {"probe": np.array([[0, 1, 2, 0, 1, 1]])}, {})
    assert curve != cache.curve_key(plan, protocol, {"finetune": {}}, runs, {"zero-shot": np.zeros(6, dtype=np.int64)})


def test_the_data_fingerprint_sees_every_text_label_and_how_the_test_set_was_made() -> None:
    base = data_fingerprint(SPLIT)
    assert base == data_fingerprint(split_of(["a", "b", "c", "a", "b", "c"]))
    assert base != data_fingerprint(split_of(["a", "b", "c", "a", "c", "b"]))
    assert base != data_fingerprint(split_of(["a", "b", "c", "a", "b", "c"], origin="cross-validation"))
    assert data_fingerprint(split_of([1, 2, 1, 2])) != data_fingerprint(split_of(["1", "2", "1", "2"]))
    assert data_fingerprint(split_of([np.int64(1), np.int64(2)])) == data_fingerprint(split_of([1, 2]))


def test_the_run_key_covers_the_settings_the_model_and_the_device(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.backbone.resolve import resolve_backbone

    backbone = resolve_backbone(tiny_bert)
    key = RunCache.open(tmp_path, CompareConfig(), SPLIT, backbone, "cpu").run_key
    assert key == RunCache.open(tmp_path, CompareConfig(), SPLIT, backbone, "cpu").run_key
    assert key != RunCache.open(tmp_path, CompareConfig(seed=1), SPLIT, backbone, "cpu").run_key
    assert key != RunCache.open(tmp_path, CompareConfig(budget_seconds=60), SPLIT, backbone, "cpu").run_key
    assert key != RunCache.open(tmp_path, CompareConfig(), split_of(["a", "b"] * 3), backbone, "cpu").run_key
    assert key != RunCache.open(tmp_path, CompareConfig(), SPLIT, backbone, "cuda").run_key
    cls_pooled = resolve_backbone(tiny_bert, pooling="cls")
    assert key != RunCache.open(tmp_path, CompareConfig(), SPLIT, cls_pooled, "cpu").run_key
    assert RunCache.open(tmp_path, CompareConfig(), SPLIT, backbone, "cpu").directory == tmp_path / "runs" / key


# Trust: every entry is checked against the sha256 it was written with.


@pytest.mark.parametrize(
    "edit",
    [
        lambda entry: entry["result"]["metrics"].update(macro_f1=0.99),  # a better score typed in
        lambda entry: entry["result"]["metrics_interval"]["macro_f1"].__setitem__(1, 0.8001),  # one digit
        lambda entry: entry["result"]["runs"].append(entry["result"]["runs"][0]),
        lambda entry: entry.pop("sha256"),  # an entry without its hash
    ],
)
def test_an_edited_entry_is_never_trusted(cache: RunCache, edit: Any) -> None:
    result, folds = finished()
    key = strategy_key(cache)
    cache.save_strategy(key, result, folds)
    (path,) = cache.directory.glob("*.json")
    entry = json.loads(path.read_text())
    edit(entry)
    path.write_text(json.dumps(entry))  # still valid JSON, with a matching .npz beside it
    with pytest.warns(RunCacheWarning, match="does not match the sha256 it was written with"):
        assert cache.load_strategy("probe", key, SPLIT) is None


def test_the_calibration_and_the_curve_are_checked_too(cache: RunCache) -> None:
    cache.save_calibration(Calibration(10.0, 20.0, 30.0))
    cache.save_curve("c" * 64, {"strategies": {"probe": [{"macro_f1": 0.5}]}})
    for path in cache.directory.glob("*.json"):
        path.write_text(path.read_text().replace("0.5", "0.9").replace("10.0", "99.0"))
    with pytest.warns(RunCacheWarning, match="does not match the sha256"):
        assert cache.load_calibration() is None
    with pytest.warns(RunCacheWarning, match="does not match the sha256"):
        assert cache.load_curve("c" * 64) is None


def test_an_entry_keyed_by_integers_reads_back_as_written(cache: RunCache) -> None:
    # JSON turns integer keys into strings, which sort differently: the hash is taken on what is read back.
    curve = {"strategies": {}, "counts": {2: "two", 10: "ten"}, "points": (2, 4)}
    cache.save_curve("e" * 64, curve)
    assert cache.load_curve("e" * 64) == {"strategies": {}, "counts": {"2": "two", "10": "ten"}, "points": [2, 4]}


# Fits within a stage: what a stage killed halfway had finished.


def a_fit(resumed_from_step: int | None = None) -> Fit:
    probabilities = np.random.default_rng(1).dirichlet(np.ones(3), size=6)
    return Fit(
        probabilities=probabilities,
        fit_seconds=1.25,
        predict_seconds=0.125,
        peak_rss_mb=512.5,
        peak_gpu_mb=None,
        params={"batch_size": 32, "learning_rate": None},
        details={"optimizer_steps": 40, "validation_history": [{"step": 2, "val_macro_f1": 0.5}]},
        resumed_from_step=resumed_from_step,
    )


def test_a_stages_finished_fits_come_back_exactly_until_the_stage_is_finished(cache: RunCache) -> None:
    fits = cache.stage_fits("finetune", "f" * 64)
    assert fits.load("seed-0-fold-0") is None
    fits.save("seed-0-fold-0", a_fit(resumed_from_step=12))
    assert fits.resumed_steps == {"seed-0-fold-0": 12}
    checkpoint = fits.checkpoint("seed-1-fold-0")
    checkpoint.write_text("a checkpoint under way")

    again = cache.stage_fits("finetune", "f" * 64)  # as the rerun of a killed run opens it
    back = again.load("seed-0-fold-0")
    assert back is not None and again.reused == ["seed-0-fold-0"]
    expected = a_fit(resumed_from_step=12)
    assert np.array_equal(back.probabilities, expected.probabilities)
    assert dataclasses.replace(back, probabilities=None) == dataclasses.replace(expected, probabilities=None)
    assert cache.stage_fits("finetune", "0" * 64).load("seed-0-fold-0") is None  # another plan's stage

    cache.finish_stage("finetune", "f" * 64)
    assert not checkpoint.exists() and cache.stage_fits("finetune", "f" * 64).load("seed-0-fold-0") is None


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_an_edited_or_damaged_fit_is_fitted_again(cache: RunCache, suffix: str) -> None:
    fits = cache.stage_fits("probe", "f" * 64)
    fits.save("seed-0-fold-1", a_fit())
    (path,) = fits.folder.glob(f"*{suffix}")
    if suffix == ".json":
        path.write_text(path.read_text().replace("1.25", "0.25"))
    else:
        path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.warns(RunCacheWarning, match="ignoring the run-cache entry .*seed-0-fold-1"):
        assert fits.load("seed-0-fold-1") is None


def test_opening_a_cache_removes_what_killed_writers_left(tmp_path: Path) -> None:
    directory = tmp_path / "runs" / "0123"
    partial = directory / "finetune-abc.partial"
    partial.mkdir(parents=True)
    dead = [directory / ".probe-abc.json.999999999-00ff00ff.tmp", partial / ".seed-0-fold-0.json.999999999-0a.tmp"]
    for path in dead:
        path.write_text("half")
    live = directory / f".zero-shot-abc.json.{os.getpid()}-0b.tmp"
    live.write_text("being written by a run still going")
    RunCache(directory, "0123")
    assert not any(path.exists() for path in dead)
    assert live.exists()
