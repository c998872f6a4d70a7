"""The ``bertwise`` command: a thin layer that parses options, calls the library and prints.

Heavy imports happen inside the commands, so ``bertwise --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bertwise.artifact.outputs import check_writable_file
from bertwise.backbone.device import PRECISION_CHOICES
from bertwise.cli.help_texts import EXPERIMENT_HELP, FORMAT_HELP, INPUT_HELP, TRACK_HELP, TRACKING_URI_HELP, tidy_help
from bertwise.cli.track import say_tracked, tracker
from bertwise.data.io import read_text_file
from bertwise.exceptions import BertwiseError, ConfigError
from bertwise.inference.embedding import embed_with_stats
from bertwise.pipeline.settings import layered, parse_sets
from bertwise.util import atomic
from bertwise.util.version import __version__

app = typer.Typer(
    name="bertwise",
    help="Zero-shot, frozen probe or fine-tuning? Measure which BERT strategy wins on your own labeled texts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Commands inherit this from the app's context: -h works wherever --help does.
    context_settings={"help_option_names": ["-h", "--help"]},
)

STRATEGIES_HELP = (
    "Strategies to run, comma-separated: zero-shot, probe, finetune (the default three), and the opt-in lora and "
    "setfit."
)
OUT_HELP = "Folder for results.json, report.html, summary.md and the test predictions."
SEED_HELP = "Seed for the split, the folds, the subsamples and training (further seeds count up from it)."
PRECISION_HELP = (
    "auto (bfloat16 where the hardware has bfloat16 units: GPUs and recent CPUs; else float32), float32 or bfloat16."
)
MODEL_HELP = "Backbone: a local model directory or a Hugging Face Hub id (default: the embedded all-MiniLM-L6-v2)."
COMPARE_MODEL_HELP = (
    f"{MODEL_HELP} Repeat it to compare backbones: every strategy runs on each (--model A --model B), as pairs "
    "named strategy@backbone; 'default' is the embedded one."
)
POOLING_HELP = (
    "Embedding pooling: auto (a sentence-transformers checkpoint's own modules, else mean), cls, max, mean, "
    "mean_sqrt_len_tokens, weightedmean or lasttoken."
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"bertwise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        # Eager: answered while the options are read, before click asks for a command.
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    pass


CONFIG_HELP = (
    "Settings file: a bertwise.toml ([compare] options, [params.<strategy>] hyperparameters) or a results.json to run "
    "that comparison again. Options given on the command line win over the file's (docs/configuration.md)."
)
SET_HELP = (
    "A strategy's hyperparameter, strategy.parameter=value, the value read as TOML (5e-5, 3, true, [0.1, 1.0], "
    "text); repeatable. Applies on every backbone. Example: --set finetune.learning_rate=5e-5."
)


@app.command()
def compare(
    context: typer.Context,
    data: Annotated[
        Path | None,
        typer.Argument(
            help="CSV, TSV, JSONL or Parquet file, or a folder with train.* and test.* (or data in --config)."
        ),
    ] = None,
    test: Annotated[Path | None, typer.Option(help="Test file; without one, see --test-size.")] = None,
    strategies: Annotated[str, typer.Option(help=STRATEGIES_HELP)] = "zero-shot,probe,finetune",
    model: Annotated[list[str] | None, typer.Option(help=COMPARE_MODEL_HELP)] = None,
    out: Annotated[Path, typer.Option(help=OUT_HELP)] = Path("bertwise-results"),
    seed: Annotated[int, typer.Option(help=SEED_HELP)] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "auto",
    text_col: Annotated[str, typer.Option(help="Column holding the texts.")] = "text",
    label_col: Annotated[str, typer.Option(help="Column holding the labels.")] = "label",
    test_size: Annotated[
        float | None,
        typer.Option(
            help="Without a test file: hold out this share as the test set (default: 5-fold cross-validation "
            "below 5000 rows, else a 0.2 hold-out)."
        ),
    ] = None,
    pooling: Annotated[str, typer.Option(help=POOLING_HELP)] = "auto",
    zero_shot_mode: Annotated[str, typer.Option(help="auto, nli (needs an NLI checkpoint) or embedding.")] = "auto",
    zero_shot_template: Annotated[
        str, typer.Option(help="Label description template for zero-shot; must contain {label}.")
    ] = "This text is about {label}.",
    label_descriptions: Annotated[
        Path | None, typer.Option(help="JSON file mapping labels to descriptions for zero-shot.")
    ] = None,
    priority: Annotated[
        str,
        typer.Option(
            help="accuracy, balanced or cost: the margin (0, 1 or 3 macro-F1 points) within which the whole interval "
            "of a cheaper strategy's difference to the best must lie for the cheaper one to be recommended."
        ),
    ] = "balanced",
    seeds: Annotated[
        int | None,
        typer.Option(help="Runs of fine-tuning, each with its own seed (default 3; 1 under cross-validation)."),
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (used without a test set, under 5000 rows).")] = 5,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Time budget such as 15m or 1h. Sequential protocol: one run of each strategy is cut to fit, the "
            "rest runs while time is left, most useful first. Full protocol: cuts repeats, curve points, then "
            "training length to fit."
        ),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="sequential: stop work on a strategy (seeds, curve repeats, a losing training run) once it cannot "
            "change the recommendation, saying what was skipped and why; full: every planned run."
        ),
    ] = "sequential",
    learning_curve: Annotated[bool, typer.Option(help="Measure learning curves.")] = True,
    report: Annotated[bool, typer.Option(help="Write report.html and summary.md beside results.json.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with the time remaining.")] = True,
    cache: Annotated[
        bool,
        typer.Option(
            help="Reuse stages a previous identical run finished (and embeddings); --no-cache computes everything "
            "afresh."
        ),
    ] = True,
    save_best: Annotated[
        Path | None,
        typer.Option(
            help="Save the recommended strategy's model to this folder (load it with bertwise predict, serve or "
            "bertwise.load): the model behind predictions-<name>.csv, or under cross-validation one refit on "
            "every row."
        ),
    ] = None,
    adapt_domain: Annotated[
        bool,
        typer.Option(
            "--adapt-domain",
            help="Also adapt the backbone to your texts (masked-LM training on the training texts and --unlabeled; "
            "cached) and run every strategy on both, to measure whether it helps.",
        ),
    ] = False,
    unlabeled: Annotated[
        Path | None,
        typer.Option(help="More in-domain texts for --adapt-domain: one per line, or a data file with a text column."),
    ] = None,
    track: Annotated[str | None, typer.Option(help=TRACK_HELP)] = None,
    tracking_uri: Annotated[str | None, typer.Option(help=TRACKING_URI_HELP)] = None,
    experiment: Annotated[str | None, typer.Option(help=EXPERIMENT_HELP)] = None,
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Run the strategies side by side with repeated runs and intervals; recommend one; write an HTML report."""
    from rich.console import Console

    from bertwise.cli.progress import CompareProgress
    from bertwise.pipeline.comparison import compare as run_compare
    from bertwise.report.table import print_comparison

    console = Console(stderr=True)
    names = [name.strip() for name in strategies.split(",") if name.strip()]
    given = {  # compare's keywords as the command line gives them; the config file fills in the options not given
        "data": data,
        "test": test,
        "strategies": names,
        "model": model[0] if model and len(model) == 1 else (model or None),
        "out": out,
        "seed": seed,
        "device": device,
        "precision": precision,
        "text_col": text_col,
        "label_col": label_col,
        "test_size": test_size,
        "pooling": pooling,
        "zero_shot_mode": zero_shot_mode,
        "zero_shot_template": zero_shot_template,
        "label_descriptions": label_descriptions,
        "priority": priority,
        "seeds": seeds,
        "folds": folds,
        "budget": budget,
        "protocol": protocol,
        "learning_curve": learning_curve,
        "report": report,
        "progress": progress,
        "cache": cache,
        "save_best": save_best,
        "adapt_domain": adapt_domain,
        "unlabeled": unlabeled,
    }
    typed = {key: value for key, value in given.items() if _from_command_line(context, key)}
    options = layered(given, config, {**typed, "params": parse_sets(set_ or [])})
    if options["unlabeled"] is not None and not options["adapt_domain"]:
        raise ConfigError("--unlabeled is read only with --adapt-domain; add --adapt-domain or drop --unlabeled")
    if options["data"] is None:
        raise ConfigError("no data given: expected DATA, or data in the --config file's [compare] table")
    out, report, cache = Path(options["out"]), options["report"], options["cache"]
    tracking = tracker(track, tracking_uri, experiment)

    try:
        with CompareProgress(console, results=out / "results.json", bar=options.pop("progress")) as drawing:
            comparison = run_compare(**options, progress=drawing, command=["bertwise", *sys.argv[1:]], track=tracking)
    except KeyboardInterrupt:
        # Raised inside click's invocation, which would turn it into a silent exit 130.
        kept = "results.json and the run cache (rerun the same command to resume)" if cache else "results.json"
        typer.echo(f"bertwise: interrupted; the stages that finished are saved in {kept}", err=True)
        raise typer.Exit(code=130) from None
    print_comparison(comparison, Console())
    typer.echo(f"results: {out / 'results.json'}")
    if report:
        typer.echo(f"report: {out / 'report.html'} (summary: {out / 'summary.md'})")
    if comparison.saved_model is not None:
        from bertwise.artifact.folder import folder_size

        chosen = comparison.recommendation.strategy if comparison.recommendation else None
        typer.echo(
            f"model: {comparison.saved_model} ({chosen}, {folder_size(comparison.saved_model) / 1e6:.1f} MB; "
            f"predict with: bertwise predict {comparison.saved_model} FILE)"
        )
    if comparison.save_best_error is not None:
        typer.echo(f"bertwise: error: --save-best: {comparison.save_best_error}", err=True)
    tracking_failed = say_tracked(comparison.tracked)
    failed = [r.name for r in comparison.results if r.status != "ok"]
    if failed or comparison.save_best_error is not None or tracking_failed:
        raise typer.Exit(code=1)


