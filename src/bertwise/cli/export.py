"""``bertwise export DIR --onnx``: add an ONNX Runtime copy of a saved model, checked against the torch model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertwise.artifact.integrity import require_key_to_rewrite
from bertwise.artifact.outputs import check_writable_folder
from bertwise.exceptions import ConfigError

# Mirrors bertwise.onnx.export.DEFAULT_CHECK_ROWS, which --help must not import.
DEFAULT_CHECK_ROWS = 1000


def export_command(
    model: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="Model folder written by bertwise train (or compare --save-best)."),
    ],
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx",
            help="Write DIR/onnx/model.onnx (probe: the encoder with its pooling; finetune: the classifier) and list "
            "it in manifest.json. Needs: pip install 'bertwise\\[onnx]'.",  # \\[: not rich markup
        ),
    ] = False,
    quantize: Annotated[
        bool,
        typer.Option(
            "--quantize",
            help="Quantise the weights to int8 (dynamic quantisation): about 2x faster on CPU than the float32 "
            "export, but labels may differ on a few texts; the check then requires 90% agreement unless "
            "--min-agreement says otherwise.",
        ),
    ] = False,
    check_data: Annotated[
        Path | None,
        typer.Option(
            help="CSV, TSV, JSONL or Parquet file whose texts the parity check predicts with torch and with ONNX "
            "(default: a bundled sample of general-English sentences and paragraphs). Your own texts check best."
        ),
    ] = None,
    text_col: Annotated[str, typer.Option(help="Column of --check-data holding the texts.")] = "text",
    check_rows: Annotated[
        int, typer.Option(help="At most this many texts of --check-data, spread evenly over the file.")
    ] = DEFAULT_CHECK_ROWS,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            help="Least share of texts, in percent, on which ONNX and torch float32 must predict the same label "
            "(default: 100 for float32, 90 with --quantize). Below it nothing is written."
        ),
    ] = None,
) -> None:
    """Export a saved model to ONNX and check that it predicts what the torch model predicts."""
    if not onnx:
        raise ConfigError(
            f"bertwise export needs a format: pass --onnx (the only one so far), e.g. bertwise export {model} --onnx"
        )
    if min_agreement is not None and not 0 <= min_agreement <= 100:
        raise ConfigError(f"--min-agreement is a percentage between 0 and 100; got {min_agreement:g}")
    if check_rows < 1:
        raise ConfigError(f"--check-rows must be at least 1; got {check_rows}")

    if model.is_dir():
        # The ONNX files go into the model folder: refused now rather than after the export and its parity check.
        check_writable_folder(model, "the model folder")

    from bertwise.artifact.folder import verify_model_folder
    from bertwise.onnx.export import export_model_folder, read_check_texts, require_onnx

    require_onnx()  # before reading anything: the missing extra is the first thing to hear about
    if model.is_dir():
        from bertwise.artifact.folder import read_manifest

        # Checked again when the manifest is rewritten; here it costs nothing rather than an export and its check.
        require_key_to_rewrite(model / "manifest.json", read_manifest(model))
    # A missing or damaged folder is refused in one line, before the line that announces the export (export_model_folder
    # checks it again: a second read of its files, short beside an export).
    verify_model_folder(model)
    texts = read_check_texts(check_data, text_col=text_col, limit=check_rows) if check_data is not None else None
    typer.echo(f"exporting {model} to ONNX{' (int8)' if quantize else ''} and checking it...", err=True)
    summary = export_model_folder(
        model,
        quantize=quantize,
        check_texts=texts,
        check_source=str(check_data) if check_data is not None else None,
        min_agreement=min_agreement / 100 if min_agreement is not None else None,
    )
    parity = summary.parity
    typer.echo(summary.line())
    typer.echo(parity.line())
    typer.echo(
        f"on those texts: torch float32 {parity.texts / max(parity.torch_seconds, 1e-9):.0f} texts/s, "
        f"ONNX Runtime {parity.texts / max(parity.onnx_seconds, 1e-9):.0f} texts/s (a small sample: see "
        "benchmarks/onnx_speed.py for a measurement)"
    )
    typer.echo(f"predict through it in Python: bertwise.onnx.export.load_onnx('{model}').predict(texts)")
