"""Turning the user's data path(s) into a checked train/test :class:`DataSplit`.

The checks here are the ones that need both parts (or the split itself): a test set that uses labels the model
never saw, or a class too small to cross-validate, would otherwise fail much later, deep inside training.
"""

from __future__ import annotations

import math
import os
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from bertwise.data.dataset import DataSplit, Label, LabeledTexts
from bertwise.data.frames import Table, read_labeled_table, single_table, table_kind, table_parts
from bertwise.data.io import read_labeled_file
from bertwise.data.readers import SUPPORTED_SUFFIXES, missing_file_error
from bertwise.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    import datasets
    import pandas

# What ``compare``, ``train`` and ``load_split`` read: a file or a folder (train.* and test.*), or a table in memory.
DataSource: TypeAlias = "str | os.PathLike[str] | pandas.DataFrame | datasets.Dataset | datasets.DatasetDict"
# One part of the data once resolved: the path of a file, or a table in memory.
Part: TypeAlias = str | Table

_SHOWN_LABELS = 10
_LABEL_CHARS = 60
_SHOWN_FILES = 10


def load_split(
    data: DataSource,
    *,
    test: DataSource | None = None,
    text_col: str = "text",
    label_col: str = "label",
    test_size: float = 0.2,
    seed: int = 0,
    min_train_per_class: int = 2,
    cross_validation_below: int | None = None,
) -> DataSplit:
    """Load training data and a test set.

    ``data`` is a file, a folder with ``train.*`` (and ``test.*``), a pandas DataFrame, a ``datasets.Dataset``, or a
    ``datasets.DatasetDict`` (its "train" split, and its "test" split, else its "validation" split, as the test set).
    The test set comes from ``test`` (a file, DataFrame or Dataset), else from the folder or DatasetDict, else
    it is held out from the training data by a seeded stratified split of ``test_size``, unless it has fewer
    than ``cross_validation_below`` rows: then every row is both a training and a test row
    (``test_origin="cross-validation"``), and the evaluation must use folds so that no row is tested by a model
    that trained on it.
    """
    if not 0 < test_size < 1:
        raise ConfigError(f"test size must be a fraction between 0 and 1 (exclusive), such as 0.2; got {test_size}")
    train_part, test_part, notes = resolve_parts(data, test)
    train, train_notes = read_part(train_part, text_col=text_col, label_col=label_col)
    notes.extend(train_notes)
    _check_several_classes(train)

    if test_part is not None:
        test_data, test_notes = read_part(test_part, text_col=text_col, label_col=label_col)
        notes.extend(test_notes)
        _check_same_label_kind(train, test_data)
        _check_test_labels_seen(train, test_data)
        in_test = set(test_data.labels)
        missing = [label for label in train.classes if label not in in_test]
        if missing:
            notes.append(
                f"{test_data.source} has no rows of {len(missing)} training "
                f"class{'es' if len(missing) != 1 else ''}: {_list_labels(missing)}"
            )
        _check_train_counts(train, min_train_per_class, after="")
        notes.extend(_overlap_notes(train, test_data, f" in {test_data.source}"))
        return DataSplit(train=train, test=test_data, test_origin="file", notes=tuple(notes))

    whole = train
    if cross_validation_below is not None and len(whole) < cross_validation_below:
        _check_train_counts(whole, min_train_per_class, after="")
        notes.append(
            f"no test file given and {len(whole)} rows (fewer than {cross_validation_below}): every row is tested "
            "once by stratified k-fold cross-validation"
        )
        return DataSplit(train=whole, test=whole, test_origin="cross-validation", notes=tuple(notes))
    train, test_data = _held_out(whole, test_size=test_size, seed=seed)
    notes.append(
        f"no test file given: held out {_percent(test_size)} of {whole.source} "
        f"({len(test_data)} of {len(whole)} rows) as the test set, stratified by label, seed {seed}"
    )
    _check_train_counts(train, min_train_per_class, after=f" after holding out {_percent(test_size)} as the test set")
    notes.extend(_overlap_notes(train, test_data, ""))
    return DataSplit(train=train, test=test_data, test_origin="held-out", notes=tuple(notes))


