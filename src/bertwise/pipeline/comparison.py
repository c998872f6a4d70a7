"""``compare``: the whole pipeline, data -> backbone -> strategies -> evaluation -> recommendation -> results.json."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertwise import __version__
from bertwise.backbone.resolve import Backbone
from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit, LabeledTexts
from bertwise.evaluation.protocol import Protocol
from bertwise.evaluation.runner import SCHEMA_VERSION, StrategyResult
from bertwise.exceptions import ConfigError
from bertwise.recommendation import Recommendation

if TYPE_CHECKING:
    from bertwise.data.split import DataSource

# Without --budget, a plan estimated over LONG_PLAN_SECONDS is announced as long, with the cuts --budget would make
# to fit SUGGESTED_BUDGET_SECONDS.
LONG_PLAN_SECONDS = 30 * 60
SUGGESTED_BUDGET_SECONDS = 15 * 60


@dataclass
class Comparison:
    """The outcome of :func:`compare`; ``to_dict()`` is exactly what results.json holds."""

    config: CompareConfig
    split: DataSplit
    backbone: Backbone
    truncated: dict[str, int]
    machine: dict[str, Any]
    protocol: Protocol
    results: list[StrategyResult] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    learning_curve: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    # Stages taken from the run cache rather than computed: "calibration", strategy names, "learning curve".
    resumed: list[str] = field(default_factory=list)
    # The software that computed the numbers (bertwise, python and library versions) and the command that ran.
    versions: dict[str, str | None] = field(default_factory=dict)
    command: list[str] | None = None
    # ``save_best``: the model folder written, or why none was (nothing recommended); never in results.json.
    saved_model: Path | None = None
    save_best_error: str | None = None
    _written: set[tuple[str, str]] = field(default_factory=set, repr=False)  # (folder, strategy) predictions saved

    def result(self, name: str) -> StrategyResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result for strategy {name!r}; ran: {', '.join(r.name for r in self.results)}")

    @functools.cached_property
    def data_fingerprint(self) -> str:
        """The run cache's sha256 of the train and test texts and labels in order (and how the test set was made)."""
        from bertwise.evaluation.run_cache import data_fingerprint

        return data_fingerprint(self.split)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "bertwise_version": __version__,
            "versions": self.versions,
            "command": self.command,
            "config": self.config.to_dict(),
            "machine": self.machine,
            "dataset": {
                "train": _describe_part(self.split.train),
                "test": {**_describe_part(self.split.test), "origin": self.split.test_origin},
                "fingerprint": self.data_fingerprint,
                "classes": [_plain(label) for label in self.split.classes],
                "notes": list(self.split.notes),
                "max_length": self.backbone.max_length,
                "truncated": self.truncated,
            },
            "model": {
                "id": self.backbone.model_id,
                "path": self.backbone.path,
                "sha256": self.backbone.sha256,
                "embedded": self.backbone.embedded,
                "pooling": self.backbone.pooling,
                # A sentence-transformers checkpoint's Dense layers (their weights' sha256 included) and Normalize.
                "dense": [layer.to_record() for layer in self.backbone.dense],
                "normalize": self.backbone.normalize,
                "max_length": self.backbone.max_length,
                "precision": _precision_used(self.config),
            },
            "protocol": self.protocol.to_dict(
                test_rows=len(self.split.test),
                resamples=self.config.bootstrap_resamples,
                confidence=self.config.confidence,
            ),
            "strategies": [result.to_dict() for result in self.results],
            "paired": self.paired,
            "learning_curve": self.learning_curve,
            "diagnostics": self.diagnostics,
            "budget": self.budget,
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "resumed": list(self.resumed),
        }

    def save(self, out: str | Path, *, report: bool = True) -> Path:
        """Write results.json, each finished strategy's test predictions, report.html and summary.md into ``out``."""
        directory = Path(out)
        try:
            return self._write(directory, report=report)
        except OSError as err:
            # compare checked the folder before starting; this is a disk that filled up or changed since.
            where = f" ('{err.filename}')" if err.filename else ""
            raise ConfigError(
                f"cannot write the results to '{directory}': {err.strerror or err}{where}; the stages that finished "
                "are kept in the run cache (unless --no-cache): rerun with a writable --out to get them back"
            ) from None

    def _write(self, directory: Path, *, report: bool) -> Path:
        from bertwise.evaluation.runner import write_predictions
        from bertwise.util import atomic

        directory.mkdir(parents=True, exist_ok=True)
        atomic.remove_leftovers(directory)  # the temporary files of a run killed while writing here
        for result in self.results:
            # results.json is rewritten after every stage; each predictions file needs writing only once.
            key = (str(directory.resolve()), result.name)
            if result.status == "ok" and key not in self._written:
                write_predictions(directory / f"predictions-{result.name}.csv", self.split, result)
                self._written.add(key)
        data = self.to_dict()
        path = directory / "results.json"
        # Each file whole or not at all (bertwise.util.atomic): a run killed while writing leaves the previous version.
        atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        if report:
            # Written after results.json, so a failure while drawing can never lose the numbers.
            from bertwise.report.html import render_html
            from bertwise.report.markdown import render_markdown

            atomic.write_text(directory / "report.html", render_html(data))
            atomic.write_text(directory / "summary.md", render_markdown(data))
        return path


