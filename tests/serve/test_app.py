"""The endpoints: answers, label order, health, metadata, OpenAPI, and the start-up errors of create_app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bertwise.exceptions import ConfigError, ModelError
from bertwise.serve import ServeSettings, create_app
from bertwise.serve.app import PredictResponse
from tests.serve.fakes import MANIFEST, IntLabelModel, KeywordModel

MakeClient = Callable[..., TestClient]


def test_one_text(make_client: MakeClient) -> None:
    client = make_client(KeywordModel())
    response = client.post("/predict", json={"text": "heavy rain and wind tonight"})
    assert response.status_code == 200
    body = response.json()
    assert len(body["predictions"]) == 1
    prediction = body["predictions"][0]
    assert prediction["label"] == "weather"
    assert list(prediction["probabilities"]) == ["cooking", "sports", "weather"]  # the model's label order
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert body["model"]["strategy"] == "probe"
    assert body["model"]["id"].startswith("probe-")
    PredictResponse.model_validate(body)  # the hand-built answer has the documented shape


def test_a_batch_keeps_order_and_matches_the_model(make_client: MakeClient) -> None:
    model = KeywordModel()
    texts = ["bake the soup", "the team scored a goal", "snow and rain", "nothing in particular", "salt the onion"]
    response = make_client(model).post("/predict", json={"texts": texts})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == list(KeywordModel().predict(texts))
    expected = KeywordModel().predict_proba(texts)
    for row, prediction in zip(expected, predictions, strict=True):
        assert list(prediction["probabilities"].values()) == pytest.approx(list(row))
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_integer_labels_stay_integers(make_client: MakeClient) -> None:
    response = make_client(IntLabelModel()).post("/predict", json={"texts": ["a good day", "a bad day"]})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == [1, 0]
    assert list(predictions[0]["probabilities"]) == ["0", "1"]  # JSON object keys are text
    assert predictions[0]["probabilities"]["1"] == pytest.approx(0.8)


def test_health(make_client: MakeClient) -> None:
    client = make_client(KeywordModel())
    client.post("/predict", json={"texts": ["a", "b"]})
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["ready"] is True
    assert health["queued_texts"] == 0 and health["running_texts"] == 0
    assert health["texts"] == 2 and health["batches"] == 1 and health["failed_batches"] == 0
    assert health["max_queue_texts"] == ServeSettings().max_queue_texts


def test_metadata_shows_the_manifest_and_the_limits(make_client: MakeClient) -> None:
    client = make_client(KeywordModel(), max_texts_per_request=10, max_queue_texts=40, max_batch_texts=8)
    metadata = client.get("/metadata").json()
    model = metadata["model"]
    assert model["strategy"] == "probe"
    assert model["classes"] == ["cooking", "sports", "weather"]
    assert model["metrics"] == MANIFEST["metrics"]
    assert model["backbone"] == {"id": "tiny-test-bert"}
    assert model["bertwise_version"] == "0.2.0"
    assert model["id"] == client.post("/predict", json={"text": "x"}).json()["model"]["id"]
    assert (
        metadata["limits"] == ServeSettings(max_texts_per_request=10, max_queue_texts=40, max_batch_texts=8).as_dict()
    )
    assert metadata["limits"]["max_texts_per_request"] == 10
    from bertwise import __version__

    assert metadata["server"]["bertwise"] == __version__
    assert "fastapi" in metadata["server"]


def test_the_model_id_changes_with_the_manifest(make_client: MakeClient) -> None:
    other = KeywordModel()
    other.manifest_ = {**MANIFEST, "created": "2025-02-02T00:00:00Z"}
    first = make_client(KeywordModel()).get("/metadata").json()["model"]["id"]
    assert make_client(KeywordModel()).get("/metadata").json()["model"]["id"] == first
    assert make_client(other).get("/metadata").json()["model"]["id"] != first


def test_openapi_documents_the_bodies(make_client: MakeClient) -> None:
    client = make_client(KeywordModel())
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/metadata"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert {"PredictRequest", "PredictResponse", "Prediction", "HealthResponse", "ErrorResponse"} <= set(components)
    assert set(components["PredictRequest"]["properties"]) == {"text", "texts"}
    assert {"413", "422", "503"} <= set(schema["paths"]["/predict"]["post"]["responses"])


def test_a_path_that_is_not_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; expected a model folder"):
        create_app(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="is a file; expected a model folder"):
        create_app(tmp_path / "file.txt")


def test_an_object_that_is_not_a_model_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a fitted bertwise estimator"):
        create_app(object())


def test_a_model_that_fails_its_warm_up_is_refused() -> None:
    class Broken(KeywordModel):
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            raise OSError("weights missing")

    with pytest.raises(ModelError, match="failed on a warm-up text: OSError: weights missing"):
        create_app(Broken())


def test_a_model_with_the_wrong_output_shape_is_refused() -> None:
    class Wrong(KeywordModel):
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2)) / 2

    with pytest.raises(ModelError, match=r"returned shape \(1, 2\) for one text; expected \(1, 3\)"):
        create_app(Wrong())


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_texts_per_request": 0}, "--max-texts-per-request must be a whole number of at least 1; got 0"),
        ({"max_text_chars": 1.5}, "--max-text-chars must be a whole number"),
        ({"max_wait_ms": -1}, "--max-wait-ms must be a number of milliseconds >= 0"),
        ({"max_texts_per_request": 100, "max_queue_texts": 50}, r"--max-queue-texts \(50\) must be at least"),
        ({"max_batch": 3}, "unknown serve setting"),
        ({"request_timeout_s": 0}, "--request-timeout-s must be a number of seconds > 0; got 0"),
        ({"request_timeout_s": float("inf")}, "--request-timeout-s must be a number of seconds > 0"),
        ({"keep_alive_s": 0}, "--keep-alive-s must be a whole number of at least 1"),
        ({"max_connections": -5}, "--max-connections must be a whole number of at least 1"),
        ({"max_head_bytes": 0}, "--max-head-bytes must be a whole number of at least 1"),
    ],
)
def test_bad_limits_are_refused(limits: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(KeywordModel(), **limits)
