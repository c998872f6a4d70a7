"""In-memory form of a labeled text set, shared by every stage after loading."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

Label = str | int


@dataclass(frozen=True)
class LabeledTexts:
    """Texts with one label each, in file order.

    Labels keep the user's own values: strings stay strings, integer labels stay ints, so every report and
    prediction speaks the user's names.
    """

    texts: tuple[str, ...]
    labels: tuple[Label, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"{self.source}: found {len(self.texts)} texts but {len(self.labels)} labels; "
                "expected one label per text"
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[Label]:
        """Distinct labels, sorted (the order of ``predict_proba`` columns)."""
        return sorted(set(self.labels), key=_label_sort_key)

    def class_counts(self) -> dict[Label, int]:
        counts = Counter(self.labels)
        return {label: counts[label] for label in self.classes}

    def subset(self, indices: list[int] | tuple[int, ...]) -> LabeledTexts:
        return LabeledTexts(
            texts=tuple(self.texts[i] for i in indices),
            labels=tuple(self.labels[i] for i in indices),
            source=self.source,
        )


def _label_sort_key(label: Label) -> tuple[int, str | int]:
    # Ints sort numerically, strings alphabetically; a set never mixes both after loading.
    return (0, label) if isinstance(label, int) else (1, label)


@dataclass(frozen=True)
class DataSplit:
    """A train/test pair plus what loading had to say about it (dropped rows, how the test set was made)."""

    train: LabeledTexts
    test: LabeledTexts
    # "file" (given by the user), "held-out" (a seeded stratified split of the training file) or "cross-validation"
    # (train and test are the same rows; the evaluation's folds keep each row out of the model that tests it).
    test_origin: str
    notes: tuple[str, ...] = field(default=())

    @property
    def classes(self) -> list[Label]:
        return self.train.classes
