"""Stages of ``compare`` kept on disk, so that a rerun (or a resumed, interrupted run) reuses what is finished.

What is kept
    The budget calibration (so the plan, and with it every later stage's key, comes out the same), each finished
    strategy's evaluation (its :class:`StrategyResult` and every run's per-fold probabilities) and the learning curve.
    A failed strategy, or a curve with a failed part, is never kept: it is computed again next time.

Keys
    A run key is the sha256 of a canonical JSON of everything that decides the numbers: the bertwise version (and
    its source files, which an editable install changes without a new version), the whole :class:`CompareConfig`,
    a fingerprint of the data (texts, labels and how the test set was made, in order), the backbone (weights, config
    and tokenizer files, pooling, device kind, torch and transformers versions) and the numeric libraries' versions.
    A stage key adds the stage and the plan details that decide it (folds, seeds, fine-tuning overrides, the curve's
    points and the predictions it builds on), so a plan cut differently by a budget never reuses a stage computed
    under another plan.

Layout
    ``<cache dir>/runs/<run key>/<stage>-<stage key>.json`` (with ``.npz`` arrays beside it for a strategy). JSON and
    ``.npz`` only, never pickle; each file is written to a temporary name and renamed (:mod:`bertwise.util.atomic`), the
    ``.npz`` first and the JSON (holding the ``.npz``'s sha256) last, so an interrupted write leaves no entry rather
    than half of one.

Within a stage
    A stage still under way keeps each fit it finished in ``<stage>-<stage key>.partial/`` (a JSON and an ``.npz`` per
    fit, as above), and fine-tuning keeps its training checkpoints there (:mod:`bertwise.strategies.checkpoint`): a
    run killed halfway through a stage resumes with the fits it finished and the fit it was training. The folder is
    removed once the stage's own entry is written.

Trust
    Every JSON entry holds the sha256 of its own canonical JSON (``sha256``, computed without that field): an entry
    edited by hand or damaged on disk, down to one digit of one metric, is reported with a :class:`RunCacheWarning`
    and computed again, never trusted. The hash guards against accidents, not against someone who recomputes it:
    the cache is as trustworthy as the folder it lives in. A cache that cannot be written is reported once and the
    run goes on without it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.backbone.device import autocast_dtype
from bertwise.backbone.resolve import Backbone, resolve_backbone
from bertwise.config import CompareConfig
from bertwise.data.dataset import DataSplit
from bertwise.evaluation.learning_curve import CurvePlan
from bertwise.evaluation.protocol import Protocol
from bertwise.evaluation.records import library_versions
from bertwise.evaluation.runner import Fit, StrategyResult
from bertwise.strategies.cost import Calibration
from bertwise.util import atomic
from bertwise.util.version import __version__

# Bump when what an entry holds or means changes, so old entries are simply no longer found.
RUN_CACHE_FORMAT = 2
# The learning curve's stage name: its entry, and the folder of fits a killed curve left.
CURVE_STAGE = "learning-curve"
# Their results can change between releases while bertwise's own version stays the same.
_LIBRARIES = ("numpy", "scipy", "scikit-learn")


class RunCacheWarning(UserWarning):
    """A run-cache entry could not be read or written; the stage is computed instead."""


class RunCache:
    """One comparison's finished stages under ``<cache dir>/runs/<run key>/``."""

    def __init__(self, directory: Path, run_key: str) -> None:
        self.directory = directory
        self.run_key = run_key
        self._write_failed = False
        # What killed runs left: temporary files of dead processes (a live one's may be about to be renamed).
        atomic.remove_leftovers(directory)
        for partial in directory.glob("*.partial"):
            atomic.remove_leftovers(partial)

    @classmethod
    def open(
        cls, root: Path, config: CompareConfig, split: DataSplit, backbone: Backbone, device_type: str
    ) -> RunCache:
        """The cache of the run that ``config`` on ``split`` with ``backbone`` on ``device_type`` is."""
        run_key = _digest(
            {
                "format": RUN_CACHE_FORMAT,
                "bertwise": _bertwise_version(),
                "bertwise_source": _bertwise_source_sha256(),
                "config": config.to_dict(),
                "data": data_fingerprint(split),
                "model": _model_fingerprint(backbone, device_type),
                # The weights of every further backbone decide their pairs' numbers as the first one's decide all.
                "other_models": [
                    _model_fingerprint(resolve_backbone(model, pooling=config.pooling), device_type)  # type: ignore[arg-type]
                    for model in config.other_models
                ],
                "device": device_type,
                "libraries": library_versions(_LIBRARIES),
            }
        )
        return cls(root / "runs" / run_key, run_key)

    # Calibration -------------------------------------------------------------------------------------------------

    def load_calibration(self) -> Calibration | None:
        key = self._stage_key({"stage": "calibration"})
        data = self._read_json("calibration", key)
        if data is None:
            return None
        try:
            values = data["calibration"]
            fields = [item.name for item in dataclasses.fields(Calibration)]
            if set(values) != set(fields) or not all(isinstance(values[name], float) for name in fields):
                raise ValueError(f"expected the float fields {', '.join(fields)}")
            return Calibration(**values)
        except (KeyError, TypeError, ValueError) as error:
            self._damaged("calibration", self._path("calibration", key), error)
            return None

    def save_calibration(self, calibration: Calibration) -> None:
        # Unrounded, unlike results.json: the plan is cut from these exact figures.
        self._write_entry(
            "calibration",
            self._stage_key({"stage": "calibration"}),
            {"calibration": dataclasses.asdict(calibration)},
        )

    # Strategies --------------------------------------------------------------------------------------------------

    def strategy_key(
        self, name: str, protocol: Protocol, seeds: Sequence[int], overrides: Mapping[str, Any] | None
    ) -> str:
        return self._stage_key(
            {
                "stage": "strategy",
                "name": name,
                "scheme": protocol.scheme,
                "folds": _folds_digest(protocol),
                "seeds": list(seeds),
                "overrides": dict(overrides or {}),
            }
        )

    def load_strategy(
        self, name: str, key: str, split: DataSplit
    ) -> tuple[StrategyResult, list[list[np.ndarray]]] | None:
        """The kept result and per-run fold probabilities, or None (nothing kept, or damaged: warned about)."""
        data = self._read_json(name, key)
        if data is None:
            return None
        path = self._path(name, key)
        try:
            arrays = self._read_arrays(path.with_suffix(".npz"), data["arrays_sha256"])
            shape = arrays["fold_counts"]
            per_run_folds = [
                [arrays[f"fold_{run}_{fold}"] for fold in range(int(shape[run]))] for run in range(len(shape))
            ]
            run_predictions = arrays["run_predictions"]
            probabilities = arrays["probabilities"]
            n_test, n_classes = len(split.test), len(split.classes)
            if (
                run_predictions.ndim != 2
                or run_predictions.shape[1] != n_test
                or probabilities.shape != (n_test, n_classes)
                or run_predictions.min(initial=0) < 0
                or run_predictions.max(initial=0) >= n_classes
                or any(fold.ndim != 2 or fold.shape[1] != n_classes for folds in per_run_folds for fold in folds)
            ):
                raise ValueError("its arrays do not fit this data set")
            result = StrategyResult.from_dict(
                data["result"],
                classes=split.classes,
                probabilities=probabilities,
                run_predictions=run_predictions,
            )
            if result.name != name or result.status != "ok":
                raise ValueError(f"it holds {result.name!r} with status {result.status!r}")
        except Exception as error:  # a damaged entry may fail in any way (a bad zip, a missing array): recompute
            self._damaged(name, path, error)
            return None
        return result, per_run_folds

    def save_strategy(self, key: str, result: StrategyResult, per_run_folds: Sequence[Sequence[np.ndarray]]) -> None:
        if result.status != "ok" or result.run_predictions is None or result.probabilities is None:
            return  # a failure is computed again: it may have been the machine's, not the strategy's
        arrays: dict[str, np.ndarray] = {
            "run_predictions": result.run_predictions,
            "probabilities": result.probabilities,
            "fold_counts": np.array([len(folds) for folds in per_run_folds], dtype=np.int64),
        }
        for run, folds in enumerate(per_run_folds):
            for fold, probabilities in enumerate(folds):
                arrays[f"fold_{run}_{fold}"] = probabilities
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        blob = buffer.getvalue()
        path = self._path(result.name, key)
        if not self._write_file(path.with_suffix(".npz"), blob):
            return
        self._write_entry(
            result.name, key, {"result": result.to_dict(), "arrays_sha256": hashlib.sha256(blob).hexdigest()}
        )

    # Learning curve ----------------------------------------------------------------------------------------------

    def curve_key(
        self,
        plan: CurvePlan,
        protocol: Protocol,
        overrides: Mapping[str, Mapping[str, Any]],
        full_runs: Mapping[str, np.ndarray],
        references: Mapping[str, np.ndarray],
    ) -> str:
        # The curve's last point and its reference are the main evaluation's predictions: keyed by their content,
        # so a strategy computed again (a damaged entry) can never meet a curve built on other predictions.
        inputs = hashlib.sha256()
        for name in sorted(full_runs):
            _update_with_array(inputs, name, full_runs[name])
        for name in sorted(references):
            _update_with_array(inputs, name, references[name])
        return self._stage_key(
            {
                "stage": "learning curve",
                "points": list(plan.points),
                "full_per_class": plan.full_per_class,
                "repeats": dict(plan.repeats),
                "strategies": list(plan.strategies),
                "points_by_strategy": {name: list(points) for name, points in plan.points_by_strategy.items()},
                "fold": _folds_digest(protocol, first_only=True),
                "overrides": {name: dict(values) for name, values in overrides.items()},
                "inputs": inputs.hexdigest(),
            }
        )

    def load_curve(self, key: str) -> dict[str, Any] | None:
        data = self._read_json(CURVE_STAGE, key)
        if data is None:
            return None
        curve = data.get("learning_curve")
        if not isinstance(curve, dict) or "strategies" not in curve:
            self._damaged(CURVE_STAGE, self._path(CURVE_STAGE, key), ValueError("no learning curve in it"))
            return None
        return curve

    def save_curve(self, key: str, curve: Mapping[str, Any]) -> None:
        if "failed" in curve:
            return  # as with strategies, a failed part is computed again
        self._write_entry(CURVE_STAGE, key, {"learning_curve": dict(curve)})

    # Fits within a stage ------------------------------------------------------------------------------------------

    def stage_fits(self, stage: str, key: str) -> StageFits:
        """The fits the stage ``stage`` (a strategy's name or "learning-curve") under ``key`` finished so far."""
        return StageFits(self, stage, key)

    def finish_stage(self, stage: str, key: str) -> None:
        """Drop the stage's fits and checkpoints, once its own entry is written."""
        shutil.rmtree(self._partial_folder(stage, key), ignore_errors=True)

    def _partial_folder(self, stage: str, key: str) -> Path:
        return self.directory / f"{stage}-{key}.partial"

    # Files -------------------------------------------------------------------------------------------------------

    def _stage_key(self, details: Mapping[str, Any]) -> str:
        return _digest({"run": self.run_key, **details})

    def _path(self, stage: str, key: str) -> Path:
        return self.directory / f"{stage}-{key}.json"

    def _read_json(self, stage: str, key: str, path: Path | None = None) -> dict[str, Any] | None:
        path = path or self._path(stage, key)
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):  # nothing kept yet
            return None
        except (OSError, UnicodeDecodeError) as error:
            self._damaged(stage, path, error)
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format") != RUN_CACHE_FORMAT or data.get("key") != key or data.get("stage") != stage:
                raise ValueError("it belongs to another key or format")
            if data.get("sha256") != _entry_sha256(data):
                raise ValueError("its content does not match the sha256 it was written with (edited or damaged)")
        except (ValueError, RecursionError) as error:
            self._damaged(stage, path, error)
            return None
        return data

    @staticmethod
    def _read_arrays(path: Path, expected_sha256: str) -> dict[str, np.ndarray]:
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != expected_sha256:
            raise ValueError(f"{path.name} does not match the sha256 its entry recorded")
        with np.load(io.BytesIO(blob), allow_pickle=False) as loaded:
            return {name: loaded[name] for name in loaded.files}

    def _write_entry(self, stage: str, key: str, payload: Mapping[str, Any], path: Path | None = None) -> None:
        entry: dict[str, Any] = {"format": RUN_CACHE_FORMAT, "key": key, "stage": stage, **payload}
        # Hashed as it will be read back (tuples as lists, keys as strings), so that reading can check it.
        entry = json.loads(json.dumps(entry, default=_plain))
        entry["sha256"] = _entry_sha256(entry)
        self._write_file(path or self._path(stage, key), (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))

    def _write_file(self, path: Path, blob: bytes) -> bool:
        try:
            # A unique temporary name: two identical runs at once must not write into each other's half file. Not
            # flushed to disk before the rename: every entry is checked against its hash, which a power cut's damage
            # fails, and a stage keeps one entry per fit.
            atomic.write_bytes(path, blob, durable=False)
        except OSError as error:
            if not self._write_failed:
                self._write_failed = True
                warnings.warn(
                    f"bertwise: cannot write the run cache {self.directory} ({type(error).__name__}: {error}); "
                    "this run goes on without keeping its stages",
                    RunCacheWarning,
                    stacklevel=2,
                )
            return False
        return True

    @staticmethod
    def _damaged(stage: str, path: Path, error: BaseException) -> None:
        warnings.warn(
            f"bertwise: ignoring the run-cache entry {path}, damaged or unreadable ({type(error).__name__}: "
            f"{error}); computing {stage} again",
            RunCacheWarning,
            stacklevel=2,
        )