def resolve_parts(data: DataSource, test: DataSource | None) -> tuple[Part, Part | None, list[str]]:
    """What to read as training data, what as the test set (None: none given), and notes; nothing is read yet."""
    notes: list[str] = []
    train: Part
    data_test: Part | None
    if table_kind(data) is not None:
        train, data_test, notes = table_parts(data)
    else:
        train, data_test = _resolve(_as_path(data, "data"), "train")
    if test is None:
        return train, data_test, notes
    test_part: Part = (
        single_table(test, role="test") if table_kind(test) is not None else _resolve(_as_path(test, "test"), "test")[0]
    )
    if data_test is not None:
        replaced = data_test.source if isinstance(data_test, Table) else data_test
        given = test_part.source if isinstance(test_part, Table) else f"the test file {test_part} given with --test"
        notes.append(f"using {given} instead of {replaced}")
    if isinstance(train, str) and isinstance(test_part, str) and os.path.samefile(train, test_part):
        raise DataError(
            f"{test_part} is given as both the training and the test file; expected a separate test set "
            f"(leave --test out to hold out part of {train})"
        )
    if isinstance(train, Table) and isinstance(test_part, Table) and train.data is test_part.data:
        raise DataError(
            f"the same {train.name} is given as both the training data and the test set; expected a separate test "
            "set (leave test out to hold out part of it)"
        )
    return train, test_part, notes


def read_part(part: Part, *, text_col: str, label_col: str) -> tuple[LabeledTexts, list[str]]:
    """The labeled texts of one resolved part (a file or a table in memory) and notes, checked the same way."""
    if isinstance(part, Table):
        return read_labeled_table(part, text_col=text_col, label_col=label_col)
    return read_labeled_file(part, text_col=text_col, label_col=label_col)


def _as_path(value: Any, role: str) -> str | os.PathLike[str]:
    if isinstance(value, str | os.PathLike):
        return value
    pandas_series = type(value).__name__ == "Series"
    hint = "; a Series is one column: pass a DataFrame with text and label columns" if pandas_series else ""
    raise DataError(
        f"{role}: expected a path to a file or folder, a pandas DataFrame, or a datasets.Dataset or DatasetDict; "
        f"got {type(value).__module__}.{type(value).__name__}{hint}"
    )


