"""What a training run shows whoever watches it at each validation: where it is, how validation went, and what the
weights it would keep predict. A monitor may answer with a reason to stop (the sequential protocol's early look at
fine-tuning, a deadline); the strategy then ends training there and keeps its best weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrainingProgress:
    """A training run at one of its validations.

    ``history`` holds every validation so far, this one last (``step``, ``epoch``, ``val_macro_f1``, ``val_loss``);
    ``best_step`` is the step of the weights kept if training stopped now. ``predict_best(texts)`` gives those
    weights' class probabilities, columns in ``classes`` order (the strategy's ``classes_``); it is valid only during
    the monitor's call.
    """

    step: int
    total_steps: int
    epoch: int
    history: list[dict[str, float]]
    best_step: int
    classes: tuple[Any, ...]
    predict_best: Callable[[Sequence[str]], np.ndarray]


# Called once at each validation after which training would go on: None goes on, a str stops training (the why).
# A monitor that watches the clock may also have ``step_stop(step, total_steps) -> str | None``, asked after every
# step between validations: validations can be minutes apart on a loaded CPU, and a deadline cannot wait for one.
Monitor = Callable[[TrainingProgress], "str | None"]
