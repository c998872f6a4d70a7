"""Bootstrap intervals, paired tests and learning-curve forecasts checked against scikit-learn and known truths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from bertwise.evaluation.curve_fit import CurveFit, CurveForecast, crossover, fit_learning_curve
from bertwise.evaluation.statistics import (
    METRICS,
    Estimate,
    PairedDifference,
    bootstrap_metrics,
    confusion_counts,
    mcnemar,
    metrics_from_confusion,
    paired_bootstrap,
)


def _noisy_predictions(rng: np.random.Generator, y_true: np.ndarray, accuracy: float, n_classes: int) -> np.ndarray:
    """Predictions that are right with probability ``accuracy`` and otherwise a uniformly drawn other class."""
    wrong = (y_true + rng.integers(1, n_classes, size=y_true.size)) % n_classes
    return np.where(rng.random(y_true.size) < accuracy, y_true, wrong)


def _sklearn_metrics(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred, sample_weight=weights)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0, sample_weight=weights)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0, sample_weight=weights)),
        "macro_precision": float(
            precision_score(y_true, y_pred, average="macro", zero_division=0, sample_weight=weights)
        ),
        "macro_recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0, sample_weight=weights)),
    }


def _with_missing_classes(rng: np.random.Generator, n_classes: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random labels where class 0 is never predicted and the last class is predicted but never true."""
    y_true = rng.integers(0, n_classes - 1, size=n)  # the last class never occurs among the true labels
    y_pred = _noisy_predictions(rng, y_true, 0.6, n_classes)
    y_pred[y_pred == 0] = 1  # class 0 is never predicted
    y_pred[rng.integers(0, n, size=3)] = n_classes - 1  # the last class is predicted a few times
    return y_true, y_pred


# --------------------------------------------------------------------------------------------------------------------
# Metrics


