"""Time estimates for a comparison's plan, and the cuts that make it fit a budget.

A short calibration measures, on the user's own texts (length matters), this machine's encoding speed, the speed of
a few real training steps, and one pass of the probe's regression grid; every part of the plan is estimated from
those three figures. The estimates are recorded beside the measured times in results.json, so their accuracy can be
checked.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bertwise.data.dataset import DataSplit
from bertwise.evaluation.learning_curve import CurvePlan
from bertwise.evaluation.protocol import Protocol
from bertwise.util.formatting import duration

LOAD_SECONDS = 2.0  # loading weights and the tokenizer, per fit
# Texts per timed chunk: enough that length-sorted batches pad as little as in a real run (chunks of 64 measured
# 1.6x slower than encoding 1,500 texts at once on BANKING77).
CALIBRATION_TEXTS = 256
CALIBRATION_SECONDS = 1.0
CALIBRATION_MAX_TEXTS = 1024
CALIBRATION_TRAIN_STEPS = 3
# Finetune's defaults (FinetuneClassifier): the estimate mirrors its schedule.
FINETUNE_DEFAULTS = {"batch_size": 32, "min_epochs": 5, "max_epochs": 20, "min_steps": 400, "validation": 0.1}
SHORTEST_TRAINING = 0.25  # the budget never shortens fine-tuning below this share of its planned steps


@dataclass(frozen=True)
class Calibration:
    encode_texts_per_second: float
    train_examples_per_second: float
    probe_seconds_per_row: float  # the probe's regression (C search and final fit), per training row

    def to_dict(self) -> dict[str, float]:
        return {
            "encode_texts_per_second": round(self.encode_texts_per_second, 1),
            "train_examples_per_second": round(self.train_examples_per_second, 1),
            "probe_seconds_per_row": round(self.probe_seconds_per_row, 7),
        }


@dataclass(frozen=True)
class Plan:
    """What will run: the knobs the budget may turn."""

    strategies: tuple[str, ...]
    protocol: Protocol
    curve: CurvePlan | None
    finetune_scale: float = 1.0  # share of fine-tuning's planned steps
    cuts: tuple[str, ...] = field(default=())

    def finetune_overrides(self) -> dict[str, Any]:
        if self.finetune_scale >= 1.0:
            return {}
        max_epochs = max(1, math.floor(FINETUNE_DEFAULTS["max_epochs"] * self.finetune_scale))
        return {
            "min_steps": int(FINETUNE_DEFAULTS["min_steps"] * self.finetune_scale),
            "max_epochs": max_epochs,
            "min_epochs": min(max_epochs, max(1, math.floor(FINETUNE_DEFAULTS["min_epochs"] * self.finetune_scale))),
        }


def calibrate(
    split: DataSplit, model: str | None, pooling: str, device: str, seed: int, precision: str = "auto"
) -> Calibration:
    """Encode the user's texts for about a second (after a warm-up batch), and fit one regression on them."""
    from bertwise.backbone.encoder import forget_embeddings, load_encoder

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split.train))
    texts = [split.train.texts[i] for i in order[:CALIBRATION_MAX_TEXTS]]
    labels = [split.train.labels[i] for i in order[:CALIBRATION_MAX_TEXTS]]
    encoder = load_encoder(model, pooling, device, precision)  # type: ignore[arg-type]
    # cache=False: cached embeddings would time the disk, not the model. The first batch pays for thread start-up.
    encoder.encode(texts[:8], cache=False)
    forget_embeddings()
    # Time whole chunks until a second has passed: a GPU needs several batches before its speed shows.
    encoded: list[np.ndarray] = []
    done = 0
    start = time.perf_counter()
    while done < len(texts) and (done < CALIBRATION_TEXTS or time.perf_counter() - start < CALIBRATION_SECONDS):
        encoded.append(encoder.encode(texts[done : done + CALIBRATION_TEXTS], cache=False))
        done += len(encoded[-1])
    rate = done / max(time.perf_counter() - start, 1e-6)
    forget_embeddings()
    return Calibration(
        encode_texts_per_second=rate,
        train_examples_per_second=_train_examples_per_second(texts, len(split.classes), model, device, seed, precision),
        probe_seconds_per_row=_probe_seconds_per_row(np.concatenate(encoded), labels[:done], len(split.classes)),
    )


