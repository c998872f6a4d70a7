"""ONNX Runtime: predicting through an exported encoder or classifier like bertwise's torch path, and loading a model
folder's export (:func:`load_onnx`, ``bertwise.load(DIR, runtime="onnx")``).

The runner tokenizes with the same tokenizer, ``max_length`` and truncation as the torch path, and runs length-sorted
batches padded only to their longest text (:func:`~bertwise.backbone.batching.padding_aware_batches`), so short texts
never pay for long ones here either. The graphs themselves are written by :mod:`bertwise.onnx.export`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertwise.artifact.folder import unloadable_as_model_error, verify_model_folder
from bertwise.backbone.batching import padding_aware_batches
from bertwise.backbone.encoder import CPU_BATCH_SIZE, load_tokenizer, tokenize
from bertwise.exceptions import BertwiseError, ModelError
from bertwise.strategies.lora import LoraClassifier
from bertwise.strategies.probe import read_probe_head
from bertwise.strategies.setfit import read_setfit_head
from bertwise.strategies.state import BACKBONE_DIR, classes_array

INSTALL_HINT = "pip install 'bertwise[onnx]'"
INPUT_NAMES = ("input_ids", "attention_mask")
# Written into the .onnx file's metadata, so the file alone says how to tokenize for it and what it returns.
META_PREFIX = "bertwise."
# Strategies whose folder exports: an encoder graph (pooled embeddings, the saved logistic head applied after it) or a
# classifier graph (token ids to logits; LoRA's adapters merged into the base weights first).
ENCODER_STRATEGIES = ("probe", "setfit")
EXPORTED_STRATEGIES = ("probe", "setfit", "finetune", "lora")


class OnnxUnavailableError(BertwiseError, ImportError):
    """onnx or onnxruntime is not installed."""


class OnnxExportError(BertwiseError, ValueError):
    """A model cannot be exported to ONNX, or an exported file cannot be used."""


def require_onnx(*, runtime_only: bool = False) -> Any:
    """Import and return onnxruntime (and check onnx unless ``runtime_only``), or say how to install them."""
    missing = []
    for name in ("onnxruntime",) if runtime_only else ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise OnnxUnavailableError(
            f"ONNX support needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed "
            f"for this Python ({sys.executable}); run: {INSTALL_HINT}"
        )
    import onnxruntime

    return onnxruntime


class OnnxRunner:
    """An ONNX Runtime session fed like bertwise's torch path: same tokenizer, truncation and length-sorted batches.

    ``run`` returns the graph's output as float32, one row per text in input order: pooled embeddings for an exported
    encoder (as :meth:`Encoder.encode <bertwise.backbone.encoder.Encoder.encode>` does), logits for a classifier.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        tokenizer_dir: str | Path,
        *,
        max_length: int | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        ort = require_onnx(runtime_only=True)
        path = Path(onnx_path)
        if not path.is_file():
            raise OnnxExportError(f"ONNX model '{path}' does not exist; expected a file written by bertwise export")
        options = ort.SessionOptions()
        # The same thread count as torch, so the two paths are compared (and serve) on equal terms.
        options.intra_op_num_threads = threads or _torch_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise to a user
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for a bad or truncated file
            raise OnnxExportError(
                f"ONNX Runtime cannot load '{path}' ({type(error).__name__}: {str(error).splitlines()[0][:300]}); "
                "expected a complete file written by bertwise export"
            ) from error
        self.path = path
        self.metadata = {
            key.removeprefix(META_PREFIX): value
            for key, value in self.session.get_modelmeta().custom_metadata_map.items()
            if key.startswith(META_PREFIX)
        }
        names = [graph_input.name for graph_input in self.session.get_inputs()]
        unknown = [name for name in names if name not in (*INPUT_NAMES, "token_type_ids")]
        if "input_ids" not in names or unknown:
            raise OnnxExportError(
                f"ONNX model '{path}' takes inputs {names}; expected input_ids and attention_mask "
                "(and optionally token_type_ids)"
            )
        self.input_names = names
        output = self.session.get_outputs()[0]
        self.output_name = str(output.name)
        self.width = output.shape[-1] if isinstance(output.shape[-1], int) else None
        recorded = self.metadata.get("max_length")
        if max_length is None and recorded is None:
            raise OnnxExportError(f"ONNX model '{path}' records no max_length; pass max_length=")
        self.max_length = int(max_length if max_length is not None else recorded)  # type: ignore[arg-type]
        self.batch_size = batch_size or CPU_BATCH_SIZE
        self.tokenizer = load_tokenizer(str(tokenizer_dir))
        self.pad_id = int(self.tokenizer.pad_token_id or 0)

    def run(self, texts: Sequence[str]) -> np.ndarray:
        """The graph's float32 output for every text, in input order."""
        if not texts:  # the tokenizer fails on an empty list
            return np.zeros((0, self.width or 0), dtype=np.float32)
        tokenized = tokenize(self.tokenizer, texts, self.max_length)
        return self.run_ids(tokenized.input_ids)

    def run_ids(self, input_ids: Sequence[Sequence[int]]) -> np.ndarray:
        lengths = [len(ids) for ids in input_ids]
        output: np.ndarray | None = None
        if self.width is not None:
            output = np.empty((len(input_ids), self.width), dtype=np.float32)
        for batch in padding_aware_batches(lengths, self.batch_size):
            feeds = self._feeds([input_ids[i] for i in batch])
            result = np.asarray(self.session.run([self.output_name], feeds)[0], dtype=np.float32)
            if output is None:
                output = np.empty((len(input_ids), result.shape[1]), dtype=np.float32)
            output[batch] = result
        if output is None:  # no texts and a symbolic width: an empty result of unknown width
            return np.zeros((0, 0), dtype=np.float32)
        return output

    def _feeds(self, sequences: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        width = max(len(ids) for ids in sequences)
        ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:  # a graph exported elsewhere may ask for the segment ids
            feeds["token_type_ids"] = np.zeros_like(ids)
        return {name: feeds[name] for name in self.input_names}


class OnnxEncoder(OnnxRunner):
    """An exported encoder: ``encode(texts)`` gives the float32 (n, hidden) matrix the torch Encoder gives."""

    @property
    def dimension(self) -> int:
        if self.width is None:
            raise OnnxExportError(f"ONNX model '{self.path}' has no fixed embedding width")
        return int(self.width)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.run(texts)


class OnnxClassifier(OnnxRunner):
    """An exported classifier: ``logits(texts)`` (n, labels) and ``predict_proba(texts)`` (softmax, float64)."""

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.run(texts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.run(texts))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, as FinetuneClassifier turns its logits into probabilities."""
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


class OnnxModel:
    """A saved probe or fine-tuned model predicting through ONNX Runtime, with the interface ``bertwise.load`` gives.

    ``classes_``, ``predict_proba(texts)`` (float64, columns in ``classes_`` order), ``predict(texts)``,
    ``manifest_`` and ``folder_``. A probe runs the exported encoder, then the saved logistic-regression head with
    scikit-learn's own code; a fine-tuned model runs the exported classifier, then a softmax.
    """

    runtime = "onnx"

    def __init__(self, folder: Path, manifest: dict[str, Any], runner: OnnxRunner, head: Any | None) -> None:
        self.folder_ = folder.resolve()
        self.manifest_ = manifest
        self.classes_ = classes_array(manifest)
        self.runner_ = runner
        self.head_ = head

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from bertwise.data.containers import check_texts

        items = check_texts(texts, "predict")
        if not items:
            return np.zeros((0, len(self.classes_)), dtype=np.float64)
        if self.head_ is None:
            return softmax(self.runner_.run(items))
        probabilities = np.zeros((len(items), len(self.classes_)))
        probabilities[:, self.head_.classes_] = self.head_.predict_proba(self.runner_.run(items))
        return probabilities

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        probabilities = self.predict_proba(texts)
        return self.classes_[probabilities.argmax(axis=1)] if len(probabilities) else self.classes_[:0]


def load_onnx(
    path: str | Path, *, threads: int | None = None, batch_size: int | None = None, onnx_file: Path | None = None
) -> OnnxModel:
    """The model in folder ``path`` predicting through its ONNX export (``bertwise export DIR --onnx`` wrote it).

    Every file is checked against the manifest first, the ONNX file included, as ``bertwise.load`` checks them.
    ``threads``: ONNX Runtime's threads (default: torch's thread count). ``onnx_file`` runs another file than the
    recorded one (the export's own parity check uses this before the file is moved into place).
    """
    require_onnx(runtime_only=True)
    folder = Path(path)
    manifest = verify_model_folder(folder)
    strategy = manifest["strategy"]
    check_exportable(folder, strategy)
    try:
        with unloadable_as_model_error(folder):
            return _load_verified_onnx(folder, manifest, onnx_file, threads, batch_size)
    except OnnxExportError as error:
        if "has no ONNX export" in str(error):
            raise
        # The folder's files passed their sha256 checks but ONNX Runtime or the tokenizer cannot use them.
        raise ModelError(str(error)) from error


def _load_verified_onnx(
    folder: Path, manifest: dict[str, Any], onnx_file: Path | None, threads: int | None, batch_size: int | None
) -> OnnxModel:
    strategy = manifest["strategy"]
    if onnx_file is None:
        record = manifest.get("onnx")
        if not isinstance(record, dict) or record.get("file") not in manifest["files"]:
            raise OnnxExportError(
                f"model folder '{folder}' has no ONNX export (manifest.json lists no onnx file); "
                f"expected one written by: bertwise export {folder} --onnx"
            )
        onnx_file = folder / str(record["file"])
    if strategy in ENCODER_STRATEGIES:
        backbone = manifest["backbone"]
        encoder = OnnxEncoder(
            onnx_file,
            folder / BACKBONE_DIR,
            max_length=int(backbone["max_length"]),
            batch_size=batch_size,
            threads=threads,
        )
        _check_metadata(encoder, "encoder", _encoder_metadata(backbone))
        read_head = read_probe_head if strategy == "probe" else read_setfit_head
        return OnnxModel(folder, manifest, encoder, read_head(folder, manifest, encoder.dimension))
    if strategy == "lora":
        # The adapters' folder holds no tokenizer: the base model's, checked against its recorded weights hash.
        tokenizer_dir = LoraClassifier.recorded_base(folder, manifest).path
        max_length = int(manifest["lora"]["max_length"])
    else:
        tokenizer_dir, max_length = str(folder / "model"), int(manifest["finetune"]["max_length"])
    classifier = OnnxClassifier(onnx_file, tokenizer_dir, max_length=max_length, batch_size=batch_size, threads=threads)
    _check_metadata(classifier, "classifier", {"max_length": str(max_length)})
    return OnnxModel(folder, manifest, classifier, None)


def check_exportable(folder: Path, strategy: str) -> None:
    if strategy not in EXPORTED_STRATEGIES:
        why = _NOT_EXPORTED.get(strategy, "its prediction path has no ONNX graph yet")
        raise OnnxExportError(
            f"model folder '{folder}' holds a {strategy} model; ONNX export covers "
            f"{', '.join(EXPORTED_STRATEGIES)} models only ({why}): predict it with bertwise predict {folder}"
        )


# Why a strategy's folder is not exported, in the refusal's words.
_NOT_EXPORTED = {
    "zero-shot": "zero-shot ranks label descriptions at prediction time",
}


def _encoder_metadata(backbone: dict[str, Any]) -> dict[str, str]:
    """What an encoder graph for the manifest's ``backbone`` record says of itself (as export_backbone_onnx writes)."""
    expected = {
        "pooling": str(backbone["pooling"]),
        "normalize": str(bool(backbone.get("normalize", False))).lower(),
        "max_length": str(backbone["max_length"]),
    }
    if backbone.get("dense"):  # graphs exported before Dense layers were run carry no such key, and had none
        expected["dense"] = ",".join(f"{layer['in_features']}->{layer['out_features']}" for layer in backbone["dense"])
    return expected


def _check_metadata(runner: OnnxRunner, kind: str, expected: dict[str, str]) -> None:
    """The ONNX file must be the kind of graph, with the tokenization, that the folder's model needs."""
    found = {key: runner.metadata.get(key) for key in ("kind", *expected)}
    wanted = {"kind": kind, **expected}
    if found != wanted:
        raise OnnxExportError(
            f"'{runner.path}' was exported as {found}; expected {wanted} for this model folder: export it again with "
            "bertwise export DIR --onnx"
        )
