"""The two standard recipes bertwise is measured against, as fit/predict objects so all are timed alike.

Both follow the libraries' own documented usage; nothing is tuned for the datasets. The only departures are
forced by the benchmark and listed in benchmarks/README.md: weights are always loaded as float32 (the GPU
machine carries a float16 copy of the model) and the Trainer recipe truncates at 256 tokens.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

# sentence-transformers truncates this model at its max_seq_length (256, from sentence_bert_config.json); the
# Trainer recipe gets the same limit so neither baseline sees text the other cannot.
TRAINER_MAX_LENGTH = 256
# BERT's position table; some tokenizers report a huge sentinel instead of their real limit.
ABSOLUTE_MAX_LENGTH = 512


def require_float32(module: Any, where: str) -> None:
    """Fail loudly if loading kept a float16 checkpoint's dtype: the baselines are defined in float32."""
    dtypes = sorted({str(parameter.dtype) for parameter in module.parameters()})
    if dtypes != ["torch.float32"]:
        raise RuntimeError(f"{where}: expected float32 weights after loading, got {dtypes}")


class SentenceTransformerProbe:
    """sentence-transformers ``encode`` + scikit-learn ``LogisticRegression(max_iter=1000)``, else default."""

    def __init__(self, model_path: str, device: str, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> SentenceTransformerProbe:
        import torch
        from sentence_transformers import SentenceTransformer
        from sklearn.linear_model import LogisticRegression

        # model_kwargs go to from_pretrained, where transformers 5 calls it `dtype` (formerly `torch_dtype`).
        self.encoder_ = SentenceTransformer(self.model_path, device=self.device, model_kwargs={"dtype": torch.float32})
        require_float32(self.encoder_, "sentence-transformers probe")
        features = self.encoder_.encode(list(texts), batch_size=self.batch_size)
        self.head_ = LogisticRegression(max_iter=1000).fit(features, list(labels))
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        features = self.encoder_.encode(list(texts), batch_size=self.batch_size)
        return self.head_.predict(features)

    def details(self) -> dict[str, Any]:
        return {
            "max_seq_length": int(self.encoder_.max_seq_length),
            # Hitting max_iter would mean the baseline under-fits for a reason unrelated to the features.
            "lr_iterations": int(np.max(self.head_.n_iter_)),
        }


class _Encoded:
    """A map-style dataset of tokenized rows, the shape ``Trainer`` and ``DataCollatorWithPadding`` expect."""

    def __init__(self, encodings: dict[str, list[list[int]]], labels: list[int] | None) -> None:
        self.encodings = encodings
        self.labels = labels

    def __len__(self) -> int:
        return len(self.encodings["input_ids"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        row: dict[str, Any] = {key: values[index] for key, values in self.encodings.items()}
        if self.labels is not None:
            row["labels"] = self.labels[index]
        return row


class TrainerFinetune:
    """The transformers ``Trainer`` text-classification recipe with its usual settings (3 epochs, lr 5e-5)."""

    def __init__(self, model_path: str, device: str, seed: int) -> None:
        self.model_path = model_path
        self.device = device
        self.seed = seed

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TrainerFinetune:
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            DataCollatorWithPadding,
            Trainer,
            TrainingArguments,
        )

        classes = sorted(set(labels))
        self.label2id_ = {label: index for index, label in enumerate(classes)}
        self.id2label_ = dict(enumerate(classes))
        self.tokenizer_ = AutoTokenizer.from_pretrained(self.model_path)
        self.max_length_ = min(self.tokenizer_.model_max_length, ABSOLUTE_MAX_LENGTH, TRAINER_MAX_LENGTH)
        model = AutoModelForSequenceClassification.from_pretrained(
            self.model_path,
            num_labels=len(classes),
            id2label=self.id2label_,
            label2id=self.label2id_,
            dtype=torch.float32,
        )
        require_float32(model, "Trainer recipe")
        train = self._encode(texts, [self.label2id_[label] for label in labels])
        # Trainer needs an output directory even when it saves nothing; none should outlive the run.
        self._output_dir = tempfile.TemporaryDirectory(prefix="bertwise-bench-trainer-")
        arguments = TrainingArguments(
            output_dir=self._output_dir.name,
            num_train_epochs=3,
            learning_rate=5e-5,
            per_device_train_batch_size=32,
            per_device_eval_batch_size=64,
            seed=self.seed,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to="none",
            # Without it Trainer takes any visible GPU, whatever --device says.
            use_cpu=self.device == "cpu",
        )
        self.trainer_ = Trainer(
            model=model,
            args=arguments,
            train_dataset=train,
            processing_class=self.tokenizer_,
            data_collator=DataCollatorWithPadding(self.tokenizer_),
        )
        self.train_output_ = self.trainer_.train()
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        logits = self.trainer_.predict(self._encode(texts, None)).predictions
        return np.array([self.id2label_[int(index)] for index in np.asarray(logits).argmax(axis=1)], dtype=object)

    def details(self) -> dict[str, Any]:
        return {
            "max_length": int(self.max_length_),
            "train_steps": int(self.train_output_.global_step),
            "train_loss": float(self.train_output_.training_loss),
            "trainer_device": str(self.trainer_.args.device),
        }

    def close(self) -> None:
        self._output_dir.cleanup()

    def _encode(self, texts: Sequence[str], labels: list[int] | None) -> _Encoded:
        encodings = self.tokenizer_(list(texts), truncation=True, max_length=self.max_length_)
        return _Encoded(dict(encodings), labels)