def compare(
    data: DataSource,
    *,
    test: DataSource | None = None,
    strategies: Sequence[str] | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    text_col: str = "text",
    label_col: str = "label",
    test_size: float | None = None,
    pooling: str = "auto",
    zero_shot_mode: str = "auto",
    zero_shot_template: str = "This text is about {label}.",
    label_descriptions: Mapping[str, str] | None = None,
    priority: str = "balanced",
    seeds: int | None = None,
    folds: int = 5,
    cross_validation_below: int = 5000,
    learning_curve: bool = True,
    curve_repeats: Mapping[str, int] | None = None,
    bootstrap_resamples: int = 1000,
    budget: float | str | None = None,
    report: bool = True,
    progress: bool = False,
    on_result: Callable[[StrategyResult], None] | None = None,
    on_plan: Callable[[Comparison], None] | None = None,
    console: Any = None,
    cache: bool = True,
    save_best: str | Path | None = None,
    command: Sequence[str] | None = None,
) -> Comparison:
    """Run the strategies on the same data under one evaluation protocol, with intervals, and recommend one.

    ``data`` is a CSV/TSV/JSONL/Parquet file or a folder with ``train.*`` (and ``test.*``), or a table in memory: a
    pandas DataFrame, a ``datasets.Dataset``, or a ``DatasetDict`` whose "test" (else "validation") split is the test
    set; ``test`` may be a file, DataFrame or Dataset. Without a test set, sets
    under ``cross_validation_below`` rows are cross-validated (``folds``), larger ones hold out 20 %; an explicit
    ``test_size`` always holds out that share.
    Fine-tuning runs with ``seeds`` seeds. ``budget`` (seconds or a duration such as "15m") cuts repeats, curve
    points and then training length to fit, and says what was cut. With ``out``, results.json (and the predictions,
    report.html and summary.md) are rewritten after every stage, so an interruption loses nothing already computed.
    With ``cache``, the calibration, each finished strategy and the learning curve are kept in the run cache
    (:mod:`bertwise.evaluation.run_cache`), and a rerun with the same data, settings and model reuses them: an
    interrupted run resumes, and results.json's ``resumed`` lists what was reused. ``cache=False`` reads and writes
    no cache at all, embeddings included.

    ``save_best`` saves the recommended strategy as a model folder there (:func:`bertwise.load` reads it back): on a
    test file or hold-out, the model of the first run, whose predictions are ``predictions-<name>.csv``; under
    cross-validation, where no single model made them, one refit on every row. When nothing is recommended (every
    strategy failed) no folder is written and ``Comparison.save_best_error`` says why.

    ``out`` and ``save_best`` are checked before anything is loaded: a file, an unwritable place, or a folder holding
    files bertwise did not write is refused with a :class:`~bertwise.exceptions.ConfigError`. ``on_plan`` is called
    once the plan is made, before any strategy runs, with the :class:`Comparison` so far: its ``protocol`` and its
    ``budget`` (estimates per part, cuts, and ``suggested`` when an unbudgeted plan is long); the CLI prints it.
    ``command`` is recorded in results.json as the command line that ran (the CLI passes its own; None otherwise).
    """
    from bertwise.backbone.cache import cache_directory, use_cache_dir
    from bertwise.evaluation.budget import parse_duration
    from bertwise.strategies.registry import check_strategy_names, default_curve_repeats, strategy_names

    budget_seconds = parse_duration(budget) if isinstance(budget, str) else budget
    if test_size is not None:
        cross_validation_below = 0  # the user asked for a hold-out of this size
    test_size = 0.2 if test_size is None else test_size
    strategies = tuple(strategies) if strategies is not None else strategy_names()
    check_strategy_names(strategies)
    config = CompareConfig(
        strategies=strategies,
        model=model,
        seed=seed,
        device=device,
        precision=precision,
        text_col=text_col,
        label_col=label_col,
        test_size=test_size,
        pooling=pooling,
        zero_shot_mode=zero_shot_mode,
        zero_shot_template=zero_shot_template,
        label_descriptions=dict(label_descriptions or {}),
        priority=priority,
        seeds=seeds,
        folds=folds,
        cross_validation_below=cross_validation_below,
        learning_curve=learning_curve,
        curve_repeats=dict(curve_repeats) if curve_repeats is not None else default_curve_repeats(),
        bootstrap_resamples=bootstrap_resamples,
        budget_seconds=budget_seconds,
    )
    # Refused now rather than after the first strategy (results) or the whole comparison (the model).
    if out is not None:
        from bertwise.artifact.outputs import check_results_folder

        check_results_folder(Path(out))
    if save_best is not None:
        from bertwise.artifact.folder import check_output_folder
        from bertwise.artifact.outputs import check_writable_folder

        check_output_folder(Path(save_best))
        check_writable_folder(Path(save_best), "the model folder")
    from bertwise.data.split import resolve_parts

    resolve_parts(data, test)  # a path that does not exist is refused now, not after torch loads (nothing is read)
    # Embeddings are kept on disk as well: without the cache, that one is off too, so every number is computed afresh.
    with contextlib.nullcontext() if cache else use_cache_dir(None):
        return _run(
            config,
            data,
            test,
            cache_root=cache_directory(),
            out=out,
            report=report,
            progress=progress,
            on_result=on_result,
            on_plan=on_plan,
            console=console,
            save_best=Path(save_best) if save_best is not None else None,
            command=list(command) if command is not None else None,
        )


