"""The comparison's stages after the plan: load, run one strategy, the learning curves, the diagnostics, the paired
differences. Each takes what it needs and returns what it found; :mod:`bertwise.pipeline.comparison` runs them in
order, keeps the results and saves them after each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertwise.backbone.device import resolve_device
from bertwise.backbone.encoder import load_tokenizer, tokenize
from bertwise.backbone.resolve import Backbone, resolve_backbone
from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit
from bertwise.data.split import load_split
from bertwise.evaluation import learning_curve, runner
from bertwise.evaluation.diagnostics import domain_diagnostics
from bertwise.evaluation.protocol import PAIRED_METHOD
from bertwise.evaluation.run_cache import CURVE_STAGE, RunCache
from bertwise.evaluation.runner import StrategyResult
from bertwise.pipeline.progress import CURVES, STRATEGIES, FitFinished, PartReused, PartStarted, ProgressCallback
from bertwise.strategies.registry import strategy_tags  # the strategies import scikit-learn

if TYPE_CHECKING:
    from bertwise.data.split import DataSource
    from bertwise.evaluation.budget import Plan
    from bertwise.evaluation.deadline import Deadline
    from bertwise.evaluation.race import Race
    from bertwise.evaluation.sequential import StoppingRule
    from bertwise.pipeline.plan import Planned


@dataclass(frozen=True)
class Loaded:
    """The data split, the backbone and its tokenizer, and how many texts it truncates."""

    split: DataSplit
    backbone: Backbone
    tokenizer: Any
    truncated: dict[str, int]
    device_type: str


@dataclass(frozen=True)
class StrategyOutcome:
    """One strategy's result, its per-run fold probabilities, and what the run cache gave: ``reused`` is its name
    (all of it), a description of the part reused ("probe (1 of 5 fits)"), or None."""

    result: StrategyResult
    per_run_folds: list[list[np.ndarray]]
    reused: str | None


def read_split(config: CompareConfig, data: DataSource, test: DataSource | None) -> DataSplit:
    """The data split as ``config`` makes it (columns, test file or hold-out or cross-validation, seed)."""
    return load_split(
        data,
        test=test,
        text_col=config.text_col,
        label_col=config.label_col,
        test_size=config.test_size,
        seed=config.seed,
        cross_validation_below=config.cross_validation_below,
    )


def load(config: CompareConfig, data: DataSource, test: DataSource | None) -> Loaded:
    """Read and split the data, resolve the backbone, and count the texts its tokenizer truncates."""
    # An unusable device is an error before any work, not a failure per strategy.
    device_type = str(resolve_device(config.device).type)
    split = read_split(config, data, test)
    backbone = resolve_backbone(config.model, pooling=config.pooling)  # type: ignore[arg-type]
    tokenizer = load_tokenizer(backbone.path)
    truncated = {"train": tokenize(tokenizer, split.train.texts, backbone.max_length).truncated}
    if split.test_origin != "cross-validation":
        truncated["test"] = tokenize(tokenizer, split.test.texts, backbone.max_length).truncated
    return Loaded(split, backbone, tokenizer, truncated, device_type)


def open_run_cache(cache_root: Path | None, config: CompareConfig, loaded: Loaded) -> RunCache | None:
    """The run cache for these data, settings and model under ``cache_root`` (None: no cache)."""
    from bertwise.evaluation.run_cache import RunCache

    if cache_root is None:
        return None
    return RunCache.open(cache_root, config, loaded.split, loaded.backbone, loaded.device_type)


def run_strategy(
    name: str,
    split: DataSplit,
    plan: Plan,
    config: CompareConfig,
    run_cache: RunCache | None,
    report: ProgressCallback,
    *,
    overrides: dict[str, Any] | None,
    keep: bool,
    race: Race | None = None,
) -> StrategyOutcome:
    """One strategy's evaluation, taken whole from the run cache or computed, resuming the fits (and the training
    checkpoint) a killed run left. ``race``: the sequential protocol's looks and the budget's deadline (None: every
    planned run)."""
    seed_dependent = strategy_tags(name).seed_dependent
    key = store = None
    if run_cache is not None:
        key = run_cache.strategy_key(name, plan.protocol, plan.protocol.seeds_for(seed_dependent), overrides)
        loaded = run_cache.load_strategy(name, key, split)
        if loaded is not None:
            run_cache.finish_stage(name, key)  # in case a kill came between the entry and this
            report(PartReused(name))
            return StrategyOutcome(loaded[0], loaded[1], name)
        store = run_cache.stage_fits(name, key)
    fits = len(plan.protocol.seeds_for(seed_dependent)) * len(plan.protocol.folds)
    report(PartStarted(name, fits))
    result, per_run_folds = runner.evaluate_strategy(
        name,
        split,
        plan.protocol,
        config,
        seed_dependent=seed_dependent,
        overrides=overrides,
        on_fit=_strategy_fits(report, name, fits),
        keep=keep,
        store=store,
        race=race,
    )
    if run_cache is not None and key is not None:
        run_cache.save_strategy(key, result, per_run_folds)
        if result.status == "ok":  # a failed stage keeps the fits it finished, for the next try
            run_cache.finish_stage(name, key)
    return StrategyOutcome(result, per_run_folds, partly_resumed(name, store, fits))


def make_race(
    name: str,
    split: DataSplit,
    finished: Sequence[StrategyResult],
    planned: Planned,
    config: CompareConfig,
    deadline: Deadline | None,
) -> Race | None:
    """The sequential protocol's race for ``name`` against the best of the ``finished`` strategies (None under the
    full protocol without a deadline: every planned run, as always)."""
    from bertwise.evaluation.race import Race, Rival

    if planned.rule is None and deadline is None:
        return None
    plan = planned.plan
    ranked = [r for r in finished if r.status == "ok" and r.run_predictions is not None]
    leader = max(ranked, key=lambda result: result.metrics["macro_f1"], default=None)
    return Race(
        name,
        planned_runs=len(plan.protocol.seeds_for(strategy_tags(name).seed_dependent)),
        y_true=class_indices(split),
        n_classes=len(split.classes),
        rule=planned.rule,
        rival=Rival(leader.name, leader.run_predictions) if leader is not None else None,  # type: ignore[arg-type]
        deadline=deadline,
        resamples=config.bootstrap_resamples,
        seed=config.seed,
        schedule_scale=plan.schedule_scale if strategy_tags(name).has_training_schedule else 1.0,
        test_texts=split.test.texts,
        classes=split.classes,
    )


def class_indices(split: DataSplit) -> np.ndarray:
    """The test labels as indices into the split's classes."""
    index = {label: position for position, label in enumerate(split.classes)}
    return np.array([index[label] for label in split.test.labels], dtype=np.int64)


