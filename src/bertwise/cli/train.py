"""`bertwise train`: fit one strategy on all the given rows and save it as a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertwise.artifact.outputs import check_writable_folder
from bertwise.cli.help_texts import EXPERIMENT_HELP, TRACK_HELP, TRACKING_URI_HELP
from bertwise.cli.track import say_tracked, tracker
from bertwise.data.split import resolve_parts
from bertwise.strategies.registry import check_strategy_name

PRECISION_HELP = (
    "auto (bfloat16 where the hardware has bfloat16 units: GPUs and recent CPUs; else float32), float32 or bfloat16."
)


def train_command(
    data: Annotated[
        Path,
        typer.Argument(help="CSV, TSV, JSONL or Parquet file, or a folder with train.* (and optionally test.*)."),
    ],
    strategy: Annotated[str, typer.Option(help="The strategy to train: zero-shot, probe, finetune, lora or setfit.")],
    out: Annotated[
        Path, typer.Option(help="Model folder to write (new, empty, or an earlier model folder to replace).")
    ],
    test: Annotated[
        Path | None,
        typer.Option(help="Test file to score the model on (default: test.* beside train.* in a data folder)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Backbone: a local model directory or a Hugging Face Hub id (default: the embedded model)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for training (default 0, or the one recorded in --params-from)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "auto",
    text_col: Annotated[str, typer.Option(help="Column holding the texts.")] = "text",
    label_col: Annotated[str, typer.Option(help="Column holding the labels.")] = "label",
    params_from: Annotated[
        Path | None,
        typer.Option(
            help="A compare results.json: train with the parameters it recorded for this strategy (a budget may "
            "have shortened fine-tuning), so the model is the one compare evaluated."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars while encoding and training.")] = True,
    track: Annotated[str | None, typer.Option(help=TRACK_HELP)] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_URI_HELP)] = None,
    experiment: Annotated[str | None, typer.Option(help=EXPERIMENT_HELP)] = None,
) -> None:
    """Train one strategy on every row of DATA and save a self-describing model folder (safetensors, manifest)."""
    import time

    from bertwise.artifact.folder import check_output_folder

    # What train() checks first, checked here before it imports the libraries (seconds) and reads the data: the
    # strategy (train's own words), an output folder that is not a model folder or cannot be written, a data path
    # that does not exist.
    check_strategy_name(strategy)
    check_output_folder(out)
    check_writable_folder(out, "--out")
    resolve_parts(data, test)
    tracking = tracker(track, tracking_uri, experiment)

    from bertwise.artifact.folder import folder_size
    from bertwise.training import train

    started = time.perf_counter()
    estimator = train(
        data,
        strategy=strategy,
        out=out,
        test=test,
        model=model,
        seed=seed,
        device=device,
        precision=precision,
        text_col=text_col,
        label_col=label_col,
        params_from=params_from,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    manifest = estimator.manifest_
    for note in manifest["training_data"].get("notes", []):
        typer.echo(f"note: {note}", err=True)
    classes = [str(label) for label in manifest["classes"]]
    shown = ", ".join(classes[:8]) + (f", ... ({len(classes)} in all)" if len(classes) > 8 else "")
    typer.echo(f"saved {strategy} model to {out} ({folder_size(out) / 1e6:.1f} MB)")
    typer.echo(f"classes: {shown}")
    typer.echo(
        f"trained on {manifest['training_data']['rows']} rows of {manifest['training_data']['source']} in "
        f"{manifest.get('fit_seconds', seconds):.1f} s ({seconds:.1f} s in all)"
    )
    metrics = manifest.get("metrics") or {}
    if "macro_f1" in metrics:
        typer.echo(
            f"test: macro-F1 {metrics['macro_f1'] * 100:.1f}, accuracy {metrics['accuracy'] * 100:.1f} on "
            f"{metrics['test_rows']} rows of {metrics['test_source']}"
        )
    elif "validation_macro_f1" in metrics:
        typer.echo(
            f"validation macro-F1 {metrics['validation_macro_f1'] * 100:.1f} on {metrics['validation_rows']} held-out "
            "training rows (optimistic: they chose the best step; give --test for a test score)"
        )
    typer.echo(f"predict with: bertwise predict {out} FILE")
    if tracking is not None and say_tracked(tracking.log_model(out)):
        raise typer.Exit(code=1)