@pytest.mark.parametrize("n_classes", [2, 5, 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn_with_missing_classes(n_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true, y_pred = _with_missing_classes(rng, n_classes, 400)
    assert 0 not in set(y_pred) and 0 in set(y_true)
    assert n_classes - 1 in set(y_pred) and n_classes - 1 not in set(y_true)

    ours = metrics_from_confusion(confusion_counts(y_true, y_pred, n_classes))
    for name, expected in _sklearn_metrics(y_true, y_pred).items():
        assert ours[name] == pytest.approx(expected, abs=1e-12), name
    expected_per_class = f1_score(y_true, y_pred, labels=list(range(n_classes)), average=None, zero_division=0)
    np.testing.assert_allclose(ours["per_class_f1"], expected_per_class, atol=1e-12)


def test_class_absent_from_both_is_left_out_of_macro_averages() -> None:
    # Class 2 never occurs: sklearn (labels=None) averages over classes 0 and 1 only, not over a zero for class 2.
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 1])
    ours = metrics_from_confusion(confusion_counts(y_true, y_pred, 3))
    assert ours["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert ours["macro_f1"] > 0.75


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_confusion_equals_sklearn_sample_weight_and_repetition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true, y_pred = _with_missing_classes(rng, 6, 200)
    weights = rng.multinomial(200, np.full(200, 1 / 200))  # one bootstrap resample, as counts

    confusion = confusion_counts(y_true, y_pred, 6, weights=weights)
    assert confusion.dtype == np.int64 and confusion.sum() == 200
    repeated = confusion_counts(np.repeat(y_true, weights), np.repeat(y_pred, weights), 6)
    np.testing.assert_array_equal(confusion, repeated)

    ours = metrics_from_confusion(confusion)
    for name, expected in _sklearn_metrics(y_true, y_pred, weights.astype(float)).items():
        assert ours[name] == pytest.approx(expected, abs=1e-12), name


def test_batched_metrics_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    confusions = []
    for _ in range(4):
        y_true, y_pred = _with_missing_classes(rng, 5, 80)
        confusions.append(confusion_counts(y_true, y_pred, 5))
    batch = metrics_from_confusion(np.stack(confusions))
    for i, confusion in enumerate(confusions):
        single = metrics_from_confusion(confusion)
        for name in METRICS:
            assert np.asarray(batch[name]).shape == (4,)
            assert np.asarray(batch[name])[i] == pytest.approx(single[name], abs=1e-15)
        np.testing.assert_allclose(np.asarray(batch["per_class_f1"])[i], single["per_class_f1"])


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_counts(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="same number|items"):
        confusion_counts(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(ValueError, match="shape"):
        bootstrap_metrics(np.array([0, 1]), np.zeros((2, 3), dtype=int), 2)
    with pytest.raises(ValueError, match="metric"):
        paired_bootstrap(np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), 2, metric="auc")


# --------------------------------------------------------------------------------------------------------------------
# Bootstrap of one strategy


def test_bootstrap_accuracy_interval_matches_binomial_width() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    y_true = rng.integers(0, 2, size=n)
    y_pred = _noisy_predictions(rng, y_true, 0.8, 2)
    result = bootstrap_metrics(y_true, y_pred[np.newaxis], 2, resamples=2000, seed=1)

    accuracy = result["accuracy"]
    assert isinstance(accuracy, Estimate)
    p = float(np.mean(y_true == y_pred))
    assert accuracy.mean == pytest.approx(p)
    assert accuracy.per_run == pytest.approx((p,))
    assert accuracy.low < accuracy.mean < accuracy.high
    expected_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
    assert accuracy.high - accuracy.low == pytest.approx(expected_width, rel=0.2)


def test_every_metric_and_class_has_an_interval_around_the_mean() -> None:
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 4, size=600)
    runs = np.stack([_noisy_predictions(rng, y_true, 0.75, 4) for _ in range(3)])
    result = bootstrap_metrics(y_true, runs, 4, resamples=500)

    for name in METRICS:
        estimate = result[name]
        assert isinstance(estimate, Estimate)
        assert len(estimate.per_run) == 3
        assert estimate.mean == pytest.approx(np.mean(estimate.per_run))
        assert estimate.low <= estimate.mean <= estimate.high, name
    per_class = result["per_class_f1"]
    assert isinstance(per_class, list) and len(per_class) == 4
    for estimate in per_class:
        assert estimate.low <= estimate.mean <= estimate.high
        assert 0.0 <= estimate.low < estimate.high <= 1.0


def test_variable_runs_widen_the_interval() -> None:
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, size=800)
    steady = _noisy_predictions(rng, y_true, 0.8, 3)
    varied = np.stack([_noisy_predictions(rng, y_true, accuracy, 3) for accuracy in (0.6, 0.8, 0.95)])

    one = bootstrap_metrics(y_true, steady, 3, resamples=500)["accuracy"]
    several = bootstrap_metrics(y_true, varied, 3, resamples=500)["accuracy"]
    assert isinstance(one, Estimate) and isinstance(several, Estimate)
    # Seed-to-seed spread of 0.35 must dominate the ~0.055 test-sampling width.
    assert several.high - several.low > 3 * (one.high - one.low)
    assert several.low < 0.65 and several.high > 0.9


def test_bootstrap_is_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(11)
    y_true = rng.integers(0, 5, size=300)
    runs = np.stack([_noisy_predictions(rng, y_true, 0.7, 5) for _ in range(2)])
    first = bootstrap_metrics(y_true, runs, 5, resamples=300, seed=4)
    again = bootstrap_metrics(y_true, runs, 5, resamples=300, seed=4)
    other = bootstrap_metrics(y_true, runs, 5, resamples=300, seed=5)
    assert first == again
    assert first["macro_f1"] != other["macro_f1"]


def test_interval_covers_the_true_accuracy_at_about_the_nominal_rate() -> None:
    # 200 test sets of 300 items from a classifier whose true accuracy is 0.8: about 95% of intervals must contain it.
    rng = np.random.default_rng(2024)
    true_accuracy, n, simulations = 0.8, 300, 200
    y_true = np.zeros(n, dtype=np.int64)
    covered = 0
    for simulation in range(simulations):
        y_pred = (rng.random(n) >= true_accuracy).astype(np.int64)
        estimate = bootstrap_metrics(y_true, y_pred, 2, resamples=400, seed=simulation)["accuracy"]
        assert isinstance(estimate, Estimate)
        covered += estimate.low <= true_accuracy <= estimate.high
    assert 0.90 <= covered / simulations <= 0.99


