from __future__ import annotations

from bertwise.evaluation.runner import StrategyResult
from bertwise.recommendation import recommend


def result(name: str, f1: float, fit_seconds: float, status: str = "ok") -> StrategyResult:
    return StrategyResult(
        name=name,
        status=status,
        metrics={"accuracy": f1, "macro_f1": f1},
        cost={"fit_seconds": fit_seconds, "predict_texts_per_second": 100.0},
    )


def test_best_macro_f1_wins_when_clearly_ahead() -> None:
    choice = recommend([result("zero-shot", 0.40, 0.1), result("probe", 0.80, 5), result("finetune", 0.90, 300)])
    assert choice.strategy == "finetune"
    assert choice.runner_up == "probe"
    assert choice.reasons[0] == "finetune has the best test macro-F1: 90.0"
    assert "probe is 10.0 points lower (80.0)" in choice.reasons


def test_a_tie_goes_to_the_cheaper_strategy() -> None:
    choice = recommend([result("probe", 0.898, 5), result("finetune", 0.901, 300)], tie_tolerance_points=0.5)
    assert choice.strategy == "probe"
    assert "within 0.5 points of the best (finetune, 90.1)" in choice.reasons[0]
    assert choice.runner_up == "finetune"


def test_failed_strategies_are_ignored_and_nothing_finished_means_no_choice() -> None:
    assert recommend([result("probe", 0.0, 1, status="failed"), result("zero-shot", 0.3, 0.1)]).strategy == "zero-shot"
    assert recommend([result("probe", 0.0, 1, status="failed")]).strategy is None
