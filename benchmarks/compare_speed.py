"""Whole comparisons: wall time of a first ``bertwise compare``, of an identical second one, and peak memory.

Each dataset is compared twice in fresh processes sharing one new, empty cache directory, exactly as a user would
rerun it; then a probe-only comparison with a learning curve shows what the curve costs next to one probe fit.

    .venv/bin/python benchmarks/compare_speed.py                                   # about 35 minutes on 2 cores
    .venv/bin/python benchmarks/compare_speed.py --datasets trec6 --budget 3m --curve-dataset ""

Prints wall seconds, the second run's share of the first and peak RSS per run; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import DEFAULT_DATASETS, REPO, machine, use_checkout, write_json  # noqa: E402


def worker(arguments: list[str], rss_file: Path) -> None:
    """Run the bertwise CLI in this process and record its peak RSS, whatever way it exits."""
    use_checkout()
    from bertwise.cli.main import main as cli

    sys.argv = ["bertwise", *arguments]
    try:
        cli()
    finally:
        rss_file.write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_compare(arguments: list[str], cache_dir: Path, scratch: Path) -> dict[str, Any]:
    rss_file = scratch / "rss.txt"
    rss_file.unlink(missing_ok=True)
    environment = {**os.environ, "BERTWISE_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, __file__, "--worker", str(rss_file), "--", *arguments]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environment)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"compare {' '.join(arguments)} failed:\n{finished.stderr[-3000:]}")
    return {"wall_seconds": round(seconds, 1), "peak_rss_mb": round(float(rss_file.read_text()), 1)}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[4:], Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--datasets", nargs="*", default=["trec6", "medical_abstracts", "banking77"])
    parser.add_argument("--budget", default="8m", help="--budget of every full comparison")
    parser.add_argument("--curve-dataset", default="banking77", help="probe-only run with a curve ('' skips)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="model directory (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    use_checkout()

    report: dict[str, Any] = {"machine": machine(), "budget": args.budget, "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="bertwise-compare-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for name in args.datasets:
            cache_dir = scratch / f"cache-{name}"
            base = [
                "compare",
                str(args.datasets_dir / name),
                "--budget",
                args.budget,
                "--device",
                args.device,
                *(["--model", args.model] if args.model else []),
                "--no-progress",
                "--out",
                str(scratch / f"out-{name}"),
            ]
            first = run_compare(base, cache_dir, scratch)
            results = json.loads((scratch / f"out-{name}" / "results.json").read_text())
            second = run_compare(base, cache_dir, scratch)
            again = json.loads((scratch / f"out-{name}" / "results.json").read_text())
            same = [s["metrics"] for s in results["strategies"]] == [s["metrics"] for s in again["strategies"]]
            report["datasets"][name] = {
                "train_rows": results["dataset"]["train"]["rows"],
                "test_rows": results["dataset"]["test"]["rows"],
                "first": first,
                "second": second,
                "second_share_of_first": round(second["wall_seconds"] / first["wall_seconds"], 3),
                "second_run_same_metrics": same,
                "resumed": again.get("resumed"),
                "measured_seconds_by_part": results["budget"]["measured_seconds_by_part"],
                "macro_f1": {s["name"]: s["metrics"]["macro_f1"] for s in results["strategies"]},
                "recommended": (results.get("recommendation") or {}).get("strategy"),
            }
            row = report["datasets"][name]
            print(
                f"{name}: first {first['wall_seconds']:.0f} s (peak RSS {first['peak_rss_mb']:.0f} MB), second "
                f"{second['wall_seconds']:.1f} s = {100 * row['second_share_of_first']:.1f} % of the first, "
                f"same metrics: {same}",
                flush=True,
            )

        if args.curve_dataset:
            name = args.curve_dataset
            out = scratch / f"curve-{name}"
            arguments = [
                "compare",
                str(args.datasets_dir / name),
                "--strategies",
                "probe",
                "--device",
                args.device,
                *(["--model", args.model] if args.model else []),
                "--no-progress",
                "--no-report",
                "--no-cache",
                "--out",
                str(out),
            ]
            run = run_compare(arguments, scratch / "cache-curve", scratch)
            results = json.loads((out / "results.json").read_text())
            parts = results["budget"]["measured_seconds_by_part"]
            curve = results["learning_curve"] or {}
            # The last point is the full training set, whose fit is the probe's own and is not repeated.
            sizes = [point["per_class"] for point in curve.get("strategies", {}).get("probe", [])]
            report["probe_curve"] = {
                "dataset": name,
                "wall_seconds": run["wall_seconds"],
                "probe_seconds": parts.get("probe"),
                "curve_seconds": parts.get("learning curve"),
                "curve_share_of_probe": round(parts["learning curve"] / parts["probe"], 3),
                "sizes_per_class": sizes,
                "repeats": results["config"]["curve_repeats"]["probe"],
            }
            row = report["probe_curve"]
            print(
                f"probe curve on {name}: {len(sizes)} sizes x {row['repeats']} repeats took "
                f"{row['curve_seconds']:.1f} s against {row['probe_seconds']:.1f} s for one probe fit "
                f"({row['curve_share_of_probe']:.2f}x)",
                flush=True,
            )
    write_json(args.out or REPO / "benchmarks" / "results" / f"compare-speed-{args.device}.json", report)


if __name__ == "__main__":
    main()