def test_hierarchical_interval_covers_the_seed_averaged_accuracy() -> None:
    # Each simulated experiment: a fresh test set and 3 seeds whose true accuracies scatter around 0.8 (sd 0.04).
    # An interval over test items alone would be far too narrow for this; the two-level one must still cover 0.8.
    rng = np.random.default_rng(99)
    n, simulations = 300, 150
    y_true = np.zeros(n, dtype=np.int64)
    covered = 0
    for simulation in range(simulations):
        seed_accuracies = np.clip(rng.normal(0.8, 0.04, size=3), 0, 1)
        runs = (rng.random((3, n)) >= seed_accuracies[:, np.newaxis]).astype(np.int64)
        estimate = bootstrap_metrics(y_true, runs, 2, resamples=300, seed=simulation)["accuracy"]
        assert isinstance(estimate, Estimate)
        covered += estimate.low <= 0.8 <= estimate.high
    assert covered / simulations >= 0.85


# --------------------------------------------------------------------------------------------------------------------
# Paired comparison and McNemar


def test_identical_predictions_have_exactly_zero_difference() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=500)
    run = _noisy_predictions(rng, y_true, 0.7, 4)
    result = paired_bootstrap(y_true, run[np.newaxis], run[np.newaxis], 4, resamples=300)
    assert result == PairedDifference(difference=0.0, low=0.0, high=0.0, p_value=1.0, significant=False)
    assert mcnemar(y_true, run, run) == 1.0


def test_clearly_better_strategy_is_significant() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, size=1000)
    better = np.stack([_noisy_predictions(rng, y_true, 0.85, 5) for _ in range(3)])
    worse = np.stack([_noisy_predictions(rng, y_true, 0.7, 5) for _ in range(3)])

    result = paired_bootstrap(y_true, better, worse, 5, resamples=1000)
    assert result.significant
    assert 0.0 < result.low < result.difference < result.high
    assert result.difference == pytest.approx(0.15, abs=0.04)
    assert result.p_value == pytest.approx(1 / 1001)

    reverse = paired_bootstrap(y_true, worse, better, 5, resamples=1000)
    assert reverse.significant and reverse.high < 0.0
    assert reverse.difference == pytest.approx(-result.difference)
    assert mcnemar(y_true, better[0], worse[0]) < 1e-6


def test_equal_strategies_are_not_significant() -> None:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 3, size=400)
    a = _noisy_predictions(rng, y_true, 0.75, 3)
    b = _noisy_predictions(rng, y_true, 0.75, 3)
    result = paired_bootstrap(y_true, a, b, 3, metric="accuracy", resamples=500)
    assert result.low < 0.0 < result.high
    assert not result.significant
    assert result.p_value > 0.05


def test_pairing_narrows_the_interval() -> None:
    # b is a with 3% of items flipped to wrong: strategies that agree almost everywhere differ by a precise amount.
    rng = np.random.default_rng(8)
    y_true = rng.integers(0, 2, size=1000)
    a = _noisy_predictions(rng, y_true, 0.8, 2)
    b = a.copy()
    flip = np.flatnonzero(a == y_true)[:30]
    b[flip] = 1 - b[flip]
    result = paired_bootstrap(y_true, a, b, 2, metric="accuracy", resamples=1000)
    unpaired = bootstrap_metrics(y_true, a, 2, resamples=1000)["accuracy"]
    assert isinstance(unpaired, Estimate)
    assert result.difference == pytest.approx(0.03)
    assert result.significant
    assert result.high - result.low < 0.5 * (unpaired.high - unpaired.low)


def test_mcnemar_matches_exact_binomial() -> None:
    from scipy.stats import binomtest

    y_true = np.zeros(40, dtype=np.int64)
    a = np.zeros(40, dtype=np.int64)
    b = np.zeros(40, dtype=np.int64)
    a[:3] = 1  # a wrong, b right on 3 items
    b[3:13] = 1  # b wrong, a right on 10 items
    assert mcnemar(y_true, a, b) == pytest.approx(binomtest(10, 13, 0.5).pvalue)
    assert mcnemar(y_true, a, b) == pytest.approx(mcnemar(y_true, b, a))


# --------------------------------------------------------------------------------------------------------------------
# Learning curves and crossover


