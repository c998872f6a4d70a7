"""Paired macro-F1 difference of two compare runs' predictions on the same test rows (docs/domain-adaptation.md).

Usage: python benchmarks/adapt_paired.py BASE/predictions-probe.csv ADAPTED/predictions-probe.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score


def main() -> None:
    base, adapted = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
    assert (base.text == adapted.text).all(), "the two runs must predict the same test rows"
    truth = base.label.to_numpy()
    first, second = base.predicted_label.to_numpy(), adapted.predicted_label.to_numpy()

    def macro_f1(predicted: np.ndarray, rows: np.ndarray) -> float:
        return float(f1_score(truth[rows], predicted[rows], average="macro"))

    every = np.arange(len(truth))
    rng = np.random.default_rng(0)
    resampled = [rng.integers(0, len(truth), len(truth)) for _ in range(2000)]
    differences = [macro_f1(second, rows) - macro_f1(first, rows) for rows in resampled]
    low, high = np.percentile(differences, [2.5, 97.5]) * 100
    print(
        f"base {macro_f1(first, every) * 100:.1f}  adapted {macro_f1(second, every) * 100:.1f}  "
        f"difference {(macro_f1(second, every) - macro_f1(first, every)) * 100:+.1f} [{low:+.1f}, {high:+.1f}]  "
        f"same prediction on {np.mean(first == second) * 100:.0f}% of rows"
    )


if __name__ == "__main__":
    main()
