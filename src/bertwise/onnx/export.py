"""ONNX export of a BERT encoder or classifier, and of a model folder after a parity check against its torch model.

Exporter: torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). torch 2.13's default, the
dynamo exporter, needs the onnxscript package, which the ``[onnx]`` extra does not install (and bertwise must work
offline with what the extra brings); the TorchScript exporter needs nothing beyond torch and onnx, exports BERT's
graph with dynamic batch and sequence axes, and matches torch float32 to about 1e-7 (tests/export/test_onnx.py).

The exported graph takes exactly what bertwise's torch path feeds the model: ``input_ids`` and ``attention_mask``.
``token_type_ids`` is never passed there (BERT then uses segment 0 everywhere), so the graph bakes in those zeros
rather than asking the caller for a tensor of them. Pooling and normalisation are part of the encoder's graph, so an
ONNX encoder returns the same vectors as :meth:`bertwise.backbone.encoder.Encoder.encode` with precision float32.

A model folder (:mod:`bertwise.artifact.folder`) gets its export through :func:`export_model_folder` (``bertwise export
DIR --onnx``): ``onnx/model.onnx``, listed with its sha256 in the manifest, written only after a parity check of its
predictions against the torch model's; :func:`~bertwise.onnx.runtime.load_onnx` predicts through it with the interface
``bertwise.load`` gives (docs/onnx.md).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertwise.artifact.folder import (
    load,
    read_manifest,
    refresh_model_card,
    sha256_file,
    verify_model_folder,
    write_manifest,
)
from bertwise.backbone.loading import quiet_loading
from bertwise.backbone.resolve import Backbone, PoolingChoice, resolve_backbone
from bertwise.exceptions import BertwiseError
from bertwise.onnx.parity import DEFAULT_CHECK_ROWS as DEFAULT_CHECK_ROWS
from bertwise.onnx.parity import DEFAULT_SAMPLE_TEXTS as DEFAULT_SAMPLE_TEXTS
from bertwise.onnx.parity import FLOAT32_MIN_AGREEMENT, INT8_MIN_AGREEMENT, ParityReport, check_parity
from bertwise.onnx.parity import OnnxParityError as OnnxParityError
from bertwise.onnx.parity import default_check_texts as default_check_texts
from bertwise.onnx.parity import read_check_texts as read_check_texts
from bertwise.onnx.runtime import (
    ENCODER_STRATEGIES,
    INPUT_NAMES,
    META_PREFIX,
    OnnxExportError,
    check_exportable,
)

# Also importable from here, where docs/onnx.md and the CLI have always found them.
from bertwise.onnx.runtime import OnnxClassifier as OnnxClassifier
from bertwise.onnx.runtime import OnnxEncoder as OnnxEncoder
from bertwise.onnx.runtime import OnnxRunner as OnnxRunner
from bertwise.onnx.runtime import OnnxUnavailableError as OnnxUnavailableError
from bertwise.onnx.runtime import load_onnx as load_onnx
from bertwise.onnx.runtime import require_onnx as require_onnx
from bertwise.onnx.runtime import softmax as softmax
from bertwise.strategies.state import BACKBONE_DIR
from bertwise.util import atomic

# 17 is the first opset with a LayerNormalization operator (one node per layer norm instead of seven) and is run by
# every onnxruntime the extra allows (>= 1.18).
OPSET = 17

# Traced through the eager attention (the same float32 arithmetic as torch's fused SDPA kernel): ONNX Runtime ran that
# graph faster than the traced SDPA graph (docs/onnx.md has the measurement).
EXPORT_ATTENTION = "eager"


# ----------------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------------


def export_encoder_onnx(model_dir: str | Path, out_path: str | Path, *, pooling: PoolingChoice = "auto") -> Path:
    """Export a plain backbone directory as a graph from token ids to pooled sentence embeddings.

    Output ``embeddings``: float32, shape (batch, dimension): pooled over the attention mask, then through the
    sentence-transformers checkpoint's Dense layers and Normalize module if it has them, exactly as
    :class:`~bertwise.backbone.encoder.Encoder` computes them (the same :mod:`bertwise.backbone.head` is traced).
    ``pooling`` overrides the model's own, as the probe's does.
    """
    require_onnx()
    return export_backbone_onnx(resolve_backbone(str(model_dir), pooling=pooling), out_path)


def export_backbone_onnx(backbone: Backbone, out_path: str | Path) -> Path:
    """:func:`export_encoder_onnx` for an already described backbone (a model folder's, as it was trained)."""
    import torch
    from transformers import AutoModel

    from bertwise.backbone.head import build_head

    require_onnx()
    with quiet_loading():
        model = AutoModel.from_pretrained(
            backbone.path,
            use_safetensors=True,
            trust_remote_code=False,
            dtype=torch.float32,
            attn_implementation=EXPORT_ATTENTION,
        )

    class PooledEncoder(torch.nn.Module):
        def __init__(self, network: Any) -> None:
            super().__init__()
            self.network = network
            self.head = build_head(backbone, int(network.config.hidden_size))

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.network(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.head(hidden, attention_mask)

    metadata = {
        "kind": "encoder",
        "pooling": backbone.pooling,
        "dense": ",".join(f"{layer.in_features}->{layer.out_features}" for layer in backbone.dense),
        "normalize": str(backbone.normalize).lower(),
        "max_length": str(backbone.max_length),
        "weights_sha256": backbone.sha256,
    }
    return _export(PooledEncoder(model), model.config, Path(out_path), "embeddings", metadata)


def export_classifier_onnx(model_dir: str | Path, out_path: str | Path, *, max_length: int | None = None) -> Path:
    """Export an AutoModelForSequenceClassification directory as a graph from token ids to ``logits`` (batch, labels).

    ``max_length`` is recorded for the runner (default: the directory's own limit, as fine-tuning uses).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    require_onnx()
    backbone = resolve_backbone(str(model_dir))
    with quiet_loading():
        model = AutoModelForSequenceClassification.from_pretrained(
            backbone.path,
            use_safetensors=True,
            trust_remote_code=False,
            dtype=torch.float32,
            attn_implementation=EXPORT_ATTENTION,
        )
    return _export_logits(model, Path(out_path), max_length or backbone.max_length, backbone.sha256)


def export_lora_onnx(estimator: Any, out_path: str | Path) -> Path:
    """Export a fitted or loaded ``lora`` estimator as one classifier graph: its adapters merged into a copy of the
    base weights (W + B·A·alpha/r, peft's ``merge_and_unload``), so the graph is a plain fine-tuned network's and
    ONNX Runtime runs it at fine-tuning's speed, with no adapter matmuls left."""
    require_onnx()
    network = estimator.merged_network()
    network.set_attn_implementation(EXPORT_ATTENTION)
    return _export_logits(network, Path(out_path), int(estimator.max_length_), str(estimator.backbone_.sha256))


def _export_logits(model: Any, out_path: Path, max_length: int, weights_sha256: str) -> Path:
    """Trace a sequence classifier into a graph from token ids to ``logits`` (batch, labels)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, network: Any) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.network(input_ids=input_ids, attention_mask=attention_mask).logits

    metadata = {
        "kind": "classifier",
        "max_length": str(max_length),
        "weights_sha256": weights_sha256,
        "labels": ",".join(str(model.config.id2label[i]) for i in range(model.config.num_labels)),
    }
    return _export(Logits(model), model.config, out_path, "logits", metadata)


def _export(module: Any, config: Any, out_path: Path, output_name: str, metadata: dict[str, str]) -> Path:
    """Trace ``module`` into ``out_path`` (written beside it first, then renamed: no reader sees half a file)."""
    import torch

    import onnx

    module.eval()
    # Two rows, the second padded: the trace must go through the masking code. (transformers skips the attention mask
    # when no row is padded, but not while tracing; padding here keeps that true should a version forget.)
    length = max(2, min(8, int(getattr(config, "max_position_embeddings", 8))))
    generator = torch.Generator().manual_seed(0)
    low = min(5, int(config.vocab_size) - 1)
    input_ids = torch.randint(low, int(config.vocab_size), (2, length), generator=generator)
    attention_mask = torch.ones((2, length), dtype=torch.long)
    attention_mask[1, length // 2 :] = 0
    axes = {"batch": 0, "sequence": 1}
    dynamic_axes = {name: {index: axis for axis, index in axes.items()} for name in INPUT_NAMES}
    dynamic_axes[output_name] = {0: "batch"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic.atomic_path(out_path) as temporary:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                # The exporter warns that it is the legacy one and that it traced a shape comparison in transformers'
                # mask code (true for every shape); neither is something the user can act on.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    (input_ids, attention_mask),
                    str(temporary),
                    dynamo=False,
                    input_names=list(INPUT_NAMES),
                    output_names=[output_name],
                    dynamic_axes=dynamic_axes,
                    opset_version=OPSET,
                    do_constant_folding=True,
                )
            model = onnx.load(str(temporary))
            onnx.checker.check_model(model)
            del model.metadata_props[:]
            for key, value in metadata.items():
                entry = model.metadata_props.add()
                entry.key, entry.value = META_PREFIX + key, value
            onnx.save(model, str(temporary))
    except BertwiseError:
        raise
    except Exception as error:  # exporter failures come in many types; all mean "this model cannot be exported"
        raise OnnxExportError(
            f"exporting {type(module.network).__name__} to ONNX at '{out_path}' failed "
            f"({type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}); expected a BERT-like "
            "transformers model that torch's TorchScript exporter can trace"
        ) from error
    return out_path


def quantize_onnx(source: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantisation of the matrix products' weights (activations quantised per batch at run time).

    Opt-in only: smaller and faster on CPUs with int8 dot-product units, at some cost in fidelity (docs/onnx.md).
    """
    require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import onnx

    source, out_path = Path(source), Path(out_path)
    with atomic.atomic_path(out_path) as temporary:
        # It logs "please run pre-processing" on the root logger: shape inference adds nothing here, the graph's
        # shapes are already known.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(
                source,
                temporary,
                weight_type=QuantType.QInt8,
                # Products with a weight matrix only (the attention's activation-by-activation products stay float32:
                # quantising them as well measured both slower and less faithful), with one scale per output channel
                # (closer to float32 than one scale per matrix; docs/onnx.md has both).
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                # Shape inference cannot type the outputs of onnxruntime's fused operators; they are all float32.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
            )
        finally:
            logging.disable(logging.NOTSET)
        # quantize_dynamic keeps the graph but not always the metadata; copy ours across.
        model, original = onnx.load(str(temporary)), onnx.load(str(source), load_external_data=False)
        del model.metadata_props[:]
        model.metadata_props.extend(original.metadata_props)
        entry = model.metadata_props.add()
        entry.key, entry.value = META_PREFIX + "quantized", "int8-dynamic"
        onnx.save(model, str(temporary))
    return out_path


# ----------------------------------------------------------------------------------------------------------------
# Model folders: export with a parity check
# ----------------------------------------------------------------------------------------------------------------

ONNX_FILE = "onnx/model.onnx"


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_model_folder` wrote."""

    path: Path
    bytes: int
    quantized: bool
    export_seconds: float
    parity: ParityReport

    def line(self) -> str:
        kind = "int8 (dynamic quantisation)" if self.quantized else "float32"
        return f"wrote {self.path} ({self.bytes / 1e6:.1f} MB, {kind}) in {self.export_seconds:.1f} s"


def export_model_folder(
    path: str | Path,
    *,
    quantize: bool = False,
    check_texts: Sequence[str] | None = None,
    check_source: str | None = None,
    min_agreement: float | None = None,
) -> ExportSummary:
    """Add ``onnx/model.onnx`` to model folder ``path`` once its predictions match the torch model's.

    The parity check predicts ``check_texts`` (default: a bundled sample of general-English sentences and
    paragraphs) through torch float32 and through the new ONNX file; below ``min_agreement`` (a share; default 1.0
    for float32, :data:`INT8_MIN_AGREEMENT` with ``quantize``) it raises :class:`OnnxParityError` and the folder is
    left as it was. On success the file is listed in manifest.json with its sha256, so ``bertwise.load`` still checks
    every file, and the manifest's ``onnx`` section records how it was made and what the check found.
    """
    import shutil
    import time
    import uuid

    require_onnx()
    folder = Path(path)
    manifest = verify_model_folder(folder)
    strategy = manifest["strategy"]
    check_exportable(folder, strategy)
    threshold = (
        min_agreement if min_agreement is not None else INT8_MIN_AGREEMENT if quantize else FLOAT32_MIN_AGREEMENT
    )
    if not 0.0 <= threshold <= 1.0:
        raise OnnxExportError(f"the least label agreement must be between 0 and 1 (a share); got {threshold!r}")
    if check_texts is None:
        check_texts, check_source = default_check_texts(), "bundled general-English sample"
    texts = [text for text in check_texts if text.strip()]
    if not texts:
        raise OnnxExportError(f"the parity check got no non-empty texts from {check_source or 'check_texts'}")

    started = time.perf_counter()
    # Hidden and beside the destination: the rename into place never crosses file systems, and save_model's
    # overwrite check does not count it as a foreign file should this process die before removing it.
    staging = folder / f".onnx.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        # The reference is torch float32 on the CPU: what the float32 graph computes, whatever precision the folder
        # predicts in by default (bfloat16 on some CPUs moves probabilities by about 1e-2; docs/onnx.md).
        reference = load(folder, device="cpu", precision="float32")
        exported = staging / "model.onnx"
        if strategy == "probe":
            export_backbone_onnx(reference.backbone_, exported)
        elif strategy == "setfit":  # its contrastively trained body, pooled as sentence-transformers pools it
            export_backbone_onnx(resolve_backbone(str(folder / BACKBONE_DIR)), exported)
        elif strategy == "lora":
            export_lora_onnx(reference, exported)
        else:
            export_classifier_onnx(folder / "model", exported, max_length=int(manifest["finetune"]["max_length"]))
        if quantize:
            exported = quantize_onnx(exported, staging / "model.int8.onnx")
        export_seconds = time.perf_counter() - started
        candidate = load_onnx(folder, onnx_file=exported)
        report = check_parity(reference, candidate, texts, min_agreement=threshold, source=check_source or "texts")
        if not report.passed:
            kind = "int8" if quantize else "float32"
            difference = f"; for example {report.first_difference}" if report.first_difference else ""
            raise OnnxParityError(
                f"the {kind} ONNX export of '{folder}' failed its parity check: labels agree on "
                f"{report.agreement * 100:.1f}% of {report.texts} texts ({report.source}), expected at least "
                f"{threshold * 100:g}%; max probability difference {report.max_probability_difference:.2g}"
                f"{difference}. Nothing was written; the folder is as it was"
            )
        destination = folder / ONNX_FILE
        destination.parent.mkdir(exist_ok=True)
        # The file first, then the manifest that lists it: should the process die in between, the folder still loads
        # or is refused until exported again (a first export is an unlisted file outside the weights folder; a
        # replaced one fails its sha256 check), rather than listing a file that is not there.
        os.replace(exported, destination)
        _record_in_manifest(folder, destination, quantize, report, export_seconds)
        size = destination.stat().st_size
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportSummary(destination, size, quantize, export_seconds, report)


# The name the package exports: ``bertwise.export_onnx(DIR)`` is ``bertwise export DIR --onnx``.
export_onnx = export_model_folder


def _record_in_manifest(
    folder: Path, onnx_path: Path, quantized: bool, report: ParityReport, export_seconds: float
) -> None:
    """List the ONNX file (with its sha256) and describe it in manifest.json, replaced in one rename.

    The manifest is rewritten as save_model writes it, sealed again (its content_sha256 now covers the onnx record),
    so ``verify_model_folder`` checks the new file like every other and a later save over the folder replaces it.
    """
    import onnxruntime
    import torch

    import onnx

    manifest = read_manifest(folder)  # its content hash checked again: nothing edited since the export began is kept
    relative = onnx_path.relative_to(folder).as_posix()
    manifest["files"][relative] = sha256_file(onnx_path)
    if isinstance(manifest.get("file_bytes"), dict):  # a format_version 1 manifest has none
        manifest["file_bytes"][relative] = onnx_path.stat().st_size
    manifest["onnx"] = {
        "file": relative,
        "kind": "encoder" if manifest["strategy"] in ENCODER_STRATEGIES else "classifier",
        "inputs": list(INPUT_NAMES),
        "quantized": "int8-dynamic" if quantized else None,
        "opset": OPSET,
        "exporter": f"torch {torch.__version__} TorchScript exporter (dynamo=False)",
        "onnx_version": onnx.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        "export_seconds": round(export_seconds, 1),
        "parity": report.as_dict(),
    }
    refresh_model_card(folder, manifest)  # the card tells how to run the export too (unless the user edited it)
    write_manifest(folder, manifest)