def _from_command_line(context: typer.Context, name: str) -> bool:
    """Whether the user typed option ``name`` (rather than it taking its default), so it wins over --config."""
    source = context.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


@app.command("zero-shot")
def zero_shot(
    text: Annotated[str, typer.Argument(help="The text to classify.")],
    labels: Annotated[str, typer.Option(help="Candidate labels, comma-separated.")],
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    mode: Annotated[str, typer.Option(help="auto, nli (needs an NLI checkpoint) or embedding.")] = "auto",
    template: Annotated[str, typer.Option(help="Label description template; must contain {label}.")] = (
        "This text is about {label}."
    ),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Rank candidate labels for one text with no training (JSON shaped like the transformers pipeline's)."""
    from bertwise.strategies.zero_shot import rank_labels

    ranking = rank_labels(text, labels.split(","), model=model, mode=mode, template=template, device=device)
    typer.echo(json.dumps(ranking, indent=2, ensure_ascii=False))


EMBED_FORMATS = (".npy", ".parquet")


@app.command()
def embed(
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help=INPUT_HELP,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Output file: .npy (a float32 matrix, row i for input row i) or .parquet (columns text and "
            "embedding, a fixed-size list of float32)."
        ),
    ],
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    text_col: Annotated[str, typer.Option(help="Column holding the texts.")] = "text",
    input_format: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Texts per batch (default: the encoder's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    pooling: Annotated[str, typer.Option(help=POOLING_HELP)] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "auto",
    cache: Annotated[
        bool,
        typer.Option(
            help="Read and write the disk cache of embeddings ($BERTWISE_CACHE_DIR, else ~/.cache/bertwise; "
            "BERTWISE_CACHE_DIR=off turns it off everywhere)."
        ),
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Embed every text of a file (or stdin) with the frozen backbone; rows stay aligned with the input."""
    import time

    suffix = out.suffix.lower()
    if suffix not in EMBED_FORMATS:
        shown = f"'{suffix}'" if suffix else "'' (no file extension)"
        raise ConfigError(
            f"--out '{out}': unknown format {shown}; expected a file ending in .npy (a float32 matrix) "
            "or .parquet (text and embedding columns)"
        )
    if out.is_dir():
        raise ConfigError(f"--out '{out}' is a folder; expected a file ending in .npy or .parquet")

    check_writable_file(out, "--out")  # before the model loads, not after every text is embedded

    from bertwise.backbone.cache import cache_directory
    from bertwise.backbone.encoder import load_encoder

    notes: list[str] = []
    if source == "-" or input_format is not None:
        from bertwise.inference.predict_file import read_input_texts

        texts = read_input_texts(source, input_format, text_col)
    else:
        texts, notes = read_text_file(Path(source), text_col=text_col)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"--precision must be auto, float32 or bfloat16; got {precision!r}")
    load_encoder(model, pooling, device, precision)  # type: ignore[arg-type]  # loaded before the clock starts
    start = time.perf_counter()
    embedded = embed_with_stats(
        texts,
        model,
        batch_size=batch_size,
        device=device,
        pooling=pooling,
        precision=precision,
        progress=progress,
        cache=cache,
    )
    seconds = time.perf_counter() - start
    _write_embeddings(out, texts, embedded.vectors)
    stats = embedded.stats
    cached = (
        f"cache: {stats.disk_hits} read, {stats.computed} computed"
        if cache and cache_directory() is not None
        else f"cache off: {stats.computed} computed"
    )
    rows, dimension = embedded.vectors.shape
    typer.echo(
        f"embedded {rows} text{'s' if rows != 1 else ''} into {dimension} dimensions in {seconds:.1f} s "
        f"({rows / max(seconds, 1e-6):.0f} texts/s; {cached}) -> {out}",
        err=True,
    )


def _write_embeddings(out: Path, texts: list[str], vectors: Any) -> None:
    """Write .npy or .parquet whole or not at all (util.atomic), so no reader sees half a file."""
    try:
        with atomic.atomic_path(out) as temporary:
            if out.suffix.lower() == ".npy":
                import numpy as np

                with open(temporary, "wb") as handle:
                    np.save(handle, vectors)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                flat = pa.array(vectors.reshape(-1), type=pa.float32())
                table = pa.table(
                    {
                        "text": pa.array(texts, type=pa.string()),
                        "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
                    }
                )
                pq.write_table(table, temporary)
    except OSError as err:
        raise ConfigError(f"cannot write --out '{out}': {err.strerror or err}") from None


# Shipping a chosen model (train, predict, serve, export) lives in one module per command; each imports its heavy
# libraries inside the command, like the commands above.
from bertwise.cli.adapt import adapt_command  # noqa: E402
from bertwise.cli.export import export_command  # noqa: E402
from bertwise.cli.predict import predict_command  # noqa: E402
from bertwise.cli.serve import serve_command  # noqa: E402
from bertwise.cli.train import train_command  # noqa: E402

app.command(name="train")(train_command)
app.command(name="predict")(predict_command)
app.command(name="serve")(serve_command)
app.command(name="export")(export_command)
app.command(name="adapt")(adapt_command)


def main() -> None:
    """Entry point: usage and user errors print one line and exit 2, never a traceback."""
    try:
        # Without standalone mode click hands back typer.Exit's code instead of exiting, and raises its usage errors
        # here instead of printing its own multi-line block.
        command = typer.main.get_command(app)
        tidy_help(command)
        code = command(standalone_mode=False)
    except BertwiseError as error:
        typer.echo(f"bertwise: error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("bertwise: interrupted", err=True)
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("bertwise: aborted", err=True)
        sys.exit(1)
    except typer.TyperException as error:
        # typer 0.29 vendors click: its UsageError, BadParameter, NoSuchOption... derive from TyperException (the
        # separate click package's classes do not match them), and carry click's exit code (2 for usage errors).
        _show_click_error(error)
        sys.exit(getattr(error, "exit_code", 1))
    sys.exit(code if isinstance(code, int) else 0)


def _show_click_error(error: typer.TyperException) -> None:
    if type(error).__name__ == "NoArgsIsHelpError":  # a bare `bertwise`: typer has printed the help already
        if error.format_message().strip():
            typer.echo(error.format_message(), err=True)
        return
    message = " ".join(error.format_message().split())  # one line, whatever click put in the message
    given = _given_value(getattr(error, "param", None), sys.argv[1:])
    if given is not None and repr(given) not in message:
        message += f"; got {given!r}"  # typer's coercion messages leave out what was typed
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    typer.echo(f"bertwise: error: {message}{hint}", err=True)


def _given_value(param: Any, args: list[str]) -> str | None:
    """What the user typed for an option click refused (``--seeds abc`` or ``--seeds=abc``), or None."""
    options = [name for name in getattr(param, "opts", None) or [] if name.startswith("-")]
    for index, token in enumerate(args):
        for option in options:
            if token == option and index + 1 < len(args):
                return args[index + 1]
            if token.startswith(option + "="):
                return token[len(option) + 1 :]
    return None


if __name__ == "__main__":
    main()