def _run(
    config: CompareConfig,
    data: DataSource,
    test: DataSource | None,
    *,
    cache_root: Path | None,
    out: str | Path | None,
    report: bool,
    progress: bool,
    on_result: Callable[[StrategyResult], None] | None,
    console: Any,
    save_best: Path | None = None,
    on_plan: Callable[[Comparison], None] | None = None,
    command: list[str] | None = None,
) -> Comparison:
    """:func:`compare` once its settings are checked, with the run cache under ``cache_root`` (None: none)."""
    from bertwise.backbone.device import resolve_device
    from bertwise.backbone.encoder import load_tokenizer, tokenize
    from bertwise.backbone.resolve import resolve_backbone
    from bertwise.data.split import load_split
    from bertwise.evaluation.budget import Plan, calibrate, estimate
    from bertwise.evaluation.diagnostics import domain_diagnostics
    from bertwise.evaluation.learning_curve import plan_curve, run_curve
    from bertwise.evaluation.protocol import choose_protocol
    from bertwise.evaluation.run_cache import CURVE_STAGE, RunCache
    from bertwise.evaluation.runner import machine_description, software_versions
    from bertwise.recommendation import recommend
    from bertwise.strategies.registry import strategy_tags
    from bertwise.util.kill_hook import kill_point

    # An unusable device is an error before any work, not a failure per strategy.
    device_type = str(resolve_device(config.device).type)
    split = load_split(
        data,
        test=test,
        text_col=config.text_col,
        label_col=config.label_col,
        test_size=config.test_size,
        seed=config.seed,
        cross_validation_below=config.cross_validation_below,
    )
    backbone = resolve_backbone(config.model, pooling=config.pooling)  # type: ignore[arg-type]
    tokenizer = load_tokenizer(backbone.path)
    truncated = {"train": tokenize(tokenizer, split.train.texts, backbone.max_length).truncated}
    if split.test_origin != "cross-validation":
        truncated["test"] = tokenize(tokenizer, split.test.texts, backbone.max_length).truncated
    run_cache = None if cache_root is None else RunCache.open(cache_root, config, split, backbone, device_type)
    resumed: list[str] = []

    protocol = choose_protocol(split, config)
    tags = {name: strategy_tags(name) for name in config.strategies}
    trained = [name for name in config.strategies if tags[name].uses_labels_for_training]
    curve = plan_curve(split, protocol, config, trained) if config.learning_curve and trained else None
    plan = Plan(strategies=config.strategies, protocol=protocol, curve=curve)
    # A kept calibration matters beyond its seconds: the budget's cuts follow from it, and so do the later stages' keys.
    calibration = run_cache.load_calibration() if run_cache is not None else None
    if calibration is not None:
        resumed.append("calibration")
    else:
        calibration = calibrate(split, config.model, config.pooling, config.device, config.seed, config.precision)
        kill_point("calibration")  # the test hook: measured, not yet kept
        if run_cache is not None:
            run_cache.save_calibration(calibration)
    uncut = estimate(plan, split, calibration)
    suggested = None
    if config.budget_seconds is not None:
        plan = _budgeted(plan, split, calibration, config.budget_seconds)
    elif sum(uncut.values()) > LONG_PLAN_SECONDS:
        shorter = _budgeted(plan, split, calibration, SUGGESTED_BUDGET_SECONDS)
        shorter_seconds = sum(estimate(shorter, split, calibration).values())
        fits = shorter_seconds <= SUGGESTED_BUDGET_SECONDS
        suggested = {
            "when_over_seconds": LONG_PLAN_SECONDS,
            "budget_seconds": SUGGESTED_BUDGET_SECONDS,
            "estimated_seconds": round(shorter_seconds, 1),
            "fits": fits,
            # When nothing fits, fit_to_budget's last cut is the note saying so ("even this plan..."): the fits flag
            # says it here.
            "cuts": list(shorter.cuts if fits else shorter.cuts[:-1]),
        }
    parts = estimate(plan, split, calibration)
    comparison = Comparison(
        config=config,
        split=split,
        backbone=backbone,
        truncated=truncated,
        machine=machine_description(),
        protocol=plan.protocol,
        resumed=resumed,
        versions=software_versions(),
        command=command,
    )
    comparison.budget = {
        "limit_seconds": config.budget_seconds,
        "estimated_seconds": round(sum(parts.values()), 1),
        "estimated_seconds_uncut": round(sum(uncut.values()), 1),
        "estimated_seconds_by_part": {part: round(seconds, 1) for part, seconds in parts.items()},
        "measured_seconds_by_part": {},
        "calibration": calibration.to_dict(),
        "cuts": list(plan.cuts),
        "suggested": suggested,
    }
    if on_plan is not None:
        on_plan(comparison)
    finetune_overrides = plan.shortened_schedule("finetune")

    with _Progress(parts, enabled=progress, console=console) as bar:
        fold_predictions: dict[str, np.ndarray] = {}
        for name in config.strategies:
            started = time.perf_counter()
            result, per_run_folds, reused = _strategy_stage(
                name,
                split,
                plan,
                config,
                run_cache,
                bar,
                seed_dependent=tags[name].seed_dependent,
                overrides=finetune_overrides if name == "finetune" else None,
                # Only a single test set has one model behind its predictions; cross-validation refits instead.
                keep=save_best is not None and plan.protocol.scheme != "cross-validation",
            )
            loaded = reused == name  # the whole stage, rather than some of its fits
            if reused is not None:
                resumed.append(reused)
            # This run's time: for a reused strategy, reading it back (its cost fields keep what it once measured).
            comparison.budget["measured_seconds_by_part"][name] = round(time.perf_counter() - started, 1)
            comparison.results.append(result)
            if per_run_folds:
                fold_predictions[name] = np.stack([folds_[0].argmax(axis=1) for folds_ in per_run_folds])
            comparison.paired = paired_differences(comparison.results, split, config)
            comparison.recommendation = recommend(
                comparison.results, comparison.paired, priority=config.priority, budget_cuts=plan.cuts
            )
            if out is not None:
                # Drawing the report takes seconds, worth it after a computed stage but not after reading one back.
                comparison.save(out, report=report and not loaded)
            if on_result is not None:
                on_result(result)

        if plan.curve is not None:
            curve_plan = plan.curve
            started = time.perf_counter()
            zero_shot = next(
                (r for r in comparison.results if r.name == "zero-shot" and r.run_predictions is not None), None
            )
            full_runs = {name: runs for name, runs in fold_predictions.items() if name in curve_plan.strategies}
            references = {} if zero_shot is None else {zero_shot.name: zero_shot.run_predictions[0]}  # type: ignore[index]
            curve_overrides = {"finetune": finetune_overrides}
            curve_key = kept_curve = store = None
            if run_cache is not None:
                curve_key = run_cache.curve_key(curve_plan, plan.protocol, curve_overrides, full_runs, references)
                kept_curve = run_cache.load_curve(curve_key)
            if kept_curve is not None and run_cache is not None and curve_key is not None:
                comparison.learning_curve = kept_curve
                resumed.append("learning curve")
                run_cache.finish_stage(CURVE_STAGE, curve_key)  # in case a kill came between the entry and this
                for name in curve_plan.strategies:
                    bar.reused(f"{name} curve")
            else:
                if run_cache is not None and curve_key is not None:
                    store = run_cache.stage_fits(CURVE_STAGE, curve_key)
                comparison.learning_curve = run_curve(
                    curve_plan,
                    split,
                    plan.protocol,
                    config,
                    full_runs=full_runs,
                    references=references,
                    overrides=curve_overrides,
                    on_fit=bar.fitted_curve(curve_plan),
                    store=store,
                )
                partly = _partly_resumed("learning curve", store, len(curve_plan.jobs()))
                if partly is not None:
                    resumed.append(partly)
                if run_cache is not None and curve_key is not None:
                    run_cache.save_curve(curve_key, comparison.learning_curve)
                    if "failed" not in comparison.learning_curve:
                        run_cache.finish_stage(CURVE_STAGE, curve_key)
            comparison.budget["measured_seconds_by_part"]["learning curve"] = round(time.perf_counter() - started, 1)

    finished = {r.name: r.metrics["macro_f1"] for r in comparison.results if r.status == "ok"}
    trained_scores = [score for name, score in finished.items() if name != "zero-shot"]
    comparison.diagnostics = domain_diagnostics(
        tokenizer,
        list(split.train.texts),
        zero_shot_macro_f1=finished.get("zero-shot"),
        best_trained_macro_f1=max(trained_scores) if trained_scores else None,
    )
    comparison.recommendation = recommend(
        comparison.results,
        comparison.paired,
        priority=config.priority,
        learning_curve=comparison.learning_curve,
        diagnostics=comparison.diagnostics,
        budget_cuts=plan.cuts,
    )
    if out is not None:
        comparison.save(out, report=report)
    if save_best is not None:
        # After results.json: failing to save a model never loses the comparison.
        from bertwise.pipeline.best import save_recommended

        save_recommended(comparison, save_best, plan.protocol, finetune_overrides, say=_sayer(progress, console))
    return comparison


