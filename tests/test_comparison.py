"""The whole pipeline on tiny random BERTs: the evidence in results.json, its determinism, and what is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bertwise.comparison import compare

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
    for attempt in ("first", "second"):
        out = tmp_path_factory.mktemp(attempt)
        compare(folder / "train.csv", model=tiny_bert, out=out, seeds=2, folds=3, **FAST)  # type: ignore[arg-type]
        saved.append(json.loads((out / "results.json").read_text()))
    return saved[0], saved[1], out


def test_the_same_seed_gives_identical_numbers(two_runs: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    first, second, _ = two_runs
    assert numbers(first) == numbers(second)


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
    assert [run["seed"] for run in finetune["runs"]] == [0, 1]


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
        toy_csv, model=tiny_bert, out=tmp_path, budget="1s", report=False, **FAST  # type: ignore[arg-type]
    )
    cuts = comparison.budget["cuts"]
    assert cuts and "it runs anyway" in cuts[-1]
    assert comparison.budget["limit_seconds"] == 1.0
    finetune = comparison.result("finetune")
    assert finetune.params["min_steps"] < 400  # training was shortened to fit
    assert json.loads((tmp_path / "results.json").read_text())["budget"]["cuts"] == cuts
