"""bertwise's vectors against ``SentenceTransformer(path).encode`` for every module stack it runs: the figures.

Builds the small sentence-transformers checkpoints of tests/backbone/test_sentence_transformers_parity.py (a tiny
random BERT under each pooling mode, concatenated modes, Dense layers, Dropout, Normalize, lowercasing and
max_seq_length), takes the embedded all-MiniLM-L6-v2 too, and prints, per checkpoint, the least cosine over a batch
of short, long and empty texts between sentence-transformers' embeddings and those of the Encoder (float32), of the
shared encoder the probe and zero-shot strategies use, and of the exported ONNX encoder (when onnx and onnxruntime
are installed). The tests require 0.9999.

    .venv/bin/python benchmarks/st_parity.py                 # about a minute on 2 CPU cores
    .venv/bin/python benchmarks/st_parity.py --out /tmp/st-parity.json
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import REPO, machine, use_checkout, write_json  # noqa: E402

PATHS = ("encoder", "strategies", "onnx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "st-parity-cpu.json")
    arguments = parser.parse_args()
    use_checkout()
    sys.path.insert(0, str(REPO))  # the tests' model builders
    warnings.filterwarnings("ignore")
    import sentence_transformers
    from tests.backbone.test_sentence_transformers_parity import (
        TEXTS,
        VARIANTS,
        build_variants,
        least_cosine,
        ours,
        reference,
    )
    from tests.conftest import _write_tiny_bert

    from bertwise.backbone.cache import use_cache_dir
    from bertwise.backbone.encoder import load_encoder
    from bertwise.backbone.resolve import resolve_backbone

    onnx = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch, use_cache_dir(None):
        root = Path(scratch)
        built = build_variants(str(_write_tiny_bert(root / "tiny-bert")), root / "st")
        built["embedded all-MiniLM-L6-v2"] = resolve_backbone(None).path  # a real checkpoint: mean, Normalize
        print(f"{'variant':38} {'dim':>4} {'encoder':>10} {'strategies':>10} {'onnx':>10}")
        for variant in [*VARIANTS, "embedded all-MiniLM-L6-v2"]:
            path = built[variant]
            expected = reference(path)
            row: dict[str, Any] = {"variant": variant, "dimension": int(expected.shape[1])}
            row["encoder"] = least_cosine(ours(path), expected)
            row["strategies"] = least_cosine(load_encoder(path, "auto", "cpu", "float32").encode(TEXTS), expected)
            if onnx:
                from bertwise.onnx.export import OnnxEncoder, export_encoder_onnx

                graph = export_encoder_onnx(path, root / f"{len(rows)}.onnx")
                row["onnx"] = least_cosine(OnnxEncoder(graph, path).encode(TEXTS), expected)
            rows.append(row)
            figures = " ".join(f"{row[key]:10.7f}" if key in row else f"{'-':>10}" for key in PATHS)
            print(f"{variant:38} {row['dimension']:4} {figures}")
    least = min(row[key] for row in rows for key in PATHS if key in row)
    print(f"least cosine over every variant and path: {least:.7f}")
    write_json(
        arguments.out,
        {
            "machine": machine(),
            "sentence_transformers": sentence_transformers.__version__,
            "texts": len(TEXTS),
            "least_cosine": least,
            "variants": rows,
        },
    )


if __name__ == "__main__":
    main()