def _strategy_stage(
    name: str,
    split: DataSplit,
    plan: Any,
    config: CompareConfig,
    run_cache: Any,
    bar: _Progress,
    *,
    seed_dependent: bool,
    overrides: dict[str, Any] | None,
    keep: bool,
) -> tuple[StrategyResult, list[list[np.ndarray]], str | None]:
    """One strategy's evaluation, taken whole from the run cache or computed, resuming the fits (and the training
    checkpoint) a killed run left; also what was reused, for ``resumed``: ``name`` (all of it), a description of the
    part reused, or None."""
    from bertwise.evaluation.runner import evaluate_strategy

    key = store = None
    if run_cache is not None:
        key = run_cache.strategy_key(name, plan.protocol, plan.protocol.seeds_for(seed_dependent), overrides)
        loaded = run_cache.load_strategy(name, key, split)
        if loaded is not None:
            run_cache.finish_stage(name, key)  # in case a kill came between the entry and this
            bar.reused(name)
            return loaded[0], loaded[1], name
        store = run_cache.stage_fits(name, key)
    fits = _fits(plan, name, seed_dependent)
    result, per_run_folds = evaluate_strategy(
        name,
        split,
        plan.protocol,
        config,
        seed_dependent=seed_dependent,
        overrides=overrides,
        on_fit=bar.fitted(name, fits=fits),
        keep=keep,
        store=store,
    )
    if run_cache is not None and key is not None:
        run_cache.save_strategy(key, result, per_run_folds)
        if result.status == "ok":  # a failed stage keeps the fits it finished, for the next try
            run_cache.finish_stage(name, key)
    return result, per_run_folds, _partly_resumed(name, store, fits)


