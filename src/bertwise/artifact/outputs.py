"""Where a command will write, checked before any work starts: a bad output path costs a second, not a whole run.

Writability is tried, not inferred from permission bits: root passes every permission check yet cannot write under
/proc or on a read-only mount, and only an actual attempt tells.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from pathlib import Path

from bertwise.exceptions import ConfigError

RESULTS_FILE = "results.json"
# What compare writes beside results.json; anything else (hidden files aside) makes a folder someone else's.
REPORT_FILES = ("report.html", "summary.md")
PREDICTIONS_PATTERN = "predictions-*.csv"
PREDICTIONS_HEADER = "text,label,predicted_label"
_SHOWN_FILES = 5  # of the files that make a folder foreign, named in the message


def check_writable_file(path: Path, what: str) -> None:
    """``path`` can be created or replaced: not a folder, and its folder (or the nearest one that exists) writable."""
    if path.is_dir():
        raise ConfigError(f"{what} '{path}' is a folder; expected a file")
    _check_can_create_in(path.parent, what, path)


def check_writable_folder(path: Path, what: str) -> None:
    """``path`` is a folder files can be written in, or a folder that can be created."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} '{path}' is a file; expected a folder")
    _check_can_create_in(path, what, path)


def check_results_folder(out: Path) -> None:
    """Refuse an output folder for compare that holds anything bertwise did not write there.

    Accepted: a new or empty folder, or one holding only what an earlier comparison wrote (its results.json,
    report.html, summary.md, predictions-*.csv, and a ``--save-best`` model folder), whatever that comparison's
    settings: rerunning into the same folder is how an interrupted run resumes. Hidden files (``.DS_Store``, an
    editor's) are ignored. Refused, before anything runs: a file, an unwritable place, and a folder holding anything
    else, such as someone else's results.json or the user's own files, which a report beside them would mix with.
    """
    what = "the output folder"
    check_writable_folder(out, what)
    if not out.is_dir():
        return
    results = out / RESULTS_FILE
    if results.exists() or results.is_symlink():
        reason = _not_bertwise_results(results)
        if reason is not None:
            raise ConfigError(
                f"{what} '{out}' holds a {RESULTS_FILE} that bertwise did not write ({reason}); expected a new or "
                "empty folder, or one an earlier bertwise compare wrote; refusing to overwrite it: choose another "
                "folder"
            )
    foreign = [path.name for path in sorted(out.iterdir()) if not _written_by_compare(path, results.is_file())]
    if foreign:
        shown = ", ".join(foreign[:_SHOWN_FILES]) + (
            f" and {len(foreign) - _SHOWN_FILES} more" if len(foreign) > _SHOWN_FILES else ""
        )
        raise ConfigError(
            f"{what} '{out}' holds files bertwise compare did not write ({shown}); expected a new or empty folder, "
            "or one an earlier bertwise compare wrote; refusing to write beside them: choose another folder"
        )


def _written_by_compare(path: Path, with_results: bool) -> bool:
    """Whether ``path``, directly inside an output folder, is something compare writes there (or hidden)."""
    name = path.name
    if name.startswith(".") or name == RESULTS_FILE:
        return True
    if path.is_dir() and not path.is_symlink():
        return _is_model_folder(path)  # a --save-best folder inside the output folder
    if name in REPORT_FILES:
        # Written after results.json: without one of bertwise's, they are someone else's.
        return with_results and path.is_file()
    # Predictions are written before results.json, so a run killed between the two leaves them alone; bertwise's
    # header tells them from the user's.
    return fnmatch.fnmatch(name, PREDICTIONS_PATTERN) and path.is_file() and _bertwise_predictions(path)


def _is_model_folder(path: Path) -> bool:
    from bertwise.artifact.folder import FORMAT, MANIFEST

    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _check_can_create_in(folder: Path, what: str, target: Path) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot write {what} '{target}': '{existing}' is a file, not a folder")
    try:
        handle, name = tempfile.mkstemp(prefix=".bertwise-write-check-", dir=existing)
    except OSError as err:
        raise ConfigError(
            f"cannot write {what} '{target}': creating a file in '{existing}' failed ({err.strerror or err})"
        ) from None
    os.close(handle)
    Path(name).unlink(missing_ok=True)


def _not_bertwise_results(path: Path) -> str | None:
    """Why ``path`` is not a results.json bertwise wrote, or None when it is one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        return f"unreadable as JSON: {type(err).__name__}"
    if not isinstance(data, dict) or not {"schema_version", "bertwise_version", "strategies"} <= set(data):
        return "no schema_version, bertwise_version and strategies keys"
    return None


def _bertwise_predictions(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.readline().startswith(PREDICTIONS_HEADER)
    except OSError:
        return False
