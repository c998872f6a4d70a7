"""Typed, frozen configuration of a comparison: what the CLI flags and ``bertwise.compare`` keywords fill in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bertwise.backbone.device import PRECISION_CHOICES
from bertwise.backbone.resolve import POOLING_CHOICES
from bertwise.exceptions import ConfigError

PRIORITIES = ("accuracy", "balanced", "cost")
# "sequential": stop work on a strategy once it cannot change the recommendation (bertwise.evaluation.sequential);
# "full": every planned seed, repeat and curve point, whatever they show.
PROTOCOLS = ("sequential", "full")
# How many macro-F1 points below the best a strategy may plausibly be and still be chosen for being cheaper, per
# priority: "accuracy" takes a cheaper strategy only when it is statistically tied with the best.
PRIORITY_TOLERANCE_POINTS = {"accuracy": 0.0, "balanced": 1.0, "cost": 3.0}


@dataclass(frozen=True)
class CompareConfig:
    """Everything that decides a comparison's numbers; written into results.json so a run can be repeated."""

    # Names from bertwise.strategies.registry, which checks them (config sits below the strategies and names none);
    # ``bertwise.compare`` fills in every registered strategy when none is given.
    strategies: tuple[str, ...] = ()
    model: str | None = None  # None: the embedded all-MiniLM-L6-v2
    # Further backbones: with any, ``strategies`` are (backbone, strategy) pairs, every strategy on ``model`` and on
    # each of these (bertwise.strategies.variants), named "<strategy>@<backbone>".
    other_models: tuple[str, ...] = ()
    seed: int = 0
    device: str = "auto"
    # "auto": bfloat16 where the hardware has bfloat16 units (GPUs, recent CPUs), else float32.
    precision: str = "auto"
    text_col: str = "text"
    label_col: str = "label"
    test_size: float = 0.2  # share held out when no test file is given
    pooling: str = "auto"
    zero_shot_mode: str = "auto"
    zero_shot_template: str = "This text is about {label}."
    label_descriptions: dict[str, str] = field(default_factory=dict)
    # Recommendation: the best strategy, or a cheaper one practically equivalent to it within the priority's margin.
    priority: str = "balanced"
    # Runs per strategy whose result depends on the seed (fine-tuning); seed-free strategies run once. None: 3 on a
    # fixed test set; 1 under cross-validation, whose folds already train with distinct seeds.
    seeds: int | None = None
    # Without a test file: k-fold cross-validation below this many rows (every row is tested once), else one
    # stratified hold-out of ``test_size`` (big enough that test-item sampling error is small).
    cross_validation_below: int = 5000
    folds: int = 5
    learning_curve: bool = True
    # Learning-curve subsamples per point, by strategy; a strategy not named here uses its own default (its tags).
    curve_repeats: dict[str, int] = field(default_factory=dict)
    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    budget_seconds: float | None = None
    protocol: str = "sequential"
    # Hyperparameters by strategy name ({"finetune": {"learning_rate": 5e-5}}), set on each strategy after its
    # ``from_config``; a strategy's settings apply to it on every backbone. The names and kinds are checked against the
    # strategies' own parameters by bertwise.strategies.params, which sits above this module.
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"a strategy is listed twice: {', '.join(self.strategies)}")
        if not 0 < self.test_size < 1:
            raise ConfigError(f"test size must be a fraction between 0 and 1; got {self.test_size}")
        if self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"precision must be 'auto', 'float32' or 'bfloat16'; got {self.precision!r}")
        if self.pooling not in POOLING_CHOICES:
            raise ConfigError(f"pooling must be one of {', '.join(POOLING_CHOICES)}; got {self.pooling!r}")
        if self.zero_shot_mode not in ("auto", "nli", "embedding"):
            raise ConfigError(f"zero-shot mode must be 'auto', 'nli' or 'embedding'; got {self.zero_shot_mode!r}")
        if "{label}" not in self.zero_shot_template:
            raise ConfigError(f"the zero-shot template must contain '{{label}}'; got {self.zero_shot_template!r}")
        if self.priority not in PRIORITIES:
            raise ConfigError(f"priority must be one of {', '.join(PRIORITIES)}; got {self.priority!r}")
        if self.seeds is not None and self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1; got {self.seeds}")
        if self.folds < 2:
            raise ConfigError(f"folds must be at least 2; got {self.folds}")
        if any(repeats < 1 for repeats in self.curve_repeats.values()):
            raise ConfigError(f"learning-curve repeats must be at least 1; got {self.curve_repeats}")
        if self.bootstrap_resamples < 100:
            raise ConfigError(f"bootstrap resamples must be at least 100; got {self.bootstrap_resamples}")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"confidence must be between 0.5 and 1, such as 0.95; got {self.confidence}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be 'sequential' or 'full'; got {self.protocol!r}")
        if not all(isinstance(values, dict) for values in self.params.values()):
            raise ConfigError(f"params must map each strategy to a table of its parameters; got {self.params}")
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise ConfigError(f"the budget must be a positive duration; got {self.budget_seconds} s")

    @property
    def tolerance_points(self) -> float:
        return PRIORITY_TOLERANCE_POINTS[self.priority]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["strategies"] = list(self.strategies)
        data["other_models"] = list(self.other_models)
        return data