def _partly_resumed(stage: str, store: Any, fits: int) -> str | None:
    """How much of a stage a killed run left for this one: "finetune (2 of 5 fits, a fit from its step-40
    checkpoint)", or None when it left nothing."""
    if store is None or not (store.reused or store.resumed_steps):
        return None
    parts = [f"{len(store.reused)} of {fits} fits"] if store.reused else []
    parts += [f"a fit from its step-{step} checkpoint" for step in store.resumed_steps.values()]
    return f"{stage} ({', '.join(parts)})"


def _budgeted(plan: Any, split: DataSplit, calibration: Any, limit: float) -> Any:
    """``plan`` cut to fit ``limit`` seconds, its learning curve re-planned on the folds the cuts left."""
    from bertwise.evaluation.budget import fit_to_budget
    from bertwise.evaluation.learning_curve import refit_plan

    cut = fit_to_budget(plan, split, calibration, limit)
    if cut.curve is not None and cut.protocol.folds[0] != plan.protocol.folds[0]:
        cut = replace(cut, curve=refit_plan(cut.curve, split, cut.protocol))
    return cut


def _sayer(progress: bool, console: Any) -> Callable[[str], None]:
    """Where a long step after the progress bar says what it is doing: the CLI's console, and only with progress."""
    if not progress:
        return lambda message: None
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    return lambda message: console.print(message, markup=False, highlight=False)


