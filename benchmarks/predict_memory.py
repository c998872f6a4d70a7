"""``bertwise predict`` on growing files: peak memory must stay flat while every row is written.

Builds a probe model folder on the bundled BANKING77 sample (``bertwise train``), or takes ``--model DIR``; writes
synthetic files of 20,000 and 200,000 rows (BANKING77 questions cycled, with an id column); runs ``bertwise predict``
on each in a fresh process, as a user would, and records its wall time, its peak RSS and whether every row came back
in order with a prediction.

    .venv/bin/python benchmarks/predict_memory.py                       # about 10 minutes of 2 CPU cores
    .venv/bin/python benchmarks/predict_memory.py --rows 2000,5000 --out /tmp/predict-memory.json   # quick check
    .venv/bin/python benchmarks/predict_memory.py --model DIR --format parquet

Prints rows/s and peak RSS per file and the ratio of the largest file's peak RSS to the smallest's (1.0 = flat);
writes the same as JSON (default benchmarks/results/predict-memory-<device>.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import DEFAULT_DATASETS, REPO, machine, read_column, use_checkout, write_json  # noqa: E402

SAMPLE = REPO / "examples" / "banking77_sample"
SUMMARY = re.compile(r"predicted ([\d,]+) rows?.* in ([\d.]+) s \(([\d,]+) rows/s; model loaded in ([\d.]+) s\)")


def worker(arguments: list[str], rss_file: Path, fake_model: bool) -> None:
    """Run the bertwise CLI in this process and record its peak RSS, whatever way it exits."""
    use_checkout()
    if fake_model:
        _patch_in_keyword_model()
    from bertwise.cli.main import main as cli

    sys.argv = ["bertwise", *arguments]
    forget_parent_peak()
    try:
        cli()
    finally:
        rss_file.write_text(str(peak_rss_mb()))


def forget_parent_peak() -> None:
    """Reset this process's peak RSS: a child's starts at its parent's RSS at fork, which is not its own doing."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: "5" resets the peak resident set size
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _patch_in_keyword_model() -> None:
    """--fake-model: a model that only counts characters, so the run measures reading and writing alone."""
    import numpy as np

    import bertwise

    class Keyword:
        classes_ = np.array([f"class_{i}" for i in range(77)], dtype=object)

        def predict_proba(self, texts: list[str]) -> np.ndarray:
            scores = np.ones((len(texts), len(self.classes_)))
            scores[np.arange(len(texts)), [len(t) % len(self.classes_) for t in texts]] += 10
            return scores / scores.sum(axis=1, keepdims=True)

    bertwise.load = lambda folder, **options: Keyword()  # type: ignore[attr-defined]


def corpus() -> list[str]:
    """BANKING77's questions: the shared dataset's when present, else the bundled sample's."""
    folder = DEFAULT_DATASETS / "banking77"
    if not (folder / "train.csv").is_file():
        folder = SAMPLE
    return [
        t for name in ("train.csv", "test.csv") if (folder / name).is_file() for t in read_column(folder / name, "text")
    ]


def write_input(path: Path, rows: int, texts: list[str], fmt: str) -> None:
    ids = range(rows)
    cycled = (texts[i % len(texts)] for i in ids)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Written a row group at a time, so this process stays small (its size would otherwise show up in the
        # worker's peak: a child starts out with its parent's pages).
        schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, rows, 20_000):
                block = range(start, min(start + 20_000, rows))
                texts_block = [texts[i % len(texts)] for i in block]
                writer.write_table(pa.table({"id": list(block), "text": texts_block}, schema=schema))
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for i, text in zip(ids, cycled, strict=True):
                handle.write(json.dumps({"id": i, "text": text}) + "\n")
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
            writer.writerow(["id", "text"])
            writer.writerows((i, text) for i, text in zip(ids, cycled, strict=True))


def check_output(path: Path, rows: int, fmt: str) -> dict[str, Any]:
    """Every row written, in order, each with a predicted label; read in a stream so this check stays small too."""
    written = predicted = 0
    in_order = True
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(columns=["id", "predicted_label"]):
            ids = batch.column("id").to_pylist()
            in_order &= ids == list(range(written, written + len(ids)))
            predicted += len(ids) - batch.column("predicted_label").null_count
            written += len(ids)
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            if fmt == "jsonl":
                records = (json.loads(line) for line in handle)
            else:
                records = csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")  # type: ignore[assignment]
            for record in records:
                in_order &= int(record["id"]) == written
                predicted += record["predicted_label"] not in ("", None)
                written += 1
    return {"rows_written": written, "rows_predicted": predicted, "in_order": in_order, "all_rows": written == rows}


