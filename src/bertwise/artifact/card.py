"""The model card: README.md in every model folder, in the Hugging Face format, written from the manifest alone.

Its YAML block is built with ``huggingface_hub.ModelCardData`` (so it parses with ``ModelCard.load`` and renders on
the Hub): ``library_name: bertwise`` (the folder loads through ``bertwise.load``, not through transformers: its network
sits in a subfolder beside a head and a manifest that transformers knows nothing of), ``pipeline_tag``,
``base_model`` (the backbone, when it is a Hub id), tags, the labels under ``bertwise:`` and a ``model-index`` with the
measured test scores. The text says what the model is for, what trained it, what it scored (with intervals), what
training cost, how to use it and where it stops working, each from what the manifest records; what bertwise did not
measure is said to be "not measured", never guessed.

The card is not covered by the folder's hashes (docs/model-card.md): editing it changes nothing that loads, so it
never stops a model from loading. Its sha256 as written is kept in the manifest, so that saving over the folder can
tell bertwise's card from one the user edited, and refuse to throw the edits away.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bertwise.strategies.registry import strategy_class, strategy_names

CARD = "README.md"
LIBRARY_NAME = "bertwise"
PIPELINE_TAG = "text-classification"
NOT_MEASURED = "not measured"
# A class with fewer training rows than this is named under the limits: with a handful of examples its F1 swings.
FEW_EXAMPLES = 10
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


class ModelCardWarning(UserWarning):
    """The model card could not be written: the model was saved without README.md."""


def write_model_card(folder: Path, manifest: Mapping[str, Any], *, name: str) -> dict[str, Any] | None:
    """Write ``folder``/README.md from ``manifest``; the manifest's record of it (its file and sha256 as written).

    A card that cannot be rendered costs the card, never the model it describes (a warning says so): None.
    """
    try:
        text = render_model_card(manifest, name=name)
        data = text.encode("utf-8")
        (folder / CARD).write_bytes(data)
    except Exception as error:  # a bug here must not lose an hour of fine-tuning
        warnings.warn(
            f"bertwise: the model card ({CARD}) could not be written ({type(error).__name__}: {error}); the model "
            "is saved without it",
            ModelCardWarning,
            stacklevel=3,
        )
        return None
    return {
        "file": CARD,
        "sha256": hashlib.sha256(data).hexdigest(),
        "covered_by_hashes": False,
        # As decided where the backbone was at hand: a card written again elsewhere (by an export) keeps it.
        "base_model": hub_model_id(manifest),
    }


def recorded_card(manifest: Mapping[str, Any]) -> str | None:
    """The card's file name, when the manifest records that bertwise wrote one."""
    record = manifest.get("model_card")
    name = record.get("file") if isinstance(record, dict) else None
    return name if name == CARD else None


def card_was_edited(folder: Path, manifest: Mapping[str, Any]) -> bool:
    """Whether the card bertwise wrote into ``folder`` was changed since (a removed card is not an edit to keep)."""
    name = recorded_card(manifest)
    if name is None:
        return False
    path = folder / name
    if path.is_symlink():  # put there by hand: not bertwise's file
        return True
    if not path.is_file():
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as handle:  # in pieces: whatever the user put there, however large
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() != manifest["model_card"].get("sha256")


def render_model_card(manifest: Mapping[str, Any], *, name: str) -> str:
    """The text of README.md for a model folder named ``name`` whose manifest is ``manifest``."""
    from huggingface_hub import ModelCard

    metadata = card_data(manifest, name=name)
    sections = [
        _purpose(manifest, name),
        _training_data(manifest),
        _evaluation(manifest),
        _cost(manifest),
        _usage(manifest, name),
        _limits(manifest),
        _provenance(manifest),
    ]
    body = "\n\n".join(section.strip() for section in sections) + "\n"
    # Through ModelCard, so the file is exactly what the library writes (and reads back with ModelCard.load).
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{body}"))


def card_data(manifest: Mapping[str, Any], *, name: str) -> Any:
    """The card's YAML metadata as a ``huggingface_hub.ModelCardData``."""
    from huggingface_hub import ModelCardData

    strategy = str(manifest.get("strategy"))
    results = eval_results(manifest)
    return ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        base_model=hub_model_id(manifest),
        tags=[LIBRARY_NAME, PIPELINE_TAG, f"bertwise-{strategy}"],
        metrics=sorted({result.metric_type for result in results}) or None,
        model_name=name if results else None,
        eval_results=results or None,
        bertwise={
            "strategy": strategy,
            "labels": list(manifest.get("classes") or []),
            "bertwise_version": manifest.get("bertwise_version"),
            "created": manifest.get("created"),
            "training_data_sha256": (manifest.get("training_data") or {}).get("sha256"),
        },
    )