def stopping_record(
    planned: Planned,
    config: CompareConfig,
    results: Sequence[StrategyResult],
    learning_curve: Mapping[str, Any] | None,
    seconds_to_recommendation: float | None,
    seconds_in_all: float | None = None,
) -> dict[str, Any]:
    """results.json's "stopping": the protocol, its rule, and every stop and budget skip in words, in order."""
    stopped: list[str] = []
    skipped: list[str] = []
    for result in results:
        record = result.stopping or {}
        stopped.extend(record.get("stopped_training", []))
        if record.get("stopped"):
            stopped.append(record["stopped"]["text"])
        if record.get("skipped_for_budget"):
            skipped.append(record["skipped_for_budget"])
    curve_record = (learning_curve or {}).get("stopping") or {}
    stopped.extend(entry["text"] for entry in curve_record.get("stopped", []))
    skipped.extend(curve_record.get("skipped_for_budget", []))
    rule = planned.rule.to_dict() if planned.rule is not None else {}
    return {
        "protocol": config.protocol,
        "tolerance_points": config.tolerance_points,
        "error_rate": round(1.0 - config.confidence, 6),
        "looks_planned": rule.get("looks_planned", 0),
        "confidence_per_look": rule.get("confidence_per_look"),
        "curve_looks_planned": planned.curve_rule.looks if planned.curve_rule is not None else 0,
        "rule": rule.get("rule"),
        "stopped": stopped,
        "skipped_for_budget": skipped,
        "seconds_to_recommendation": seconds_to_recommendation,
        "seconds_in_all": seconds_in_all,
    }


def _strategy_fits(report: ProgressCallback, name: str, fits: int) -> Any:
    count = [0]

    def on_fit(strategy: str, seed: int, fold: int, seconds: float) -> None:
        count[0] += 1
        report(FitFinished(STRATEGIES, strategy, name, fits, count[0], fits))

    return on_fit


