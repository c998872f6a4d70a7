"""Zero-shot on every shared dataset: bertwise's embedding mode against the article's snippet and against chance.

The article hands a model without an NLI head to the transformers zero-shot-classification pipeline, which then ranks
labels with a randomly initialised head. This script runs that exact recipe with the same backbone next to bertwise's
embedding-similarity zero-shot, on the same test texts, and prints chance (1 / classes) and the majority class.

    .venv/bin/python benchmarks/zero_shot.py [--datasets trec6 medical_abstracts] [--max-test-rows 500]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def stratified_cap(texts: list[str], labels: list[str], cap: int, seed: int) -> tuple[list[str], list[str]]:
    if not cap or len(texts) <= cap:
        return texts, labels
    from sklearn.model_selection import train_test_split

    kept, _, kept_labels, _ = train_test_split(texts, labels, train_size=cap, stratify=labels, random_state=seed)
    return list(kept), list(kept_labels)


def article_pipeline(model: str, texts: list[str], classes: list[str]) -> list[str]:
    """The article's snippet: the zero-shot pipeline on a checkpoint with no NLI head (random head, a log warning)."""
    from transformers import pipeline

    from bertwise.strategies.zero_shot import humanize_label

    classifier = pipeline("zero-shot-classification", model=model, device="cpu")
    names = {humanize_label(label): label for label in classes}
    results = classifier(texts, candidate_labels=list(names), batch_size=32)
    return [names[result["labels"][0]] for result in results]


def main() -> int:
    from sklearn.metrics import accuracy_score, f1_score

    from bertwise.backbone.resolve import resolve_backbone
    from bertwise.strategies import ZeroShotClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--max-test-rows", type=int, default=500, help="stratified, seeded cap (0 = all)")
    parser.add_argument("--model", default=None, help="local model directory (default: the embedded model)")
    parser.add_argument("--skip-article", action="store_true", help="skip the (slow: texts x labels) pipeline run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "zero-shot-cpu.json")
    args = parser.parse_args()

    model_path = resolve_backbone(args.model).path
    names = args.datasets or sorted(p.name for p in args.datasets_dir.iterdir() if (p / "test.csv").is_file())
    report: dict[str, Any] = {"model": model_path, "max_test_rows": args.max_test_rows, "datasets": {}}
    lines = [
        "| dataset | test rows | classes | chance F1 | majority acc | article pipeline F1 / acc | bertwise F1 / acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        train_texts, train_labels = read(args.datasets_dir / name / "train.csv")
        texts, labels = stratified_cap(*read(args.datasets_dir / name / "test.csv"), args.max_test_rows, seed=0)
        classes = sorted(set(train_labels))
        entry: dict[str, Any] = {"test_rows": len(texts), "classes": len(classes)}
        entry["chance_macro_f1"] = 1 / len(classes)
        entry["majority_accuracy"] = Counter(labels).most_common(1)[0][1] / len(labels)
        start = time.perf_counter()
        ours = ZeroShotClassifier(model=args.model, device="cpu").fit(train_texts, train_labels).predict(texts)
        entry["bertwise"] = {
            "macro_f1": f1_score(labels, ours.tolist(), average="macro"),
            "accuracy": accuracy_score(labels, ours.tolist()),
            "seconds": round(time.perf_counter() - start, 1),
        }
        if not args.skip_article:
            start = time.perf_counter()
            theirs = article_pipeline(model_path, texts, classes)
            entry["article_pipeline"] = {
                "macro_f1": f1_score(labels, theirs, average="macro"),
                "accuracy": accuracy_score(labels, theirs),
                "seconds": round(time.perf_counter() - start, 1),
            }
        report["datasets"][name] = entry
        article = entry.get("article_pipeline")
        lines.append(
            f"| {name} | {len(texts)} | {len(classes)} | {100 * entry['chance_macro_f1']:.1f} | "
            f"{100 * entry['majority_accuracy']:.1f} | "
            + (f"{100 * article['macro_f1']:.1f} / {100 * article['accuracy']:.1f}" if article else "skipped")
            + f" | {100 * entry['bertwise']['macro_f1']:.1f} / {100 * entry['bertwise']['accuracy']:.1f} |"
        )
        print(lines[-1], flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(lines))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
