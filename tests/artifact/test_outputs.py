"""Output paths checked before work starts: what compare may write into, and what no command can write at all."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bertwise.artifact.outputs import check_results_folder, check_writable_file, check_writable_folder
from bertwise.exceptions import ConfigError


def unwritable_folders(tmp_path: Path) -> list[Path]:
    """Places this process cannot create files in: a read-only folder (not for root, who ignores its mode), /proc."""
    places = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        places.append(locked)
    if sys.platform == "linux" and Path("/proc/self").is_dir():
        places.append(Path("/proc"))
    return places


EARLIER = {"schema_version": 2, "bertwise_version": "0.2.0", "strategies": [], "config": {"seed": 7}}
PREDICTIONS = "text,label,predicted_label,proba_a\nx,a,a,1.0\n"


def earlier_comparison(folder: Path) -> Path:
    """A folder as an earlier compare (with --save-best inside it) left it."""
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(EARLIER))  # another comparison's: replaced, as train does
    (folder / "report.html").write_text("<html></html>")
    (folder / "summary.md").write_text("# summary")
    (folder / "predictions-probe.csv").write_text(PREDICTIONS)
    (folder / ".DS_Store").write_text("")
    (folder / "model").mkdir()
    (folder / "model" / "manifest.json").write_text(json.dumps({"format": "bertwise-model", "files": {}}))
    return folder


def test_new_empty_and_earlier_comparison_folders_are_accepted(tmp_path: Path) -> None:
    check_results_folder(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # checking creates nothing
    check_results_folder(tmp_path)
    check_results_folder(earlier_comparison(tmp_path / "earlier"))
    killed = tmp_path / "killed"  # a run killed after its first predictions file, before results.json
    killed.mkdir()
    (killed / "predictions-zero-shot.csv").write_text(PREDICTIONS)
    (killed / ".results.json.4242-0a1b2c3d.tmp").write_text("{")  # a write the kill interrupted
    check_results_folder(killed)
    assert not [path for path in tmp_path.rglob(".bertwise-write-check-*")]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"notes.txt": "the user's own file"}, "notes.txt"),
        ({"data/train.csv": "text,label\n"}, "data"),  # a folder that is not a model folder
        ({"model/manifest.json": '{"format": "something-else"}'}, "model"),
    ],
)
def test_anything_else_beside_an_earlier_comparison_is_refused(
    extra: dict[str, str], named: str, tmp_path: Path
) -> None:
    folder = earlier_comparison(tmp_path / "earlier")
    for name, text in extra.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    with pytest.raises(ConfigError, match=f"holds files bertwise compare did not write \\({named}\\)"):
        check_results_folder(folder)


def test_a_folder_of_the_user_s_files_is_refused_and_named(tmp_path: Path) -> None:
    for number in range(8):
        (tmp_path / f"photo-{number}.jpg").write_bytes(b"")
    with pytest.raises(ConfigError) as refused:
        check_results_folder(tmp_path)
    assert str(refused.value) == (
        f"the output folder '{tmp_path}' holds files bertwise compare did not write (photo-0.jpg, photo-1.jpg, "
        "photo-2.jpg, photo-3.jpg, photo-4.jpg and 3 more); expected a new or empty folder, or one an earlier "
        "bertwise compare wrote; refusing to write beside them: choose another folder"
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"results.json": '{"accuracy": 0.9}'}, "holds a results.json that bertwise did not write"),
        ({"results.json": "not json"}, "unreadable as JSON"),
        ({"results.json": "[1, 2]"}, "did not write"),
        ({"summary.md": "# mine"}, "holds files bertwise compare did not write \\(summary.md\\)"),
        ({"report.html": "<p>mine</p>"}, "did not write \\(report.html\\)"),
        ({"predictions-probe.csv": "id,score\n1,0.5\n"}, "did not write \\(predictions-probe.csv\\)"),
    ],
)
def test_a_folder_with_someone_else_s_files_is_refused(files: dict[str, str], message: str, tmp_path: Path) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        check_results_folder(tmp_path)


def test_a_file_or_a_path_through_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file; expected a folder"):
        check_results_folder(tmp_path / "file")
    with pytest.raises(ConfigError, match="'.*file' is a file, not a folder"):
        check_results_folder(tmp_path / "file" / "out")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_writable_file(tmp_path / "file" / "out.csv", "--out")
    with pytest.raises(ConfigError, match="is a folder; expected a file"):
        check_writable_file(tmp_path, "--out")


def test_an_unwritable_place_is_refused(tmp_path: Path) -> None:
    places = unwritable_folders(tmp_path)
    if not places:
        pytest.skip("no place this process cannot write to")
    for place in places:
        with pytest.raises(ConfigError, match=f"cannot write the output folder '{place}/out'"):
            check_results_folder(place / "out")
        with pytest.raises(ConfigError, match="creating a file in .* failed"):
            check_writable_file(place / "predictions.csv", "--out")
        with pytest.raises(ConfigError, match="cannot write the model folder"):
            check_writable_folder(place / "model", "the model folder")
