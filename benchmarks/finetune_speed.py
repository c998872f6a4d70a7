"""Fine-tuning speed at equal accuracy: bertwise against the transformers Trainer and the article's recipe.

On the same training rows, model, threads and machine, in one run:

- ``bertwise``: ``FinetuneClassifier`` with the Trainer's schedule (3 epochs, batch 32, no minimum step count) so both
  see the same examples; its own learning rate and everything else at bertwise's defaults;
- ``bertwise-float32``: the same with ``precision="float32"``, to show what reduced precision buys and costs;
- ``trainer``: the transformers ``Trainer`` recipe with dynamic padding, batch 32, 3 epochs (benchmarks/_baselines.py);
- ``article``: the article's recipe, every text padded to 128 tokens and one text per step, timed on
  ``--article-steps`` steps only (at 7 examples/s a full run would take an hour; its accuracy is not measured).

Each method runs in its own process, so each peak RSS is its own. Examples/s counts training examples over the
wall time of the whole fit (tokenizing, validation passes and bookkeeping included), so it is what a user waits for.

    .venv/bin/python benchmarks/finetune_speed.py          # trec6 (800 rows), medical_abstracts (300), ~15 min
    .venv/bin/python benchmarks/finetune_speed.py --datasets trec6:400 --test-rows 200
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import DEFAULT_DATASETS, REPO, machine, peak_rss_mb, use_checkout, write_json  # noqa: E402

METHODS = ("bertwise", "bertwise-float32", "trainer", "article")
EPOCHS = 3
ARTICLE_MAX_LENGTH = 128


def load_rows(folder: Path, part: str, limit: int, seed: int) -> tuple[list[str], list[str]]:
    """A class-stratified sample of ``limit`` rows (all of them if fewer)."""
    import csv

    with (folder / f"{part}.csv").open(newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    if limit and len(rows) > limit:
        from sklearn.model_selection import train_test_split

        rows, _ = train_test_split(rows, train_size=limit, random_state=seed, stratify=[label for _, label in rows])
    random.Random(seed).shuffle(rows)
    return [text for text, _ in rows], [label for _, label in rows]


def worker(method: str, job_file: Path) -> None:
    use_checkout()
    import torch
    from sklearn.metrics import f1_score

    job = json.loads(job_file.read_text(encoding="utf-8"))
    train_texts, train_labels = job["train_texts"], job["train_labels"]
    test_texts, test_labels = job["test_texts"], job["test_labels"]
    device = job["device"]
    result: dict[str, Any] = {}
    if method.startswith("bertwise"):
        from bertwise.strategies.finetune import FinetuneClassifier

        model = FinetuneClassifier(
            model=job["model"],
            min_epochs=EPOCHS,
            max_epochs=EPOCHS,
            min_steps=0,
            seed=job["seed"],
            device=device,
            precision="float32" if method == "bertwise-float32" else "auto",
        )
        started = time.perf_counter()
        model.fit(train_texts, train_labels)
        fit_seconds = time.perf_counter() - started
        predictions = model.predict(test_texts)
        result.update(
            train_examples=model.train_examples_,
            steps=model.steps_,
            precision=str(model.amp_ or "float32").removeprefix("torch."),
            learning_rate=model.learning_rate_,
        )
    elif method == "trainer":
        from _baselines import TrainerFinetune

        baseline = TrainerFinetune(job["model_path"], device=device, seed=job["seed"])
        started = time.perf_counter()
        baseline.fit(train_texts, train_labels)
        fit_seconds = time.perf_counter() - started
        predictions = baseline.predict(test_texts)
        details = baseline.details()
        baseline.close()
        result.update(train_examples=EPOCHS * len(train_texts), steps=details["train_steps"], precision="float32")
    elif method == "article":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        classes = sorted(set(train_labels))
        tokenizer = AutoTokenizer.from_pretrained(job["model_path"])
        network = AutoModelForSequenceClassification.from_pretrained(
            job["model_path"], num_labels=len(classes), dtype=torch.float32
        ).to(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        optimizer = torch.optim.AdamW(network.parameters(), lr=5e-5)
        network.train()
        steps = min(job["article_steps"], len(train_texts))
        started = time.perf_counter()
        for text, label in zip(train_texts[:steps], train_labels[:steps], strict=True):
            inputs = tokenizer(
                text, padding="max_length", truncation=True, max_length=ARTICLE_MAX_LENGTH, return_tensors="pt"
            ).to(network.device)
            target = torch.tensor([classes.index(label)], device=network.device)
            loss = network(**inputs, labels=target).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        fit_seconds = time.perf_counter() - started
        predictions = None
        result.update(train_examples=steps, steps=steps, precision="float32")
    else:
        raise SystemExit(f"unknown method {method!r}")
    result["fit_seconds"] = fit_seconds
    result["examples_per_second"] = result["train_examples"] / fit_seconds
    if predictions is not None:
        result["macro_f1"] = float(f1_score(test_labels, [str(p) for p in predictions], average="macro"))
    result["peak_rss_mb"] = peak_rss_mb()
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["trec6", "medical_abstracts:300"],
        help="dataset folders, each optionally NAME:ROWS to cap its training rows (default: --train-rows)",
    )
    parser.add_argument("--train-rows", type=int, default=800)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--article-steps", type=int, default=64)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--model", default=None, help="model directory (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--job-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.job_file)
        return

    use_checkout()
    import tempfile

    from bertwise.backbone.resolve import resolve_backbone

    model_path = resolve_backbone(args.model).path
    report: dict[str, Any] = {"machine": machine(), "epochs": EPOCHS, "batch_size": 32, "datasets": {}}
    for entry in args.datasets:
        name, _, cap = entry.partition(":")
        folder = args.datasets_dir / name
        train_texts, train_labels = load_rows(folder, "train", int(cap) if cap else args.train_rows, args.seed)
        test_texts, test_labels = load_rows(folder, "test", args.test_rows, args.seed)
        rows: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="bertwise-finetune-bench-") as scratch:
            job_file = Path(scratch) / "job.json"
            job = {
                "train_texts": train_texts,
                "train_labels": train_labels,
                "test_texts": test_texts,
                "test_labels": test_labels,
                "model": args.model,
                "model_path": model_path,
                "device": args.device,
                "seed": args.seed,
                "article_steps": args.article_steps,
            }
            job_file.write_text(json.dumps(job), encoding="utf-8")
            for method in args.methods:
                command = [sys.executable, __file__, "--worker", method, "--job-file", str(job_file)]
                finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if finished.returncode != 0:
                    raise SystemExit(f"{name} {method} failed:\n{finished.stderr[-3000:]}")
                rows[method] = json.loads(finished.stdout.strip().splitlines()[-1])
                row = rows[method]
                f1 = f"macro-F1 {100 * row['macro_f1']:.1f}" if "macro_f1" in row else "accuracy not measured"
                print(
                    f"{name} {method}: {row['examples_per_second']:.1f} examples/s ({row['train_examples']} examples "
                    f"in {row['fit_seconds']:.0f} s), {f1}, peak RSS {row['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        ratios = {
            f"{method} / {baseline}": round(
                rows[method]["examples_per_second"] / rows[baseline]["examples_per_second"], 2
            )
            for method in ("bertwise", "bertwise-float32")
            for baseline in ("trainer", "article")
            if method in rows and baseline in rows
        }
        for ratio_name, ratio in ratios.items():
            print(f"{name} {ratio_name}: {ratio}x")
        report["datasets"][name] = {
            "train_rows": len(train_texts),
            "test_rows": len(test_texts),
            "methods": rows,
            "ratios": ratios,
        }
    write_json(args.out or REPO / "benchmarks" / "results" / f"finetune-speed-{args.device}.json", report)


if __name__ == "__main__":
    main()
