"""Files written whole or not at all: a killed process (SIGKILL, a power cut) never leaves half a file behind.

Each file is written to a temporary name in its own folder (same file system, so the rename is atomic), flushed to
disk, then renamed over the target: a reader sees the old file or the new one, never a mix. A temporary name holds
the writer's process id, so a later writer can tell a dead process's leftover (removed) from a live one's (left).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from bertwise.util.kill_hook import kill_point

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.tmp$")


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (``durable``: see :func:`atomic_path`)."""
    with atomic_path(path, durable=durable) as temporary:
        with temporary.open("wb") as stream:
            half = len(data) // 2
            stream.write(data[:half])
            if half:
                stream.flush()
                kill_point(f"write {path.name}")  # the test hook: a kill here leaves half a temporary file
            stream.write(data[half:])


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (by any means); renamed over ``path`` when the block ends.

    If the block raises (Ctrl-C included), the temporary file is removed and ``path`` is left as it was. ``durable``
    flushes the file to disk before the rename (a power cut then cannot leave the new name on missing data); a killed
    process never needs it, and a caller that can tell a damaged file by its hash may skip the wait.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        if durable:
            _flush_to_disk(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove the temporary files that dead processes left in ``folder`` (not its subfolders); return them.

    A live process's temporary file is left alone: it may be about to rename it.
    """
    removed: list[Path] = []
    try:
        candidates = list(folder.iterdir())
    except OSError:  # no folder yet, or not one: nothing to clean
        return removed
    for candidate in candidates:
        match = _TEMPORARY.match(candidate.name)
        if match is None or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _flush_to_disk(path: Path) -> None:
    # The data must be on disk before the rename is: otherwise a power cut can leave the new name on an empty file.
    with contextlib.suppress(FileNotFoundError), path.open("rb+") as stream:
        os.fsync(stream.fileno())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