class StageFits:
    """The fits one stage finished, kept so that the stage, killed halfway, resumes fit by fit (a runner FitStore).

    Each fit is a JSON entry (its costs, parameters and details, hashed like every entry) and an ``.npz`` of its
    test probabilities, in the stage's ``.partial`` folder; so is fine-tuning's checkpoint of the fit under way.
    ``reused`` and ``resumed_steps`` say what this run took back, for results.json's ``resumed``.
    """

    def __init__(self, cache: RunCache, stage: str, key: str) -> None:
        self.cache = cache
        self.stage = stage
        self.key = key
        self.folder = cache._partial_folder(stage, key)
        self.reused: list[str] = []
        self.resumed_steps: dict[str, int] = {}

    def load(self, fit_id: str) -> Fit | None:
        path = self.folder / f"{fit_id}.json"
        data = self.cache._read_json(self._stage(fit_id), self.key, path)
        if data is None:
            return None
        try:
            arrays = self.cache._read_arrays(path.with_suffix(".npz"), data["arrays_sha256"])
            kept = data["fit"]
            fit = Fit(probabilities=arrays["probabilities"], estimator=None, **kept)
            if fit.probabilities.ndim != 2 or not isinstance(fit.params, dict) or not isinstance(fit.details, dict):
                raise ValueError("its arrays or fields are not a fit's")
        except Exception as error:  # as with a strategy's entry, damage may take any form: fit it again
            self.cache._damaged(f"{self.stage} {fit_id}", path, error)
            return None
        self.reused.append(fit_id)
        return fit

    def save(self, fit_id: str, fit: Fit) -> None:
        if fit.resumed_from_step is not None:
            self.resumed_steps[fit_id] = fit.resumed_from_step
        buffer = io.BytesIO()
        np.savez(buffer, probabilities=fit.probabilities)
        blob = buffer.getvalue()
        path = self.folder / f"{fit_id}.json"
        if not self.cache._write_file(path.with_suffix(".npz"), blob):
            return
        kept = {item.name: getattr(fit, item.name) for item in dataclasses.fields(Fit)}
        del kept["probabilities"], kept["estimator"]
        payload = {"fit": kept, "arrays_sha256": hashlib.sha256(blob).hexdigest()}
        self.cache._write_entry(self._stage(fit_id), self.key, payload, path)

    def checkpoint(self, fit_id: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{fit_id}.checkpoint"

    def _stage(self, fit_id: str) -> str:
        return f"{self.stage} {fit_id}"


def data_fingerprint(split: DataSplit) -> str:
    """sha256 of the training and test texts and labels, in order, and of how the test set was made."""
    digest = hashlib.sha256()
    for part in (split.train, split.test):
        digest.update(b"part\0")
        for text, label in zip(part.texts, part.labels, strict=True):
            # JSON keeps "1" and 1 apart, and escapes whatever a text holds, so rows can never run into each other.
            digest.update(json.dumps([text, label], default=_plain).encode("ascii") + b"\n")
    digest.update(json.dumps(split.test_origin).encode("ascii"))
    return digest.hexdigest()


def _model_fingerprint(backbone: Backbone, device_type: str) -> str:
    import torch

    from bertwise.backbone.cache import model_fingerprint

    # The precision only needs to change when the device kind's autocast does; its spelling is this key's own.
    precision = str(autocast_dtype(torch.device(device_type)) or "float32")
    return model_fingerprint(backbone, precision=precision, device_type=device_type)[0]


def _bertwise_version() -> str:
    return __version__


@functools.lru_cache(maxsize=1)
def _bertwise_source_sha256() -> str:
    # An editable install changes its code without changing its version: a checkout must never reuse the numbers of
    # code it no longer runs.
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _folds_digest(protocol: Protocol, *, first_only: bool = False) -> str:
    folds = protocol.folds[:1] if first_only else protocol.folds
    return _digest([[list(fold.train_rows), list(fold.test_rows)] for fold in folds])


def _update_with_array(digest: Any, name: str, array: np.ndarray) -> None:
    contiguous = np.ascontiguousarray(array)
    digest.update(f"{name}\0{contiguous.dtype.str}\0{contiguous.shape}\0".encode())
    digest.update(contiguous.tobytes())


def _entry_sha256(entry: Mapping[str, Any]) -> str:
    """sha256 of an entry's canonical JSON without its own ``sha256`` field."""
    return _digest({name: value for name, value in entry.items() if name != "sha256"})


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_plain)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars, such as integer labels read by pandas
        return value.item()
    raise TypeError(f"cannot key the run cache on a {type(value).__name__}")
