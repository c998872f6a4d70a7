"""The disk cache of embeddings: exact round trips, keys that separate models, and failures that never stop a run."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertwise.backbone import cache
from bertwise.backbone.cache import CacheWarning, EmbeddingStore, cache_directory, use_cache_dir
from bertwise.backbone.encoder import Encoder
from bertwise.backbone.resolve import resolve_backbone
from tests.conftest import _write_tiny_bert

TEXTS = ["bake the bread", "heavy rain is expected tomorrow", "the team won", "bake the bread", ""]


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(directory))
    monkeypatch.setattr(cache, "_broken", set())
    return directory


def fresh_encoder(model: str, pooling: str = "auto", precision: str = "float32") -> Encoder:
    return Encoder(resolve_backbone(model, pooling=pooling), device="cpu", precision=precision)  # type: ignore[arg-type]


def spy_on_model(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record what reaches the model."""
    calls: list[list[str]] = []
    original = encoder._encode_uncached

    def spy(texts: list[str], progress: bool, description: str) -> Any:
        calls.append(list(texts))
        return original(texts, progress, description)

    monkeypatch.setattr(encoder, "_encode_uncached", spy)
    return calls


def test_a_fresh_encoder_reads_everything_back_bit_for_bit(
    tiny_bert: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fresh_encoder(tiny_bert)
    computed = first.encode(TEXTS)
    assert first.cache_stats.computed == 4 and first.cache_stats.disk_hits == 0
    assert len(list((cache_dir / "embeddings").glob("*.sqlite3"))) == 1

    second = fresh_encoder(tiny_bert)
    calls = spy_on_model(second, monkeypatch)
    cached = second.encode(TEXTS)
    assert calls == []
    assert second.cache_stats.to_dict() == {"memory_hits": 0, "disk_hits": 4, "computed": 0}
    assert cached.dtype == np.float32 and cached.shape == computed.shape
    np.testing.assert_array_equal(cached, computed)


def test_only_new_texts_reach_the_model(tiny_bert: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_encoder(tiny_bert).encode(TEXTS[:2])
    encoder = fresh_encoder(tiny_bert)
    calls = spy_on_model(encoder, monkeypatch)
    mixed = encoder.encode([TEXTS[2], TEXTS[0], TEXTS[2], TEXTS[1]])
    assert calls == [[TEXTS[2]]]
    assert encoder.cache_stats.disk_hits == 2 and encoder.cache_stats.computed == 1
    # Memo next: a repeat call touches neither the disk nor the model.
    again = encoder.encode([TEXTS[0], TEXTS[2]])
    assert encoder.cache_stats.memory_hits == 2 and calls == [[TEXTS[2]]]
    np.testing.assert_array_equal(again, mixed[[1, 0]])


def test_another_model_pooling_or_precision_never_hits(
    tiny_bert: str, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_encoder(tiny_bert).encode(TEXTS)
    other_weights = str(_write_tiny_bert(tmp_path / "other", seed=1))
    cls = fresh_encoder(tiny_bert, pooling="cls")
    lower_precision = fresh_encoder(tiny_bert, precision="bfloat16")
    for encoder in (fresh_encoder(other_weights), cls, lower_precision):
        encoder.encode(TEXTS)
        assert encoder.cache_stats.disk_hits == 0 and encoder.cache_stats.computed == 4
    assert len(list((cache_dir / "embeddings").glob("*.sqlite3"))) == 4


def test_turned_off_the_cache_writes_nothing(tiny_bert: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTWISE_CACHE_DIR", "off")
    assert cache_directory() is None
    fresh_encoder(tiny_bert).encode(TEXTS)
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(cache_dir))
    with use_cache_dir(None):
        fresh_encoder(tiny_bert).encode(TEXTS)
    fresh_encoder(tiny_bert).encode(TEXTS, cache=False)
    assert not cache_dir.exists()


def test_cache_false_does_not_read_either(tiny_bert: str, cache_dir: Path) -> None:
    fresh_encoder(tiny_bert).encode(TEXTS)
    encoder = fresh_encoder(tiny_bert)
    encoder.encode(TEXTS, cache=False)
    assert encoder.cache_stats.disk_hits == 0 and encoder.cache_stats.computed == 4


def test_a_corrupt_database_warns_once_and_is_computed_around(
    tiny_bert: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = fresh_encoder(tiny_bert).encode(TEXTS, cache=False)
    encoder = fresh_encoder(tiny_bert)
    store = encoder._disk_store()
    assert store is not None
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"this is not a database" * 100)
    with pytest.warns(CacheWarning, match="cannot read the embedding cache .*sqlite3"):
        vectors = encoder.encode(TEXTS)
    np.testing.assert_array_equal(vectors, expected)
    with use_cache_dir(cache_dir):  # the same file again: skipped silently
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fresh_encoder(tiny_bert).encode(TEXTS)


def test_an_unwritable_cache_directory_warns_and_computes(tiny_bert: str, cache_dir: Path) -> None:
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    cache_dir.write_text("a file where the cache folder should be")
    with pytest.warns(CacheWarning, match="cannot write"):
        vectors = fresh_encoder(tiny_bert).encode(TEXTS)
    assert vectors.shape == (5, 32)


def test_cache_directory_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTWISE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_directory() == tmp_path / "mine"
    monkeypatch.setenv("BERTWISE_CACHE_DIR", "OFF")
    assert cache_directory() is None
    monkeypatch.delenv("BERTWISE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "xdg" / "bertwise"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_directory() == tmp_path / "home" / ".cache" / "bertwise"
    with use_cache_dir(tmp_path / "outer"):
        with use_cache_dir(None):
            assert cache_directory() is None
        assert cache_directory() == tmp_path / "outer"
    assert cache_directory() == tmp_path / "home" / ".cache" / "bertwise"


def test_large_batches_round_trip_through_chunked_lookups(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path / "e.sqlite3", 4, {})
    texts = [f"text {i}" for i in range(2500)] + ["lone surrogate \ud800"]
    vectors = np.random.default_rng(0).standard_normal((len(texts), 4)).astype(np.float32)
    store.put(texts, vectors)
    found = store.get(texts[::-1])
    assert len(found) == len(texts)
    np.testing.assert_array_equal(np.stack([found[t] for t in texts]), vectors)
    with sqlite3.connect(tmp_path / "e.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_stored_vector_of_the_wrong_size_is_a_miss(tmp_path: Path) -> None:
    EmbeddingStore(tmp_path / "e.sqlite3", 3, {}).put(["a"], np.ones((1, 3), dtype=np.float32))
    store = EmbeddingStore(tmp_path / "e.sqlite3", 4, {})
    assert store.get(["a"]) == {}
    store.put(["a"], np.ones((1, 4), dtype=np.float32))
    assert store.get(["a"])["a"].shape == (4,)


def test_concurrent_writers_share_one_database(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite3"
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            texts = [f"{worker}-{i}" for i in range(300)]
            EmbeddingStore(path, 8, {}).put(texts, np.full((300, 8), worker, dtype=np.float32))
        except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    found = EmbeddingStore(path, 8, {}).get([f"{w}-{i}" for w in range(4) for i in range(300)])
    assert len(found) == 1200 and found["3-7"][0] == 3.0


def test_cached_vectors_bring_back_the_seconds_they_cost(tiny_bert: str, cache_dir: Path) -> None:
    """A strategy served from the cache must still be able to report what encoding would have cost it alone."""
    first = fresh_encoder(tiny_bert)
    first.encode(TEXTS)
    spent = float(first.last_compute_seconds.sum())
    assert spent > 0 and first.replayed_seconds == 0.0
    second = fresh_encoder(tiny_bert)
    second.encode(TEXTS[::-1])
    assert second.cache_stats.computed == 0
    assert second.replayed_seconds == pytest.approx(spent, rel=1e-9)