def test_curve_fit_recovers_known_parameters_from_noiseless_data() -> None:
    a, b, c = 0.9, 0.8, 0.6
    sizes = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    scores = [[a - b * n**-c] * 2 for n in sizes]
    forecast = fit_learning_curve(sizes, scores, forecast_at=[128.0, 1024.0], resamples=20)
    assert forecast is not None
    assert forecast.fit.a == pytest.approx(a, abs=1e-3)
    assert forecast.fit.b == pytest.approx(b, abs=1e-3)
    assert forecast.fit.c == pytest.approx(c, abs=1e-3)
    expected = [a - b * n**-c for n in (128.0, 1024.0)]
    assert forecast.mean == pytest.approx(expected, abs=1e-4)
    # Identical runs leave nothing to resample, so the band is the prediction itself.
    assert forecast.low == pytest.approx(expected, abs=1e-4)
    assert forecast.high == pytest.approx(expected, abs=1e-4)


def test_curve_band_reflects_run_spread_and_widens_with_extrapolation() -> None:
    rng = np.random.default_rng(3)
    sizes = [4.0, 8.0, 16.0, 32.0, 64.0]
    scores = [list(0.85 - 0.7 * n**-0.5 + rng.normal(0, 0.02, size=3)) for n in sizes]
    forecast = fit_learning_curve(sizes, scores, forecast_at=[16.0, 1000.0], resamples=100, seed=1)
    assert forecast is not None and forecast.band_from_runs
    assert forecast.fit.a <= 1.0
    for low, mean, high in zip(forecast.low, forecast.mean, forecast.high, strict=True):
        assert low < high
        assert low <= mean + 1e-9 and mean <= high + 1e-9
    inside, outside = (high - low for low, high in zip(forecast.low, forecast.high, strict=True))
    assert outside > inside
    again = fit_learning_curve(sizes, scores, forecast_at=[16.0, 1000.0], resamples=100, seed=1)
    assert again == forecast


def test_curve_fit_needs_three_distinct_points() -> None:
    assert fit_learning_curve([8, 16], [[0.5, 0.6], [0.7, 0.72]], forecast_at=[64]) is None
    assert fit_learning_curve([8, 8, 16], [[0.5], [0.6], [0.7]], forecast_at=[64]) is None
    # A point without any scores does not count.
    assert fit_learning_curve([8, 16, 32], [[0.5], [0.7], []], forecast_at=[64]) is None


def test_single_run_points_take_the_band_from_the_residuals() -> None:
    forecast = fit_learning_curve([4, 8, 16, 32], [[0.4], [0.55], [0.62], [0.7]], forecast_at=[64], resamples=50)
    assert forecast is not None
    assert not forecast.band_from_runs
    # Four points, three numbers fitted: the residuals are what is left to say how far the gain could move.
    assert forecast.low[0] < forecast.mean[0] < forecast.high[0]


@pytest.mark.parametrize("runs", [1, 3])
def test_the_extrapolated_band_is_never_narrower_than_the_measured_one_at_the_last_point(runs: int) -> None:
    """The report drew a band beyond the data narrower than the measured interval it rests on (issue 12)."""
    rng = np.random.default_rng(5)
    sizes = [8.0, 16.0, 32.0, 64.0, 100.0]
    scores = [list(0.85 - 0.7 * n**-0.5 + rng.normal(0, 0.01, size=runs)) for n in sizes]
    # The last point's measured interval, as the learning curve records it: test-set sampling makes it wide.
    measured = (float(np.mean(scores[-1])), float(np.mean(scores[-1])) - 0.06, float(np.mean(scores[-1])) + 0.05)
    targets = [150.0, 200.0, 400.0, 800.0]
    forecast = fit_learning_curve(sizes, scores, forecast_at=targets, measured=measured, resamples=100, seed=2)
    assert forecast is not None
    widths = [high - low for low, high in zip(forecast.low, forecast.high, strict=True)]
    for low, mean, high in zip(forecast.low, forecast.mean, forecast.high, strict=True):
        assert mean - low >= 0.06 - 1e-12 and high - mean >= 0.05 - 1e-12
    # Further out is never more certain.
    assert widths == sorted(widths)
    # Without the measured interval the band is the gain's uncertainty alone: narrower, which is what the report
    # used to draw.
    alone = fit_learning_curve(sizes, scores, forecast_at=targets, resamples=100, seed=2)
    assert alone is not None
    assert all(high - low < width for low, high, width in zip(alone.low, alone.high, widths, strict=True))
    assert alone.high[0] - alone.low[0] < 0.11


