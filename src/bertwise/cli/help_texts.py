"""Help texts that several commands share, so that an option means the same in each, and the tidying of every
command's --help (its example, the option sets, flags without a value placeholder)."""

from __future__ import annotations

from typing import Any

from bertwise.backbone.device import DEVICE_CHOICES, PRECISION_CHOICES
from bertwise.backbone.resolve import POOLING_CHOICES
from bertwise.config import PRIORITIES, PROTOCOLS
from bertwise.data.readers import INPUT_FORMATS
from bertwise.inference.loading import RUNTIMES
from bertwise.tracking.mlflow_tracking import TRACKERS

# What "-" and --format mean in every command that reads texts (embed, predict).
INPUT_HELP = (
    "CSV, TSV, JSONL or Parquet file with a text column, or - for stdin, read as CSV with a header row unless --format "
    "says otherwise."
)
FORMAT_HELP = (
    "csv, tsv, jsonl, parquet, or lines (one text per line, no header): how to read INPUT, instead of its file "
    "extension; for stdin (-) the default is csv."
)

# compare's and train's --track, --tracking-uri and --experiment (bertwise.cli.track).
TRACK_HELP = (
    "Log to an experiment tracker once done: mlflow (pip install 'bertwise[mlflow]'). A tracker that cannot be "
    "reached costs one line; the results stay saved."
)
TRACKING_URI_HELP = (
    "The MLflow tracking URI (http://host:5000, sqlite:///mlflow.db, databricks...; default: $MLFLOW_TRACKING_URI, "
    "else sqlite:///mlflow.db in the working folder)."
)
EXPERIMENT_HELP = "The MLflow experiment to log to, created when new (default: bertwise)."

# Option sets listed in --help in place of a bare <str>, by parameter name. The commands still check the values with
# their own one-line messages (device also takes cuda:N).
CHOICES: dict[str, tuple[str, ...]] = {
    "device": (*DEVICE_CHOICES, "cuda:N"),
    "precision": PRECISION_CHOICES,
    "pooling": POOLING_CHOICES,
    "priority": PRIORITIES,
    "protocol": PROTOCOLS,
    "zero_shot_mode": ("auto", "nli", "embedding"),
    "mode": ("auto", "nli", "embedding"),  # zero-shot's
    "log_level": ("critical", "error", "warning", "info", "debug", "trace"),
    "runtime": RUNTIMES,
    "input_format": INPUT_FORMATS,
    "track": TRACKERS,
}

# Examples per command, shown under its --help.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "compare": ("bertwise compare data.csv --strategies probe,finetune --budget 30m --out results --save-best model",),
    "zero-shot": ('bertwise zero-shot "my card has not arrived" --labels card_arrival,exchange_rate,refund',),
    "embed": (
        "bertwise embed texts.csv --out vectors.npy",
        "cat texts.txt | bertwise embed - --format lines --out vectors.parquet",
    ),
    "train": ("bertwise train data.csv --strategy finetune --params-from results/results.json --out model",),
    "predict": (
        "bertwise predict model new.csv --out scored.csv",
        "cat new.csv | bertwise predict model - > scored.csv",
    ),
    "serve": ("bertwise serve model --port 8000", "bertwise serve model --runtime onnx"),
    "export": ("bertwise export model --onnx --quantize",),
    "adapt": ("bertwise adapt data.csv --unlabeled more_texts.txt",),
}


def tidy_help(group: Any) -> None:
    """Each command's example, the option sets, and flags without a value placeholder, in every --help."""
    for command in [group, *group.commands.values()]:
        name = getattr(command, "name", None)
        if name in EXAMPLES and not command.epilog:
            # Paragraphs: the help formatter joins single lines.
            command.epilog = "\n\n".join(["Examples:", *(f"  {line}" for line in EXAMPLES[name])])
        for param in command.params:
            if param.metavar is not None:
                continue
            if getattr(param, "is_flag", False):
                param.metavar = ""  # a flag takes no value: nothing to show where typer prints <bool>
            elif param.name in CHOICES:
                param.metavar = "|".join(CHOICES[param.name])
        _plain_help_option(command)


def _plain_help_option(command: Any) -> None:
    # click builds --help when it is asked for, not among the params: it gets the same treatment as it is built.
    build = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = build(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
