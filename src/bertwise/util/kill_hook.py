"""A test hook, and only that: ``BERTWISE_TEST_KILL_AT=<point>[:<n>]`` SIGKILLs the process the n-th time it reaches
``<point>``.

tests/evaluation/test_kill_resume.py sets it to stop ``compare`` at exact places (mid fine-tuning, while writing
results.json, ...) and checks that a rerun resumes and ends with an uninterrupted run's numbers. SIGKILL, not an
exception: nothing runs after it (no ``finally``, no handler), as when the system kills a process that ran out of
memory. Unset, which it always is outside those tests, :func:`kill_point` costs one environment look-up.

Points: ``calibration`` (measured, not yet kept), ``<strategy> fit`` (a fit kept, the stage not finished),
``finetune checkpoint`` (a training checkpoint written), ``curve fit`` (a learning-curve fit kept) and
``write <file name>`` (half of the file's temporary copy written).
"""

from __future__ import annotations

import os
import signal

KILL_AT_VARIABLE = "BERTWISE_TEST_KILL_AT"
_reached: dict[str, int] = {}


def kill_point(point: str) -> None:
    """SIGKILL this process the n-th time (default 1) it reaches ``point`` when ``BERTWISE_TEST_KILL_AT=point:n``."""
    wanted = os.environ.get(KILL_AT_VARIABLE)
    if not wanted:
        return
    name, separator, count = wanted.rpartition(":")
    if not (separator and count.isdigit()):
        name, count = wanted, "1"
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
