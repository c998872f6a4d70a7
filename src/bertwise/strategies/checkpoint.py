"""Training checkpoints on disk: a fine-tuning run killed halfway resumes from its last one with the same numbers.

A checkpoint at ``path`` is two files: the tensors (weights, optimiser state, random generator states), saved by
``torch.save`` as ``<path>.step-<step>.pt``, and ``path`` itself, a small JSON record naming that file with its
sha256 and holding the rest of the state. Both are written atomically, the tensors first, and the older tensor
file is removed only once the record points at the new one, so a kill at any moment leaves one whole checkpoint
(or none). :class:`CheckpointWriter` writes them in a background thread, so training goes on while the disk works.
Tensors are read back with ``weights_only=True`` (no code can run from the file) and only when their sha256 matches
the record's: a damaged or edited checkpoint is ignored with a :class:`CheckpointWarning`, and training starts over
rather than from unknown weights.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bertwise.util import atomic
from bertwise.util.kill_hook import kill_point

CHECKPOINT_FORMAT = 1
# A checkpoint starts at least this many times its own cost after the previous one (see CheckpointWriter).
SPACING = 10


@dataclass
class LoopState:
    """Where a training loop is: what a checkpoint keeps besides tensors (in its JSON record), and the best weights."""

    epoch: int = 0  # the epoch under way (0-based)
    batches: list[list[int]] | None = None  # that epoch's batch order, once drawn
    position: int = 0  # batches of it done
    step: int = 0
    examples_seen: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: tuple[float, float] | None = None  # (validation macro-F1, -validation loss) of the best weights
    best_step: int | None = None
    stale: int = 0  # validations since the best one
    stopped_early: bool = False
    seconds: float = 0.0  # training seconds spent before this process resumed the fit
    best_state: dict[str, Any] | None = field(default=None, repr=False)  # the best weights, on the CPU

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "epoch", "batches", "position", "step", "examples_seen", "history", "best_score", "best_step", "stale",
        "stopped_early", "seconds",
    )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._FIELDS}

    def load_json(self, saved: dict[str, Any]) -> None:
        for name in self._FIELDS:
            setattr(self, name, saved[name])
        if self.best_score is not None:  # a JSON list: back to the tuple it is compared as
            self.best_score = (float(self.best_score[0]), float(self.best_score[1]))


class CheckpointWarning(UserWarning):
    """A training checkpoint could not be read or written; training starts over or goes on without one."""


def save_checkpoint(path: Path, *, fit: str, step: int, tensors: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Keep ``tensors`` (torch.save-able) and ``state`` (JSON) as the checkpoint at ``step`` of the fit ``fit``.

    ``fit`` identifies the training (its settings and data): a checkpoint is only ever resumed by the same one.
    Returns False, with a warning, when it could not be written (training goes on without it).
    """
    import torch

    tensor_file = path.with_name(f"{path.name}.step-{step}.pt")
    try:
        # Saved to disk directly, not through memory: a large model's weights and optimiser state take gigabytes.
        # Not flushed to disk before the rename (unlike results): a power cut that leaves a bad file is caught by its
        # sha256, and waiting for the disk took longer than an epoch of training on a slow one.
        with atomic.atomic_path(tensor_file, durable=False) as temporary:
            torch.save(dict(tensors), temporary)
            digest = _sha256(temporary)
        record = {
            "format": CHECKPOINT_FORMAT,
            "fit": fit,
            "step": step,
            "file": tensor_file.name,
            "sha256": digest,
            "state": dict(state),
        }
        atomic.write_text(path, json.dumps(record) + "\n")
    except OSError as error:
        warnings.warn(
            f"bertwise: cannot write the training checkpoint {path} ({type(error).__name__}: {error}); training goes "
            "on, but a killed run will start this fit over",
            CheckpointWarning,
            stacklevel=2,
        )
        return False
    _remove_tensor_files(path, keep=tensor_file.name)
    return True


