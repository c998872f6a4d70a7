"""One very long text through the encoder: wall time and peak memory with and without the length bound.

The encoder cuts a text longer than ``max_length * CHARS_PER_TOKEN`` characters where truncation cannot tell the
difference (``bertwise.backbone.encoder.bounded_texts``) before tokenizing it. This runs ``Encoder.encode([text])``
with the embedded model on one text of about 10 MB, each case in a fresh process, with the bound (``after``) and with
``bounded_texts`` replaced by the identity (``before``: the whole text is tokenized, then truncated), and checks that
both give the same vector.

    .venv/bin/python benchmarks/long_text.py                         # about 2 minutes of 2 CPU cores
    .venv/bin/python benchmarks/long_text.py --megabytes 1 --out /tmp/long-text.json

Prints, per case, the seconds to tokenize the text and to encode it (and to encode a short text of as many tokens,
the model's own share), and the peak RSS; writes the same as JSON (default benchmarks/results/long-text-<device>.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import REPO, machine, peak_rss_mb, use_checkout, write_json  # noqa: E402
from predict_memory import forget_parent_peak  # noqa: E402

SENTENCE = "How do I activate my new card before I travel abroad next week? "
# About 3 bytes of UTF-8 per character and no ASCII space: the byte-level case for a word-level bound.
CJK_SENTENCE = "我想在下周出国旅行之前激活我的新卡，请问应该怎么做？"
KINDS = ("english", "chinese")


def text_of(kind: str, megabytes: float) -> str:
    sentence = SENTENCE if kind == "english" else CJK_SENTENCE
    repeats = int(megabytes * 1_000_000 / len(sentence.encode("utf-8"))) + 1
    return sentence * repeats


def worker(kind: str, megabytes: float, bound: bool, vector_file: Path) -> dict[str, Any]:
    use_checkout()
    import numpy as np

    import bertwise.backbone.encoder as encoder_module
    from bertwise.backbone.encoder import Encoder
    from bertwise.backbone.resolve import resolve_backbone

    if not bound:
        encoder_module.bounded_texts = lambda tokenizer, texts, max_length: list(texts)
    encoder = Encoder(resolve_backbone(None), device="cpu", precision="float32", remember=False)
    encoder.encode(["warm up"])
    text = text_of(kind, megabytes)
    forget_parent_peak()
    resident = _resident_mb()
    started = time.perf_counter()
    tokens = len(encoder.tokenize([text]).input_ids[0])
    tokenize_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vector = encoder.encode([text])  # remember=False: neither the memo nor the disk cache
    seconds = time.perf_counter() - started
    # The model's own share: the same number of tokens from a text that needs no cut.
    started = time.perf_counter()
    encoder.encode([text[: encoder.backbone.max_length * encoder_module.CHARS_PER_TOKEN]])  # never cut
    short_seconds = time.perf_counter() - started
    np.save(vector_file, vector)
    return {
        "kind": kind,
        "bound": bound,
        "characters": len(text),
        "utf8_megabytes": round(len(text.encode("utf-8")) / 1e6, 2),
        "tokens": tokens,
        "tokenize_seconds": round(tokenize_seconds, 3),
        "seconds": round(seconds, 3),
        "seconds_for_a_short_text_of_as_many_tokens": round(short_seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_encoding_mb": round(resident, 1),
    }


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=10.0, help="UTF-8 size of the text")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "long-text-cpu.json")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        kind, megabytes, bound, vector_file = arguments.worker
        print(json.dumps(worker(kind, float(megabytes), bound == "after", Path(vector_file))))
        return
    import numpy as np

    cases = []
    for kind in arguments.kinds:
        vectors = {}
        for case in ("before", "after"):
            vector_file = Path(f"/tmp/long-text-{kind}-{case}.npy")
            command = [sys.executable, __file__, "--worker", kind, str(arguments.megabytes), case, str(vector_file)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            vectors[case] = np.load(vector_file)
            cases.append({"case": case, **result})
            short = result["seconds_for_a_short_text_of_as_many_tokens"]
            print(
                f"{kind:8} {case:6} {result['utf8_megabytes']:6.2f} MB: tokenize {result['tokenize_seconds']:7.3f} s, "
                f"encode {result['seconds']:7.3f} s ({short:.3f} s for a short text of {result['tokens']} tokens), "
                f"peak RSS {result['peak_rss_mb']:7.1f} MB (before: {result['rss_before_encoding_mb']:.1f})"
            )
        same = bool(np.array_equal(vectors["before"], vectors["after"]))
        print(f"{kind:8} same vector before and after: {same}")
        cases[-1]["same_vector_as_before"] = same
    write_json(arguments.out, {"machine": machine(), "megabytes": arguments.megabytes, "cases": cases})


if __name__ == "__main__":
    main()