def eval_results(manifest: Mapping[str, Any]) -> list[Any]:
    """The test scores as ``EvalResult``s (the card's model-index): macro-F1 and accuracy on held-out rows.

    Fine-tuning's score on the validation split it chose its best step with is left out: it is optimistic, and a
    model-index is read as a test result. The text gives it, with that warning.
    """
    from huggingface_hub import EvalResult

    metrics = manifest.get("metrics")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("macro_f1"), int | float):
        return []
    source = str(metrics.get("test_source") or "the test rows")
    common: dict[str, Any] = {
        "task_type": PIPELINE_TAG,
        "task_name": "Text Classification",
        # Not a Hub dataset: "unknown", as setfit's own cards say for local data; the file's name is the pretty name.
        "dataset_type": "unknown",
        "dataset_name": Path(source).name or source,
        "dataset_split": "cross-validation" if metrics.get("scheme") == "cross-validation" else "test",
    }
    scores = (("macro_f1", "f1", "Macro-F1", {"average": "macro"}), ("accuracy", "accuracy", "Accuracy", None))
    return [
        EvalResult(**common, metric_type=kind, metric_name=title, metric_value=float(metrics[key]), metric_args=args)
        for key, kind, title, args in scores
        if isinstance(metrics.get(key), int | float)
    ]


def hub_model_id(manifest: Mapping[str, Any]) -> str | None:
    """The backbone's Hugging Face Hub id, or None when it was a local folder (the Hub accepts only its own ids).

    Decided as ``resolve_backbone`` decides it: a name that is an existing directory here is a local folder. Once a
    card was written, its record keeps the decision, since the folder may since have moved to a machine without it.
    """
    record = manifest.get("model_card")
    if isinstance(record, dict) and "base_model" in record:
        recorded = record["base_model"]
        return recorded if isinstance(recorded, str) else None
    backbone = manifest.get("backbone")
    if not isinstance(backbone, dict):
        return None
    model_id = backbone.get("id")
    if not isinstance(model_id, str) or not _HUB_ID.fullmatch(model_id) or ".." in model_id or "--" in model_id:
        return None
    if not backbone.get("embedded") and Path(model_id).expanduser().exists():
        return None
    return model_id


# Sections ----------------------------------------------------------------------------------------------------------


def _purpose(manifest: Mapping[str, Any], name: str) -> str:
    strategy = str(manifest.get("strategy"))
    classes = list(manifest.get("classes") or [])
    lines = [
        f"# {name}",
        "",
        f"A text classifier saved by bertwise {manifest.get('bertwise_version', '?')} on "
        f"{manifest.get('created', '?')}: it puts a text in one of {len(classes)} classes.",
        "",
        "## What it is for",
        "",
        f"- **Classes**: {', '.join(_code(label) for label in classes)}",
        f"- **Strategy**: `{strategy}`: {_strategy_summary(strategy)}",
        f"- **Backbone**: {_backbone_words(manifest)}",
    ]
    comparison = manifest.get("comparison")
    if isinstance(comparison, dict):
        lines.append(
            f"- **Chosen by** `bertwise compare` ({comparison.get('scheme')}), which recommended `{strategy}` because:"
        )
        lines += [f"  - {reason}" for reason in comparison.get("reasons") or []]
    zero_shot = manifest.get("zero_shot")
    if isinstance(zero_shot, dict):
        lines.append(f"- **Zero-shot** ({zero_shot.get('mode')}): each class is scored by how close a text is to:")
        lines += [
            f'  - {_code(label)}: "{description}"'
            for label, description in zip(classes, zero_shot.get("descriptions") or [], strict=False)
        ]
    return "\n".join(lines)


