"""A bertwise model folder as an MLflow ``pyfunc`` model: ``mlflow.pyfunc.load_model(uri).predict(df)`` loads the
folder with :func:`bertwise.load` and predicts labels for a DataFrame's text column.

MLflow logs it "from code" (:mod:`bertwise.tracking.model_runs` writes the two-line script that names this class),
so no pickle of a Python object is stored, and the folder travels as the model's artifact, checked against its
manifest when it loads.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from bertwise.inference.loading import load

# The name of the model folder among the MLflow model's artifacts.
FOLDER_ARTIFACT = "bertwise_model"
# The DataFrame column the texts are read from (the model's signature names it).
TEXT_COLUMN = "text"


class BertwiseModel(PythonModel):
    """Predicts with the bertwise model folder logged beside it."""

    def load_context(self, context: Any) -> None:
        self.model = load(context.artifacts[FOLDER_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[Any]:
        """The predicted label of every row's text, in order."""
        texts = [str(text) for text in model_input[TEXT_COLUMN].tolist()]
        return list(self.model.predict(texts).tolist())
