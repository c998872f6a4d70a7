"""Typed, frozen configuration of a comparison: what the CLI flags and ``bertwise.compare`` keywords fill in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bertwise.exceptions import ConfigError

STRATEGY_NAMES = ("zero-shot", "probe", "finetune")


@dataclass(frozen=True)
class CompareConfig:
    """Everything that decides a comparison's numbers; written into results.json so a run can be repeated."""

    strategies: tuple[str, ...] = STRATEGY_NAMES
    model: str | None = None  # None: the embedded all-MiniLM-L6-v2
    seed: int = 0
    device: str = "auto"
    text_col: str = "text"
    label_col: str = "label"
    test_size: float = 0.2  # share held out when no test file is given
    pooling: str = "auto"
    zero_shot_mode: str = "auto"
    zero_shot_template: str = "This text is about {label}."
    label_descriptions: dict[str, str] = field(default_factory=dict)
    # Two strategies whose macro-F1 differ by less than this many points count as tied; the cheaper one is chosen.
    tie_tolerance_points: float = 0.5

    def __post_init__(self) -> None:
        unknown = [name for name in self.strategies if name not in STRATEGY_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown strategy {', '.join(map(repr, unknown))}; expected some of {', '.join(STRATEGY_NAMES)}"
            )
        if not self.strategies:
            raise ConfigError(f"no strategy selected; expected some of {', '.join(STRATEGY_NAMES)}")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"a strategy is listed twice: {', '.join(self.strategies)}")
        if not 0 < self.test_size < 1:
            raise ConfigError(f"test size must be a fraction between 0 and 1; got {self.test_size}")
        if self.pooling not in ("auto", "mean", "cls"):
            raise ConfigError(f"pooling must be 'auto', 'mean' or 'cls'; got {self.pooling!r}")
        if self.zero_shot_mode not in ("auto", "nli", "embedding"):
            raise ConfigError(f"zero-shot mode must be 'auto', 'nli' or 'embedding'; got {self.zero_shot_mode!r}")
        if "{label}" not in self.zero_shot_template:
            raise ConfigError(f"the zero-shot template must contain '{{label}}'; got {self.zero_shot_template!r}")
        if self.tie_tolerance_points < 0:
            raise ConfigError(f"tie tolerance must be >= 0 points; got {self.tie_tolerance_points}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["strategies"] = list(self.strategies)
        return data
