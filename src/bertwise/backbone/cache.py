"""Embeddings kept on disk, so that no text is encoded twice by the same model: not across strategies, curve points,
seeds, nor whole runs.

Where the cache lives
    ``$BERTWISE_CACHE_DIR`` if set (``BERTWISE_CACHE_DIR=off`` turns the cache off), else
    ``$XDG_CACHE_HOME/bertwise``, else ``~/.cache/bertwise``. Embeddings go under ``<cache dir>/embeddings/``.

Redirecting or turning it off from code
    ``with use_cache_dir(path):`` sends every encoder's reads and writes in the block to ``path``;
    ``with use_cache_dir(None):`` turns the cache off for the block (the in-process memo of each encoder still
    works). Blocks nest, and the previous setting comes back on exit. ``cache_directory()`` says what is in force.
    ``Encoder.encode(texts, cache=False)`` bypasses the disk for one call (timing real encoding speed).

Layout
    One SQLite database per model fingerprint, ``embeddings/<fingerprint>.sqlite3``, table
    ``embeddings(text_sha256 BLOB PRIMARY KEY, vector BLOB, seconds REAL)`` holding little-endian float32 bytes, which
    round-trip exactly, so a cached vector is bit-identical to the one computed, and the encoding seconds the vector
    cost (its share of its batch), so that a strategy served from the cache can still report what it costs alone.
    The fingerprint is the sha256 of everything that changes a vector (:func:`model_fingerprint`); a ``meta`` table
    repeats it in readable form. Databases run in WAL mode with a lock timeout, so concurrent processes share them.

Failure
    The cache is an optimisation and never a reason to stop: a database that cannot be opened, read or written (corrupt,
    locked for too long, read-only disk) is reported once with a :class:`CacheWarning` and then left alone for the rest
    of the process; embeddings are computed instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.backbone.modules import declared_lowercase

# Bump when the layout or the meaning of a stored vector changes, so old databases are simply no longer found.
CACHE_FORMAT = 2
ENV_VAR = "BERTWISE_CACHE_DIR"
OFF = "off"
# SQLite's default limit on bound parameters is 999 in older builds.
_CHUNK = 900
# Seconds a process waits for another one's write to finish before giving up on the cache for this process.
_LOCK_TIMEOUT = 60.0
_VECTOR_DTYPE = np.dtype("<f4")

# (directory,) while use_cache_dir is in force; a tuple so that a forced None (cache off) differs from "not set".
_override: tuple[Path | None] | None = None
# Databases that failed once: warned about and skipped for the rest of the process.
_broken: set[Path] = set()


class CacheWarning(UserWarning):
    """The embedding cache could not be used; embeddings are computed instead."""


@dataclass
class CacheStats:
    """Unique texts per source, summed over an encoder's calls (benchmarks and ``bertwise embed`` report them)."""

    memory_hits: int = 0  # found in the encoder's in-process memo
    disk_hits: int = 0  # read from the disk cache
    computed: int = 0  # run through the model

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits

    def since(self, earlier: CacheStats) -> CacheStats:
        """What happened after ``earlier`` (a copy taken before) was taken."""
        return CacheStats(
            self.memory_hits - earlier.memory_hits,
            self.disk_hits - earlier.disk_hits,
            self.computed - earlier.computed,
        )

    def copy(self) -> CacheStats:
        return CacheStats(self.memory_hits, self.disk_hits, self.computed)

    def to_dict(self) -> dict[str, int]:
        return {"memory_hits": self.memory_hits, "disk_hits": self.disk_hits, "computed": self.computed}


def cache_directory() -> Path | None:
    """The cache directory now in force, or None when the cache is off."""
    if _override is not None:
        return _override[0]
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() == OFF:
        return None
    if value:
        return Path(value).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says relative paths are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "bertwise"


@contextmanager
def use_cache_dir(directory: str | os.PathLike[str] | None) -> Iterator[None]:
    """Use ``directory`` as the cache directory inside the block, or no disk cache at all when it is None."""
    global _override
    previous = _override
    _override = (Path(directory).expanduser().absolute() if directory is not None else None,)
    try:
        yield
    finally:
        _override = previous


def model_fingerprint(backbone: Any, *, precision: str, device_type: str) -> tuple[str, dict[str, Any]]:
    """The sha256 naming a model's database, and the readable settings it was computed from.

    Everything that changes a vector is in it: the weights, the config and tokenizer files, pooling, the Dense layers
    (with their weights' sha256), normalisation, lowercasing, truncation length, the precision and device kind it ran
    with, and the torch and transformers versions (kernels change between releases, and a cache must never return
    what a fresh computation would not).
    """
    import torch
    import transformers

    settings: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "model_id": backbone.model_id,  # readable only: the hashes below identify the model
        "weights_sha256": backbone.sha256,
        "files_sha256": _model_files_sha256(backbone.path),
        "pooling": backbone.pooling,
        "normalize": backbone.normalize,
        "max_length": backbone.max_length,
        "precision": precision,
        "device": device_type,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    # Added only when present, so the databases of models without them keep their names.
    if getattr(backbone, "dense", ()):
        settings["dense"] = [layer.to_record() for layer in backbone.dense]  # with each layer's weights sha256
    if declared_lowercase(Path(backbone.path)):
        settings["lowercase"] = True
    keyed = {key: value for key, value in settings.items() if key != "model_id"}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return digest, settings