def _training_data(manifest: Mapping[str, Any]) -> str:
    data = manifest.get("training_data") or {}
    counts: dict[str, Any] = data.get("class_counts") or {}
    lines = [
        "## Training data",
        "",
        f"- **Trained on**: {manifest.get('trained_on', NOT_MEASURED)}",
        f"- **Source**: `{data.get('source', '?')}` (as bertwise was given it; the texts are not kept in this folder)",
        f"- **Rows**: {data.get('rows', '?')}, in {data.get('classes', len(counts))} classes",
        f"- **Fingerprint**: sha256 `{data.get('sha256', '?')}` of the (text, label) rows in order, so a data set can "
        "be checked against it",
    ]
    if manifest.get("strategy") == "zero-shot":
        lines.append("- Zero-shot learns nothing from these rows: it only takes the label set from them")
    lines += ["", "| class | training rows |", "|---|---:|"]
    lines += [f"| {_code(label)} | {count} |" for label, count in counts.items()]
    notes = data.get("notes") or []
    if notes:
        lines += ["", "What reading the data had to say:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def _evaluation(manifest: Mapping[str, Any]) -> str:
    metrics = manifest.get("metrics")
    lines = ["## Evaluation", ""]
    if not isinstance(metrics, dict):
        return "\n".join(
            lines
            + [
                f"{NOT_MEASURED.capitalize()}: the model was saved without a test set, so no score "
                "was measured. `bertwise compare` or `bertwise train --test FILE` measures one."
            ]
        )
    if "macro_f1" not in metrics and "validation_macro_f1" in metrics:
        return "\n".join(
            lines
            + [
                f"Test scores: {NOT_MEASURED} (no test set). Macro-F1 on the {metrics.get('validation_rows')} "
                f"validation rows fine-tuning set aside: {_points(metrics['validation_macro_f1'])}; "
                f"{metrics.get('evaluated_by', '')}."
            ]
        )
    confidence = metrics.get("confidence")
    level = f"{float(confidence) * 100:g}%" if isinstance(confidence, int | float) else "95%"
    interval: dict[str, Any] = metrics.get("interval") or {}
    lines += [
        _how_measured(metrics)
        + f" Scores in points (100 = every text right); the interval is the {level} bootstrap interval"
        + (" over test rows and runs." if "scheme" in metrics else " over test rows."),
        "",
        f"| metric | score | {level} interval |",
        "|---|---:|---|",
    ]
    for key, label in (("macro_f1", "macro-F1"), ("accuracy", "accuracy"), ("weighted_f1", "weighted F1")):
        if key in metrics:
            lines.append(f"| {label} | {_points(metrics[key])} | {_interval(interval.get(key))} |")
    per_class: dict[str, Any] = metrics.get("per_class_f1") or {}
    per_class_interval: dict[str, Any] = metrics.get("per_class_f1_interval") or {}
    if per_class:
        lines += ["", f"| class | F1 | {level} interval |", "|---|---:|---|"]
        lines += [
            f"| {_code(label)} | {_points(value)} | {_interval(per_class_interval.get(label))} |"
            for label, value in per_class.items()
        ]
    return "\n".join(lines)


def _how_measured(metrics: Mapping[str, Any]) -> str:
    by, rows, source = (
        metrics.get("evaluated_by", "bertwise"),
        metrics.get("test_rows", "?"),
        metrics.get("test_source"),
    )
    if metrics.get("scheme") == "cross-validation":
        return (
            f"Measured by `{by}` with cross-validation over the {rows} rows of `{source}`: each fold's model scored "
            "the rows it did not train on. The model in this folder was then trained on every row, so these scores "
            "estimate how a model trained this way does, not this model on unseen rows."
        )
    count = metrics.get("runs", 1)
    runs = f" ({metrics['scheme']}, {count} run{'' if count == 1 else 's'})" if "scheme" in metrics else ""
    return f"Measured by `{by}` on {rows} rows of `{source}`, held out from the rows that trained it{runs}."


def _cost(manifest: Mapping[str, Any]) -> str:
    cost: dict[str, Any] = manifest.get("cost") or {}
    seconds = cost.get("fit_seconds", manifest.get("fit_seconds"))
    memory, gpu = cost.get("peak_memory_mb"), cost.get("peak_gpu_memory_mb")
    no_gpu = " (no GPU in use)" if memory else ""  # memory was measured, and a GPU's would have been too
    where = "the comparison's first fit" if isinstance(manifest.get("comparison"), dict) else "this training"
    lines = [
        "## Training cost",
        "",
        f"- **Training time**: {f'{float(seconds):,.1f} s ({where})' if seconds is not None else NOT_MEASURED}",
        f"- **Peak memory** (resident, whole process): {f'{float(memory):,.0f} MB' if memory else NOT_MEASURED}",
        f"- **Peak GPU memory**: {f'{float(gpu):,.0f} MB' if gpu else NOT_MEASURED + no_gpu}",
        f"- **Precision** it computed in: {manifest.get('precision', NOT_MEASURED)}",
    ]
    if cost.get("predict_ms_per_text") is not None:
        lines.append(
            f"- **Prediction**: {float(cost['predict_ms_per_text']):.1f} ms per text on the machine that measured it"
        )
    return "\n".join(lines)


def _usage(manifest: Mapping[str, Any], name: str) -> str:
    sample = next(iter(manifest.get("classes") or []), "label")
    shell, python = shlex.quote(name), json.dumps(name)  # a folder name with spaces still pastes as it reads
    return f"""## How to use

This folder loads with bertwise (`pip install bertwise`), which checks `manifest.json` and the sha256 of every file
before it loads anything:

```bash
bertwise predict {shell} texts.csv --out predictions.csv   # a CSV/TSV/JSONL/Parquet file with a "text" column
bertwise serve {shell}                                      # an HTTP endpoint
```

```python
import bertwise

model = bertwise.load({python})
model.predict(["a text to classify"])        # labels such as {sample!r}
model.predict_proba(["a text to classify"])  # one column per class, in model.classes_ order
```

From the Hugging Face Hub, download the folder first: `huggingface_hub.snapshot_download(repo_id)` gives the path to
pass to `bertwise.load`.{_onnx_words(manifest, shell)}"""


def _onnx_words(manifest: Mapping[str, Any], name: str) -> str:
    onnx = manifest.get("onnx")
    if not isinstance(onnx, dict):
        return ""
    parity = onnx.get("parity") or {}
    kind = "int8 (dynamic quantisation)" if onnx.get("quantized") else "float32"
    agreement = parity.get("agreement")
    check = (
        f"; on {parity.get('texts')} texts ({parity.get('source')}) it gave the torch model's label for "
        f"{float(agreement) * 100:.1f}% of them, probabilities within {parity.get('max_probability_difference')}"
        if isinstance(agreement, int | float)
        else ""
    )
    return (
        f"\n\nAn ONNX export is in `{onnx.get('file')}` ({kind}{check}): "
        f"`bertwise predict {name} texts.csv --runtime onnx` runs it with ONNX Runtime, without torch."
    )


def _limits(manifest: Mapping[str, Any]) -> str:
    lines = ["## Limits", ""]
    length = _max_length(manifest)
    lines.append(
        f"- **Long texts are cut**: only the first {length} tokens of a text are read; the rest is ignored"
        + _truncated_words(manifest, length)
        if length is not None
        else f"- **Longest text read**: {NOT_MEASURED}."
    )
    counts: dict[str, Any] = (manifest.get("training_data") or {}).get("class_counts") or {}
    few = {label: count for label, count in counts.items() if isinstance(count, int) and count < FEW_EXAMPLES}
    if few and manifest.get("strategy") != "zero-shot":
        shown = ", ".join(f"{_code(label)} ({count})" for label, count in few.items())
        lines.append(
            f"- **Classes with few examples** (fewer than {FEW_EXAMPLES} training rows): {shown}; expect "
            "their scores to vary most."
        )
    if manifest.get("strategy") == "zero-shot":
        lines.append(
            "- **Zero-shot**: no labeled example trained it; it relies on the class names (and descriptions above) "
            "meaning what the backbone understands by them. It knows only these classes, and scores on other data "
            "can differ widely from those above."
        )
    lines.append(f"- **Seed-to-seed spread**: {_spread(manifest)}.")
    lines.append(
        "- **Scope**: how it does on texts unlike its training data (of another kind, language or period) is "
        f"{NOT_MEASURED}."
    )
    comparison = manifest.get("comparison")
    if isinstance(comparison, dict) and comparison.get("reproduces_reported_predictions") is False:
        lines.append(
            "- This model was trained again after the comparison and does not predict exactly what it reported "
            "(training was not bit-for-bit repeatable on that device)."
        )
    return "\n".join(lines)


def _truncated_words(manifest: Mapping[str, Any], length: int) -> str:
    """How many texts the comparison found longer than that, when it counted them at this model's length."""
    comparison = manifest.get("comparison")
    counts = comparison.get("truncated") if isinstance(comparison, dict) else None
    backbone = manifest.get("backbone")
    if (
        not isinstance(counts, dict)
        or not isinstance(backbone, dict)
        or counts.get("max_length") != length
        or counts.get("backbone_sha256") != backbone.get("sha256")
    ):
        return "."
    test = f" and {counts['test']} of its test texts" if "test" in counts else ""
    return f" (the comparison found {counts.get('train')} of its training texts{test} longer than that)."


def _provenance(manifest: Mapping[str, Any]) -> str:
    return (
        "## About this card\n\n"
        f"Written by bertwise from `manifest.json`, which is what bertwise checks and trusts. This card is not covered "
        f"by the folder's hashes: editing it does not stop the model from loading (a later save over this folder "
        f"refuses to overwrite an edited card). Format: `{manifest.get('format')}` version "
        f"{manifest.get('format_version')}."
    )


# Words -------------------------------------------------------------------------------------------------------------


def _strategy_summary(strategy: str) -> str:
    """The first paragraph of the strategy class's docstring: each strategy says what it is where it is defined."""
    if strategy not in strategy_names():
        return NOT_MEASURED
    doc = strategy_class(strategy).__doc__ or ""
    paragraph = doc.strip().split("\n\n")[0]
    return " ".join(paragraph.split()).replace("``", "`")


def _backbone_words(manifest: Mapping[str, Any]) -> str:
    backbone = manifest.get("backbone")
    if not isinstance(backbone, dict):
        return "none (this strategy runs no transformer)"
    model_id = backbone.get("id")
    hub = hub_model_id(manifest)
    origin = (
        "the embedded copy bertwise ships"
        if backbone.get("embedded")
        else "from the Hugging Face Hub"
        if hub
        else "a local folder"
    )
    return (
        f"`{model_id}` ({origin}; weights sha256 `{str(backbone.get('sha256', '?'))[:12]}...`), "
        f"{backbone.get('pooling', '?')} pooling"
        + (", normalised" if backbone.get("normalize") else "")
        + _network_words(manifest, str(model_id))
    )


def _network_words(manifest: Mapping[str, Any], model_id: str) -> str:
    weights = manifest.get("weights_dir")
    if f"{weights}/config.json" in (manifest.get("files") or {}):
        return f"; its network is in this folder (`{weights}/`)"
    # LoRA keeps its adapters only: the backbone is read from where it was, and its sha256 checked.
    return (
        f"; not in this folder: loading reads it from `{model_id}` and checks its sha256 (`{weights}/` holds the rest)"
    )


def _max_length(manifest: Mapping[str, Any]) -> int | None:
    """Tokens read per text: the trained network's own limit, else the backbone's."""
    for section in ("finetune", "lora", "backbone"):
        value = (manifest.get(section) or {}).get("max_length") if isinstance(manifest.get(section), dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _spread(manifest: Mapping[str, Any]) -> str:
    metrics = manifest.get("metrics")
    runs: Sequence[Any] = metrics.get("per_run") or [] if isinstance(metrics, dict) else []
    scores = [run["macro_f1"] for run in runs if isinstance(run, dict) and isinstance(run.get("macro_f1"), int | float)]
    strategy = str(manifest.get("strategy"))
    if strategy in strategy_names() and not strategy_class(strategy).tags.seed_dependent:
        return f"none: `{strategy}` trains the same model whatever the seed"
    if len(scores) < 2:
        why = "one run" if scores else "no repeated runs"
        return f"{NOT_MEASURED} ({why}; `bertwise compare --seeds N` measures it)"
    mean = sum(scores) / len(scores)
    deviation = (sum((score - mean) ** 2 for score in scores) / (len(scores) - 1)) ** 0.5
    return (
        f"macro-F1 over {len(scores)} runs with different seeds ranged from {_points(min(scores))} to "
        f"{_points(max(scores))} (standard deviation {deviation * 100:.1f} points)"
    )


def _code(label: Any) -> str:
    """A label as inline code that keeps a Markdown table whole: pipes escaped, line breaks and backticks dropped."""
    text = " ".join(str(label).split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def _points(value: Any) -> str:
    return f"{float(value) * 100:.1f}" if isinstance(value, int | float) else NOT_MEASURED


def _interval(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        return f"[{_points(value[0])}, {_points(value[1])}]"
    return NOT_MEASURED
