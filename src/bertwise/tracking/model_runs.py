"""A trained model folder in MLflow: one run with the strategy's parameters and scores from the folder's manifest,
and the folder logged as an MLflow model with a ``pyfunc`` flavour (:mod:`bertwise.tracking.pyfunc_model`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bertwise.artifact.folder import verify_model_folder
from bertwise.tracking.mlflow_store import experiment_id, log_record
from bertwise.tracking.records import RunRecord, param_value
from bertwise.util.version import __version__

# The script MLflow stores as the model's code and runs when it loads the model ("models from code").
_MODEL_CODE = """\
import mlflow

from bertwise.tracking.pyfunc_model import BertwiseModel

mlflow.models.set_model(BertwiseModel())
"""
# Strategies whose loading needs one of bertwise's extras (pyproject's optional dependencies).
_EXTRAS = {"lora": "lora", "setfit": "setfit"}


def model_run(manifest: Mapping[str, Any]) -> RunRecord:
    """The run of a trained model: its strategy's parameters, where it was trained, and its test (or validation)
    scores, as the manifest records them."""
    strategy = str(manifest.get("strategy"))
    training = manifest.get("training_data") or {}
    record = RunRecord(name=f"train {strategy}")
    record.params = {key: param_value(value) for key, value in (manifest.get("params") or {}).items()}
    record.params["strategy"] = strategy
    record.params["data.train_source"] = param_value(training.get("source"))
    record.params["data.train_rows"] = param_value(training.get("rows"))
    record.tags = {"bertwise.kind": "train", "bertwise.version": __version__}
    for key, value in (manifest.get("metrics") or {}).items():
        record.metric(key, value)
    record.metric("fit_seconds", manifest.get("fit_seconds"))
    return record


def log_model_folder(mlflow_client: Any, tracking_uri: str, experiment: str, folder: Path) -> tuple[str, str]:
    """Log the model folder at ``folder`` (checked against its manifest first) as a run with a pyfunc model; the
    run's id and the model's URI."""
    import mlflow
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from bertwise.tracking.pyfunc_model import FOLDER_ARTIFACT, TEXT_COLUMN

    manifest = verify_model_folder(folder)
    record = model_run(manifest)
    classes = manifest.get("classes") or []
    label_type = (
        "long" if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes) else "string"
    )
    signature = ModelSignature(inputs=Schema([ColSpec("string", TEXT_COLUMN)]), outputs=Schema([ColSpec(label_type)]))
    extra = _EXTRAS.get(str(manifest.get("strategy")))
    requirement = f"bertwise[{extra}]=={__version__}" if extra else f"bertwise=={__version__}"
    experiment_key = experiment_id(mlflow_client, experiment)
    with _tracking_uri(tracking_uri), tempfile.TemporaryDirectory() as scratch:
        code = Path(scratch) / "bertwise_pyfunc.py"
        code.write_text(_MODEL_CODE, encoding="utf-8")
        # log_model attaches the model to the active run, so this one run goes through mlflow's fluent API.
        with mlflow.start_run(experiment_id=experiment_key, run_name=record.name, tags=record.tags) as active:
            log_record(mlflow_client, active.info.run_id, record)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code),
                artifacts={FOLDER_ARTIFACT: str(folder)},
                signature=signature,
                # MLflow loads the model and predicts this to check that it serves; it is stored as the example.
                input_example=pd.DataFrame({TEXT_COLUMN: ["an example text"]}),
                pip_requirements=[requirement],
            )
    return str(active.info.run_id), str(info.model_uri)


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """mlflow's process-wide tracking URI set to ``uri`` for the block, then put back."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