class CheckpointWriter:
    """Writes one fit's checkpoints in a background thread, one at a time, while training goes on.

    A checkpoint costs time even so: the snapshot (copies of the weights and the optimiser's moments) is taken while
    training waits, and writing and hashing it takes a core and the disk (on a small CPU, as long as a short epoch:
    docs/results-schema.md has the figures). :meth:`due` therefore says no while the last checkpoint is still
    being written, or when it started less than :data:`SPACING` times its own cost ago: checkpoints then take about a
    tenth of training time at most. Where an epoch lasts longer than that, which is where a lost epoch would hurt,
    every epoch gets its checkpoint; where epochs are as short as a checkpoint, about every tenth does, and a kill
    loses about ten checkpoint costs of training.
    """

    def __init__(self, path: Path, fit: str) -> None:
        self.path = path
        self.fit = fit
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._snapshot_seconds = 0.0
        self._write_seconds = 0.0

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def due(self) -> bool:
        """Whether to checkpoint now: nothing being written, and the last checkpoint far enough back."""
        if self.busy():
            return False
        cost = self._snapshot_seconds + self._write_seconds
        return self._thread is None or time.perf_counter() - self._started >= SPACING * cost

    def submit(self, step: int, tensors: Mapping[str, Any], state: Mapping[str, Any], *, started: float) -> None:
        """Write the checkpoint at ``step`` in the background: ``tensors`` are the caller's own copies (training must
        not change them), taken from ``started`` (``time.perf_counter()``) on."""
        self.wait()
        record = json.loads(json.dumps(dict(state)))  # its own copy: training goes on changing the state
        self._started = started
        self._snapshot_seconds = time.perf_counter() - started
        self._thread = threading.Thread(
            target=self._write, args=(step, dict(tensors), record), name="bertwise-checkpoint", daemon=True
        )
        self._thread.start()

    def wait(self) -> None:
        """Return once the checkpoint being written (if any) is on disk."""
        if self._thread is not None:
            self._thread.join()

    def finish(self) -> None:
        """The fit is over: wait for the write under way, then remove the checkpoint (its fit needs it no more)."""
        self.wait()
        remove_checkpoint(self.path)

    def _write(self, step: int, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        began = time.perf_counter()
        written = save_checkpoint(self.path, fit=self.fit, step=step, tensors=tensors, state=state)
        self._write_seconds = time.perf_counter() - began
        if written:
            kill_point("finetune checkpoint")  # the test hook: a checkpoint written, its fit under way


def load_checkpoint(path: Path, *, fit: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (tensors, state) kept at ``path`` for the fit ``fit``, or None: none kept, another fit's, or damaged."""
    import torch

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a bertwise checkpoint record of this format")
        if record.get("fit") != fit:
            return None  # another training's (other settings or data): not this one's to resume
        tensor_file = path.with_name(str(record["file"]))
        if _sha256(tensor_file) != record["sha256"]:
            raise ValueError(f"{tensor_file.name} does not match the sha256 its record holds")
        tensors = torch.load(tensor_file, map_location="cpu", weights_only=True)
        if not isinstance(tensors, dict) or not isinstance(record.get("state"), dict):
            raise ValueError("no tensors or no state in it")
    except Exception as error:  # a damaged checkpoint may fail in any way (bad JSON, a bad zip, a missing file)
        warnings.warn(
            f"bertwise: ignoring the training checkpoint {path}, damaged or unreadable ({type(error).__name__}: "
            f"{error}); training this fit from the start",
            CheckpointWarning,
            stacklevel=2,
        )
        return None
    return tensors, record["state"]


def remove_checkpoint(path: Path) -> None:
    """Remove the checkpoint at ``path``, record and tensors (its fit finished: it is no longer needed)."""
    path.unlink(missing_ok=True)
    _remove_tensor_files(path, keep=None)


def _remove_tensor_files(path: Path, *, keep: str | None) -> None:
    for old in path.parent.glob(f"{path.name}.step-*.pt"):
        if old.name != keep:
            old.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
