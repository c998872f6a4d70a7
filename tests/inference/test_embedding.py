"""``bertwise.embed``: one float32 row per text in input order, the same vectors the strategies' encoder gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bertwise
from bertwise.backbone.encoder import load_encoder
from bertwise.exceptions import ConfigError, DataError

TEXTS = ["bake the bread", "heavy rain is expected tomorrow", "bake the bread", "the team won the match"]


def test_rows_follow_the_input_order_and_duplicates_repeat(tiny_bert: str) -> None:
    vectors = bertwise.embed(TEXTS, tiny_bert, device="cpu")
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert not np.array_equal(vectors[0], vectors[1])
    reordered = bertwise.embed(TEXTS[::-1], tiny_bert, device="cpu")
    np.testing.assert_array_equal(reordered, vectors[::-1])
    np.testing.assert_array_equal(vectors, load_encoder(tiny_bert, "auto", "cpu").encode(TEXTS))


def test_empty_input_gives_zero_rows_of_the_model_width(tiny_bert: str) -> None:
    assert bertwise.embed([], tiny_bert, device="cpu").shape == (0, 32)


def test_options_apply_to_the_call_only(tiny_bert: str) -> None:
    encoder = load_encoder(tiny_bert, "auto", "cpu")
    default = encoder.batch_size
    small = bertwise.embed(TEXTS, tiny_bert, device="cpu", batch_size=1, cache=False)
    assert encoder.batch_size == default
    np.testing.assert_allclose(small, bertwise.embed(TEXTS, tiny_bert, device="cpu"), atol=1e-5)
    cls = bertwise.embed(TEXTS, tiny_bert, device="cpu", pooling="cls")
    assert not np.allclose(cls, small)
    # Every sentence-transformers pooling mode can be asked of a plain checkpoint.
    largest = bertwise.embed(TEXTS, tiny_bert, device="cpu", pooling="max")
    assert largest.shape == small.shape and not np.allclose(largest, small)


def test_cache_false_writes_nothing(tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "cache"))
    bertwise.embed(["a text never seen before"], tiny_bert, device="cpu", cache=False)
    assert not (tmp_path / "cache").exists()
    bertwise.embed(["another text never seen before"], tiny_bert, device="cpu")
    assert list((tmp_path / "cache" / "embeddings").glob("*.sqlite3"))


@pytest.mark.parametrize(
    ("texts", "kwargs", "error", "message"),
    [
        ("just one text", {}, DataError, "got a single str"),
        (["fine", None], {}, DataError, r"missing text \(None or NaN\) in row 1"),
        (["fine", 3], {}, DataError, "row 1 is int"),
        (["fine"], {"batch_size": 0}, ConfigError, "batch_size must be"),
        (["fine"], {"pooling": "sum"}, ValueError, "pooling must be one of auto, cls, max, mean, "),
    ],
)
def test_bad_arguments_say_what_was_expected(
    texts: object, kwargs: dict[str, object], error: type[Exception], message: str, tiny_bert: str
) -> None:
    with pytest.raises(error, match=message):
        bertwise.embed(texts, tiny_bert, device="cpu", **kwargs)  # type: ignore[arg-type]


def test_embed_takes_what_the_estimators_take(tiny_bert: str) -> None:
    import numpy as np
    import pandas as pd

    texts = ["a first text", "a second, longer text", "third"]
    expected = bertwise.embed(texts, tiny_bert, device="cpu", cache=False)
    frame = pd.DataFrame({"text": texts, "label": ["a", "b", "a"]}, index=[7, 8, 9])
    for given in (tuple(texts), np.array(texts), frame["text"], frame[["text"]]):
        assert np.allclose(bertwise.embed(given, tiny_bert, device="cpu", cache=False), expected)
    with pytest.raises(DataError, match=r"one column of texts; got a DataFrame with 2 columns"):
        bertwise.embed(frame, tiny_bert, device="cpu")  # type: ignore[arg-type]


def test_embed_is_exported() -> None:
    assert "embed" in bertwise.__all__
    assert bertwise.embed.__module__ == "bertwise.inference.embedding"
