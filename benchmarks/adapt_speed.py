"""Domain adaptation on real texts: seconds, peak memory and the MLM loss before/after (docs/domain-adaptation.md).

Usage: python benchmarks/adapt_speed.py DATA.csv --rows 500 --max-length 256 --epochs 1 [--threads N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache-dir", default=None)
    arguments = parser.parse_args()
    import torch

    from bertwise.backbone.adapt import adapt_backbone

    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    texts = pd.read_csv(arguments.data)["text"].astype(str).tolist()[: arguments.rows]
    started = time.perf_counter()
    result = adapt_backbone(
        None,
        texts,
        epochs=arguments.epochs,
        steps=arguments.steps,
        max_length=arguments.max_length,
        batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate,
        device="cpu",
        cache_dir=arguments.cache_dir,
    )
    figures = {**result.to_record(), "wall_seconds": round(time.perf_counter() - started, 1)}
    figures["torch_threads"] = torch.get_num_threads()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
