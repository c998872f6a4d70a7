"""Every limit: the bad request is sent, and the status code and the message naming the limit are checked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.serve.conftest import in_thread, wait_until
from tests.serve.fakes import FailingModel, GatedModel, KeywordModel

MakeClient = Callable[..., TestClient]


def test_too_many_texts_is_413(make_client: MakeClient) -> None:
    client = make_client(KeywordModel(), max_texts_per_request=5, max_queue_texts=20)
    response = client.post("/predict", json={"texts": ["x"] * 6})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "too many texts: 6 in this request" in detail
    assert "at most 5 per request (max_texts_per_request)" in detail
    assert client.post("/predict", json={"texts": ["x"] * 5}).status_code == 200  # the limit itself is allowed


def test_a_too_long_text_is_413_naming_its_index(make_client: MakeClient) -> None:
    client = make_client(KeywordModel(), max_text_chars=100)
    response = client.post("/predict", json={"texts": ["short", "fine", "y" * 101]})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert '"texts"[2] has 101 characters' in detail
    assert "at most 100 per text (max_text_chars)" in detail
    single = client.post("/predict", json={"text": "y" * 101})
    assert single.status_code == 413 and single.json()["detail"].startswith('"text" has 101 characters')
    assert client.post("/predict", json={"text": "y" * 100}).status_code == 200


def test_the_default_text_limit_is_20000_characters(make_client: MakeClient) -> None:
    response = make_client(KeywordModel()).post("/predict", json={"text": "z" * 20_001})
    assert response.status_code == 413
    assert "at most 20000 per text (max_text_chars)" in response.json()["detail"]


def test_a_body_over_content_length_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(KeywordModel(), max_body_bytes=1000)
    body = json.dumps({"text": "a" * 2000}).encode()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"request body is {len(body)} bytes" in detail
    assert "at most 1000 bytes per request (max_body_bytes)" in detail
    assert response.headers["connection"] == "close"


def test_a_chunked_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(KeywordModel(), max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:  # a generator has no length, so httpx sends it chunked, without Content-Length
        yield b'{"text": "'
        for _ in range(50):
            yield b"a" * 100
        yield b'"}'

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "request body is more than 1000 bytes" in response.json()["detail"]
    assert "(max_body_bytes)" in response.json()["detail"]


def test_a_chunked_body_under_the_limit_is_read(make_client: MakeClient) -> None:
    client = make_client(KeywordModel(), max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["bake the '
        yield b'bread", "rain"]}'

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert [p["label"] for p in response.json()["predictions"]] == ["cooking", "weather"]


def test_malformed_json_is_422(make_client: MakeClient) -> None:
    client = make_client(KeywordModel())
    response = client.post("/predict", content=b'{"text": "unfinished', headers={"content-type": "application/json"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("request body is not valid JSON")
    assert 'expected a JSON object {"text": "..."} or {"texts": ["...", ...]}' in detail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": 5}, "text: Input should be a valid string"),
        ({"texts": "one text"}, "texts: Input should be a valid list"),
        ({"texts": ["fine", 3]}, "texts.1: Input should be a valid string"),
        ({"texts": [["nested"]]}, "texts.0: Input should be a valid string"),
        (
            {"text": "a", "texts": ["b"]},
            'send exactly one of "text" (a string) or "texts" (a list of strings); found both',
        ),
        ({}, 'send exactly one of "text" (a string) or "texts" (a list of strings); found neither'),
        ({"text": None}, "found neither"),
        ({"txt": "typo"}, 'unknown field "txt"'),
        (["a", "list"], "Input should be a valid dictionary"),
        ("just a string", "Input should be a valid dictionary"),
    ],
)
def test_wrong_shapes_are_422(make_client: MakeClient, body: object, message: str) -> None:
    response = make_client(KeywordModel()).post("/predict", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert message in payload["detail"]
    assert payload["errors"] and all({"type", "loc", "msg"} <= set(error) for error in payload["errors"])
    assert all("input" not in error for error in payload["errors"])  # the request is not echoed back


def test_a_body_without_json_content_type_is_422(make_client: MakeClient) -> None:
    client = make_client(KeywordModel())
    response = client.post("/predict", content=b'{"text": "hi"}', headers={"content-type": "text/plain"})
    assert response.status_code == 422
    assert "Content-Type 'text/plain'" in response.json()["detail"]
    empty = client.post("/predict")
    assert empty.status_code == 422
    assert "expected a JSON object" in empty.json()["detail"]


def test_an_empty_list_is_422(make_client: MakeClient) -> None:
    response = make_client(KeywordModel()).post("/predict", json={"texts": []})
    assert response.status_code == 422
    assert response.json()["detail"] == '"texts" is an empty list; send 1 to 256 texts per request'


def test_a_full_queue_is_503_with_retry_after(make_client: MakeClient) -> None:
    model = GatedModel()
    client = make_client(model, max_texts_per_request=4, max_queue_texts=4, max_batch_texts=4)
    first = in_thread(lambda: client.post("/predict", json={"text": "rain"}))
    wait_until(model.entered.is_set, "the first batch to reach the model")
    second = in_thread(lambda: client.post("/predict", json={"texts": ["bake", "soup", "goal", "snow"]}))
    wait_until(lambda: client.get("/health").json()["queued_texts"] == 4, "four texts queued behind the first batch")

    refused = client.post("/predict", json={"text": "one more"})
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    detail = refused.json()["detail"]
    assert "server busy: 4 texts are already waiting and this request adds 1" in detail
    assert "queue limit of 4 (max_queue_texts)" in detail

    model.gate.set()
    assert first().status_code == 200
    assert [p["label"] for p in second().json()["predictions"]] == ["cooking", "cooking", "sports", "weather"]
    health = client.get("/health").json()
    assert health["rejected_requests"] == 1 and health["queued_texts"] == 0
    assert client.post("/predict", json={"text": "one more"}).status_code == 200  # accepted once drained


def test_a_failing_model_is_500_and_the_server_goes_on(make_client: MakeClient) -> None:
    client = make_client(FailingModel())
    response = client.post("/predict", json={"texts": ["fine", "boom"]})
    assert response.status_code == 500
    assert response.json()["detail"] == (
        "the model failed on this request's texts: RuntimeError: model exploded on a boom"
    )
    after = client.post("/predict", json={"text": "bake the bread"})
    assert after.status_code == 200 and after.json()["predictions"][0]["label"] == "cooking"
    health = client.get("/health").json()
    assert health["ready"] is True and health["failed_batches"] == 1


def test_a_failing_text_fails_only_its_own_request_in_a_shared_batch(make_client: MakeClient) -> None:
    class GatedFailing(GatedModel):
        def predict_proba(self, texts: list[str]):  # type: ignore[no-untyped-def]
            result = super().predict_proba(texts)
            if any("boom" in text for text in texts):
                raise RuntimeError("model exploded on a boom")
            return result

    model = GatedFailing()
    client = make_client(model)
    first = in_thread(lambda: client.post("/predict", json={"text": "rain"}))
    wait_until(model.entered.is_set, "the first batch to reach the model")
    bad = in_thread(lambda: client.post("/predict", json={"text": "boom"}))
    good = in_thread(lambda: client.post("/predict", json={"texts": ["goal", "soup"]}))
    wait_until(lambda: client.get("/health").json()["queued_texts"] == 3, "both requests queued")
    model.gate.set()
    assert first().status_code == 200
    assert bad().status_code == 500
    good_response = good()
    assert good_response.status_code == 200
    assert [p["label"] for p in good_response.json()["predictions"]] == ["sports", "cooking"]
    # one shared batch failed, then each request ran alone (order of the two requests may vary)
    assert model.batch_sizes[:2] == [1, 3] and sorted(model.batch_sizes[2:]) == [1, 2]