def stratified_holdout(data: LabeledTexts, *, fraction: float, seed: int) -> tuple[LabeledTexts, LabeledTexts]:
    """Split ``data`` into (kept, held out), stratified by label, deterministic for ``seed``, file order kept.

    A class with a single row cannot be in both parts, so that row stays in the kept part and the split is
    stratified over the rest; the held-out part always gets at least one row. When the held-out part would be
    smaller than the number of classes (or leave the kept part smaller), exact stratification is impossible
    and the rows are picked so that every class keeps at least one row in the kept part.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"holdout fraction must be between 0 and 1 (exclusive); got {fraction}")
    counts = Counter(data.labels)
    rest = [i for i, label in enumerate(data.labels) if counts[label] >= 2]
    if not rest:
        raise DataError(
            f"{data.source}: cannot hold out any rows: every class has a single row; "
            "expected at least one class with 2 or more rows"
        )
    rest_labels = [data.labels[i] for i in rest]
    n_classes = len(set(rest_labels))
    n_held = min(max(1, math.ceil(fraction * len(rest))), len(rest) - 1)
    if n_held >= n_classes and len(rest) - n_held >= n_classes:
        from sklearn.model_selection import train_test_split

        _, held = train_test_split(rest, test_size=n_held, stratify=rest_labels, random_state=seed)
        held_set = set(held)
    else:
        held_set = _small_holdout(data.labels, rest, n_held, n_classes, seed)
    kept = [i for i in range(len(data)) if i not in held_set]
    return data.subset(kept), data.subset(sorted(held_set))


def _small_holdout(labels: tuple[Label, ...], rest: list[int], n_held: int, n_classes: int, seed: int) -> set[int]:
    rng = random.Random(seed)
    by_class: dict[Label, list[int]] = {}
    for i in rest:
        by_class.setdefault(labels[i], []).append(i)
    classes = sorted(by_class, key=str)
    if n_held < n_classes:
        # Too few rows for every class: take one row each from as many distinct classes as there are rows.
        return {rng.choice(by_class[label]) for label in rng.sample(classes, n_held)}
    # Too few kept rows for every class: reserve one row per class, hold out from the others.
    reserved = {rng.choice(by_class[label]) for label in classes}
    pool = [i for i in rest if i not in reserved]
    return set(rng.sample(pool, min(n_held, len(pool))))


def _held_out(data: LabeledTexts, *, test_size: float, seed: int) -> tuple[LabeledTexts, LabeledTexts]:
    counts = data.class_counts()
    small = [(label, count) for label, count in counts.items() if count < 2]
    advice = "add examples, or give a separate test set with --test FILE"
    if len(small) == 1:
        label, count = small[0]
        raise DataError(
            f"{data.source}: class {_label(label)} has only {count} row; "
            f"a stratified held-out test split needs at least 2 rows per class; {advice}"
        )
    if small:
        raise DataError(
            f"{data.source}: {len(small)} classes have only 1 row "
            f"({_list_labels([label for label, _ in small])}); "
            f"a stratified held-out test split needs at least 2 rows per class; {advice}"
        )
    n = len(data)
    n_test = math.ceil(test_size * n)  # the count train_test_split uses for a float test_size
    n_classes = len(counts)
    for part, size in (("test", n_test), ("training", n - n_test)):
        if size < n_classes:
            raise DataError(
                f"{data.source}: holding out {_percent(test_size)} of {n} rows leaves {size} {part} rows, "
                f"fewer than the {n_classes} classes; a stratified split needs at least one {part} row per "
                "class; change the test size, add examples, or give a separate test set with --test FILE"
            )
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        list(range(n)), test_size=test_size, stratify=list(data.labels), random_state=seed
    )
    return data.subset(sorted(train_idx)), data.subset(sorted(test_idx))


def _resolve(path: str | os.PathLike[str], role: str) -> tuple[str, str | None]:
    """Return (the file to read for ``role``, the folder's test file if ``path`` is a folder that has one)."""
    shown = os.fspath(path)
    folder = Path(path)
    if not folder.exists():
        raise missing_file_error(shown)
    if not folder.is_dir():
        return shown, None
    found = _find(folder, shown, role)
    if found is None:
        names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        listing = ", ".join(names[:_SHOWN_FILES]) + (", ..." if len(names) > _SHOWN_FILES else "")
        expected = ", ".join(f"{role}{suffix}" for suffix in SUPPORTED_SUFFIXES if suffix != ".json")
        also = " (and optionally test.* beside it)" if role == "train" else ""
        raise DataError(
            f"folder '{shown}' has no {role} file: expected one of {expected}{also}; "
            f"found: {listing or 'nothing (the folder is empty)'}"
        )
    return found, (_find(folder, shown, "test") if role == "train" else None)


def _find(folder: Path, shown: str, stem: str) -> str | None:
    matches = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.stem.lower() == stem and p.suffix.lower() in SUPPORTED_SUFFIXES
    )
    if len(matches) > 1:
        raise DataError(f"folder '{shown}' holds several {stem} files ({', '.join(matches)}); expected exactly one")
    return os.path.join(shown, matches[0]) if matches else None


