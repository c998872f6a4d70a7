"""results.json as tracker runs: the parent's settings and chosen scores, each strategy's parameters, scores with
their intervals, costs and learning curve (x = training rows)."""

from __future__ import annotations

from bertwise.tracking.records import RunRecord, comparison_runs, param_value
from tests.report.conftest import failed_finetune, full_results


def points(record: RunRecord, key: str) -> list[tuple[int, float]]:
    return [(point.step, point.value) for point in record.metrics if point.key == key]


def test_the_parent_holds_the_settings_and_the_recommended_scores() -> None:
    results = full_results()
    parent, children = comparison_runs(results)
    assert parent.name == "compare train.csv"
    assert parent.params["seeds"] == "3" and parent.params["model"] == "null"
    assert parent.params["strategies"] == '["zero-shot", "probe", "finetune"]'
    assert parent.params["zero_shot_template"] == "This text is about {label}."
    assert parent.params["data.train_rows"] == str(results["dataset"]["train"]["rows"])
    assert parent.params["protocol.scheme"] == "fixed-test"
    chosen = results["recommendation"]["strategy"]
    assert parent.tags["bertwise.recommended"] == chosen
    result = next(s for s in results["strategies"] if s["name"] == chosen)
    assert points(parent, "recommended_macro_f1") == [(0, result["metrics"]["macro_f1"])]
    assert points(parent, "recommended_macro_f1_low") == [(0, result["metrics_interval"]["macro_f1"][0])]
    assert [child.name for child in children] == ["zero-shot", "probe", "finetune"]


def test_a_child_holds_its_params_scores_intervals_costs_and_runs() -> None:
    results = full_results()
    probe = comparison_runs(results)[1][1]
    source = results["strategies"][1]
    assert probe.params == {"C": "1.0", "strategy": "probe", "backbone": "sentence-transformers/all-MiniLM-L6-v2"}
    for key, value in source["metrics"].items():
        assert points(probe, key) == [(0, value)]
    for key, (low, high) in source["metrics_interval"].items():
        assert points(probe, f"{key}_low") == [(0, low)] and points(probe, f"{key}_high") == [(0, high)]
    assert points(probe, "peak_memory_mb") == [(0, source["cost"]["peak_memory_mb"])]
    assert points(probe, "predict_ms_per_text") == [(0, source["cost"]["predict_ms_per_text"])]
    assert points(probe, "run_macro_f1") == [(i, run["metrics"]["macro_f1"]) for i, run in enumerate(source["runs"])]


def test_the_learning_curve_becomes_metric_steps_at_the_training_rows() -> None:
    results = full_results()
    children = {child.name: child for child in comparison_runs(results)[1]}
    curve = results["learning_curve"]["strategies"]["finetune"]
    assert points(children["finetune"], "curve_macro_f1") == [(p["train_rows"], p["macro_f1"]) for p in curve]
    assert points(children["finetune"], "curve_macro_f1_high") == [(p["train_rows"], p["interval"][1]) for p in curve]
    assert points(children["finetune"], "curve_accuracy_low") == [
        (p["train_rows"], p["accuracy_interval"][0]) for p in curve
    ]
    # Zero-shot learns nothing from labels: its reference score is a flat line at the curves' sizes.
    reference = results["learning_curve"]["reference"]["zero-shot"]["macro_f1"]
    assert points(children["zero-shot"], "curve_macro_f1") == [(p["train_rows"], reference) for p in curve]


def test_a_failed_strategy_is_a_child_with_its_error_and_no_scores() -> None:
    finetune = comparison_runs(failed_finetune())[1][2]
    assert finetune.tags["bertwise.status"] == "failed"
    assert finetune.tags["bertwise.error"].startswith("CUDA out of memory")
    assert finetune.metrics == [] and finetune.params["strategy"] == "finetune"


def test_pairs_of_a_several_backbone_comparison_name_their_own_backbone() -> None:
    results = full_results()
    results["strategies"][1] = {**results["strategies"][1], "name": "probe@wider", "params": {"model": "/m/wider"}}
    probe = comparison_runs(results)[1][1]
    assert probe.name == "probe@wider"
    assert probe.params["strategy"] == "probe" and probe.params["backbone"] == "/m/wider"


def test_parameters_are_text_strings_as_they_are_the_rest_as_json() -> None:
    assert param_value("a b") == "a b"
    assert param_value(None) == "null"
    assert param_value({"b": 1, "a": [1.5, None]}) == '{"a": [1.5, null], "b": 1}'
