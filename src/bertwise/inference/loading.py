"""``bertwise.load``: a saved model, predicting through torch or through its ONNX export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bertwise.exceptions import ConfigError

RUNTIMES = ("torch", "onnx")


def load(path: str | Path, *, device: str = "auto", precision: str | None = None, runtime: str = "torch") -> Any:
    """The fitted classifier saved in model folder ``path``, after checking every file against its manifest.

    Returns the strategy's classifier (a :class:`~bertwise.ProbeClassifier`, :class:`~bertwise.FinetuneClassifier`,
    :class:`~bertwise.ZeroShotClassifier` or a registered one) with ``classes_``, ``predict`` and ``predict_proba``, the
    parsed manifest in ``manifest_`` and the folder in ``folder_``. ``device`` picks where it runs; ``precision``
    defaults to the one it was trained with ("auto" unless set). Its encoder remembers nothing: predicting any number of
    texts, in chunks, keeps memory flat and writes nothing to the embedding cache. ``runtime="onnx"`` predicts through
    the folder's ONNX export instead (``bertwise export DIR --onnx``; CPU, float32 or int8), with the same interface.
    """
    if runtime == "onnx":
        from bertwise.onnx.runtime import load_onnx

        # Said rather than ignored: the export fixed both when it was written.
        if device not in ("auto", "cpu"):
            raise ConfigError(f"the onnx runtime runs on the CPU; got device {device!r} (the torch runtime can)")
        if precision is not None:
            raise ConfigError(
                f"the onnx runtime runs the precision the export was written in (float32, or int8 with "
                f"`bertwise export --onnx --quantize`); got precision {precision!r}, which only the torch runtime sets"
            )

        return load_onnx(path)
    if runtime != "torch":
        raise ConfigError(f"runtime must be 'torch' or 'onnx'; got {runtime!r}")
    from bertwise.artifact.folder import load as load_folder

    return load_folder(path, device=device, precision=precision)