def paired_differences(
    results: Sequence[StrategyResult], split: DataSplit, config: CompareConfig
) -> list[dict[str, Any]]:
    """Every pair of finished strategies, scored on the same test items: a - b in macro-F1 with its interval."""
    from bertwise.evaluation.protocol import PAIRED_METHOD
    from bertwise.evaluation.statistics import mcnemar, paired_bootstrap

    finished = [r for r in results if r.status == "ok" and r.run_predictions is not None]
    index = {label: position for position, label in enumerate(split.classes)}
    y_true = np.array([index[label] for label in split.test.labels], dtype=np.int64)
    pairs = []
    for first, one in enumerate(finished):
        for other in finished[first + 1 :]:
            # The higher-scoring strategy comes first, so differences read "a beats b by ...".
            a, b = (one, other) if one.metrics["macro_f1"] >= other.metrics["macro_f1"] else (other, one)
            difference = paired_bootstrap(
                y_true,
                a.run_predictions,  # type: ignore[arg-type]
                b.run_predictions,  # type: ignore[arg-type]
                len(split.classes),
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


def _fits(plan: Any, name: str, seed_dependent: bool) -> int:
    return len(plan.protocol.seeds_for(seed_dependent)) * len(plan.protocol.folds)


class _Progress:
    """One bar for the whole comparison, measured in estimated seconds, so its remaining time covers every part."""

    def __init__(self, parts: dict[str, float], *, enabled: bool, console: Any = None) -> None:
        self.parts = parts
        self.enabled = enabled
        self.console = console
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("remaining"),
                TimeRemainingColumn(),
                # stdout stays clean for the results table; the caller's console keeps its prints above the bar.
                console=self.console or Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=max(sum(self.parts.values()), 1.0))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self._progress.tasks[0].total)
            self._progress.stop()

    def fitted(self, name: str, *, fits: int) -> Any:
        share = self.parts.get(name, 0.0) / max(fits, 1)
        count = [0]

        def advance(strategy: str, seed: int, fold: int, seconds: float) -> None:
            count[0] += 1
            if self._progress is not None:
                self._progress.update(self._task, advance=share, description=f"{strategy}: fit {count[0]} of {fits}")

        if self._progress is not None:
            self._progress.update(self._task, description=f"{name}: fit 1 of {fits}")
        return advance

    def reused(self, part: str) -> None:
        """``part`` came from the run cache: its whole estimate is done at once."""
        if self._progress is not None:
            self._progress.update(
                self._task, advance=self.parts.get(part, 0.0), description=f"{part}: reused from an earlier run"
            )

    def fitted_curve(self, curve: Any) -> Any:
        jobs = curve.jobs()
        per_strategy = {name: sum(1 for job in jobs if job[0] == name) for name in curve.strategies}
        count = [0]

        def advance(strategy: str, per_class: int, repeat: int, seconds: float) -> None:
            count[0] += 1
            if self._progress is not None:
                share = self.parts.get(f"{strategy} curve", 0.0) / max(per_strategy.get(strategy, 1), 1)
                self._progress.update(
                    self._task,
                    advance=share,
                    description=f"learning curve: {strategy} at {per_class}/class ({count[0]} of {len(jobs)})",
                )

        return advance


def _precision_used(config: CompareConfig) -> str:
    from bertwise.backbone.device import precision_name, resolve_device

    return precision_name(resolve_device(config.device), config.precision)


def _describe_part(part: LabeledTexts) -> dict[str, Any]:
    return {
        "source": part.source,
        "rows": len(part),
        "class_counts": {str(label): count for label, count in part.class_counts().items()},
    }


def _plain(label: Any) -> Any:
    return label.item() if hasattr(label, "item") else label