def run_curves(
    plan: Plan,
    split: DataSplit,
    config: CompareConfig,
    run_cache: RunCache | None,
    report: ProgressCallback,
    *,
    full_runs: dict[str, np.ndarray],
    references: Mapping[str, np.ndarray],
    overrides: dict[str, dict[str, Any]],
    curve_rule: StoppingRule | None = None,
    deadline: Deadline | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The learning curves of ``plan.curve``, taken whole from the run cache or computed (resuming a killed run's
    fits), and what was reused, for ``resumed``. ``full_runs`` are the strategies' predictions on all their rows
    (the curve's last point); ``references`` a label-free strategy's predictions, by name (its flat line).
    ``curve_rule`` stops a point's repeats once they cannot change which strategy is ahead there (the sequential
    protocol); ``deadline`` skips the fits the budget has no time left for."""
    from bertwise.evaluation.curve_sequential import CurveStopping

    curve_plan = plan.curve
    assert curve_plan is not None
    key = store = None
    if run_cache is not None:
        key = run_cache.curve_key(curve_plan, plan.protocol, overrides, full_runs, references)
        kept = run_cache.load_curve(key)
        if kept is not None:
            run_cache.finish_stage(CURVE_STAGE, key)  # in case a kill came between the entry and this
            for name in curve_plan.strategies:
                report(PartReused(f"{name} curve"))
            return kept, "learning curve"
        store = run_cache.stage_fits(CURVE_STAGE, key)
    curve = learning_curve.run_curve(
        curve_plan,
        split,
        plan.protocol,
        config,
        full_runs=full_runs,
        references=references,
        overrides=overrides,
        on_fit=_curve_fits(report, curve_plan),
        store=store,
        stopping=CurveStopping(curve_rule, config.bootstrap_resamples, config.seed) if curve_rule is not None else None,
        deadline=deadline,
        schedule_scale=plan.schedule_scale,
    )
    if run_cache is not None and key is not None:
        run_cache.save_curve(key, curve)
        if "failed" not in curve:
            run_cache.finish_stage(CURVE_STAGE, key)
    return curve, partly_resumed("learning curve", store, len(curve_plan.jobs()))


def _curve_fits(report: ProgressCallback, curve: Any) -> Any:
    jobs = curve.jobs()
    per_strategy = {name: sum(1 for job in jobs if job[0] == name) for name in curve.strategies}
    count = [0]

    def on_fit(strategy: str, per_class: int, repeat: int, seconds: float) -> None:
        count[0] += 1
        part_fits = per_strategy.get(strategy, 1)
        report(FitFinished(CURVES, strategy, f"{strategy} curve", part_fits, count[0], len(jobs), per_class))

    return on_fit


def partly_resumed(stage: str, store: Any, fits: int) -> str | None:
    """How much of a stage a killed run left for this one: "finetune (2 of 5 fits, a fit from its step-40
    checkpoint)", or None when it left nothing."""
    if store is None or not (store.reused or store.resumed_steps):
        return None
    parts = [f"{len(store.reused)} of {fits} fits"] if store.reused else []
    parts += [f"a fit from its step-{step} checkpoint" for step in store.resumed_steps.values()]
    return f"{stage} ({', '.join(parts)})"


def diagnose(tokenizer: Any, split: DataSplit, results: Sequence[StrategyResult]) -> dict[str, Any]:
    """How the tokenizer sees these texts, and what the finished strategies' scores say about the domain."""
    finished = [r for r in results if r.status == "ok"]
    labels_free = [r for r in finished if not strategy_tags(r.name).uses_labels_for_training]
    trained_scores = [r.metrics["macro_f1"] for r in finished if strategy_tags(r.name).uses_labels_for_training]
    return domain_diagnostics(
        tokenizer,
        list(split.train.texts),
        zero_shot_macro_f1=labels_free[0].metrics["macro_f1"] if labels_free else None,
        best_trained_macro_f1=max(trained_scores) if trained_scores else None,
    )


def paired_differences(
    results: Sequence[StrategyResult], split: DataSplit, config: CompareConfig
) -> list[dict[str, Any]]:
    """Every pair of finished strategies, scored on the same test items: a - b in macro-F1 with its interval."""
    return paired_entries(results, class_indices(split), len(split.classes), config)


def paired_entries(
    results: Sequence[StrategyResult], y_true: np.ndarray, n_classes: int, config: CompareConfig
) -> list[dict[str, Any]]:
    """:func:`paired_differences` on test classes ``y_true`` (indices) of ``n_classes`` classes."""
    from bertwise.evaluation.statistics import mcnemar, paired_bootstrap

    finished = [r for r in results if r.status == "ok" and r.run_predictions is not None]
    pairs = []
    for first, one in enumerate(finished):
        for other in finished[first + 1 :]:
            # The higher-scoring strategy comes first, so differences read "a beats b by ...".
            a, b = (one, other) if one.metrics["macro_f1"] >= other.metrics["macro_f1"] else (other, one)
            difference = paired_bootstrap(
                y_true,
                a.run_predictions,  # type: ignore[arg-type]
                b.run_predictions,  # type: ignore[arg-type]
                n_classes,
                metric="macro_f1",
                resamples=config.bootstrap_resamples,
                confidence=config.confidence,
                seed=config.seed,
            )
            pairs.append(
                {
                    "a": a.name,
                    "b": b.name,
                    "metric": "macro_f1",
                    "difference": round(difference.difference, 4),
                    "interval": [round(difference.low, 4), round(difference.high, 4)],
                    "p_value": round(difference.p_value, 4),
                    "significant": bool(difference.significant),
                    "mcnemar_p_value": round(
                        mcnemar(y_true, a.run_predictions[0], b.run_predictions[0]),  # type: ignore[index]
                        4,
                    ),
                    "method": PAIRED_METHOD,
                }
            )
    return pairs
