"""Does the sequential protocol recommend what the full protocol would? A simulation over synthetic strategy scores.

Each scenario is a test set of ``n`` items with ``c`` classes and three strategies shaped like bertwise's own:
zero-shot and the probe (seed-free: one run each) and fine-tuning (seed-dependent: 3 planned runs). Items have a
difficulty shared by all strategies, so their predictions are correlated as real ones are (the paired bootstrap's
reason for pairing): item i is right with probability ``sigmoid(b - 1.5 d_i)``, ``d_i ~ N(0, 1)``, with ``b`` set so
that the mean accuracy is the strategy's (run's) true accuracy; a wrong item gets a uniformly drawn other class.

- The probe's true accuracy is drawn from U(0.55, 0.92); zero-shot's lies 30 points below to 5 above it.
- Fine-tuning's true mean lies ``gap`` points from the better of the two: for 70 % of scenarios ``gap ~ U(-6, 6)``
  (the hard cases, near the 0-, 1- and 3-point tolerance bands), for 30 % ``gap ~ U(-25, 25)`` (far).
- Each fine-tuning run's accuracy is its true mean plus N(0, sd), ``sd`` (the run-to-run spread) one of 1, 3 or 6
  points, against the rule's 3-point prior (``run_spread_points`` of fine-tuning). Item-level draws add their own
  run-to-run noise (about 3 points at n = 150, 1 at n = 2000).

Full protocol: all 3 fine-tuning runs. Sequential protocol: the runs one at a time; after runs 1 and 2 a look
(``bertwise.evaluation.sequential.look``, rule ``StoppingRule(tolerance, error_rate=0.05, looks=5)``: the error rate
shared among 5 looks as the pipeline shares it for 3 seeds on a test file, 2 after runs and 3 early looks) against the
rival, the better of zero-shot and the probe by macro-F1; fine-tuning stops when the look is decided. Both protocols'
recommendations come from ``bertwise.recommendation.choose`` on ``StrategyResult`` objects built by
``bertwise.evaluation.runner.summarize_runs`` and paired differences built as ``pipeline.stages.paired_differences``
builds them (``paired_bootstrap``, 95 %), with fixed costs: zero-shot fits in 3 s and predicts in 5 ms per text,
the probe 15 s and 4 ms, fine-tuning 600 s and 6 ms.

Reported per priority (accuracy 0, balanced 1, cost 3 points) and per n: scenarios, the share where the two
recommendations differ with a Wilson 95 % interval (goal: at most the error rate, 5 %), the mean fine-tuning runs the
sequential protocol used (of 3), and the regime (run spread, near or far gap) with the highest disagreement.

    nice .venv/bin/python benchmarks/sequential_agreement.py            # default: 300 scenarios per n
    nice .venv/bin/python benchmarks/sequential_agreement.py --scenarios 1000
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.config import PRIORITY_TOLERANCE_POINTS, CompareConfig
from bertwise.evaluation.runner import StrategyResult, summarize_runs
from bertwise.evaluation.sequential import StoppingRule, decide, look
from bertwise.pipeline.stages import paired_entries
from bertwise.recommendation import choose

RESULTS = Path(__file__).parent / "results" / "sequential-agreement.json"
SIZES = (150, 500, 2000)
RUN_SPREADS = (1.0, 3.0, 6.0)  # fine-tuning's true run-to-run SD, in accuracy points
PRIOR_POINTS = 3.0  # fine-tuning's run_spread_points tag, the rule's prior
PLANNED = 3
ERROR_RATE = 0.05
# The pipeline shares the error rate among 5 looks for 3 seeds on a test file (pipeline.plan._rules): one after each
# run but the last, and one early look inside each training run. The simulation makes only the first two kinds.
LOOKS = 5
COSTS = {
    "zero-shot": {"fit_seconds": 3.0, "predict_ms_per_text": 5.0},
    "probe": {"fit_seconds": 15.0, "predict_ms_per_text": 4.0},
    "finetune": {"fit_seconds": 600.0, "predict_ms_per_text": 6.0},
}
DIFFICULTY_SLOPE = 1.5


@dataclass(frozen=True)
class Scenario:
    n: int
    classes: int
    run_spread: float
    near: bool
    gap: float  # fine-tuning's true mean minus the rival's, in accuracy points
    y_true: np.ndarray
    zero_shot: np.ndarray  # (1, n)
    probe: np.ndarray  # (1, n)
    finetune: np.ndarray  # (3, n)


def _offset_for(accuracy: float, difficulty: np.ndarray) -> float:
    """The logit offset b at which mean(sigmoid(b - slope d)) equals ``accuracy`` (bisection: it is monotone)."""
    low, high = -15.0, 15.0
    for _ in range(40):
        middle = (low + high) / 2
        mean = float(np.mean(1 / (1 + np.exp(-(middle - DIFFICULTY_SLOPE * difficulty)))))
        low, high = (middle, high) if mean < accuracy else (low, middle)
    return (low + high) / 2


def _predict(
    rng: np.random.Generator, y_true: np.ndarray, difficulty: np.ndarray, accuracy: float, classes: int
) -> np.ndarray:
    accuracy = float(np.clip(accuracy, 1.0 / classes, 0.99))
    chance = 1 / (1 + np.exp(-(_offset_for(accuracy, difficulty) - DIFFICULTY_SLOPE * difficulty)))
    wrong = (y_true + rng.integers(1, classes, size=y_true.size)) % classes
    return np.where(rng.random(y_true.size) < chance, y_true, wrong)


def draw_scenario(rng: np.random.Generator, n: int) -> Scenario:
    classes = int(rng.choice([2, 4, 8]))
    y_true = rng.integers(0, classes, size=n)
    difficulty = rng.normal(size=n)
    probe_accuracy = rng.uniform(0.55, 0.92)
    zero_shot_accuracy = probe_accuracy - rng.uniform(-0.05, 0.30)
    near = bool(rng.random() < 0.7)
    gap = float(rng.uniform(-6, 6) if near else rng.uniform(-25, 25))
    run_spread = float(rng.choice(RUN_SPREADS))
    true_mean = max(probe_accuracy, zero_shot_accuracy) + gap / 100
    runs = [true_mean + rng.normal(0, run_spread / 100) for _ in range(PLANNED)]
    return Scenario(
        n=n,
        classes=classes,
        run_spread=run_spread,
        near=near,
        gap=gap,
        y_true=y_true,
        zero_shot=_predict(rng, y_true, difficulty, zero_shot_accuracy, classes)[None, :],
        probe=_predict(rng, y_true, difficulty, probe_accuracy, classes)[None, :],
        finetune=np.stack([_predict(rng, y_true, difficulty, accuracy, classes) for accuracy in runs]),
    )


def _result(name: str, scenario: Scenario, runs: np.ndarray, config: CompareConfig) -> StrategyResult:
    summary = summarize_runs(list(scenario.y_true), runs, list(range(scenario.classes)), config)
    return StrategyResult(
        name=name,
        status="ok",
        metrics=summary["metrics"],
        metrics_interval=summary["metrics_interval"],
        per_class=summary["per_class"],
        runs=summary["per_run"],
        cost=dict(COSTS[name]),
        run_predictions=runs,
    )


def _recommendations(
    scenario: Scenario, fixed: list[StrategyResult], finetune_runs: np.ndarray, config: CompareConfig
) -> dict[str, str]:
    """Each priority's chosen strategy, with fine-tuning's results from ``finetune_runs``."""
    finetune = _result("finetune", scenario, finetune_runs, config)
    results = [*fixed, finetune]
    # Built as the pipeline builds them (the McNemar p-value beside each is computed too, though choose ignores it).
    paired = paired_entries(results, scenario.y_true, scenario.classes, config)
    return {
        priority: choose(results, paired, tolerance)[0].name
        for priority, tolerance in PRIORITY_TOLERANCE_POINTS.items()
    }


def _sequential_runs(scenario: Scenario, rival: StrategyResult, seed: int, resamples: int) -> dict[str, int]:
    """How many fine-tuning runs the sequential protocol makes at each priority: looks after runs 1 and 2."""
    rule = StoppingRule(tolerance_points=0.0, error_rate=ERROR_RATE, looks=LOOKS)
    used = dict.fromkeys(PRIORITY_TOLERANCE_POINTS, PLANNED)
    for done in range(1, PLANNED):
        undecided = [priority for priority, runs in used.items() if runs == PLANNED]
        if not undecided:
            break
        # The look's interval does not depend on the tolerance; one look serves every priority's decision.
        seen = look(
            scenario.y_true,
            scenario.finetune[:done],
            rival.run_predictions,  # type: ignore[arg-type]
            scenario.classes,
            rule,
            part="strategies",
            strategy="finetune",
            against=rival.name,
            unit=f"seed {done} of {PLANNED}",
            planned=PLANNED,
            prior_spread_points=PRIOR_POINTS,
            resamples=resamples,
            seed=seed,
        )
        for priority in undecided:
            if decide(*seen.widened, PRIORITY_TOLERANCE_POINTS[priority]) is not None:
                used[priority] = done
    return used


def run_scenario(scenario: Scenario, seed: int, resamples: int) -> dict[str, Any]:
    config = CompareConfig(seed=seed, bootstrap_resamples=resamples)
    fixed = [
        _result(name, scenario, getattr(scenario, name.replace("-", "_")), config) for name in ("zero-shot", "probe")
    ]
    rival = max(fixed, key=lambda result: result.metrics["macro_f1"])
    full = _recommendations(scenario, fixed, scenario.finetune, config)
    used = _sequential_runs(scenario, rival, seed, resamples)
    sequential = {}
    by_runs: dict[int, dict[str, str]] = {PLANNED: full}
    for priority, runs in used.items():
        if runs not in by_runs:
            by_runs[runs] = _recommendations(scenario, fixed, scenario.finetune[:runs], config)
        sequential[priority] = by_runs[runs][priority]
    return {
        "n": scenario.n,
        "classes": scenario.classes,
        "run_spread": scenario.run_spread,
        "gap": "near" if scenario.near else "far",
        "gap_points": round(scenario.gap, 2),
        "full": full,
        "sequential": sequential,
        "finetune_runs": used,
    }


def wilson(successes: int, trials: int) -> list[float]:
    from scipy.stats import binomtest

    if trials == 0:
        return [0.0, 1.0]
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def _rate(rows: list[dict[str, Any]], priority: str) -> dict[str, Any]:
    differ = sum(row["full"][priority] != row["sequential"][priority] for row in rows)
    runs = float(np.mean([row["finetune_runs"][priority] for row in rows])) if rows else 0.0
    return {
        "scenarios": len(rows),
        "disagreements": differ,
        "disagreement_rate": round(differ / len(rows), 4) if rows else 0.0,
        "wilson_95": wilson(differ, len(rows)),
        "mean_finetune_runs": round(runs, 3),
        "finetune_runs_saved_share": round(1 - runs / PLANNED, 3),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for priority in PRIORITY_TOLERANCE_POINTS:
        by_n = {str(n): _rate([row for row in rows if row["n"] == n], priority) for n in SIZES}
        regimes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            regimes[f"n={row['n']}, run sd {row['run_spread']:g}, {row['gap']} gap"].append(row)
        by_regime = {name: _rate(group, priority) for name, group in sorted(regimes.items())}
        worst = max(by_regime, key=lambda name: (by_regime[name]["disagreement_rate"], by_regime[name]["scenarios"]))
        by_spread = {
            f"{spread:g}": _rate([row for row in rows if row["run_spread"] == spread], priority)
            for spread in RUN_SPREADS
        }
        summary[priority] = {
            "all": _rate(rows, priority),
            "by_n": by_n,
            "by_run_spread": by_spread,
            "by_regime": by_regime,
            "worst_regime": {"regime": worst, **by_regime[worst]},
        }
    return summary


def _print_table(summary: dict[str, Any]) -> None:
    print(f"{'priority':<10}{'n':>6}{'scenarios':>11}{'differ':>8}{'rate':>8}{'Wilson 95 %':>17}{'ft runs':>9}")
    for priority, part in summary.items():
        for n, rate in [*part["by_n"].items(), ("all", part["all"])]:
            low, high = rate["wilson_95"]
            print(
                f"{priority:<10}{n:>6}{rate['scenarios']:>11}{rate['disagreements']:>8}"
                f"{100 * rate['disagreement_rate']:>7.1f}%{f'[{100 * low:.1f}, {100 * high:.1f}]':>17}"
                f"{rate['mean_finetune_runs']:>9.2f}"
            )
        worst = part["worst_regime"]
        print(
            f"  worst regime: {worst['regime']}: {worst['disagreements']}/{worst['scenarios']} "
            f"({100 * worst['disagreement_rate']:.1f} %)"
        )
        spreads = ", ".join(
            f"sd {spread}: {100 * rate['disagreement_rate']:.1f} %" for spread, rate in part["by_run_spread"].items()
        )
        print(f"  by run spread: {spreads}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=300, help="scenarios per test-set size (default 300)")
    parser.add_argument("--resamples", type=int, default=300, help="bootstrap resamples (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows = []
    for n in SIZES:
        for index in range(args.scenarios):
            rows.append(run_scenario(draw_scenario(rng, n), seed=args.seed + index, resamples=args.resamples))
        print(f"n={n}: {args.scenarios} scenarios, {time.perf_counter() - started:.0f} s so far", flush=True)
    summary = summarize(rows)
    _print_table(summary)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "sequential_agreement",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "settings": {
                    "scenarios_per_n": args.scenarios,
                    "sizes": list(SIZES),
                    "run_spreads_points": list(RUN_SPREADS),
                    "prior_spread_points": PRIOR_POINTS,
                    "planned_runs": PLANNED,
                    "error_rate": ERROR_RATE,
                    "looks": LOOKS,
                    "resamples": args.resamples,
                    "seed": args.seed,
                    "costs": COSTS,
                },
                "seconds": round(time.perf_counter() - started, 1),
                "summary": summary,
                "scenarios": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
