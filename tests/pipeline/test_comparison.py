"""The whole pipeline on tiny random BERTs: the evidence in results.json, its determinism, and what is kept."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bertwise.evaluation.run_cache import RunCacheWarning
from bertwise.evaluation.runner import evaluate_strategy  # the real one: spies wrap it
from bertwise.pipeline.comparison import compare

FAST = {"device": "cpu", "curve_repeats": {"probe": 2, "finetune": 1}, "bootstrap_resamples": 200}


def numbers(saved: dict[str, Any]) -> dict[str, Any]:
    """Everything in results.json that is a result rather than a timing."""
    return {
        "strategies": [
            {key: strategy[key] for key in ("metrics", "metrics_interval", "per_class", "confusion_matrix")}
            | {"runs": [run["metrics"] for run in strategy["runs"]]}
            for strategy in saved["strategies"]
        ],
        "paired": saved["paired"],
        "learning_curve": saved["learning_curve"],
        "diagnostics": saved["diagnostics"],
        "protocol": saved["protocol"],
    }


@pytest.fixture(scope="module")
def two_runs(tiny_bert: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    from tests.conftest import toy_data

    texts, labels = toy_data()
    folder = tmp_path_factory.mktemp("data")
    rows = ["text,label", *(f"{text},{label}" for text, label in zip(texts * 2, labels * 2, strict=True))]
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    saved = []
    cache = tmp_path_factory.mktemp("cache")
    # Without the cache the second run recomputes everything, so identical numbers say the pipeline is deterministic
    # (with it, the second run would only read the first run's numbers back).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTWISE_CACHE_DIR", str(cache))
        for attempt in ("first", "second"):
            out = tmp_path_factory.mktemp(attempt)
            options: dict[str, Any] = {"seeds": 2, "folds": 3, "cache": False, **FAST}
            compare(folder / "train.csv", model=tiny_bert, out=out, **options)
            saved.append(json.loads((out / "results.json").read_text()))
    assert list(cache.iterdir()) == []  # cache=False wrote nothing: no stage, no embedding
    return saved[0], saved[1], out


def without_timings(saved: dict[str, Any]) -> dict[str, Any]:
    """The whole results.json but what a clock or a memory gauge measured, and what was estimated from such speeds."""
    kept = copy.deepcopy(saved)
    del kept["machine"]["time"]
    del kept["effective_config"]["compare"]["out"]  # where this run wrote, not what it computed
    # Calibration speeds, the estimates made from them, and measured seconds; a budget's limit and cuts stay.
    kept["budget"] = {key: kept["budget"][key] for key in ("limit_seconds", "cuts")}
    del kept["stopping"]["seconds_to_recommendation"], kept["stopping"]["seconds_in_all"]
    for strategy in kept["strategies"]:
        del strategy["cost"]
        for run in strategy["runs"]:
            del run["fit_seconds"]
    # Reasons may cite a strategy's speed ("4.3 ms per text"); the choice and every other word must match.
    kept["recommendation"] = json.loads(
        re.sub(r"\d+(?:\.\d+)?\s?(?:ms|s|min|h)\b", "<time>", json.dumps(kept["recommendation"]))
    )
    return kept


def test_the_same_seed_gives_identical_numbers(two_runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    first, second, _ = two_runs
    assert first["resumed"] == second["resumed"] == []  # both computed, so this tests determinism
    assert numbers(first) == numbers(second)
    assert without_timings(first) == without_timings(second)  # every other key too, the record below included


def test_results_json_records_what_it_takes_to_reproduce_it(
    two_runs: tuple[dict[str, Any], dict[str, Any], Path], tiny_bert: str
) -> None:
    import hashlib
    from importlib.metadata import version

    import bertwise
    from bertwise.data.split import load_split
    from bertwise.evaluation.run_cache import data_fingerprint

    saved = two_runs[0]
    versions = saved["versions"]
    assert versions["bertwise"] == saved["bertwise_version"] == bertwise.__version__
    for library in ("torch", "transformers", "scikit-learn", "numpy", "sentence-transformers"):
        assert versions[library] == version(library)
    assert versions["python"] == saved["machine"]["python"]
    assert saved["command"] is None  # called from Python; the CLI records its command line
    # The backbone's weights, hashed here independently of bertwise.
    assert saved["model"]["sha256"] == hashlib.sha256((Path(tiny_bert) / "model.safetensors").read_bytes()).hexdigest()
    source = Path(saved["dataset"]["train"]["source"])
    assert saved["dataset"]["fingerprint"] == data_fingerprint(load_split(source, cross_validation_below=5000))
    assert {"platform", "processor", "cpu_count", "memory_gb", "torch_threads", "cuda_device"} <= set(saved["machine"])


def test_every_metric_has_an_interval_around_its_mean(two_runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    saved = two_runs[0]
    assert saved["schema_version"] == 2
    assert saved["protocol"]["scheme"] == "cross-validation"  # 36 rows, no test file
    for strategy in saved["strategies"]:
        assert strategy["status"] == "ok"
        for metric in ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall"):
            low, high = strategy["metrics_interval"][metric]
            assert 0.0 <= low <= strategy["metrics"][metric] <= high <= 1.0
        assert set(strategy["per_class"]) == {"cooking", "sports", "weather"}
        assert sum(map(sum, strategy["confusion_matrix"]["matrix"])) == 36  # every row tested once, by 3 folds
    finetune = next(s for s in saved["strategies"] if s["name"] == "finetune")
    # Two seeds planned; the sequential protocol runs the second unless the first already decided the answer.
    seeds, stopping = [run["seed"] for run in finetune["runs"]], finetune["stopping"]
    assert stopping["planned_runs"] == 2 and seeds == [0, 1][: stopping["runs"]]
    assert (stopping["stopped"] is not None) == (seeds == [0])


def test_paired_differences_cover_every_pair_higher_first(
    two_runs: tuple[dict[str, Any], dict[str, Any], Path],
) -> None:
    saved = two_runs[0]
    scores = {s["name"]: s["metrics"]["macro_f1"] for s in saved["strategies"]}
    assert len(saved["paired"]) == 3
    for pair in saved["paired"]:
        assert scores[pair["a"]] >= scores[pair["b"]]
        assert pair["difference"] == pytest.approx(scores[pair["a"]] - scores[pair["b"]], abs=2e-4)
        assert pair["interval"][0] <= pair["difference"] <= pair["interval"][1]
        assert pair["significant"] == (pair["interval"][0] > 0)


def test_learning_curves_end_at_the_full_set_and_zero_shot_is_the_reference(
    two_runs: tuple[dict[str, Any], dict[str, Any], Path],
) -> None:
    curve = two_runs[0]["learning_curve"]
    assert set(curve["strategies"]) == {"probe", "finetune"}
    assert "zero-shot" in curve["reference"]
    for points in curve["strategies"].values():
        assert [point["per_class"] for point in points] == curve["per_class_points"]
        for point in points:
            assert point["interval"][0] <= point["macro_f1"] <= point["interval"][1]
            assert set(point["per_class_f1"]) == {"cooking", "sports", "weather"}
    assert curve["strategies"]["probe"][0]["runs"] == 2
    assert curve["crossover"]["status"] in {"observed", "extrapolated", "none", "unknown"}
    # A forecast beyond the data is never more certain than the measured point it rests on.
    for name, fit in curve["fit"].items():
        low, high = curve["strategies"][name][-1]["interval"]
        for point in (fit or {}).get("extrapolation", []):
            assert point["interval"][1] - point["interval"][0] >= high - low - 2e-4


def test_the_recommendation_diagnostics_and_reports_are_written(
    two_runs: tuple[dict[str, Any], dict[str, Any], Path],
) -> None:
    saved, _, out = two_runs
    assert saved["recommendation"]["strategy"] in {"zero-shot", "probe", "finetune"}
    assert "runner_up" in saved["recommendation"] and saved["recommendation"]["reasons"]
    assert saved["diagnostics"]["tokenizer"]["user"]["words"] > 0
    assert saved["budget"]["estimated_seconds"] > 0 and saved["budget"]["cuts"] == []
    html = (out / "report.html").read_text()
    assert "<svg" in html and saved["recommendation"]["strategy"] in html
    assert (out / "summary.md").read_text().strip()


def test_a_budget_is_honoured_in_the_plan_and_reported(tiny_bert: str, toy_csv: Path, tmp_path: Path) -> None:
    comparison = compare(
        toy_csv,
        model=tiny_bert,
        out=tmp_path / "out",  # not tmp_path itself: toy.csv there is no file of compare's
        budget="1s",
        report=False,
        **FAST,  # type: ignore[arg-type]
    )
    cuts = comparison.budget["cuts"]
    assert cuts and "it runs anyway" in cuts[-1]
    assert comparison.budget["limit_seconds"] == 1.0
    finetune = comparison.result("finetune")
    assert finetune.params["min_steps"] < 400  # training was shortened to fit
    assert json.loads((tmp_path / "out" / "results.json").read_text())["budget"]["cuts"] == cuts


# The run cache: a rerun reuses every finished stage, an interrupted run resumes, and nothing changes a number.

ALL_STAGES = ["calibration", "zero-shot", "probe", "finetune", "learning curve"]


def comparable(saved: dict[str, Any]) -> dict[str, Any]:
    """results.json without what describes this run rather than the comparison: the machine, times, reuse."""
    kept = {key: value for key, value in saved.items() if key not in ("machine", "resumed")}
    kept["effective_config"] = copy.deepcopy(saved["effective_config"])
    kept["effective_config"]["compare"].pop("out", None)  # where this run wrote
    kept["budget"] = {key: value for key, value in saved["budget"].items() if key != "measured_seconds_by_part"}
    kept["stopping"] = {
        key: value
        for key, value in saved["stopping"].items()
        if key not in ("seconds_to_recommendation", "seconds_in_all")
    }
    return kept


def refuse(stage: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{stage} ran, but a kept result should have been reused")

    return refused


def counting(calls: list[str], interrupt_at: str | None = None) -> Callable[..., Any]:
    """evaluate_strategy, recording which strategies it evaluates (and pressing Ctrl-C at ``interrupt_at``)."""

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if name == interrupt_at:
            raise KeyboardInterrupt
        return evaluate_strategy(name, *args, **kwargs)

    return spy


@pytest.fixture(scope="module")
def fixed_test_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import toy_data

    texts, labels = toy_data()
    folder = tmp_path_factory.mktemp("fixed")
    rows = "\n".join(["text,label", *(f"{text},{label}" for text, label in zip(texts, labels, strict=True))])
    (folder / "train.csv").write_text(rows + "\n")
    (folder / "test.csv").write_text(rows + "\n")
    return folder


# The full protocol, in the order asked for: these tests name the stages a rerun reuses, in that order.
CACHED = {"seeds": 1, "protocol": "full", **FAST}


@pytest.fixture(scope="module")
def cached_runs(tiny_bert: str, fixed_test_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run that fills a fresh cache, then the same run again with every computing stage refused."""
    cache = tmp_path_factory.mktemp("run-cache")
    first, second = tmp_path_factory.mktemp("computed"), tmp_path_factory.mktemp("reused")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTWISE_CACHE_DIR", str(cache))
        compare(fixed_test_data, model=tiny_bert, out=first, **CACHED)  # type: ignore[arg-type]
        patch.setattr("bertwise.evaluation.budget.calibrate", refuse("calibration"))
        patch.setattr("bertwise.evaluation.runner.evaluate_strategy", refuse("a strategy's evaluation"))
        patch.setattr("bertwise.evaluation.learning_curve.run_curve", refuse("the learning curve"))
        compare(fixed_test_data, model=tiny_bert, out=second, **CACHED)  # type: ignore[arg-type]
    return {"cache": cache, "first": first, "second": second}