def _train_examples_per_second(
    texts: list[str], n_classes: int, model: str | None, device: str, seed: int, precision: str = "auto"
) -> float:
    """A few real optimiser steps of the classifier on the user's texts (the first is a warm-up and not timed).

    Measured rather than derived from encoding speed: on short texts encoding is dominated by per-batch overhead, and
    training ran 10x faster than a quarter of the encoding speed would say (TREC-6 on 2 busy cores).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertwise.backbone.device import autocast_dtype, resolve_device
    from bertwise.backbone.encoder import load_tokenizer, pad_batch, tokenize
    from bertwise.backbone.loading import quiet_loading
    from bertwise.backbone.resolve import resolve_backbone

    backbone = resolve_backbone(model)
    target = resolve_device(device)
    tokenizer = load_tokenizer(backbone.path)
    with quiet_loading():
        network = AutoModelForSequenceClassification.from_pretrained(
            backbone.path, num_labels=n_classes, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        ).to(target)
    # As FinetuneClassifier trains: fused AdamW, autocast in the same precision.
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-5, fused=target.type in ("cpu", "cuda"))
    amp = autocast_dtype(target, precision)
    batch = int(FINETUNE_DEFAULTS["batch_size"])
    ids = sorted(tokenize(tokenizer, texts[: batch * CALIBRATION_TRAIN_STEPS], backbone.max_length).input_ids, key=len)
    # Training groups texts of similar length into a batch, so time short, middle and long batches as an epoch has.
    # Each is run once untimed first: the first step at a new shape pays for kernel set-up (12x slower on CPU), and a
    # real epoch meets the same few shapes again and again.
    batches = [ids[first : first + batch] for first in range(0, len(ids), batch)]
    generator = torch.Generator().manual_seed(seed)
    network.train()
    timed = 0.0
    examples = 0
    for timing in (False, True):
        for chunk in batches:
            inputs = pad_batch(chunk, tokenizer.pad_token_id or 0, target)
            targets = torch.randint(0, n_classes, (len(chunk),), generator=generator).to(target)
            start = time.perf_counter()
            with torch.autocast(target.type, dtype=amp, enabled=amp is not None):
                logits = network(**inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if target.type == "cuda":
                torch.cuda.synchronize()
            if timing:
                timed += time.perf_counter() - start
                examples += len(chunk)
    del network, optimizer
    if examples == 0:
        return 1.0
    return examples / max(timed, 1e-6)


def _probe_seconds_per_row(features: np.ndarray, labels: list[Any], n_classes: int) -> float:
    """Seconds per training row of the probe's whole fit: the C grid, warm-started, timed on the user's embeddings.

    The probe fits the grid once per fold (5 folds of 4/5 of the rows) and once more with the chosen C, about 4.3
    times one pass over the grid on all rows. Multinomial regression costs about linearly in rows and classes.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from bertwise.strategies.probe import DEFAULT_CS

    codes = {label: code for code, label in enumerate(dict.fromkeys(labels))}
    targets = np.array([codes[label] for label in labels])
    if len(codes) < 2:
        return 1e-4
    model = LogisticRegression(max_iter=2000, warm_start=True)
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # as the probe fits
        for c in sorted(DEFAULT_CS):
            model.set_params(C=c).fit(features, targets)
    grid_seconds = time.perf_counter() - start
    return 4.3 * grid_seconds / len(targets) * max(1.0, n_classes / len(codes))


def finetune_steps(rows: int, scale: float = 1.0) -> int:
    """Optimiser steps FinetuneClassifier plans for ``rows`` training texts (before early stopping)."""
    train_rows = max(1, round(rows * (1 - FINETUNE_DEFAULTS["validation"])))
    per_epoch = math.ceil(train_rows / FINETUNE_DEFAULTS["batch_size"])
    max_epochs = FINETUNE_DEFAULTS["max_epochs"]
    min_epochs = FINETUNE_DEFAULTS["min_epochs"]
    min_steps = FINETUNE_DEFAULTS["min_steps"]
    if scale < 1.0:
        max_epochs = max(1, math.floor(max_epochs * scale))
        min_epochs = min(max_epochs, max(1, math.floor(min_epochs * scale)))
        min_steps = int(min_steps * scale)
    epochs = min(max_epochs, max(min_epochs, math.ceil(min_steps / per_epoch)))
    return int(epochs * per_epoch)


