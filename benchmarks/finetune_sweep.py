"""The learning-rate / training-length check run on the H200 (results: results/finetune-lr-sweep-h200.jsonl).

Kept as run: it reads the datasets and a float16 copy of the embedded model from ``devcarry/`` (a folder carried to
the GPU machine, not in git) and fine-tunes with explicit overrides of FinetuneClassifier's parameters.
"""

import csv
import json
import sys
import time

sys.path.insert(0, "src")
from sklearn.metrics import f1_score

from bertwise.strategies import FinetuneClassifier


def load(n, part):
    rows = list(csv.DictReader(open(f"devcarry/datasets/{n}/{part}.csv")))
    return [r["text"] for r in rows], [r["label"] for r in rows]


out = {}
for name, params in [
    ("banking77", dict(learning_rate=1e-4)),
    ("trec6", dict(learning_rate=1e-4)),
    ("sst2", dict(learning_rate=1e-4)),
    ("banking77", dict(learning_rate=1e-4, min_epochs=6)),
    ("sst2", dict(learning_rate=5e-5)),
]:
    X, y = load(name, "train")
    Xt, yt = load(name, "test")
    t = time.time()
    m = FinetuneClassifier(model="devcarry/minilm-fp16", device="cuda", **params).fit(X, y)
    f1 = f1_score(yt, m.predict(Xt), average="macro")
    r = dict(
        name=name,
        params=params,
        f1=f1,
        s=time.time() - t,
        steps=m.steps_,
        planned=m.planned_steps_,
        best=m.best_step_,
        hist=[(h["step"], round(h["val_macro_f1"], 4)) for h in m.history_],
    )
    print(json.dumps(r), flush=True)
