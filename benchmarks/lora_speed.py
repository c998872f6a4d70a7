"""Seconds per training example of LoRA against full fine-tuning, on the same batches (docs/lora.md).

Both train the embedded all-MiniLM-L6-v2 as the strategies do (fused AdamW over what trains, autocast as configured)
on batches of the sample's own texts, short to long; each batch is run once untimed first (kernel set-up), then
``--rounds`` timed rounds alternate between the two, so a neighbour's load on a shared machine hits both alike. The
ratio is LoraClassifier's TRAIN_TIME_FACTOR.

    PYTHONPATH=src python benchmarks/lora_speed.py examples/banking77_sample/train.csv --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from typing import Any


def _networks(n_classes: int) -> dict[str, Any]:
    """Each strategy's network as its fit builds it, with AdamW over what it trains."""
    import numpy as np
    import torch

    from bertwise.backbone.resolve import resolve_backbone
    from bertwise.strategies.finetune import FinetuneClassifier
    from bertwise.strategies.lora import LoraClassifier

    networks = {}
    for name, cls in (("finetune", FinetuneClassifier), ("lora", LoraClassifier)):
        torch.manual_seed(0)
        estimator = cls(device="cpu")
        estimator.classes_ = np.arange(n_classes)
        network = estimator._build_network(resolve_backbone(None))
        trained = [p for p in network.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=1e-5, fused=True)
        networks[name] = (network, optimizer, sum(p.numel() for p in trained))
    return networks


def main() -> None:
    import torch

    from bertwise.backbone.device import autocast_dtype, resolve_device
    from bertwise.backbone.encoder import load_tokenizer, pad_batch, tokenize
    from bertwise.backbone.resolve import resolve_backbone

    parser = argparse.ArgumentParser()
    parser.add_argument("train_csv")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with open(args.train_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts = [row["text"] for row in rows][: args.batch * args.batches]
    n_classes = len({row["label"] for row in rows})
    backbone = resolve_backbone(None)
    tokenizer = load_tokenizer(backbone.path)
    ids = sorted(tokenize(tokenizer, texts, backbone.max_length).input_ids, key=len)
    batches = [ids[i : i + args.batch] for i in range(0, len(ids), args.batch)]
    amp = autocast_dtype(resolve_device("cpu"), "auto")
    networks = _networks(n_classes)
    generator = torch.Generator().manual_seed(0)

    def step(name: str, chunk: list[list[int]]) -> float:
        network, optimizer, _ = networks[name]
        network.train()
        inputs = pad_batch(chunk, tokenizer.pad_token_id or 0, torch.device("cpu"))
        targets = torch.randint(0, n_classes, (len(chunk),), generator=generator)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            logits = network(**inputs).logits
        torch.nn.functional.cross_entropy(logits.float(), targets).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    for name in networks:
        for chunk in batches:
            step(name, chunk)  # untimed: the first step at each shape
    seconds = {name: 0.0 for name in networks}
    for _ in range(args.rounds):
        for name in networks:
            seconds[name] += sum(step(name, chunk) for chunk in batches)
    examples = args.rounds * sum(len(chunk) for chunk in batches)
    result = {
        "examples_timed": examples,
        "precision": str(amp),
        "threads": torch.get_num_threads(),
        **{f"{name}_ms_per_example": round(1000 * seconds[name] / examples, 3) for name in networks},
        **{f"{name}_trainable_parameters": networks[name][2] for name in networks},
        "lora_over_finetune": round(seconds["lora"] / seconds["finetune"], 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