def test_a_second_identical_run_reuses_every_stage_and_writes_the_same_results(cached_runs: dict[str, Path]) -> None:
    first = json.loads((cached_runs["first"] / "results.json").read_text())
    second = json.loads((cached_runs["second"] / "results.json").read_text())
    assert first["resumed"] == []
    assert second["resumed"] == ALL_STAGES
    assert comparable(first) == comparable(second)  # cost fields too: they describe the strategy, not this run
    assert set(second["budget"]["measured_seconds_by_part"]) == {"zero-shot", "probe", "finetune", "learning curve"}
    for name in ("zero-shot", "probe", "finetune"):
        file = f"predictions-{name}.csv"
        assert (cached_runs["first"] / file).read_bytes() == (cached_runs["second"] / file).read_bytes()
    assert not list(cached_runs["cache"].rglob("*.tmp"))


def test_a_changed_seed_reuses_nothing(
    cached_runs: dict[str, Path],
    tiny_bert: str,
    fixed_test_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(cached_runs["cache"], tmp_path / "cache")  # the other tests' cache stays as the fixture left it
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr("bertwise.evaluation.runner.evaluate_strategy", counting(calls))
    comparison = compare(fixed_test_data, model=tiny_bert, out=tmp_path / "out", **{**CACHED, "seed": 1})  # type: ignore[arg-type]
    assert comparison.resumed == []
    assert calls == ["zero-shot", "probe", "finetune"]


def test_an_interrupted_run_resumes_with_the_finished_strategies(
    cached_runs: dict[str, Path],
    tiny_bert: str,
    fixed_test_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr("bertwise.evaluation.runner.evaluate_strategy", counting(calls, interrupt_at="probe"))
    with pytest.raises(KeyboardInterrupt):
        compare(fixed_test_data, model=tiny_bert, out=tmp_path / "out", **CACHED)  # type: ignore[arg-type]
    assert calls == ["zero-shot", "probe"]

    calls.clear()
    monkeypatch.setattr("bertwise.evaluation.runner.evaluate_strategy", counting(calls))
    monkeypatch.setattr("bertwise.evaluation.budget.calibrate", refuse("calibration"))
    comparison = compare(fixed_test_data, model=tiny_bert, out=tmp_path / "out", **CACHED)  # type: ignore[arg-type]
    assert comparison.resumed == ["calibration", "zero-shot"]
    assert calls == ["probe", "finetune"]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["resumed"] == comparison.resumed
    uninterrupted = json.loads((cached_runs["first"] / "results.json").read_text())
    assert numbers(comparison.to_dict()) == numbers(uninterrupted)


def test_a_damaged_entry_is_recomputed_with_a_warning(
    cached_runs: dict[str, Path],
    tiny_bert: str,
    fixed_test_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(cached_runs["cache"], cache)
    (entry,) = cache.glob("runs/*/probe-*.json")
    entry.write_text(entry.read_text()[:100])  # as a full disk or a killed copy might leave it
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(cache))
    calls: list[str] = []
    monkeypatch.setattr("bertwise.evaluation.runner.evaluate_strategy", counting(calls))
    with pytest.warns(RunCacheWarning, match="ignoring the run-cache entry .*probe-.*damaged"):
        comparison = compare(fixed_test_data, model=tiny_bert, out=tmp_path / "out", **CACHED)  # type: ignore[arg-type]
    assert calls == ["probe"]
    assert comparison.resumed == ["calibration", "zero-shot", "finetune", "learning curve"]
    first = json.loads((cached_runs["first"] / "results.json").read_text())
    assert numbers(comparison.to_dict()) == numbers(first)
    reused_finetune = comparison.to_dict()["strategies"][2]
    assert reused_finetune["cost"] == first["strategies"][2]["cost"]  # what it cost when it was measured
    json.loads(entry.read_text())  # written again, whole


def test_without_the_cache_nothing_is_read(
    cached_runs: dict[str, Path],
    tiny_bert: str,
    fixed_test_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Calibrated(Exception):
        pass

    def calibrate(*args: Any, **kwargs: Any) -> Any:
        raise Calibrated  # proof enough: the kept calibration was not read; the rest would take a whole run

    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(cached_runs["cache"]))
    monkeypatch.setattr("bertwise.evaluation.budget.calibrate", calibrate)
    with pytest.raises(Calibrated):
        compare(fixed_test_data, model=tiny_bert, out=tmp_path, cache=False, **CACHED)  # type: ignore[arg-type]


# The plan comes first, and the output folder is checked before anything runs.


def test_the_plan_comes_first_and_a_long_one_names_the_budget_that_fits_15_minutes(
    tiny_bert: str, toy_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertwise.evaluation.budget import Calibration
    from bertwise.pipeline.comparison import LONG_PLAN_SECONDS, SUGGESTED_BUDGET_SECONDS
    from bertwise.report.table import plan_lines

    # A machine this slow makes the default plan hours long; the tiny model would then run it in seconds anyway.
    slow = Calibration(encode_texts_per_second=50.0, train_examples_per_second=10.0, probe_seconds_per_row=0.001)
    monkeypatch.setattr("bertwise.evaluation.budget.calibrate", lambda *args, **kwargs: slow)

    class Planned(Exception):
        pass

    seen: list[tuple[int, dict[str, Any], list[str]]] = []

    def on_plan(comparison: Any) -> None:
        seen.append((len(comparison.results), comparison.budget, plan_lines(comparison.protocol, comparison.budget)))
        raise Planned  # the plan is all this test needs

    with pytest.raises(Planned):
        compare(toy_csv, model=tiny_bert, out=tmp_path / "out", on_plan=on_plan, cache=False, **FAST)  # type: ignore[arg-type]
    ((finished, budget, lines),) = seen
    assert finished == 0  # before any strategy ran
    assert budget["estimated_seconds"] > LONG_PLAN_SECONDS and budget["cuts"] == []  # the plan itself is not cut
    suggested = budget["suggested"]
    assert suggested["budget_seconds"] == SUGGESTED_BUDGET_SECONDS
    assert 0 < suggested["estimated_seconds"] <= SUGGESTED_BUDGET_SECONDS and suggested["cuts"]
    assert lines[0].startswith("plan: cross-validation (5 folds)")
    assert any(
        "--budget 15m would run one of each strategy in about" in line and suggested["cuts"][0] in line
        for line in lines
    )
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("where", ["file", "under a file", "foreign results.json", "foreign report"])
def test_a_bad_output_folder_is_refused_before_the_data_is_read(where: str, tmp_path: Path) -> None:
    from bertwise.exceptions import ConfigError

    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "results.json").write_text('{"accuracy": 0.9}\n')
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.html").write_text("<p>my report</p>\n")
    out = {
        "file": tmp_path / "file",
        "under a file": tmp_path / "file" / "out",
        "foreign results.json": tmp_path / "theirs",
        "foreign report": tmp_path / "report",
    }[where]
    # The data does not exist: the folder's error coming first shows it is checked before anything is loaded.
    with pytest.raises(ConfigError, match=re.escape(f"'{out}'")):
        compare(tmp_path / "missing.csv", out=out)
    assert (tmp_path / "file").read_text() == "mine\n"
    assert (tmp_path / "theirs" / "results.json").read_text() == '{"accuracy": 0.9}\n'


def test_in_a_notebook_a_comparison_shows_its_choice_table_and_frame(
    tiny_bert: str, toy_csv: Path, tmp_path: Path
) -> None:
    comparison = compare(
        toy_csv,
        model=tiny_bert,
        strategies=["zero-shot", "probe"],
        out=tmp_path / "out",
        report=False,
        learning_curve=False,
        **FAST,  # type: ignore[arg-type]
    )
    chosen = comparison.recommendation.strategy if comparison.recommendation else None
    names = [result.name for result in comparison.results]
    assert chosen is not None and sorted(names) == ["probe", "zero-shot"]
    assert repr(comparison) == (
        f"<Comparison of {', '.join(names)} on {len(comparison.split.train)} training and "
        f"{len(comparison.split.test)} test rows; recommended: {chosen}>"
    )
    fragment = comparison._repr_html_()
    assert '<p class="choice">' in fragment and chosen in fragment and "Results on the test set" in fragment
    frame = comparison.to_frame()
    assert list(frame.index) == names
    probe = comparison.result("probe")
    assert frame.loc["probe", "macro_f1"] == pytest.approx(100 * probe.metrics["macro_f1"], abs=0.01)
    assert frame.loc[chosen, "recommended"]