def fit_seconds(
    name: str,
    train_rows: int,
    test_rows: int,
    n_classes: int,
    calibration: Calibration,
    *,
    encode_train: bool,
    finetune_scale: float = 1.0,
) -> float:
    """Estimated seconds for one fit and prediction of ``name``."""
    encode = calibration.encode_texts_per_second
    if name == "zero-shot":
        return LOAD_SECONDS + (test_rows + n_classes) / encode
    if name == "probe":
        regression = calibration.probe_seconds_per_row * train_rows
        return (train_rows / encode if encode_train else 0.0) + test_rows / encode + regression
    if name == "finetune":
        steps = finetune_steps(train_rows, finetune_scale)
        epochs = steps / max(1, math.ceil(train_rows * 0.9 / FINETUNE_DEFAULTS["batch_size"]))
        validation = epochs * train_rows * FINETUNE_DEFAULTS["validation"] / encode
        training = steps * FINETUNE_DEFAULTS["batch_size"] / calibration.train_examples_per_second
        return LOAD_SECONDS + training + validation + test_rows / encode
    return LOAD_SECONDS + (train_rows + test_rows) / encode


def estimate(plan: Plan, split: DataSplit, calibration: Calibration) -> dict[str, float]:
    """Seconds per part: "<strategy>" for the main evaluation, "<strategy> curve" for its learning curve."""
    n_classes = len(split.classes)
    parts: dict[str, float] = {}
    seed_dependent = {"finetune"}
    for name in plan.strategies:
        seeds = len(plan.protocol.seeds_for(name in seed_dependent))
        total = 0.0
        for run in range(seeds):
            for number, fold in enumerate(plan.protocol.folds):
                total += fit_seconds(
                    name,
                    len(fold.train_rows),
                    len(fold.test_rows),
                    n_classes,
                    calibration,
                    encode_train=(run == 0 and number == 0),
                    finetune_scale=plan.finetune_scale,
                )
        parts[name] = total
    if plan.curve is not None:
        test_rows = len(plan.protocol.folds[0].test_rows)
        for name, per_class, _ in plan.curve.jobs():
            rows = per_class * n_classes
            parts[f"{name} curve"] = parts.get(f"{name} curve", 0.0) + fit_seconds(
                name,
                rows,
                test_rows if name != "probe" else 0,
                n_classes,
                calibration,
                encode_train=False,
                finetune_scale=plan.finetune_scale,
            )
    return parts


