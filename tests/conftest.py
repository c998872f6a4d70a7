"""Shared fixtures: tiny randomly initialised BERTs built on the spot (no downloads) and the bundled sample."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "banking77_sample"
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

TOY_TEXTS = {
    "sports": [
        "the team won the football match",
        "a great goal in the final minute",
        "the coach praised the players after the game",
        "tennis star wins the open title",
        "the runner broke the world record",
        "fans cheered as the striker scored",
    ],
    "weather": [
        "heavy rain is expected tomorrow",
        "a sunny and warm afternoon ahead",
        "snow storms will hit the north",
        "strong winds and cold temperatures tonight",
        "the forecast says clouds and showers",
        "a heat wave across the region this week",
    ],
    "cooking": [
        "bake the bread for forty minutes",
        "chop the onions and fry them in butter",
        "this soup needs more salt and pepper",
        "whisk the eggs with sugar and flour",
        "roast the vegetables with olive oil",
        "simmer the sauce until it thickens",
    ],
}


def toy_data() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, examples in TOY_TEXTS.items():
        texts += examples
        labels += [label] * len(examples)
    return texts, labels


def _write_tiny_bert(directory: Path, *, id2label: dict[int, str] | None = None, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary built from the toy texts, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

    words = sorted({w for examples in TOY_TEXTS.values() for t in examples for w in re.findall(r"\w+|[^\w\s]", t)})
    extra = ["this", "text", "is", "about", "example", ".", "a", "the"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words) | set(extra))]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5 ignores vocab_file= here (the tokenizer would know only the special tokens): pass the vocab.
    ids = {token: i for i, token in enumerate(vocab)}
    tokenizer = BertTokenizer(vocab=ids, do_lower_case=True, model_max_length=64)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(seed)
    if id2label is None:
        model = BertModel(config)
    else:
        config.id2label = id2label
        config.label2id = {label: index for index, label in id2label.items()}
        model = BertForSequenceClassification(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session", autouse=True)
def embedding_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The disk cache of embeddings for the whole session, CLI subprocesses included: never the user's ~/.cache.

    Tests that need no cache set BERTWISE_CACHE_DIR=off themselves (or use bertwise.backbone.cache.use_cache_dir).
    """
    directory = tmp_path_factory.mktemp("bertwise-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTWISE_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny plain BERT (no NLI head)."""
    return str(_write_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_nli_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny BERT whose config names NLI labels, as MNLI checkpoints do (weights random)."""
    return str(
        _write_tiny_bert(
            tmp_path_factory.mktemp("tiny-nli"), id2label={0: "contradiction", 1: "neutral", 2: "entailment"}
        )
    )


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.csv (36 rows) and test.csv (18 rows) whose texts all differ, as a real test set's would."""
    import pandas as pd

    texts, labels = toy_data()
    folder = tmp_path_factory.mktemp("data")
    pd.DataFrame({"text": texts + [f"{t} again" for t in texts], "label": labels * 2}).to_csv(
        folder / "train.csv", index=False
    )
    pd.DataFrame({"text": [f"{t} today" for t in texts], "label": labels}).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture()
def toy_csv(tmp_path: Path) -> Path:
    texts, labels = toy_data()
    path = tmp_path / "toy.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


@pytest.fixture(scope="session")
def embedded_model_path() -> str:
    from bertwise.backbone.resolve import resolve_backbone

    return resolve_backbone(None).path


@pytest.fixture(scope="session")
def mlflow_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One local MLflow tracking store (sqlite) for the session: creating its tables takes seconds."""
    pytest.importorskip("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def mlflow_uri(mlflow_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's MLflow store, with the test run in tmp_path: the store puts a new experiment's artifacts under
    ./mlruns, and an experiment named after the test is new. Also $MLFLOW_TRACKING_URI, so no test logs elsewhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_database)
    return mlflow_database