def _model_files_sha256(path: str) -> str:
    # The config and tokenizer files, i.e. what a hub download fetches besides the weights.
    directory = Path(path)
    files = sorted(p for pattern in ("*.json", "*.txt", "*.model") for p in directory.glob(pattern) if p.is_file())
    return _hash_named_files(tuple(str(p) for p in files), tuple(os.stat(p).st_mtime_ns for p in files))


@lru_cache(maxsize=32)
def _hash_named_files(paths: tuple[str, ...], _mtimes: tuple[int, ...]) -> str:
    # mtimes are part of the lru key so that an edited file is hashed again.
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode() + b"\0")
        digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def text_key(text: str) -> bytes:
    """The sha256 a text is stored under (lone surrogates, which JSON can carry, are kept rather than rejected)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def open_store(fingerprint: str, dimension: int, settings: dict[str, Any]) -> EmbeddingStore | None:
    """The store for one model fingerprint in the cache directory now in force; None when the cache is off."""
    directory = cache_directory()
    if directory is None:
        return None
    path = directory / "embeddings" / f"{fingerprint}.sqlite3"
    if path in _broken:
        return None
    return EmbeddingStore(path, dimension, {**settings, "fingerprint": fingerprint})


class EmbeddingStore:
    """One model's embeddings in one SQLite file; every method degrades to "nothing cached" on any failure."""

    def __init__(self, path: Path, dimension: int, settings: dict[str, Any]) -> None:
        self.path = path
        self.dimension = dimension
        self.settings = settings

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those ``texts`` that have one (texts should be unique)."""
        return self.get_with_seconds(texts)[0]

    def get_with_seconds(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], float]:
        """The stored vectors of those ``texts`` that have one, and the encoding seconds they cost in all."""
        if not texts or self.path in _broken or not self.path.exists():
            return {}, 0.0
        by_key = {text_key(text): text for text in texts}
        keys = list(by_key)
        found: dict[str, np.ndarray] = {}
        seconds = 0.0
        size = self.dimension * _VECTOR_DTYPE.itemsize
        try:
            with closing(self._connect()) as connection:
                for start in range(0, len(keys), _CHUNK):
                    chunk = keys[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT text_sha256, vector, seconds FROM embeddings WHERE text_sha256 IN ({marks})"
                    rows = connection.execute(query, chunk).fetchall()
                    for key, blob, cost in rows:
                        # A vector of the wrong size is treated as missing; the fresh one replaces it.
                        if isinstance(blob, bytes) and len(blob) == size and bytes(key) in by_key:
                            found[by_key[bytes(key)]] = np.frombuffer(blob, dtype=_VECTOR_DTYPE).astype(np.float32)
                            seconds += float(cost or 0.0)
        except (sqlite3.Error, OSError) as error:
            self._give_up("read", error)
            return {}, 0.0
        return found, seconds

    def put(
        self, texts: Sequence[str], vectors: np.ndarray, seconds: Sequence[float] | np.ndarray | None = None
    ) -> None:
        """Store one vector per text, with what it cost to compute, all in one transaction."""
        if not texts or self.path in _broken:
            return
        matrix = np.ascontiguousarray(vectors, dtype=_VECTOR_DTYPE)
        costs = [0.0] * len(texts) if seconds is None or len(seconds) != len(texts) else [float(x) for x in seconds]
        rows = [(text_key(text), matrix[i].tobytes(), costs[i]) for i, text in enumerate(texts)]
        try:
            if not self.path.exists():
                self._create()
            with closing(self._connect()) as connection:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.executemany(
                        "INSERT OR REPLACE INTO embeddings (text_sha256, vector, seconds) VALUES (?, ?, ?)", rows
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, OSError) as error:
            self._give_up("write", error)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are begun explicitly, so a read never holds a lock it does not need.
        connection = sqlite3.connect(self.path, timeout=_LOCK_TIMEOUT, isolation_level=None)
        # Losing the last transactions on power loss costs a recomputation; a sync per write costs every time.
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _create(self) -> None:
        """Make the database under a temporary name and link it into place, so nobody sees it half made.

        Switching a shared file to WAL mode does not wait for other connections' locks (it fails at once with
        "database is locked"), so the switch happens while the file is still private.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with closing(sqlite3.connect(temporary, isolation_level=None)) as connection:
                # WAL lets readers in other processes go on while one process writes; the setting sticks to the file.
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(
                    "CREATE TABLE embeddings (text_sha256 BLOB PRIMARY KEY, vector BLOB NOT NULL, seconds REAL)"
                )
                connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                connection.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("format", str(CACHE_FORMAT)),
                        ("dimension", str(self.dimension)),
                        ("settings", json.dumps(self.settings, sort_keys=True)),
                    ],
                )
            try:
                # A hard link never replaces a database another process put there first.
                os.link(temporary, self.path)
            except FileExistsError:
                pass
            except OSError:  # file systems without hard links
                if not self.path.exists():
                    os.replace(temporary, self.path)
        finally:
            for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
                leftover.unlink(missing_ok=True)

    def _give_up(self, action: str, error: BaseException) -> None:
        _broken.add(self.path)
        warnings.warn(
            f"bertwise: cannot {action} the embedding cache {self.path} ({type(error).__name__}: "
            f"{str(error).strip() or 'no details'}); computing embeddings instead for the rest of this run. "
            f"Delete the file to rebuild it, or set {ENV_VAR}={OFF} to turn the cache off",
            CacheWarning,
            stacklevel=3,
        )