def fit_to_budget(plan: Plan, split: DataSplit, calibration: Calibration, limit: float) -> Plan:
    """Cut the plan, least valuable part first, until its estimate fits ``limit`` seconds; say what was cut.

    Order: fewer learning-curve repeats, fewer fine-tuning seeds (or folds), fewer then no fine-tuning curve
    points, and last shorter fine-tuning. The main comparison is cut last because it is the answer itself.
    """

    def total(candidate: Plan) -> float:
        return sum(estimate(candidate, split, calibration).values())

    def with_curve(candidate: Plan, curve: CurvePlan | None, cut: str) -> Plan:
        return replace(candidate, curve=curve, cuts=(*candidate.cuts, cut))

    current = plan
    steps: list[Any] = []
    curve = plan.curve
    if curve is not None and curve.repeats.get("finetune", 1) > 1:
        steps.append(("curve-repeats", "finetune", 1))
    if curve is not None and curve.repeats.get("probe", 1) > 3:
        steps.append(("curve-repeats", "probe", 3))
    steps.extend([("seeds", None, 2), ("seeds", None, 1), ("folds", None, 3)])
    steps.extend([("thin-curve", None, None), ("drop-curve", None, None), ("shorten", None, None)])
    for kind, name, value in steps:
        if total(current) <= limit:
            break
        if kind == "curve-repeats" and current.curve is not None and name in current.curve.strategies:
            before = current.curve.repeats.get(name, 1)
            repeats = {**current.curve.repeats, name: value}
            current = with_curve(
                current, replace(current.curve, repeats=repeats), f"{name} learning-curve repeats {before} -> {value}"
            )
        elif kind == "seeds" and "finetune" in current.strategies and len(current.protocol.seeds) > value:
            before = len(current.protocol.seeds)
            if current.protocol.scheme == "cross-validation" and value == 1:
                continue  # the folds already use distinct seeds; cutting folds is the next step
            protocol = replace(current.protocol, seeds=current.protocol.seeds[:value])
            current = replace(current, protocol=protocol, cuts=(*current.cuts, f"finetune seeds {before} -> {value}"))
        elif kind == "folds" and current.protocol.scheme == "cross-validation" and len(current.protocol.folds) > 3:
            current = replace(current, cuts=(*current.cuts, "cross-validation folds -> 3"))
            current = replace(current, protocol=_refold(current.protocol, split, 3))
        elif kind == "thin-curve" and current.curve is not None and "finetune" in current.curve.strategies:
            points = current.curve.points_for("finetune")
            if len(points) > 2:
                kept = points[1::2] if len(points) % 2 == 0 else points[::2]
                curve_plan = _finetune_points(current.curve, kept)
                current = with_curve(
                    current, curve_plan, f"finetune learning-curve points {len(points)} -> {len(kept)}"
                )
        elif kind == "drop-curve" and current.curve is not None and "finetune" in current.curve.strategies:
            kept_strategies = tuple(name for name in current.curve.strategies if name != "finetune")
            curve_plan = replace(current.curve, strategies=kept_strategies)
            current = with_curve(current, curve_plan, "no finetune learning curve (its full-data point is kept)")
        elif kind == "shorten" and "finetune" in current.strategies:
            current = _shorten(current, split, calibration, limit, total)
    if total(current) > limit:
        current = replace(
            current,
            cuts=(
                *current.cuts,
                f"even this plan is estimated at {duration(total(current))}, over the {duration(limit)} budget; "
                "it runs anyway",
            ),
        )
    return current


def _shorten(plan: Plan, split: DataSplit, calibration: Calibration, limit: float, total: Any) -> Plan:
    scale = 1.0
    candidate = plan
    while scale > SHORTEST_TRAINING and total(candidate) > limit:
        scale = max(SHORTEST_TRAINING, round(scale - 0.05, 2))
        candidate = replace(plan, finetune_scale=scale)
    if scale >= 1.0:
        return plan
    return replace(
        candidate,
        cuts=(
            *plan.cuts,
            f"fine-tuning shortened to {scale:.0%} of its planned steps: its score may understate what full "
            "training reaches",
        ),
    )


def _finetune_points(curve: CurvePlan, kept: tuple[int, ...]) -> CurvePlan:
    """A curve whose fine-tuning runs only at ``kept``; other strategies keep every point (they are cheap)."""
    return replace(curve, points_by_strategy={**curve.points_by_strategy, "finetune": kept})


def _refold(protocol: Protocol, split: DataSplit, folds: int) -> Protocol:
    from bertwise.evaluation.protocol import _stratified_folds

    return replace(protocol, folds=_stratified_folds(split, folds, protocol.seeds[0]))


def parse_duration(text: str) -> float:
    """'15m', '90s', '1h30m', '2h' or a plain number of seconds -> seconds."""
    import re

    from bertwise.exceptions import ConfigError

    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", cleaned)
        if not parts or "".join(number + unit for number, unit in parts) != cleaned:
            raise ConfigError(f"could not read the budget {text!r}; expected a duration such as 15m, 90s, 1h30m or 600")
        seconds = sum(float(number) * {"h": 3600, "m": 60, "s": 1}[unit] for number, unit in parts)
    if seconds <= 0:
        raise ConfigError(f"the budget must be a positive duration; got {text!r}")
    return seconds
