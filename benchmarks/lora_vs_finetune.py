"""LoRA against full fine-tuning on one data set: macro-F1, trainable parameters, fit seconds, peak RSS, saved size.

Each strategy is fitted in its own process (so peak RSS is its own: ``ru_maxrss``, imports and data included), on the
training file, scored on the test file, then saved as a model folder whose size is measured (docs/lora.md).

    PYTHONPATH=src python benchmarks/lora_vs_finetune.py examples/banking77_sample --epochs 8 \\
        --out benchmarks/results/lora-vs-finetune.json

``--epochs N`` trains exactly N epochs (min_steps 0, min_epochs = max_epochs = N; early stopping may end it sooner)
for both strategies; without it each trains its default schedule, as ``bertwise compare`` does.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _one(data: Path, strategy: str, seed: int, epochs: int | None) -> dict[str, Any]:
    """Fit, score and save one strategy in this process."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from bertwise.artifact.folder import folder_size, save_model
    from bertwise.data.io import read_labeled_file
    from bertwise.strategies.registry import strategy_class

    (train, _), (test, _) = read_labeled_file(data / "train.csv"), read_labeled_file(data / "test.csv")
    schedule = {} if epochs is None else {"min_steps": 0, "min_epochs": epochs, "max_epochs": epochs}
    estimator = strategy_class(strategy)(seed=seed, device="cpu", **schedule)
    started = time.perf_counter()
    estimator.fit(list(train.texts), list(train.labels))
    fit_seconds = time.perf_counter() - started
    predicted = estimator.predict(list(test.texts))
    details = estimator.fit_details()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        save_model(estimator, folder, training=train)
        saved_bytes = folder_size(folder)
    trainable = details.get("trainable_parameters")
    if trainable is None:  # full fine-tuning trains every weight
        trainable = sum(p.numel() for p in estimator.network_.parameters())
    return {
        "strategy": strategy,
        "seed": seed,
        "macro_f1": round(100 * float(f1_score(list(test.labels), predicted, average="macro")), 2),
        "accuracy": round(100 * float(accuracy_score(list(test.labels), predicted)), 2),
        "fit_seconds": round(fit_seconds, 1),
        "optimizer_steps": details["optimizer_steps"],
        "planned_steps": details["planned_steps"],
        "best_step": details.get("best_step"),
        "learning_rate": details["learning_rate"],
        "trainable_parameters": int(trainable),
        "total_parameters": details.get("total_parameters"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "saved_folder_bytes": saved_bytes,
        "load_average_after": [round(x, 2) for x in __import__("os").getloadavg()],
        "rows": {"train": len(train), "test": len(test), "classes": len(set(train.labels))},
        "test_rows_scored": int(np.size(predicted)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path, help="a folder with train.csv and test.csv (text, label)")
    parser.add_argument("--strategies", default="lora,finetune")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "strategy:seed" in this process
    args = parser.parse_args()
    if args.one is not None:
        strategy, seed = args.one.split(":")
        print(json.dumps(_one(args.data, strategy, int(seed), args.epochs)))
        return
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for strategy in args.strategies.split(","):
            command = [sys.executable, __file__, str(args.data), "--one", f"{strategy}:{seed}"]
            if args.epochs is not None:
                command += ["--epochs", str(args.epochs)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"epochs": args.epochs, "runs": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
