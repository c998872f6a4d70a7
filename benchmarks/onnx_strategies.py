"""ONNX parity of trained lora and setfit folders on the embedded model: fit on a folder's train.csv, save, export
with the parity check on its test.csv, then the torch folder against the ONNX one on the same texts (docs/onnx.md).

    PYTHONPATH=src python benchmarks/onnx_strategies.py examples/banking77_sample --work /tmp/onnx-strategies
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _corpus import use_checkout

# Short schedules: the check is of the export, not of the model's quality.
PARAMS = {"lora": {"min_steps": 0, "min_epochs": 2, "max_epochs": 2}, "setfit": {"num_iterations": 2}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a folder with train.csv and test.csv")
    parser.add_argument("--work", type=Path, required=True, help="where the model folders are written")
    parser.add_argument("--strategies", nargs="+", default=list(PARAMS))
    args = parser.parse_args()
    use_checkout()
    from bertwise.artifact.folder import load, save_model
    from bertwise.data.io import read_labeled_file
    from bertwise.onnx.export import export_model_folder, load_onnx
    from bertwise.strategies.registry import strategy_class

    (train, _), (test, _) = read_labeled_file(args.data / "train.csv"), read_labeled_file(args.data / "test.csv")
    texts = list(test.texts)
    for name in args.strategies:
        estimator = strategy_class(name)(seed=0, device="cpu", **PARAMS.get(name, {}))
        started = time.perf_counter()
        estimator.fit(list(train.texts), list(train.labels))
        fit_seconds = time.perf_counter() - started
        folder = args.work / name
        save_model(estimator, folder, training=train)
        summary = export_model_folder(folder, check_texts=texts, check_source=f"{args.data.name} test.csv")
        expected = load(folder, device="cpu", precision="float32").predict_proba(texts)
        found = load_onnx(folder).predict_proba(texts)
        record = {
            "strategy": name,
            "fit_seconds": round(fit_seconds, 1),
            "parity": summary.parity.line(),
            "onnx_mb": round(summary.bytes / 1e6, 1),
            "max_abs_difference": float(np.abs(expected - found).max()),
            "labels_agree": float((expected.argmax(1) == found.argmax(1)).mean()),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
