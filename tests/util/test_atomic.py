"""Files written whole or not at all, and what killed writers leave behind removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bertwise.util import atomic


def test_a_file_is_replaced_whole_and_no_temporary_stays(tmp_path: Path) -> None:
    target = tmp_path / "deeper" / "results.json"
    atomic.write_text(target, '{"old": true}\n')
    atomic.write_text(target, '{"new": true}\n')
    assert target.read_text() == '{"new": true}\n'
    assert [path.name for path in target.parent.iterdir()] == ["results.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "predictions-probe.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["predictions-probe.csv"]


def test_a_killed_writer_leaves_the_old_file_and_its_leftover_is_removed_later(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("whole old\n")
    # The test hook kills the writer once half of the new text is in its temporary copy.
    code = "import sys, pathlib, bertwise.util.atomic as a; a.write_text(pathlib.Path(sys.argv[1]), 'x' * 1000)"
    env = {"BERTWISE_TEST_KILL_AT": "write results.json", "PATH": "/usr/bin:/bin"}
    killed = subprocess.run([sys.executable, "-c", code, str(target)], env=env, check=False)
    assert killed.returncode == -9
    assert target.read_text() == "whole old\n"
    (leftover,) = tmp_path.glob(".results.json.*.tmp")
    assert leftover.read_text() == "x" * 500
    assert atomic.remove_leftovers(tmp_path) == [leftover]
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]


def test_a_live_writers_temporary_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / f".results.json.{os.getpid()}-0123abcd.tmp"
    mine.write_text("being written")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("the user's")
    assert atomic.remove_leftovers(tmp_path) == []
    assert mine.exists() and unrelated.exists()
    assert atomic.remove_leftovers(tmp_path / "missing") == []
