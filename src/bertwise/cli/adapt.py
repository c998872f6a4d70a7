"""`bertwise adapt`: continue the backbone's masked-language-model training on the user's own texts (DAPT)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertwise.data.io import read_text_file, read_unlabeled
from bertwise.data.split import resolve_parts

MODEL_HELP = "Backbone to adapt: a local model directory or a Hugging Face Hub id (default: the embedded model)."


def adapt_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="CSV, TSV, JSONL or Parquet file with a text column, or a folder with train.* (labels "
            "are not needed; a test.* beside it is not read)."
        ),
    ],
    unlabeled: Annotated[
        Path | None,
        typer.Option(help="More in-domain texts: a text file (one text per line) or a data file with a text column."),
    ] = None,
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write the adapted model to (default: bertwise's cache, named by a fingerprint)."),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the texts.")] = 1,
    steps: Annotated[int | None, typer.Option(help="Optimiser steps instead of whole epochs.")] = None,
    learning_rate: Annotated[
        float, typer.Option(help="Peak learning rate (linear warm-up, then linear decay).")
    ] = 5e-5,
    mlm_probability: Annotated[float, typer.Option(help="Share of tokens masked.")] = 0.15,
    max_length: Annotated[
        int | None, typer.Option(help="Tokens per text (default: the backbone's own truncation length).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per optimiser step.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed for the masks, the order, dropout and a fresh MLM head.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    text_col: Annotated[str, typer.Option(help="Column holding the texts.")] = "text",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Adapt the backbone to DATA's domain by masked-language-model training; print the adapted model's folder."""
    train_part = resolve_parts(data, None)[0]
    texts, notes = read_text_file(Path(str(train_part)), text_col=text_col)
    extra: list[str] = []
    if unlabeled is not None:
        extra, more = read_unlabeled(unlabeled, text_col)
        notes += more
    for note in notes:
        typer.echo(f"note: {note}", err=True)

    from bertwise.backbone.adapt import adapt_backbone

    result = adapt_backbone(
        model,
        texts,
        unlabeled=extra,
        seed=seed,
        epochs=epochs,
        steps=steps,
        learning_rate=learning_rate,
        mlm_probability=mlm_probability,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        out=out,
        progress=progress,
    )
    if result.cached:
        typer.echo(f"found this adaptation already made (fingerprint {result.fingerprint[:12]}); not trained again")
    else:
        head = "a fresh MLM head (decoder tied to the word embeddings)" if result.fresh_head else "its own MLM head"
        typer.echo(
            f"adapted {result.base_model} with {head}: {result.steps} steps on {result.texts} texts in "
            f"{result.seconds:.1f} s (peak memory {result.peak_memory_mb:.0f} MB)"
        )
    if result.loss_before is not None and result.loss_after is not None:
        typer.echo(
            f"masked-LM loss on {result.held_out} held-out texts: {result.loss_before:.3f} -> {result.loss_after:.3f}"
        )
    else:
        typer.echo(f"masked-LM loss not measured: no token of the {result.held_out} held-out texts was masked")
    typer.echo(f"adapted model: {result.path}")
    # Two backbones in one comparison: every strategy on each, with the paired difference that says whether it helped.
    typer.echo(f"compare it with its base: bertwise compare {data} --model {model or 'default'} --model {result.path}")
