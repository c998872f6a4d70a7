"""Tables in memory (pandas DataFrame, datasets Dataset/DatasetDict) load like files; compare/train/predict take them.

The data-layer tests check that a table and the same rows written as a file give the same labeled texts and the same
errors; the last three run compare, train and predict_file once each on a DataFrame with the tiny BERT.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from bertwise.data.split import load_split
from bertwise.evaluation.run_cache import data_fingerprint
from bertwise.exceptions import ConfigError, DataError
from tests.conftest import toy_data

TEXTS, LABELS = toy_data()
NAMES = sorted(set(LABELS))


def toy_frame(copies: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"text": TEXTS * copies, "label": LABELS * copies, "id": range(len(TEXTS) * copies)})


def toy_dataset(copies: int = 2) -> Dataset:
    """The toy rows with a ClassLabel label column, as the Hub stores classification sets (integers and names)."""
    features = Features({"text": Value("string"), "label": ClassLabel(names=NAMES)})
    rows = {"text": TEXTS * copies, "label": [NAMES.index(label) for label in LABELS * copies]}
    return Dataset.from_dict(rows, features=features)


def one_line_error(data: Any, **options: Any) -> str:
    with pytest.raises(DataError) as error:
        load_split(data, **options)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_dataframe_loads_exactly_like_the_same_rows_in_a_csv(tmp_path: Path) -> None:
    frame = toy_frame()
    frame.loc[3, "text"] = "   "  # dropped and counted, as in a file
    frame.loc[5, "text"] = None
    frame.to_csv(tmp_path / "train.csv", index=False)
    from_frame = load_split(frame, seed=3)
    from_file = load_split(tmp_path / "train.csv", seed=3)
    for part in ("train", "test"):
        assert getattr(from_frame, part).texts == getattr(from_file, part).texts
        assert getattr(from_frame, part).labels == getattr(from_file, part).labels
    assert from_frame.train.source == "pandas.DataFrame (36 rows)"
    assert "dropped 2 of 36 rows in pandas.DataFrame (36 rows) whose text is empty or whitespace-only (rows 3, 5)" in (
        from_frame.notes
    )
    # The run cache keys data by content: the same rows resume the same cached stages, whatever held them.
    assert data_fingerprint(from_frame) == data_fingerprint(from_file)


def test_numpy_and_pandas_label_values_become_plain_python_labels() -> None:
    frame = toy_frame()
    frame["label"] = np.array([NAMES.index(label) for label in frame["label"]], dtype=np.int64)
    split = load_split(frame)
    assert split.classes == [0, 1, 2] and all(type(label) is int for label in split.train.labels)
    frame["label"] = frame["label"].astype("float64")  # what a NaN makes of an int column
    assert load_split(frame).classes == [0, 1, 2]
    frame["label"] = pd.Categorical([LABELS[i % 18] for i in range(36)])
    assert all(type(label) is str for label in load_split(frame).train.labels)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.rename(columns={"text": "Text"}), "no text column 'text' (--text-col); found columns: Text, "),
        (lambda f: f.rename(columns={"text": "sentence"}), "did you mean 'sentence'?"),
        (lambda f: f.rename(columns={"label": "intent"}), "no label column 'label'"),
        (lambda f: f.assign(label=[None, *f["label"][1:]]), "1 row has no label in column 'label' (row 0)"),
        (lambda f: f.assign(label="sports"), "every row has the label 'sports'"),
        (lambda f: f.assign(text=" "), "all 36 rows have an empty or whitespace-only text"),
        (lambda f: pd.concat([f, f[["text"]]], axis=1), "2 columns are named 'text'"),
    ],
    ids=["case", "synonym", "label", "missing label", "one class", "no text", "duplicated column"],
)
def test_a_dataframe_is_refused_as_a_file_would_be(change: Any, expected: str) -> None:
    message = one_line_error(change(toy_frame()))
    assert expected in message
    assert message.startswith("pandas.DataFrame (36 rows)")


@pytest.mark.parametrize("column", ["text", "label"])
@pytest.mark.parametrize("nested", [["a", "list"], {"a": "entity"}, ("a", "tuple")], ids=["list", "dict", "tuple"])
def test_a_nested_value_is_refused_with_its_column_and_row(column: str, nested: Any) -> None:
    frame = toy_frame()
    frame[column] = frame[column].astype(object)
    frame.at[4, column] = nested  # once read as the text "['a', 'list']" or the class "{'a': 'entity'}"
    message = one_line_error(frame)
    assert message.startswith("pandas.DataFrame (36 rows) row 4: ")
    assert f"in column '{column}' is a" in message and repr(nested) in message


def test_a_nested_dataset_column_is_refused_with_its_column_and_row() -> None:
    listed = Dataset.from_dict({"text": [[text] for text in TEXTS * 2], "label": LABELS * 2})
    message = one_line_error(listed)
    assert message.startswith("datasets.Dataset (36 rows) row 0: the text in column 'text' is a list")
    multi_label = Dataset.from_dict({"text": TEXTS * 2, "label": [[label] for label in LABELS * 2]})
    assert "row 0: the label in column 'label' is a list (['sports'])" in one_line_error(multi_label)
    struct = Dataset.from_dict({"text": TEXTS * 2, "label": [{"name": label} for label in LABELS * 2]})
    assert "row 0: the label in column 'label' is an object ({'name': 'sports'})" in one_line_error(struct)


def test_the_same_table_as_train_and_test_and_other_types_are_refused() -> None:
    frame = toy_frame()
    assert "both the training data and the test set" in one_line_error(frame, test=frame)
    assert "a Series is one column" in one_line_error(frame["text"])
    assert "got builtins.int" in one_line_error(5)


def test_a_test_dataframe_is_the_test_set() -> None:
    split = load_split(toy_frame(2), test=toy_frame(1))
    assert split.test_origin == "file"
    assert split.test.source == "pandas.DataFrame given as test (18 rows)"
    assert len(split.train) == 36 and len(split.test) == 18


def test_a_dataset_maps_class_label_integers_to_their_names() -> None:
    dataset = toy_dataset()
    split = load_split(dataset, seed=0)
    assert split.classes == NAMES
    assert split.train.source == "datasets.Dataset (36 rows)"
    shuffled = dataset.shuffle(seed=1).with_format("numpy")  # a selection and a format: rows as the user sees them
    whole = load_split(shuffled, cross_validation_below=100)
    assert list(whole.train.texts) == list(shuffled.with_format(None)["text"])
    assert list(whole.train.labels) == [NAMES[i] for i in shuffled.with_format(None)["label"]]


def test_a_dataset_dict_uses_its_test_split_like_a_folder() -> None:
    split = load_split(DatasetDict(train=toy_dataset(2), test=toy_dataset(1), unsupervised=toy_dataset(1)))
    assert split.test_origin == "file"
    assert split.train.source == "datasets.DatasetDict['train'] (36 rows)"
    assert split.test.source == "datasets.DatasetDict['test'] (18 rows)"
    assert "left out the datasets.DatasetDict's other split: 'unsupervised'" in split.notes
    # test= wins over the DatasetDict's own test split, with a note, as --test does over a folder's test file.
    given = load_split(DatasetDict(train=toy_dataset(2), test=toy_dataset(1)), test=toy_frame(1))
    assert given.test.source == "pandas.DataFrame given as test (18 rows)"
    assert any("instead of datasets.DatasetDict['test'] (18 rows)" in note for note in given.notes)


def test_a_dataset_dict_without_test_uses_validation_else_holds_out() -> None:
    validated = load_split(DatasetDict(train=toy_dataset(2), validation=toy_dataset(1)))
    assert validated.test.source == "datasets.DatasetDict['validation'] (18 rows)"
    assert "its 'validation' split is the test set" in validated.notes[0]
    alone = load_split(DatasetDict(train=toy_dataset(2)), cross_validation_below=10)
    assert alone.test_origin == "held-out"


def test_a_dataset_dict_is_refused_without_train_or_with_hidden_test_labels() -> None:
    message = one_line_error(DatasetDict(validation=toy_dataset(), test=toy_dataset()))
    assert "has no 'train' split (it has 'validation', 'test')" in message
    hidden = toy_dataset(1).map(lambda row: {"label": -1})  # how GLUE ships its test splits
    message = one_line_error(DatasetDict(train=toy_dataset(), test=hidden))
    assert "every label in column 'label' is -1" in message and "test=dataset['validation']" in message
    assert "pass one split, e.g. dataset['train']" in one_line_error(toy_frame(), test=DatasetDict(train=toy_dataset()))
    assert "no label column 'label'" in one_line_error(toy_dataset().rename_column("label", "labels"))


def test_a_path_imports_neither_pandas_nor_datasets() -> None:
    sample = Path(__file__).resolve().parents[2] / "examples" / "banking77_sample"
    code = (
        "import sys; from bertwise.data.split import load_split; "
        f"load_split({str(sample)!r}); print('pandas' in sys.modules, 'datasets' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------------------------------
# compare, train and predict_file on a DataFrame


def test_compare_takes_a_dataframe_and_a_test_dataframe(tiny_bert: str) -> None:
    from bertwise.pipeline.comparison import compare

    comparison = compare(
        toy_frame(2),
        test=toy_frame(1),
        strategies=["probe"],
        model=tiny_bert,
        device="cpu",
        learning_curve=False,
        report=False,
        cache=False,
        bootstrap_resamples=100,
    )
    saved = comparison.to_dict()
    assert saved["dataset"]["train"]["source"] == "pandas.DataFrame (36 rows)"
    assert saved["dataset"]["test"]["origin"] == "file" and saved["dataset"]["test"]["rows"] == 18
    assert saved["strategies"][0]["status"] == "ok"


def test_compare_on_a_dataframe_equals_compare_on_the_same_rows_in_files(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.pipeline.comparison import compare

    train, test = toy_frame(2), toy_frame(1).drop(columns="id")
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    settings: dict[str, Any] = {
        "strategies": ["zero-shot", "probe"],
        "model": tiny_bert,
        "device": "cpu",
        "learning_curve": False,
        "report": False,
        "cache": False,
        "bootstrap_resamples": 100,
    }
    from_frames = compare(train, test=test, **settings)
    from_files = compare(tmp_path / "train.csv", test=tmp_path / "test.csv", **settings)
    assert from_frames.data_fingerprint == from_files.data_fingerprint
    for name in settings["strategies"]:
        ours, theirs = from_frames.result(name), from_files.result(name)
        assert ours.status == theirs.status == "ok"
        assert ours.metrics == theirs.metrics and ours.metrics_interval == theirs.metrics_interval
        assert ours.predictions is not None and theirs.predictions is not None
        assert ours.predictions.tolist() == theirs.predictions.tolist()
    assert from_frames.recommendation is not None and from_files.recommendation is not None
    assert from_frames.recommendation.strategy == from_files.recommendation.strategy


def test_compare_takes_a_dataset_dict_and_refuses_a_missing_column(tiny_bert: str) -> None:
    from bertwise.pipeline.comparison import compare

    settings: dict[str, Any] = {
        "strategies": ["probe"],
        "model": tiny_bert,
        "device": "cpu",
        "cache": False,
        "learning_curve": False,
        "report": False,
        "bootstrap_resamples": 100,
    }
    comparison = compare(DatasetDict(train=toy_dataset(2), validation=toy_dataset(1)), **settings)
    assert comparison.split.test.source == "datasets.DatasetDict['validation'] (18 rows)"
    assert comparison.split.classes == NAMES and comparison.result("probe").status == "ok"
    frame = toy_frame().rename(columns={"text": "utterance", "label": "intent"})
    with pytest.raises(DataError, match=r"no text column 'body' \(--text-col\); found columns: utterance, intent, id"):
        compare(frame, text_col="body", label_col="intent", **settings)
    renamed = compare(frame, text_col="utterance", label_col="intent", **settings)
    assert renamed.split.classes == NAMES


def test_train_on_a_dataset_dict_scores_its_test_split(tiny_bert: str, tmp_path: Path) -> None:
    from bertwise.training import train

    data = DatasetDict(train=toy_dataset(2), test=toy_dataset(1))
    model = train(data, strategy="probe", out=tmp_path / "model", model=tiny_bert, device="cpu")
    assert model.classes_.tolist() == NAMES
    assert model.manifest_["metrics"]["test_source"] == "datasets.DatasetDict['test'] (18 rows)"
    assert model.manifest_["metrics"]["test_rows"] == 18
    frame_model = train(toy_frame(), strategy="probe", out=tmp_path / "frame-model", model=tiny_bert, device="cpu")
    np.testing.assert_allclose(frame_model.predict_proba(TEXTS), model.predict_proba(TEXTS))


def test_predict_file_returns_the_dataframe_with_its_predictions(tiny_bert: str) -> None:
    from bertwise.inference.predict_file import predict_file
    from bertwise.strategies import ProbeClassifier

    model = ProbeClassifier(model=tiny_bert, device="cpu", cv=3).fit(TEXTS, LABELS)
    frame = pd.DataFrame({"body": [*TEXTS, None, " "], "n": range(20)}, index=[f"r{i}" for i in range(20)])
    scored = predict_file(model, frame, text_col="body", decimals=3)
    assert list(scored.columns) == ["body", "n", "predicted_label", *(f"proba_{name}" for name in NAMES)]
    assert scored.index.equals(frame.index) and list(frame.columns) == ["body", "n"]  # the input is left alone
    assert scored["predicted_label"][:18].tolist() == model.predict(TEXTS).tolist()
    assert scored["predicted_label"][18:].isna().all() and scored["proba_sports"][18:].isna().all()
    np.testing.assert_allclose(scored.iloc[:18, 3:].to_numpy(), np.round(model.predict_proba(TEXTS), 3))
    as_dataset = predict_file(model, Dataset.from_pandas(frame.reset_index(drop=True)), text_col="body")
    assert as_dataset["predicted_label"][:18] == model.predict(TEXTS).tolist()
    with pytest.raises(ConfigError, match="out= is for file inputs"):
        predict_file(model, frame, "scored.csv", text_col="body")
    with pytest.raises(DataError, match="already has column"):
        predict_file(model, scored, text_col="body")
    nested = frame.assign(body=[[text] for text in frame["body"]])
    with pytest.raises(DataError, match=r"row 0: the text in column 'body' is a list"):
        predict_file(model, nested, text_col="body")
    with pytest.raises(DataError, match=r"no text column 'text' \(--text-col\); found columns: body, n"):
        predict_file(model, frame)
