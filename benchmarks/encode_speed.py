"""Encoding speed: ``bertwise.embed`` against sentence-transformers ``encode`` and the article's loop, side by side.

Every method runs in its own process (so each one's peak memory is its own) on the same mixed corpus of short
questions and long abstracts, with the same model, thread count and batch size; the methods take turns over
``--rounds`` rounds and each keeps its best round, so a burst of load on a shared machine hurts all alike.

    .venv/bin/python benchmarks/encode_speed.py                # about 5 minutes on 2 CPU cores
    .venv/bin/python benchmarks/encode_speed.py --device cuda --short 20000 --long 4000 --batch-size 256

Prints texts/s, useful GFLOP/s and its share of the measured matrix-product peak, peak RSS, the ratios and the
cosine similarity of every bertwise embedding to sentence-transformers' float32 one; writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import (  # noqa: E402
    DEFAULT_DATASETS,
    REPO,
    encoder_flops,
    machine,
    matmul_peak_gflops,
    mixed_corpus,
    peak_rss_mb,
    use_checkout,
    write_json,
)

METHODS = ("bertwise", "bertwise-float32", "sentence-transformers", "article")
ARTICLE_MAX_LENGTH = 128  # the article pads and truncates every text to 128 tokens
WARMUP_TEXTS = [f"warm-up sentence number {i} for the first kernels" for i in range(32)]


def worker(method: str, corpus_file: Path, vectors_file: Path, model: str | None, device: str, batch_size: int) -> None:
    """Load one method, warm it up on other texts, then time it on the corpus; print one JSON line."""
    use_checkout()
    import torch

    texts = json.loads(corpus_file.read_text(encoding="utf-8"))
    if method.startswith("bertwise"):
        import bertwise

        precision = "float32" if method == "bertwise-float32" else "auto"

        def run(items: list[str]) -> np.ndarray:
            return bertwise.embed(
                items, model=model, device=device, batch_size=batch_size, precision=precision, cache=False
            )

    elif method == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        from bertwise.backbone.resolve import resolve_backbone

        encoder = SentenceTransformer(
            resolve_backbone(model).path, device=_torch_device(device), model_kwargs={"dtype": torch.float32}
        )

        def run(items: list[str]) -> np.ndarray:
            return np.asarray(encoder.encode(items, batch_size=batch_size))

    elif method == "article":
        from transformers import AutoModel, AutoTokenizer

        from bertwise.backbone.resolve import resolve_backbone

        path = resolve_backbone(model).path
        tokenizer = AutoTokenizer.from_pretrained(path)
        network = AutoModel.from_pretrained(path, dtype=torch.float32).to(_torch_device(device)).eval()

        def run(items: list[str]) -> np.ndarray:
            rows = []
            for text in items:  # one text at a time, padded to 128, as the article does
                inputs = tokenizer(
                    text, padding="max_length", truncation=True, max_length=ARTICLE_MAX_LENGTH, return_tensors="pt"
                ).to(network.device)
                with torch.no_grad():
                    rows.append(network(**inputs).last_hidden_state.mean(dim=1).squeeze(0).float().cpu().numpy())
            return np.stack(rows)

    else:
        raise SystemExit(f"unknown method {method!r}")

    run(WARMUP_TEXTS)
    _synchronize(device)
    started = time.perf_counter()
    vectors = run(texts)
    _synchronize(device)
    seconds = time.perf_counter() - started
    np.save(vectors_file, vectors.astype(np.float32))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}))


def _torch_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _synchronize(device: str) -> None:
    import torch

    if torch.cuda.is_available() and device in ("auto", "cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--short", type=int, default=1200, help="short questions in the corpus")
    parser.add_argument("--long", type=int, default=300, help="long abstracts in the corpus")
    parser.add_argument("--article-texts", type=int, default=300, help="the article's loop runs on this many")
    parser.add_argument("--batch-size", type=int, default=32, help="for bertwise and sentence-transformers alike")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default=None, help="model directory (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vectors-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.corpus_file, args.vectors_file, args.model, args.device, args.batch_size)
        return

    use_checkout()
    from transformers import AutoConfig, AutoTokenizer

    from bertwise.backbone.resolve import resolve_backbone

    texts = mixed_corpus(args.datasets_dir, args.short, args.long)
    article_texts = texts[: args.article_texts]
    backbone = resolve_backbone(args.model)
    tokenizer = AutoTokenizer.from_pretrained(backbone.path)
    token_counts = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=backbone.max_length)["input_ids"]]
    config = AutoConfig.from_pretrained(backbone.path)
    flops = encoder_flops(token_counts, config.hidden_size, config.num_hidden_layers, config.intermediate_size)
    peaks = {dtype: matmul_peak_gflops(dtype) for dtype in ("float32", "bfloat16")}
    print(
        f"corpus: {len(texts)} texts ({args.short} short, {args.long} long), {sum(token_counts)} tokens, "
        f"median {int(np.median(token_counts))}, max {max(token_counts)}; matmul peak "
        f"{peaks['float32']:.0f} GFLOP/s float32, {peaks['bfloat16']:.0f} bfloat16",
        flush=True,
    )

    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bertwise-encode-bench-") as scratch:
        for method in args.methods:
            items = article_texts if method == "article" else texts
            (Path(scratch) / f"{method}.json").write_text(json.dumps(items), encoding="utf-8")
        for round_number in range(args.rounds):
            for method in args.methods:
                if method == "article" and round_number > 0:
                    continue  # minutes per round and ten times slower: once is enough to place it
                vectors_file = Path(scratch) / f"{method}.npy"
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    method,
                    "--corpus-file",
                    str(Path(scratch) / f"{method}.json"),
                    "--vectors-file",
                    str(vectors_file),
                    "--device",
                    args.device,
                    "--batch-size",
                    str(args.batch_size),
                ] + (["--model", args.model] if args.model else [])
                finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if finished.returncode != 0:
                    raise SystemExit(f"{method} failed:\n{finished.stderr[-3000:]}")
                measured = json.loads(finished.stdout.strip().splitlines()[-1])
                count = len(article_texts) if method == "article" else len(texts)
                measured["texts_per_second"] = count / measured["seconds"]
                print(
                    f"round {round_number + 1} {method}: {measured['texts_per_second']:.1f} texts/s, "
                    f"peak RSS {measured['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
                if method not in best or measured["texts_per_second"] > best[method]["texts_per_second"]:
                    measured["vectors"] = np.load(vectors_file)
                    best[method] = measured

    reference = best.get("sentence-transformers", {}).get("vectors")
    rows = {}
    for method, measured in best.items():
        vectors = measured.pop("vectors")
        row: dict[str, Any] = {key: round(value, 3) for key, value in measured.items()}
        if method != "article":
            gflops = flops / measured["seconds"] / 1e9
            row["useful_gflops"] = round(gflops, 1)
            row["share_of_float32_peak"] = round(gflops / peaks["float32"], 3)
            row["share_of_bfloat16_peak"] = round(gflops / peaks["bfloat16"], 3)
        if reference is not None and method.startswith("bertwise"):
            cosine = np.sum(vectors * reference, axis=1) / (
                np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
            )
            row["cosine_to_sentence_transformers"] = {
                "min": round(float(cosine.min()), 6),
                "mean": round(float(cosine.mean()), 6),
            }
        rows[method] = row

    ratios = {}
    for method in ("bertwise", "bertwise-float32"):
        for baseline in ("sentence-transformers", "article"):
            if method in rows and baseline in rows:
                ratios[f"{method} / {baseline}"] = round(
                    rows[method]["texts_per_second"] / rows[baseline]["texts_per_second"], 2
                )
    print("\nmethod                  texts/s  GFLOP/s  fp32-peak  RSS MB  min cosine vs ST")
    for method, row in rows.items():
        cosine = row.get("cosine_to_sentence_transformers", {}).get("min", "")
        print(
            f"{method:22s} {row['texts_per_second']:8.1f} {row.get('useful_gflops', float('nan')):8.1f} "
            f"{row.get('share_of_float32_peak', float('nan')):9.2f} {row['peak_rss_mb']:7.0f}  {cosine}"
        )
    for name, ratio in ratios.items():
        print(f"{name}: {ratio}x")
    out = args.out or REPO / "benchmarks" / "results" / f"encode-speed-{args.device}.json"
    write_json(
        out,
        {
            "machine": machine(),
            "corpus": {
                "texts": len(texts),
                "short": args.short,
                "long": args.long,
                "article_texts": len(article_texts),
                "tokens": int(sum(token_counts)),
                "median_tokens": int(np.median(token_counts)),
                "max_tokens": int(max(token_counts)),
            },
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "matmul_peak_gflops": {key: round(value, 1) for key, value in peaks.items()},
            "methods": rows,
            "ratios": ratios,
        },
    )


if __name__ == "__main__":
    main()
