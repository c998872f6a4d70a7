"""``compare``: the whole pipeline, data -> backbone -> strategies -> evaluation -> recommendation -> results.json.

The stages run in order: load (:func:`stages.load`), plan/budget (:func:`plan.make_plan`), run the strategies
(:func:`stages.run_strategy`), the learning curves (:func:`stages.run_curves`), the diagnostics
(:func:`stages.diagnose`), recommend, save (:class:`save.ResultsWriter`) and save best
(:func:`best.save_recommended`). This module runs them, keeps what they return in a
:class:`~bertwise.pipeline.results.Comparison` and saves it after each, and reports progress as events
(:mod:`bertwise.pipeline.progress`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertwise.artifact.folder import check_output_folder
from bertwise.artifact.outputs import check_results_folder, check_writable_folder
from bertwise.backbone.cache import cache_directory, use_cache_dir
from bertwise.config import CompareConfig
from bertwise.data.io import read_unlabeled
from bertwise.data.split import resolve_parts
from bertwise.evaluation.budget import parse_duration
from bertwise.evaluation.records import machine_description, software_versions
from bertwise.evaluation.runner import StrategyResult
from bertwise.exceptions import ConfigError
from bertwise.pipeline import progress as events
from bertwise.pipeline.adaptation import adapted_backbone
from bertwise.pipeline.best import release_models, save_recommended
from bertwise.pipeline.plan import LONG_PLAN_SECONDS, SUGGESTED_BUDGET_SECONDS, Planned, make_plan
from bertwise.pipeline.progress import ProgressCallback, progress_callback
from bertwise.pipeline.results import Comparison, SavedBest, Tracker
from bertwise.pipeline.save import ResultsWriter
from bertwise.pipeline.settings import effective_config, with_config_file
from bertwise.pipeline.stages import (
    Loaded,
    diagnose,
    load,
    make_race,
    open_run_cache,
    paired_differences,
    run_curves,
    run_strategy,
    stopping_record,
)
from bertwise.recommendation import Recommendation, recommend
from bertwise.strategies.params import check_params
from bertwise.strategies.registry import (
    check_strategy_names,
    default_curve_repeats,
    default_strategy_names,
    strategy_names,
    strategy_tags,  # the strategies import scikit-learn
)
from bertwise.strategies.variants import backbone_grid, labels_for

if TYPE_CHECKING:
    from bertwise.data.split import DataSource
    from bertwise.evaluation.deadline import Deadline
    from bertwise.evaluation.run_cache import RunCache

__all__ = ["LONG_PLAN_SECONDS", "SUGGESTED_BUDGET_SECONDS", "Comparison", "SavedBest", "compare", "paired_differences"]


@with_config_file
def compare(
    data: DataSource | None = None,
    *,
    config: str | Path | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    test: DataSource | None = None,
    strategies: Sequence[str] | None = None,
    model: str | Sequence[str] | None = None,
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
    label_descriptions: Mapping[str, str] | str | Path | None = None,
    priority: str = "balanced",
    seeds: int | None = None,
    folds: int = 5,
    cross_validation_below: int = 5000,
    learning_curve: bool = True,
    curve_repeats: Mapping[str, int] | None = None,
    bootstrap_resamples: int = 1000,
    confidence: float = 0.95,
    budget: float | str | None = None,
    protocol: str = "sequential",
    report: bool = True,
    progress: bool | ProgressCallback = False,
    on_result: Callable[[StrategyResult], None] | None = None,
    on_plan: Callable[[Comparison], None] | None = None,
    console: Any = None,
    cache: bool = True,
    save_best: str | Path | None = None,
    command: Sequence[str] | None = None,
    adapt_domain: bool = False,
    unlabeled: Sequence[str] | str | Path = (),
    track: Tracker | None = None,
) -> Comparison:
    """Run the strategies on the same data under one evaluation protocol, with intervals, and recommend one.

    ``data`` is a CSV/TSV/JSONL/Parquet file or a folder with ``train.*`` (and ``test.*``), or a table in memory: a
    pandas DataFrame, a ``datasets.Dataset``, or a ``DatasetDict`` whose "test" (else "validation") split is the test
    set; ``test`` may be a file, DataFrame or Dataset. Without a test set, sets
    under ``cross_validation_below`` rows are cross-validated (``folds``), larger ones hold out 20 %; an explicit
    ``test_size`` always holds out that share.
    Fine-tuning runs with ``seeds`` seeds. ``protocol="sequential"`` (the default) runs the strategies cheapest
    first and stops work on one once more of it cannot change the recommendation at the priority's tolerance
    (:mod:`bertwise.evaluation.sequential`: further seeds, curve repeats, the rest of a clearly losing training run),
    saying in results.json's "stopping" what it skipped and why; ``"full"`` runs every planned unit. ``budget``
    (seconds or a duration such as "15m"): under the sequential protocol, the answer's own runs are cut to fit at plan
    time (folds, then training length) and the rest runs while the deadline has time for it, with estimates corrected
    by measured times; under the full protocol, repeats, curve points and then training length are cut to fit at plan
    time. Both say what was cut. With ``out``, results.json (and the predictions,
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

    ``track`` records the finished comparison in an experiment tracker (``bertwise.tracking.MlflowTracking``) from
    the saved results, last: a tracker that cannot reach its store loses nothing, and ``Comparison.tracked`` says
    in one line where the runs went or why they did not.
    ``params`` sets strategies' hyperparameters by strategy name, such as ``{"finetune": {"learning_rate": 5e-5}}``
    (on every backbone when there are several); unknown names and values of the wrong kind are refused before any
    work. ``config`` is a TOML file (``bertwise.toml``) or a results.json: its ``[compare]`` options and
    ``[params.<strategy>]`` tables apply wherever a keyword is not passed (passed keywords win; params merge key by
    key); see docs/configuration.md. results.json's ``effective_config`` records the settings used, in that file's
    form, so ``compare(config="results.json")`` runs the comparison again. ``label_descriptions`` may be the path of a
    JSON file, and ``unlabeled`` of a file of texts (one per line, or a data file's text column).

    ``progress`` is a callback that receives :mod:`bertwise.pipeline.progress`'s events as the stages run (the CLI
    draws them as a bar with the time remaining); True prints them as plain lines to stderr (to ``console.print``
    when a ``console`` is given), False reports nothing. ``on_result`` is called with each strategy's result once
    results.json holds it.
    """
    # compare's own arguments, after the config file's precedence: what results.json records to run it again.
    arguments = dict(locals())
    if data is None:
        raise ConfigError("no data given: pass the data (DATA on the command line) or set data in the config file")
    params = check_params(
        params or {}, lambda strategy, name: "params" + "".join(f"[{k!r}]" for k in (strategy, name) if k)
    )
    budget_seconds = parse_duration(budget) if isinstance(budget, str) else budget
    if test_size is not None:
        cross_validation_below = 0  # the user asked for a hold-out of this size

    strategies = tuple(strategies) if strategies is not None else default_strategy_names()
    check_strategy_names(strategies)
    effective = effective_config(arguments, strategies, params)
    label_descriptions, unlabeled = _read_files(label_descriptions, unlabeled, adapt_domain, text_col)
    started = time.perf_counter()  # the budget counts the domain adaptation too
    models = _models(model)
    labels, adaptation = None, None
    if adapt_domain:
        reading = CompareConfig(
            model=models[0],
            seed=seed,
            device=device,
            text_col=text_col,
            label_col=label_col,
            test_size=0.2 if test_size is None else test_size,
            cross_validation_below=cross_validation_below,
        )
        adapted, label, adaptation = adapted_backbone(reading, data, test, unlabeled)
        labels = [*labels_for(models), label]
        models.append(adapted)
    # Several backbones: every strategy on every backbone, each pair a candidate registered for this run only.
    grid = backbone_grid(strategies, models, labels) if len(models) > 1 else contextlib.nullcontext(strategies)
    with grid as candidates:
        compare_config = CompareConfig(
            strategies=tuple(candidates),
            model=models[0],
            other_models=tuple(str(other) for other in models[1:]),
            seed=seed,
            device=device,
            precision=precision,
            text_col=text_col,
            label_col=label_col,
            test_size=0.2 if test_size is None else test_size,
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
            confidence=confidence,
            budget_seconds=budget_seconds,
            protocol=protocol,
            params=params,
        )
        _check_outputs(data, test, out, save_best)
        run = _Run(
            compare_config,
            out=out,
            report=report,
            progress=progress_callback(progress, console),
            on_result=on_result,
            on_plan=on_plan,
            save_best=Path(save_best) if save_best is not None else None,
            command=list(command) if command is not None else None,
            started=started,
            domain_adaptation=adaptation,
            track=track,
            effective_config=effective,
        )
        # Embeddings are kept on disk as well: without the cache, that one is off too, so every number is afresh.
        with contextlib.nullcontext() if cache else use_cache_dir(None):
            return run.run(data, test, cache_directory())


def _read_files(
    label_descriptions: Mapping[str, str] | str | Path | None,
    unlabeled: Sequence[str] | str | Path,
    adapt_domain: bool,
    text_col: str,
) -> tuple[Mapping[str, str] | None, Sequence[str]]:
    """Label descriptions and unlabeled texts, read when given as files (as a config file names them)."""
    if isinstance(label_descriptions, str | Path):
        from bertwise.strategies.zero_shot import load_label_descriptions

        label_descriptions = load_label_descriptions(label_descriptions)
    if isinstance(unlabeled, str | Path):
        if not adapt_domain:
            raise ConfigError("unlabeled texts are read only with adapt_domain (--adapt-domain); add it or drop them")
        unlabeled = read_unlabeled(Path(unlabeled), text_col)[0]
    return label_descriptions, unlabeled


def _models(model: str | Sequence[str] | None) -> list[str | None]:
    """The backbones asked for: one (a path, hub id or None for the embedded model) or several, in order."""
    if model is None or isinstance(model, str):
        return [model]
    models: list[str | None] = ["default" if one is None else str(one) for one in model]
    if not models:
        raise ConfigError("no model given; expected a model path or hub id (or none, for the embedded model)")
    return list(models)


def _check_outputs(
    data: DataSource, test: DataSource | None, out: str | Path | None, save_best: str | Path | None
) -> None:
    """Refuse now, rather than after the first strategy (results) or the whole comparison (the model), places that
    cannot take the outputs, and a data path that does not exist (nothing is read yet)."""
    if out is not None:
        check_results_folder(Path(out))
    if save_best is not None:
        check_output_folder(Path(save_best))
        check_writable_folder(Path(save_best), "the model folder")
    resolve_parts(data, test)


class _Run:
    """One comparison's run: the stages in order, each one's outcome kept in the Comparison, saved after each."""

    def __init__(
        self,
        config: CompareConfig,
        *,
        out: str | Path | None,
        report: bool,
        progress: ProgressCallback,
        on_result: Callable[[StrategyResult], None] | None,
        on_plan: Callable[[Comparison], None] | None,
        save_best: Path | None,
        command: list[str] | None,
        started: float | None = None,
        domain_adaptation: dict[str, Any] | None = None,
        track: Tracker | None = None,
        effective_config: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.out = out
        self.report = report
        self.progress = progress
        self.on_result = on_result
        self.on_plan = on_plan
        self.save_best = save_best
        self.command = command
        self.writer: ResultsWriter | None = None
        # When the budget's clock started (before a domain adaptation, which it counts); None: when run() starts.
        self.started_at = started
        self.started = time.perf_counter()
        self.domain_adaptation = domain_adaptation
        self.track = track
        self.effective_config = effective_config
        self.deadline: Deadline | None = None
        self.seconds_to_recommendation: float | None = None

    def run(self, data: DataSource, test: DataSource | None, cache_root: Path | None) -> Comparison:
        """Every stage, with the run cache under ``cache_root`` (None: none)."""
        self.started = self.started_at if self.started_at is not None else time.perf_counter()
        loaded: Loaded = self._stage(events.LOAD, load, self.config, data, test)
        run_cache = open_run_cache(cache_root, self.config, loaded)
        planned: Planned = self._stage(events.PLAN, make_plan, self.config, loaded.split, run_cache)
        self.deadline = _deadline(self.config, planned, self.started)
        comparison = self._planned(loaded, planned)
        self.writer = ResultsWriter(planned.split)
        fold_predictions = self._stage(events.STRATEGIES, self._strategies, comparison, planned, run_cache)
        # The curves and diagnostics add reasons and what would change the answer, never the choice itself.
        self.seconds_to_recommendation = round(time.perf_counter() - self.started, 1)
        comparison.stopping = self._stopping(comparison, planned)
        if planned.plan.curve is not None:
            self._stage(events.CURVES, self._curves, comparison, planned, run_cache, fold_predictions)
        comparison.diagnostics = self._stage(
            events.DIAGNOSTICS, diagnose, loaded.tokenizer, planned.split, comparison.results
        )
        comparison.recommendation = self._stage(events.RECOMMEND, self._recommend, comparison, planned)
        comparison.stopping = self._stopping(comparison, planned)
        if self.out is not None:
            self._stage(events.SAVE, self._save, comparison, report=self.report)
        if self.save_best is not None:
            # After results.json: failing to save a model never loses the comparison.
            comparison.best = self._stage(events.SAVE_BEST, self._save_best, comparison, planned)
        if self.track is not None:
            # Last, from what was saved: the tracker only consumes the results, so its failure can never lose them.
            comparison.tracked = self.track.track_comparison(comparison, Path(self.out) if self.out else None)
        return comparison

    def _stage(self, stage: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.progress(events.StageStarted(stage))
        value = function(*args, **kwargs)
        self.progress(events.StageFinished(stage))
        return value

    def _planned(self, loaded: Loaded, planned: Planned) -> Comparison:
        """The Comparison so far, announced: nothing has run, the protocol and budget are known."""
        comparison = Comparison(
            config=self.config,
            split=planned.split,
            backbone=loaded.backbone,
            truncated=loaded.truncated,
            machine=machine_description(),
            protocol=planned.plan.protocol,
            resumed=["calibration"] if planned.calibration_reused else [],
            versions=software_versions(),
            command=self.command,
            budget=planned.budget,
            domain_adaptation=self.domain_adaptation,
            effective_config=self.effective_config,
        )
        if self.on_plan is not None:
            self.on_plan(comparison)
        timed = (events.STRATEGIES, events.CURVES) if planned.plan.curve is not None else (events.STRATEGIES,)
        self.progress(events.PlanReady(comparison, planned.estimates, timed))
        return comparison

    def _strategies(self, comparison: Comparison, planned: Planned, run_cache: RunCache | None) -> dict[str, Any]:
        """Each strategy in turn, saved as it finishes; each one's per-run predictions on all its rows."""
        plan = planned.plan
        # Only a single test set has one model behind its predictions; cross-validation refits instead.
        keep = self.save_best is not None and plan.protocol.scheme != "cross-validation"
        fold_predictions: dict[str, np.ndarray] = {}
        for name in plan.strategies:
            started = time.perf_counter()
            race = make_race(name, comparison.split, comparison.results, planned, self.config, self.deadline)
            outcome = run_strategy(
                name,
                comparison.split,
                plan,
                self.config,
                run_cache,
                self.progress,
                overrides=_overrides(name, planned),
                keep=keep,
                race=race,
            )
            self._say_stops(outcome.result)
            if outcome.reused is not None:
                comparison.resumed.append(outcome.reused)
            # This run's time: for a reused strategy, reading it back (its cost fields keep what it once measured).
            comparison.budget["measured_seconds_by_part"][name] = round(time.perf_counter() - started, 1)
            comparison.results.append(outcome.result)
            if outcome.per_run_folds:
                fold_predictions[name] = np.stack([folds[0].argmax(axis=1) for folds in outcome.per_run_folds])
            comparison.paired = paired_differences(comparison.results, comparison.split, self.config)
            comparison.recommendation = self._recommend(comparison, planned)
            comparison.stopping = self._stopping(comparison, planned)
            if self.out is not None:
                # Drawing the report takes seconds, worth it after a computed stage but not after reading one back.
                self._save(comparison, report=self.report and outcome.reused != name)
            if self.on_result is not None:
                self.on_result(outcome.result)
            self.progress(events.StrategyDone(outcome.result))
        return fold_predictions

    def _curves(
        self,
        comparison: Comparison,
        planned: Planned,
        run_cache: RunCache | None,
        fold_predictions: dict[str, np.ndarray],
    ) -> None:
        curve_plan = planned.plan.curve
        assert curve_plan is not None
        started = time.perf_counter()
        # The first strategy that learns nothing from labels is drawn as a flat line beside the curves.
        references = next(
            (
                {r.name: r.run_predictions[0]}
                for r in comparison.results
                if not strategy_tags(r.name).uses_labels_for_training and r.run_predictions is not None
            ),
            {},
        )
        comparison.learning_curve, reused = run_curves(
            planned.plan,
            comparison.split,
            self.config,
            run_cache,
            self.progress,
            full_runs={name: runs for name, runs in fold_predictions.items() if name in curve_plan.strategies},
            references=references,
            # Every strategy that trains the backbone, run or not: the run cache's key for the curve includes these.
            overrides={name: cut for name in strategy_names() if (cut := _overrides(name, planned)) is not None},
            curve_rule=planned.curve_rule,
            deadline=self.deadline,
        )
        curve_stopping = (comparison.learning_curve or {}).get("stopping") or {}
        for text in [entry["text"] for entry in curve_stopping.get("stopped", [])] + curve_stopping.get(
            "skipped_for_budget", []
        ):
            self.progress(events.Note(text))
        if reused is not None:
            comparison.resumed.append(reused)
        comparison.budget["measured_seconds_by_part"]["learning curve"] = round(time.perf_counter() - started, 1)

    def _say_stops(self, result: StrategyResult) -> None:
        """Tell the user, as it happens, what the protocol stopped or the budget skipped."""
        record = result.stopping or {}
        texts = [*record.get("stopped_training", []), (record.get("stopped") or {}).get("text")]
        for text in (*texts, record.get("skipped_for_budget")):
            if text:
                self.progress(events.Note(text))

    def _stopping(self, comparison: Comparison, planned: Planned) -> dict[str, Any]:
        # The run so far, from the budget's start: loading, calibration and a domain adaptation included, which the
        # budget's measured parts (the strategies and curves) leave out.
        so_far = round(time.perf_counter() - self.started, 1)
        return stopping_record(
            planned, self.config, comparison.results, comparison.learning_curve, self.seconds_to_recommendation, so_far
        )

    def _recommend(self, comparison: Comparison, planned: Planned) -> Recommendation:
        """The recommendation from the evidence so far (the curves and diagnostics come after the strategies)."""
        return recommend(
            comparison.results,
            comparison.paired,
            priority=self.config.priority,
            learning_curve=comparison.learning_curve,
            diagnostics=comparison.diagnostics,
            budget_cuts=planned.plan.cuts,
        )

    def _save(self, comparison: Comparison, *, report: bool) -> None:
        assert self.out is not None and self.writer is not None
        self.writer.save(self.out, comparison.to_dict(), comparison.results, report=report)

    def _save_best(self, comparison: Comparison, planned: Planned) -> SavedBest:
        assert self.save_best is not None
        kept = release_models(comparison.results)
        return save_recommended(
            self.save_best,
            comparison.recommendation,
            comparison.results,
            kept,
            split=comparison.split,
            config=self.config,
            protocol=planned.plan.protocol,
            overrides=lambda name: _overrides(name, planned),
            say=lambda message: self.progress(events.Note(message)),
            truncated={
                **comparison.truncated,
                "max_length": comparison.backbone.max_length,
                "backbone_sha256": comparison.backbone.sha256,
            },
        )


def _deadline(config: CompareConfig, planned: Planned, started: float) -> Deadline | None:
    """Under the sequential protocol, a budget is a deadline counted from the start of the comparison."""
    from bertwise.evaluation.deadline import Deadline

    if config.budget_seconds is None or config.protocol != "sequential":
        return None
    return Deadline(config.budget_seconds, started, planned.calibration)


def _overrides(name: str, planned: Planned) -> dict[str, Any] | None:
    """A budget's cut of the training length, for the strategies that train the backbone; None for the others."""
    return planned.plan.shortened_schedule(name) if strategy_tags(name).has_training_schedule else None