def _check_several_classes(data: LabeledTexts) -> None:
    classes = data.classes
    if len(classes) < 2:
        raise DataError(
            f"{data.source}: every row has the label {_label(classes[0])}; classification needs at least 2 classes"
        )


def _check_same_label_kind(train: LabeledTexts, test: LabeledTexts) -> None:
    train_ints = all(isinstance(label, int) for label in train.labels)
    test_ints = all(isinstance(label, int) for label in test.labels)
    if train_ints == test_ints:
        return

    def kind(ints: bool) -> str:
        return "integer labels" if ints else "text labels"

    def examples(data: LabeledTexts) -> str:
        classes = data.classes
        # On the text side, the labels that are not numbers are the ones that show the difference.
        telling = [c for c in classes if not (isinstance(c, str) and c.lstrip("-").isdigit())] or classes
        return ", ".join(_label(c) for c in telling[:3])

    raise DataError(
        f"{test.source} has {kind(test_ints)} (e.g. {examples(test)}) but {train.source} has "
        f"{kind(train_ints)} (e.g. {examples(train)}); expected both files to use the same labels: "
        "is one of them from a different data set?"
    )


def _check_test_labels_seen(train: LabeledTexts, test: LabeledTexts) -> None:
    known = set(train.labels)
    unseen = {label: count for label, count in test.class_counts().items() if label not in known}
    if not unseen:
        return
    items = [f"{_label(label)} ({_rows(count)})" for label, count in unseen.items()]
    shown = ", ".join(items[:_SHOWN_LABELS]) + (
        f", and {len(items) - _SHOWN_LABELS} more" if len(items) > _SHOWN_LABELS else ""
    )
    raise DataError(
        f"{test.source}: {len(unseen)} label{'s' if len(unseen) != 1 else ''} never seen in training: "
        f"{shown}; expected test labels to be a subset of the training labels"
    )


def _check_train_counts(train: LabeledTexts, minimum: int, *, after: str) -> None:
    small = [(label, count) for label, count in train.class_counts().items() if count < minimum]
    if not small:
        return
    why = f"at least {minimum} are needed to cross-validate and to carve a validation split"
    if len(small) == 1:
        label, count = small[0]
        raise DataError(
            f"class {_label(label)} has {_rows(count, 'training row')} in {train.source}{after}; "
            f"{why}; add examples or remove the class"
        )
    items = [f"{_label(label)} ({count})" for label, count in small]
    shown = ", ".join(items[:_SHOWN_LABELS]) + (
        f", and {len(items) - _SHOWN_LABELS} more" if len(items) > _SHOWN_LABELS else ""
    )
    raise DataError(
        f"{len(small)} classes have fewer than {minimum} training rows in {train.source}{after}: {shown}; "
        f"{why}; add examples or remove those classes"
    )


def _overlap_notes(train: LabeledTexts, test: LabeledTexts, where: str) -> list[str]:
    # Duplicates across the parts flatter a strategy that memorizes; worth saying, not worth refusing.
    seen = set(train.texts)
    shared = sum(1 for text in test.texts if text in seen)
    if not shared:
        return []
    verb = "has" if shared == 1 else "have"
    return [
        f"{shared} of {len(test)} test rows{where} {verb} a text that also occurs in the training rows; "
        "scores on them may be optimistic"
    ]


def _label(label: Label) -> str:
    # repr quotes strings and escapes newlines, keeping the message on one line; ints print bare. A text column given
    # as the label column makes labels of whole texts: clipped, so the message stays readable.
    shown = repr(label) if isinstance(label, str) else str(label)
    return shown if len(shown) <= _LABEL_CHARS else shown[: _LABEL_CHARS - 3] + "..."


def _list_labels(labels: list[Label]) -> str:
    shown = ", ".join(_label(label) for label in labels[:_SHOWN_LABELS])
    return shown + (f", and {len(labels) - _SHOWN_LABELS} more" if len(labels) > _SHOWN_LABELS else "")


def _rows(count: int, noun: str = "row") -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"