def test_an_exact_fit_band_is_the_measured_interval_around_the_forecast() -> None:
    a, b, c = 0.9, 0.8, 0.6
    sizes = [2.0, 4.0, 8.0]
    scores = [[a - b * n**-c] for n in sizes]
    forecast = fit_learning_curve(sizes, scores, forecast_at=[16.0], measured=(scores[-1][0], 0.6, 0.75))
    assert forecast is not None
    assert forecast.mean[0] - forecast.low[0] == pytest.approx(scores[-1][0] - 0.6, abs=1e-6)
    assert forecast.high[0] - forecast.mean[0] == pytest.approx(0.75 - scores[-1][0], abs=1e-6)


def _forecast(a: float, b: float, c: float) -> CurveForecast:
    fit = CurveFit(a=a, b=b, c=c)
    return CurveForecast(fit=fit, per_class=(), mean=(), low=(), high=())


def test_crossover_observed_between_measured_points() -> None:
    sizes = [4.0, 16.0, 64.0]
    kind, where = crossover(sizes, [0.3, 0.5, 0.8], [0.4, 0.6, 0.7], None, None, search_up_to=1000)
    # The gap goes -0.1 -> +0.1 between 16 and 64: halfway on the log2 scale is 32.
    assert kind == "observed"
    assert where == pytest.approx(32.0)


def test_crossover_observed_from_the_first_point() -> None:
    kind, where = crossover([8, 2, 4], [0.9, 0.7, 0.8], [0.5, 0.4, 0.45], None, None, search_up_to=1000)
    assert (kind, where) == ("observed", 2.0)


def test_crossover_extrapolated_none_and_unknown() -> None:
    sizes = [4.0, 8.0, 16.0]
    finetune = _forecast(0.95, 3.0, 0.7)
    probe = _forecast(0.75, 0.5, 0.5)
    mean_a = [float(v) for v in finetune.fit.predict(np.array(sizes))]
    mean_b = [float(v) for v in probe.fit.predict(np.array(sizes))]
    assert all(x < y for x, y in zip(mean_a, mean_b, strict=True))

    kind, where = crossover(sizes, mean_a, mean_b, finetune, probe, search_up_to=10_000)
    assert kind == "extrapolated"
    assert where is not None and where > 16.0
    assert float(finetune.fit.predict(where)) == pytest.approx(float(probe.fit.predict(where)), abs=1e-9)

    assert crossover(sizes, mean_a, mean_b, finetune, probe, search_up_to=where * 0.9) == ("none", None)
    never = _forecast(0.7, 2.0, 0.7)
    assert crossover(sizes, mean_a, mean_b, never, probe, search_up_to=1e6) == ("none", None)
    assert crossover(sizes, mean_a, mean_b, None, probe, search_up_to=1e6) == ("unknown", None)
    assert crossover(sizes, mean_a, mean_b, finetune, None, search_up_to=1e6) == ("unknown", None)


def test_crossover_prefers_the_observed_one_even_without_forecasts() -> None:
    # a dips below b in the middle and ends above: the crossing is after the last dip (between 16 and 32).
    kind, where = crossover([8, 16, 32], [0.6, 0.5, 0.7], [0.55, 0.55, 0.6], None, None, search_up_to=100)
    assert kind == "observed"
    assert where is not None and 16.0 < where < 32.0


def test_macro_f1_intervals_are_centred_on_the_estimate_despite_the_resampling_bias() -> None:
    # 40 classes of 8 items: resamples lose distinct items of each class, so their macro F1 runs low.
    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(40), 8)
    predicted = np.where(rng.random(y_true.size) < 0.7, y_true, rng.integers(0, 40, y_true.size))
    estimate = bootstrap_metrics(y_true, predicted[None, :], 40, resamples=2000, seed=1)["macro_f1"]
    assert isinstance(estimate, Estimate)
    plain = np.quantile(
        [
            f1_score(y_true[rows], predicted[rows], average="macro", zero_division=0)
            for rows in np.random.default_rng(2).integers(0, y_true.size, size=(300, y_true.size))
        ],
        [0.025, 0.975],
    )
    assert (plain[0] + plain[1]) / 2 < estimate.mean - 0.01  # the artefact the re-centring removes
    assert abs((estimate.low + estimate.high) / 2 - estimate.mean) < 0.005
