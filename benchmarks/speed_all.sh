#!/usr/bin/env bash
# The speed benchmarks in one go (about 55 minutes on 2 CPU cores): encoding, fine-tuning and whole comparisons, each
# measured beside its baseline in the same run, each writing benchmarks/results/<name>-<device>.json.
# Options shared by the three scripts pass through: --device cpu|cuda, --model DIR, --datasets-dir DIR.
#
#     bash benchmarks/speed_all.sh
#     bash benchmarks/speed_all.sh --device cuda --model path/to/minilm-fp16
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
"$python" benchmarks/encode_speed.py "$@"
"$python" benchmarks/finetune_speed.py "$@"
"$python" benchmarks/compare_speed.py "$@"
