"""``bertwise predict DIR INPUT [--out FILE]``: a saved model's prediction for every row of a file, in chunks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bertwise.artifact.outputs import check_writable_file
from bertwise.cli.help_texts import FORMAT_HELP, INPUT_HELP

DEFAULT_CHUNK_ROWS = 2048  # mirrors bertwise.inference.predict_file.DEFAULT_CHUNK_ROWS, which --help must not import


def predict_command(
    model: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="Model folder written by bertwise train (or compare --save-best)."),
    ],
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help=INPUT_HELP,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output file, in the input's format: every input column, then predicted_label and one "
            "proba_<label> column per class. Written beside it under a temporary name and renamed when complete. "
            "Default: stdout (not for Parquet)."
        ),
    ] = None,
    text_col: Annotated[str, typer.Option(help="Column holding the texts.")] = "text",
    input_format: Annotated[
        str | None,
        typer.Option("--format", help=FORMAT_HELP),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows read, predicted and written at a time: memory depends on this, not on the file.")
    ] = DEFAULT_CHUNK_ROWS,
    decimals: Annotated[
        int | None,
        typer.Option(help="Round the probabilities to this many decimals (default: full float64 precision)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[
        str | None,
        typer.Option(help="auto, float32 or bfloat16 (default: the precision the model was trained with)."),
    ] = None,
    runtime: Annotated[
        str, typer.Option(help="torch, or onnx to run the folder's ONNX export (written by bertwise export --onnx).")
    ] = "torch",
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar on stderr (only when stderr is a terminal).")
    ] = True,
) -> None:
    """Predict a label and per-label probabilities for every row of a file, streaming it in chunks."""
    from bertwise.inference.predict_file import predict_file

    destination = "stdout" if out is None or str(out) == "-" else str(out)
    if destination != "stdout":
        check_writable_file(Path(destination), "--out")  # before the model loads, not after the first chunk
    try:
        summary = predict_file(
            str(model),
            source,
            out,
            text_col=text_col,
            chunk_rows=chunk_rows,
            input_format=input_format,
            decimals=decimals,
            device=device,
            precision=precision,
            runtime=runtime,
            progress=progress and sys.stderr.isatty(),
        )
    except KeyboardInterrupt:
        # The output goes to a temporary file until the end, so an interrupted run leaves the destination as it was.
        where = "" if destination == "stdout" else f"; nothing was written to {destination}"
        typer.echo(f"bertwise: interrupted{where}", err=True)
        raise typer.Exit(code=130) from None
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): stop quietly, as other Unix tools do, and keep Python from
        # complaining again when it flushes stdout at exit.
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass  # stdout is not a file descriptor (an embedding application): nothing will flush to a pipe
        raise typer.Exit(code=141) from None
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(summary.line(), err=True)
