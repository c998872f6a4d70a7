"""Hostile data files, by the ten thousand: does every reader end in a loaded dataset or one clear error?

Runs the hypothesis strategies of ``tests/data/hostile.py`` (the ones ``tests/data/test_hostile_files.py`` runs a
thousand of in CI) for ``--cases`` cases, 10,000 by default, generation only (no shrinking: every case counts once).
A case is a training file and perhaps a test file: CSV/TSV in UTF-8 with and without BOM, UTF-16 with and without
BOM, latin-1; LF, CRLF and CR line ends; quotes, separators, NULs and line ends inside fields; unclosed quotes and
files cut short; very long fields; duplicated headers; NaN, float and empty labels; one-example classes, hundreds of
classes; JSON Lines and JSON with nested, 100,000-deep, repeated, NaN and out-of-range values and lone surrogates;
JSON arrays; Parquet with columns of the wrong type (int, float, bool, binary, list, struct, map, null, timestamp,
decimal, dictionary) and repeated columns; random bytes; named pipes, devices, folders and missing paths.

Each case is read four ways: as ``compare`` loads its data (``load_split``), as ``train`` does
(``read_training_data``), as ``predict`` streams it (``predict_file``, with a keyword model standing in for a saved
one) and as ``embed`` reads texts (``read_text_file``). Each read ends in one of three outcomes:

- loaded: and what loaded is sound (no empty text kept, no NaN or nested value made a label, no lone surrogate, and
  predict's texts are embed's);
- clear error: a ``BertwiseError`` whose message is one printable line;
- other failure: any other exception, a read still running after 30 s, a message of several lines, something
  unsound loaded, or predict and embed disagreeing on a file both read (two documented differences aside: a file
  without data rows is predicted as such, an output without rows, and predict reads every Parquet column, embed only
  the text column).

Prints the cases tried, the outcomes of each reader, the time taken and the longest clear message, writes the same as
JSON (default benchmarks/results/fuzz-loaders.json), and exits with status 1 if any read ended in another failure
(the first 20 are printed whole, each with the case that caused it).

    .venv/bin/python benchmarks/fuzz_loaders.py                    # 10,000 cases: about 8 minutes on 2 cores
    .venv/bin/python benchmarks/fuzz_loaders.py --cases 500 --seed 1 --out /tmp/fuzz.json
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import REPO, machine, use_checkout, write_json  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases to generate (default 10,000)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: a random one, printed)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fuzz-loaders.json")
    args = parser.parse_args()
    if args.cases < 1:
        parser.error("--cases must be at least 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)

    use_checkout()
    sys.path.insert(0, str(REPO))  # tests.data.hostile
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from tests.data.hostile import KINDS, OTHER, READERS, Case, Tally, cases, describe_counts, run_case

    tally = Tally()
    started = time.perf_counter()
    print(f"fuzzing the loaders with {args.cases:,} cases, seed {seed}", flush=True)

    @hypothesis_seed(seed)
    @settings(
        max_examples=args.cases,
        phases=[Phase.generate],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases())
    def fuzz(case: Case) -> None:
        with tempfile.TemporaryDirectory(prefix="bertwise-fuzz-") as folder:
            tally.add(case, run_case(case, Path(folder)))
        if tally.cases % 1000 == 0:
            elapsed = time.perf_counter() - started
            print(f"  {tally.cases:,} cases in {elapsed:.0f} s, {tally.total(OTHER)} other failures", flush=True)

    fuzz()
    seconds = time.perf_counter() - started

    print()
    for line in describe_counts(tally):
        print(line)
    reads = sum(tally.counts[reader][kind] for reader in READERS for kind in KINDS)
    totals = ", ".join(f"{kind} {tally.total(kind):,}" for kind in KINDS)
    print(f"  all      {totals} ({reads:,} reads)")
    print(f"{seconds:.0f} s ({tally.cases / seconds:.1f} cases/s); seed {seed}")
    length, example = tally.longest_message
    print(f"longest clear message: {length:,} characters ({example[:160]}...)")
    for failure in tally.failures:
        print(f"OTHER FAILURE {failure}")

    write_json(
        args.out,
        {
            "benchmark": "fuzz_loaders",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "seed": seed,
            "cases_requested": args.cases,
            "cases": tally.cases,
            "distinct_training_files": len(tally.digests),
            "training_files_by_kind": dict(sorted(tally.kinds.items())),
            "seconds": round(seconds, 1),
            "outcomes": tally.counts,
            "totals": {kind: tally.total(kind) for kind in KINDS},
            "longest_clear_message_characters": length,
            "longest_clear_message_start": example[:300],
            "other_failures": tally.failures,
        },
    )
    return 1 if tally.total(OTHER) else 0


if __name__ == "__main__":
    sys.exit(main())