def build_model(scratch: Path) -> Path:
    folder = scratch / "model"
    command = [sys.executable, "-m", "bertwise", "train", str(SAMPLE / "train.csv"), "--strategy", "probe"]
    command += ["--out", str(folder)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environment)
    if finished.returncode != 0:
        raise SystemExit(
            f"could not build a model folder with `bertwise train` (pass --model DIR):\n{finished.stderr[-2000:]}"
        )
    return folder


def run_predict(
    model: str, source: Path, out: Path, scratch: Path, fake_model: bool, chunk_rows: int
) -> dict[str, Any]:
    rss_file = scratch / "rss.txt"
    rss_file.unlink(missing_ok=True)
    arguments = ["predict", model, str(source), "--out", str(out), "--no-progress", "--chunk-rows", str(chunk_rows)]
    command = [sys.executable, __file__, "--worker", str(rss_file), "fake" if fake_model else "real", "--", *arguments]
    started = time.perf_counter()
    finished = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"bertwise {' '.join(arguments)} failed:\n{finished.stderr[-3000:]}")
    summary = SUMMARY.search(finished.stderr)
    if summary is None:
        raise SystemExit(f"no summary line in the output of bertwise predict:\n{finished.stderr[-2000:]}")
    return {
        "wall_seconds": round(seconds, 1),
        # Reading, predicting and writing, as bertwise reports them: the model load and the process start are apart.
        "predict_seconds": float(summary.group(2)),
        "model_load_seconds": float(summary.group(4)),
        "rows_per_second": int(summary.group(3).replace(",", "")),
        "peak_rss_mb": round(float(rss_file.read_text()), 1),
    }


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--worker":
        worker(sys.argv[5:], Path(sys.argv[2]), sys.argv[3] == "fake")
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="20000,200000", help="file sizes, comma-separated (default 20000,200000)")
    parser.add_argument("--model", default=None, help="model folder (default: a probe trained on the bundled sample)")
    parser.add_argument(
        "--fake-model",
        action="store_true",
        help="a 77-class stand-in that reads no weights: measures reading and writing alone (and checks this script)",
    )
    parser.add_argument("--format", default="csv", choices=["csv", "tsv", "jsonl", "parquet"])
    parser.add_argument("--chunk-rows", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    use_checkout()
    sizes = [int(part) for part in args.rows.split(",") if part.strip()]
    texts = corpus()

    info = machine()
    report: dict[str, Any] = {
        "machine": info,
        "format": args.format,
        "chunk_rows": args.chunk_rows,
        "corpus_texts": len(texts),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bertwise-predict-bench-") as scratch_name:
        scratch = Path(scratch_name)
        if args.fake_model:
            model, report["model"] = str(scratch), "keyword stand-in (--fake-model), 77 classes"
        elif args.model:
            model, report["model"] = args.model, args.model
        else:
            started = time.perf_counter()
            model = str(build_model(scratch))
            report["model"] = f"probe trained on {SAMPLE.relative_to(REPO)} in {time.perf_counter() - started:.0f} s"
        manifest = Path(model) / "manifest.json"
        if manifest.is_file():
            saved = json.loads(manifest.read_text(encoding="utf-8"))
            report["model_strategy"] = saved.get("strategy")
            report["model_classes"] = len(saved.get("classes", []))
        for rows in sizes:
            source = scratch / f"input-{rows}.{args.format}"
            out = scratch / f"output-{rows}.{args.format}"
            write_input(source, rows, texts, args.format)
            run = {"rows": rows, "input_mb": round(source.stat().st_size / 2**20, 1)}
            run |= run_predict(model, source, out, scratch, args.fake_model, args.chunk_rows)
            run["output_mb"] = round(out.stat().st_size / 2**20, 1)
            run |= check_output(out, rows, args.format)
            report["runs"].append(run)
            print(
                f"{rows:>9,} rows: {run['rows_per_second']:,.0f} rows/s, peak RSS {run['peak_rss_mb']:,.0f} MB, "
                f"{run['rows_written']:,} written ({run['rows_predicted']:,} predicted, in order: {run['in_order']}), "
                f"input {run['input_mb']} MB, output {run['output_mb']} MB",
                flush=True,
            )
            source.unlink()
            out.unlink()
    runs = report["runs"]
    if len(runs) > 1:
        report["peak_rss_ratio_largest_to_smallest"] = round(runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"], 3)
        print(
            f"peak RSS {runs[-1]['rows']:,} rows / {runs[0]['rows']:,} rows: "
            f"{report['peak_rss_ratio_largest_to_smallest']:.3f}x for {runs[-1]['rows'] / runs[0]['rows']:.0f}x "
            "the rows"
        )
    report["every_row_written"] = all(run["all_rows"] and run["in_order"] for run in runs)
    device = "cuda" if "gpu" in info else "cpu"
    write_json(args.out or REPO / "benchmarks" / "results" / f"predict-memory-{device}.json", report)
    if not report["every_row_written"]:
        raise SystemExit("some rows were missing or out of order")


if __name__ == "__main__":
    main()
