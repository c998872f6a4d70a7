"""Building the train/test split: folder layout, held-out splits, stratified_holdout, cross-file checks."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bertwise.data.dataset import LabeledTexts
from bertwise.data.split import load_split, stratified_holdout
from bertwise.exceptions import ConfigError, DataError, DataFileNotFoundError

SHARED_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_csv(name: str, rows: list[tuple[str, str | int]]) -> str:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["text,label"] + [f"{text},{label}" for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return name


def rows(counts: dict[str, int], prefix: str = "t") -> list[tuple[str, str | int]]:
    """Rows interleaved across classes, so file order differs from class order."""
    out: list[tuple[str, str | int]] = []
    remaining = dict(counts)
    i = 0
    while any(remaining.values()):
        for label in counts:
            if remaining[label]:
                out.append((f"{prefix}{i}", label))
                remaining[label] -= 1
                i += 1
    return out


# -- test file given -------------------------------------------------------------------------------


def test_folder_with_train_and_test(here: Path) -> None:
    write_csv("ds/train.csv", rows({"a": 5, "b": 5}))
    write_csv("ds/test.csv", rows({"a": 2, "b": 2}, prefix="e"))
    split = load_split("ds")
    assert split.test_origin == "file"
    assert len(split.train) == 10
    assert len(split.test) == 4
    assert split.train.source == str(Path("ds") / "train.csv")
    assert split.test.source == str(Path("ds") / "test.csv")
    assert split.classes == ["a", "b"]
    assert split.notes == ()


def test_folder_with_other_formats(here: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    Path("ds").mkdir()
    pq.write_table(pa.table({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}), "ds/train.parquet")
    Path("ds/test.jsonl").write_text('{"text": "e", "label": 1}\n', encoding="utf-8")
    split = load_split("ds")
    assert split.train.labels == (0, 1, 0, 1)
    assert split.test.labels == (1,)
    assert split.notes == (f"{Path('ds') / 'test.jsonl'} has no rows of 1 training class: 0",)


def test_explicit_test_file(here: Path) -> None:
    write_csv("train.csv", rows({"a": 3, "b": 3}))
    write_csv("other.csv", rows({"a": 1, "b": 1}))
    split = load_split("train.csv", test="other.csv")
    assert split.test_origin == "file"
    assert split.test.source == "other.csv"


def test_explicit_test_file_wins_over_the_folders(here: Path) -> None:
    write_csv("ds/train.csv", rows({"a": 3, "b": 3}))
    write_csv("ds/test.csv", rows({"a": 1, "b": 1}))
    write_csv("mine.csv", rows({"a": 2, "b": 2}, prefix="m"))
    split = load_split("ds", test="mine.csv")
    assert split.test.source == "mine.csv"
    assert len(split.test) == 4
    assert split.notes == (f"using the test file mine.csv given with --test instead of {Path('ds') / 'test.csv'}",)


def test_notes_from_both_files_are_kept(here: Path) -> None:
    write_csv("train.csv", [*rows({"a": 3, "b": 3}), ("", "a")])
    write_csv("test.csv", [("", "b"), ("x", "a"), ("y", "b")])
    split = load_split("train.csv", test="test.csv")
    assert split.notes == (
        "dropped 1 of 7 rows in train.csv whose text is empty or whitespace-only (line 8)",
        "dropped 1 of 3 rows in test.csv whose text is empty or whitespace-only (line 2)",
    )


def test_folder_without_train_file(here: Path) -> None:
    write_csv("ds/data.csv", rows({"a": 2, "b": 2}))
    Path("ds/README.md").write_text("hi", encoding="utf-8")
    with pytest.raises(
        DataError,
        match=exact(
            "folder 'ds' has no train file: expected one of train.csv, train.tsv, train.jsonl, train.parquet "
            "(and optionally test.* beside it); found: README.md, data.csv"
        ),
    ):
        load_split("ds")


def test_empty_folder(here: Path) -> None:
    Path("ds").mkdir()
    with pytest.raises(DataError, match=re.escape("found: nothing (the folder is empty)")):
        load_split("ds")


def test_folder_with_two_train_files(here: Path) -> None:
    write_csv("ds/train.csv", rows({"a": 2, "b": 2}))
    write_csv("ds/train.tsv", rows({"a": 2, "b": 2}))
    with pytest.raises(
        DataError,
        match=exact("folder 'ds' holds several train files (train.csv, train.tsv); expected exactly one"),
    ):
        load_split("ds")


def test_missing_data_path(here: Path) -> None:
    with pytest.raises(
        DataFileNotFoundError,
        match=exact(
            "data file not found: 'nope' (expected a .csv, .tsv, .jsonl or .parquet file, "
            "or a folder holding train.* and test.*)"
        ),
    ):
        load_split("nope")


def test_missing_test_path(here: Path) -> None:
    write_csv("train.csv", rows({"a": 3, "b": 3}))
    with pytest.raises(DataFileNotFoundError, match=re.escape("data file not found: 'test.csv'")):
        load_split("train.csv", test="test.csv")


# -- held-out split --------------------------------------------------------------------------------


def test_held_out_split_sizes_stratification_and_note(here: Path) -> None:
    write_csv("x.csv", rows({"a": 400, "b": 200, "c": 50}))
    split = load_split("x.csv")
    assert split.test_origin == "held-out"
    assert len(split.test) == 130
    assert len(split.train) == 520
    assert split.test.class_counts() == {"a": 80, "b": 40, "c": 10}
    assert split.train.class_counts() == {"a": 320, "b": 160, "c": 40}
    assert split.notes == (
        "no test file given: held out 20% of x.csv (130 of 650 rows) as the test set, stratified by label, seed 0",
    )
    assert set(split.train.texts).isdisjoint(split.test.texts)


def test_folder_without_test_file_holds_out(here: Path) -> None:
    write_csv("ds/train.csv", rows({"a": 10, "b": 10}))
    split = load_split("ds", test_size=0.25, seed=3)
    assert split.test_origin == "held-out"
    assert len(split.test) == 5
    assert "held out 25% of" in split.notes[0]
    assert split.notes[0].endswith("seed 3")


def test_held_out_split_is_deterministic_and_keeps_file_order(here: Path) -> None:
    write_csv("x.csv", rows({"a": 40, "b": 30, "c": 30}))
    first = load_split("x.csv", seed=7)
    again = load_split("x.csv", seed=7)
    other = load_split("x.csv", seed=8)
    assert first.test.texts == again.test.texts
    assert first.train.texts == again.train.texts
    assert first.test.texts != other.test.texts
    order = {f"t{i}": i for i in range(100)}
    for part in (first.train, first.test):
        positions = [order[text] for text in part.texts]
        assert positions == sorted(positions)


def test_test_size_out_of_range(here: Path) -> None:
    write_csv("x.csv", rows({"a": 5, "b": 5}))
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(
            ConfigError,
            match=exact(f"test size must be a fraction between 0 and 1 (exclusive), such as 0.2; got {bad}"),
        ):
            load_split("x.csv", test_size=bad)


def test_class_too_small_for_held_out_split(here: Path) -> None:
    write_csv("x.csv", rows({"a": 10, "b": 10, "c": 1}))
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: class 'c' has only 1 row; a stratified held-out test split needs at least 2 rows per "
            "class; add examples, or give a separate test set with --test FILE"
        ),
    ):
        load_split("x.csv")


def test_several_classes_too_small_for_held_out_split(here: Path) -> None:
    write_csv("x.csv", rows({"a": 10, "b": 1, "c": 1}))
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: 2 classes have only 1 row ('b', 'c'); a stratified held-out test split needs at least "
            "2 rows per class; add examples, or give a separate test set with --test FILE"
        ),
    ):
        load_split("x.csv")


def test_fewer_test_rows_than_classes(here: Path) -> None:
    write_csv("x.csv", rows({label: 2 for label in "abcdef"}))
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv: holding out 20% of 12 rows leaves 3 test rows, fewer than the 6 classes; "
            "a stratified split needs at least one test row per class; change the test size, "
            "add examples, or give a separate test set with --test FILE"
        ),
    ):
        load_split("x.csv")


# -- label checks ----------------------------------------------------------------------------------


def test_single_class(here: Path) -> None:
    write_csv("x.csv", rows({"a": 5}))
    with pytest.raises(
        DataError, match=exact("x.csv: every row has the label 'a'; classification needs at least 2 classes")
    ):
        load_split("x.csv")


def test_single_integer_class(here: Path) -> None:
    write_csv("x.csv", [("a", 1), ("b", 1)])
    with pytest.raises(DataError, match=re.escape("every row has the label 1;")):
        load_split("x.csv")


def test_too_few_training_rows_after_holding_out(here: Path) -> None:
    # 2 rows of 'b': one goes to the test set, leaving one for training.
    write_csv("x.csv", rows({"a": 20, "b": 2}))
    with pytest.raises(
        DataError,
        match=exact(
            "class 'b' has 1 training row in x.csv after holding out 50% as the test set; "
            "at least 2 are needed to cross-validate and to carve a validation split; "
            "add examples or remove the class"
        ),
    ):
        load_split("x.csv", test_size=0.5)


def test_too_few_training_rows_with_a_test_file(here: Path) -> None:
    write_csv("train.csv", rows({"a": 5, "b": 1}))
    write_csv("test.csv", rows({"a": 1, "b": 1}))
    with pytest.raises(
        DataError,
        match=exact(
            "class 'b' has 1 training row in train.csv; at least 2 are needed to cross-validate "
            "and to carve a validation split; add examples or remove the class"
        ),
    ):
        load_split("train.csv", test="test.csv")


def test_several_classes_with_too_few_training_rows(here: Path) -> None:
    write_csv("train.csv", rows({"a": 5, "b": 2, "c": 1}))
    write_csv("test.csv", rows({"a": 1}))
    with pytest.raises(
        DataError,
        match=exact(
            "2 classes have fewer than 3 training rows in train.csv: 'b' (2), 'c' (1); "
            "at least 3 are needed to cross-validate and to carve a validation split; "
            "add examples or remove those classes"
        ),
    ):
        load_split("train.csv", test="test.csv", min_train_per_class=3)


def test_test_labels_never_seen_in_training(here: Path) -> None:
    write_csv("train.csv", rows({"a": 3, "b": 3}))
    write_csv("test.csv", rows({"a": 2, "x": 3, "y": 1}))
    with pytest.raises(
        DataError,
        match=exact(
            "test.csv: 2 labels never seen in training: 'x' (3 rows), 'y' (1 row); "
            "expected test labels to be a subset of the training labels"
        ),
    ):
        load_split("train.csv", test="test.csv")


def test_label_type_mismatch(here: Path) -> None:
    write_csv("train.csv", [("a", 0), ("b", 1), ("c", 0), ("d", 1)])
    write_csv("test.csv", [("e", "neg"), ("f", "pos")])
    with pytest.raises(
        DataError,
        match=exact(
            "test.csv has text labels (e.g. 'neg', 'pos') but train.csv has integer labels (e.g. 0, 1); "
            "expected both files to use the same labels: is one of them from a different data set?"
        ),
    ):
        load_split("train.csv", test="test.csv")


def test_integer_labels_stay_ints_through_the_split(here: Path) -> None:
    write_csv("x.csv", [(f"t{i}", i % 3) for i in range(30)])
    split = load_split("x.csv")
    assert split.classes == [0, 1, 2]
    assert all(type(label) is int for label in split.test.labels)


# -- stratified_holdout ----------------------------------------------------------------------------


def make(labels: list[str]) -> LabeledTexts:
    return LabeledTexts(texts=tuple(f"t{i}" for i in range(len(labels))), labels=tuple(labels), source="m.csv")


def test_stratified_holdout_proportions_and_order() -> None:
    data = make(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    kept, held = stratified_holdout(data, fraction=0.1, seed=0)
    assert len(held) == 10
    assert held.class_counts() == {"a": 5, "b": 3, "c": 2}
    assert len(kept) + len(held) == len(data)
    assert set(kept.texts).isdisjoint(held.texts)
    for part in (kept, held):
        positions = [int(text[1:]) for text in part.texts]
        assert positions == sorted(positions)
    assert held.source == kept.source == "m.csv"


def test_stratified_holdout_is_deterministic() -> None:
    data = make(["a", "b"] * 30)
    assert stratified_holdout(data, fraction=0.2, seed=1) == stratified_holdout(data, fraction=0.2, seed=1)
    assert stratified_holdout(data, fraction=0.2, seed=1) != stratified_holdout(data, fraction=0.2, seed=2)


def test_stratified_holdout_keeps_a_singleton_class_in_the_first_part() -> None:
    data = make(["a"] * 10 + ["b"] * 10 + ["solo"])
    for seed in range(10):
        kept, held = stratified_holdout(data, fraction=0.2, seed=seed)
        assert "solo" in kept.labels
        assert "solo" not in held.labels
        assert held.class_counts() == {"a": 2, "b": 2}


def test_stratified_holdout_holds_out_at_least_one_row() -> None:
    data = make(["a", "a", "b", "c"])
    kept, held = stratified_holdout(data, fraction=0.01, seed=0)
    assert held.labels == ("a",)
    assert Counter(kept.labels) == {"a": 1, "b": 1, "c": 1}


def test_stratified_holdout_with_fewer_held_rows_than_classes() -> None:
    # 10% of 40 rows is 4 rows for 8 classes: exact stratification is impossible, every class keeps rows.
    data = make([label for label in "abcdefgh" for _ in range(5)])
    kept, held = stratified_holdout(data, fraction=0.1, seed=0)
    assert len(held) == 4
    assert len(set(held.labels)) == 4
    assert set(kept.labels) == set("abcdefgh")


def test_stratified_holdout_with_a_large_fraction_keeps_every_class() -> None:
    data = make(["a", "a", "b", "b", "c", "c"])
    kept, held = stratified_holdout(data, fraction=0.9, seed=0)
    assert sorted(kept.labels) == ["a", "b", "c"]
    assert len(held) == 3


def test_stratified_holdout_needs_a_class_with_two_rows() -> None:
    with pytest.raises(
        DataError,
        match=exact(
            "m.csv: cannot hold out any rows: every class has a single row; "
            "expected at least one class with 2 or more rows"
        ),
    ):
        stratified_holdout(make(["a", "b", "c"]), fraction=0.5, seed=0)


def test_stratified_holdout_fraction_out_of_range() -> None:
    with pytest.raises(ConfigError, match=re.escape("holdout fraction must be between 0 and 1 (exclusive); got 1")):
        stratified_holdout(make(["a", "a"]), fraction=1, seed=0)


# -- the real shared data sets ---------------------------------------------------------------------


def test_shared_trec6_loads() -> None:
    folder = SHARED_DATASETS / "trec6"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (a fresh clone has no ../shared)")
    split = load_split(folder)
    assert split.test_origin == "file"
    assert len(split.classes) == 6
    assert len(split.train) > 5000
    assert len(split.test) == 500
    assert set(split.test.labels) <= set(split.train.labels)
    assert all(isinstance(label, str) for label in split.train.labels)


def test_same_file_for_train_and_test(here: Path) -> None:
    write_csv("x.csv", rows({"a": 3, "b": 3}))
    with pytest.raises(
        DataError,
        match=exact(
            "x.csv is given as both the training and the test file; expected a separate test set "
            "(leave --test out to hold out part of x.csv)"
        ),
    ):
        load_split("x.csv", test="x.csv")


def test_texts_shared_by_train_and_test_are_noted(here: Path) -> None:
    write_csv("train.csv", rows({"a": 3, "b": 3}))
    write_csv("test.csv", [("t0", "a"), ("new", "b")])
    split = load_split("train.csv", test="test.csv")
    assert split.notes == (
        "1 of 2 test rows in test.csv has a text that also occurs in the training rows; "
        "scores on them may be optimistic",
    )


def test_long_labels_are_clipped_in_messages(here: Path) -> None:
    # A text column given as the label column: every "label" is a whole text, and the message must stay readable.
    long_text = "word " * 2000
    write_csv("train.csv", [("a", long_text + "one"), ("b", long_text + "two")])
    with pytest.raises(DataError) as caught:
        load_split("train.csv", test_size=0.5)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 600, message
    assert "'word word word" in message and "..." in message
