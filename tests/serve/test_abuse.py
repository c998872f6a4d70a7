"""Hostile and careless clients against the real server: uvicorn with bertwise's guarded protocol on loopback, in a
thread or in a process of its own (signals, open-file limits). Each case names what it sends and the status it must
get, or what must happen to its connection; docs/serve.md lists the same outcomes.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bertwise.serve import ServeSettings, bind, create_app
from bertwise.serve.server import make_server
from tests.serve.conftest import in_thread, wait_until
from tests.serve.fakes import GatedModel, KeywordModel

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 30  # a socket or process wait longer than this means a hang; no test measures time


class GuardedServer:
    """``make_server`` (the protocol ``bertwise serve`` runs) serving an app in a thread, on a free loopback port."""

    def __init__(self, model: Any, **limits: Any) -> None:
        settings = ServeSettings(**limits)
        listener = bind("127.0.0.1", 0)
        self.port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server, _ = make_server(create_app(model, settings), settings, log_level="warning", access_log=False)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]}, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, "the server to start")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=HANG_GUARD_S)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=HANG_GUARD_S)


@pytest.fixture
def guarded() -> Iterator[Any]:
    servers: list[GuardedServer] = []

    def start(model: Any, **limits: Any) -> GuardedServer:
        servers.append(GuardedServer(model, **limits))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def read_to_end(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset after its answer counts as a close)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # the server closed with unread bytes of ours: what it sent before is still an answer
    return received


def read_one_response(connection: socket.socket) -> bytes:
    """One whole response (head and Content-Length bytes of body) from a connection the server keeps open."""
    received = b""
    while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _length(received):
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection mid-response: {received!r}"
        received += chunk
    return received


def _length(received: bytes) -> int:
    found = re.search(rb"content-length: (\d+)", received.partition(b"\r\n\r\n")[0], re.IGNORECASE)
    return int(found.group(1)) if found else 0


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def detail_of(answer: bytes) -> str:
    return str(json.loads(answer.partition(b"\r\n\r\n")[2])["detail"])


def post(body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# --- requests: what each hostile request is answered --------------------------------------------------------------

ABUSE_REQUESTS = [
    ("lone high surrogate", post(b'{"text": "\\ud800"}'), 422, "lone UTF-16 surrogate (\\ud800) at character 0"),
    ("lone low surrogate in a list", post(b'{"texts": ["rain", "a \\udc00"]}'), 422, "texts.1: the text contains"),
    ("surrogate pair (valid)", post(b'{"text": "rain \\ud83c\\udf27"}'), 200, None),
    ("latin-1 byte", post(b'{"text": "caf\xe9"}'), 422, "request body is not valid UTF-8: bytes e9 at position 13"),
    ("surrogate as UTF-8 bytes", post(b'{"text": "\xed\xa0\x80"}'), 422, "bytes ed at position 10"),
    ("truncated UTF-8 sequence", post(b'{"text": "\xe2\x82"}'), 422, "request body is not valid UTF-8"),
    ("UTF-16 body with BOM (RFC 8259 detection)", post('{"text": "rain"}'.encode("utf-16")), 200, None),
    ("NUL character", post(b'{"text": "rain\\u0000"}'), 200, None),
    ("JSON nested 100,000 deep", post(b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 422, "nested too deep"),
    ("NaN as the text", post(b'{"text": NaN}'), 422, "text: Input should be a valid string"),
    ("unclosed JSON", post(b'{"text": "rain"'), 422, "request body is not valid JSON"),
    ("empty body", post(b""), 422, "request body is empty"),
    ("text/plain body", post(b"rain", "text/plain"), 422, "request body sent with Content-Type 'text/plain'"),
    (
        "declares 50 MB",
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n",
        413,
        "request body is 50000000 bytes",
    ),
    ("TLS hello on the plain port", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64, 400, None),
    ("5 MB header", b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 5_000_000 + b"\r\n\r\n", 431, "65536"),
    ("200,000 headers", b"GET /health HTTP/1.1\r\nHost: test\r\n" + b"X-A: b\r\n" * 200_000 + b"\r\n", 431, None),
    ("1 MB request line", b"GET /" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 431, None),
    (
        "Content-Length not a number",
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
        400,
        None,
    ),
    (
        "Content-Length and chunked together (request smuggling)",
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        None,
    ),
    ("GET /predict", b"GET /predict HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 405, None),
    ("unknown path", b"GET /admin HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 404, None),
]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[GuardedServer]:
    server = GuardedServer(KeywordModel())
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("request_bytes", "status", "detail"),
    [case[1:] for case in ABUSE_REQUESTS],
    ids=[case[0] for case in ABUSE_REQUESTS],
)
def test_a_hostile_request_gets_its_status_and_the_server_carries_on(
    shared_server: GuardedServer, request_bytes: bytes, status: int, detail: str | None
) -> None:
    with shared_server.connect() as connection:
        try:
            connection.sendall(request_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking all of it (a head too large): read its answer
        answer = read_to_end(connection)
    assert status_of(answer) == status, answer[:500]
    if detail is not None:
        assert detail in detail_of(answer)
    assert b"Traceback" not in answer
    health = httpx.get(f"{shared_server.url}/health", timeout=HANG_GUARD_S)
    assert health.status_code == 200


def test_a_lone_surrogate_is_refused_before_the_model_sees_it(make_client: Any) -> None:
    model = KeywordModel()
    response = make_client(model).post(
        "/predict", content=b'{"texts": ["\\ud800"]}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "texts", 0]
    assert model.batches == []


# --- empty texts: the same treatment as `bertwise predict` ---------------------------------------------------------

BLANKS = ["rain all day", "", "   ", "\t\r\n", "\u00a0\u3000", None, "bake a cake"]


def test_empty_texts_are_left_without_a_prediction_as_predict_leaves_them(make_client: Any, tmp_path: Path) -> None:
    from bertwise.inference.predict_file import predict_file

    served_model = KeywordModel()
    response = make_client(served_model).post("/predict", json={"texts": BLANKS})
    assert response.status_code == 200
    served = response.json()["predictions"]

    source, out = tmp_path / "texts.jsonl", tmp_path / "predicted.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in BLANKS), encoding="utf-8")
    summary = predict_file(KeywordModel(), source, out)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    blank = [i for i, text in enumerate(BLANKS) if text is None or not text.strip()]
    assert blank == [1, 2, 3, 4, 5]
    assert [i for i, p in enumerate(served) if p["label"] is None] == blank
    assert [i for i, row in enumerate(written) if row["predicted_label"] is None] == blank
    assert summary.empty_rows == len(blank)
    for prediction, row in zip(served, written, strict=True):
        assert prediction["label"] == row["predicted_label"]
        if prediction["probabilities"] is None:
            assert prediction["label"] is None and all(row[f"proba_{c}"] is None for c in ("cooking", "sports"))
        else:
            assert prediction["probabilities"]["weather"] == pytest.approx(row["proba_weather"])
    assert served_model.batches == [["rain all day", "bake a cake"]]  # the model never saw a blank text


def test_a_single_empty_text_gets_no_label_and_no_model_call(make_client: Any) -> None:
    model = KeywordModel()
    client = make_client(model)
    for text in ("", "  \n"):
        response = client.post("/predict", json={"text": text})
        assert response.status_code == 200
        assert response.json()["predictions"] == [{"label": None, "probabilities": None}]
    assert model.batches == []


# --- connections: deadlines, idle time, the connection cap ---------------------------------------------------------


def test_a_half_open_request_head_is_answered_408_and_closed(guarded: Any) -> None:
    server = guarded(KeywordModel(), request_timeout_s=0.5)
    with server.connect() as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")  # never finished
        answer = read_to_end(connection)
    assert status_of(answer) == 408
    assert "request_timeout_s" in detail_of(answer)


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(guarded: Any) -> None:
    server = guarded(KeywordModel(), request_timeout_s=0.5)
    with server.connect() as connection:
        assert read_to_end(connection) == b""


def test_a_body_that_stops_arriving_is_answered_408_and_closed(guarded: Any) -> None:
    server = guarded(KeywordModel(), request_timeout_s=0.5)
    with server.connect() as connection:
        connection.sendall(post(b'{"text": "rain and more rain"}')[:-10])  # the last 10 bytes never come
        answer = read_to_end(connection)
    assert status_of(answer) == 408


def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_s(guarded: Any) -> None:
    server = guarded(KeywordModel(), keep_alive_s=1)
    with server.connect() as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")  # keep-alive: HTTP/1.1's default
        answer = read_to_end(connection)  # returns only once the server closes the idle connection
    assert status_of(answer) == 200
    assert answer.count(b"HTTP/1.1 ") == 1


def test_at_the_cap_the_longest_waiting_connection_makes_room(guarded: Any) -> None:
    server = guarded(KeywordModel(), max_connections=3, request_timeout_s=60)
    stalled = [server.connect() for _ in range(3)]
    try:
        for connection in stalled:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        connections = server.server.server_state.connections
        wait_until(lambda: len(connections) == 3 and all(c.sending for c in connections), "three stalled heads")
        assert httpx.get(f"{server.url}/health", timeout=HANG_GUARD_S).status_code == 200
        first = read_to_end(stalled[0])
        assert status_of(first) == 503
        assert "max_connections" in detail_of(first)
    finally:
        for connection in stalled:
            connection.close()


def test_at_the_cap_with_every_connection_busy_a_new_one_gets_503(guarded: Any) -> None:
    model = GatedModel()
    server = guarded(model, max_connections=1)
    busy = in_thread(lambda: httpx.post(f"{server.url}/predict", json={"text": "rain"}, timeout=HANG_GUARD_S))
    try:
        assert model.entered.wait(HANG_GUARD_S)
        with server.connect() as connection:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            answer = read_to_end(connection)
        assert status_of(answer) == 503
        assert "have a request in progress" in detail_of(answer)
    finally:
        model.gate.set()
    assert busy().status_code == 200


# --- a server in its own process: the start line, the open-file limit, SIGTERM -------------------------------------


class ServerProcess:
    """``python -m tests.serve.fake_server`` with its output in a log; ``url`` once it says where it serves."""

    def __init__(self, folder: Path, *arguments: str) -> None:
        self.log = folder / "server.log"
        command = [sys.executable, "-m", "tests.serve.fake_server", *arguments]
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_url(self) -> str:
        found: list[str] = []

        def announced() -> bool:
            assert self.process.poll() is None, self.text()
            found.extend(re.findall(r"on (http://127\.0\.0\.1:\d+)  \(docs", self.text()))
            return bool(found)

        wait_until(announced, "the serving line", timeout=120)
        return found[0]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=HANG_GUARD_S)


@pytest.fixture
def processes() -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(folder: Path, *arguments: str) -> ServerProcess:
        started.append(ServerProcess(folder, *arguments))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=HANG_GUARD_S)


def test_the_server_takes_requests_as_soon_as_it_says_where(processes: Any, tmp_path: Path) -> None:
    server = processes(tmp_path)
    url = server.wait_for_url()
    health = httpx.get(f"{url}/health", timeout=HANG_GUARD_S)  # at once: no retry on a refused connection
    assert health.status_code == 200 and health.json()["ready"] is True
    assert server.stop() == 0


def test_health_answers_while_hundreds_of_half_open_connections_exceed_the_open_file_limit(
    processes: Any, tmp_path: Path
) -> None:
    # 200 stalled clients against a process allowed 128 open files, with a deadline far off: only the connection cap
    # (lowered to fit the limit, making room by closing the longest waiting) keeps /health reachable.
    server = processes(tmp_path, "--nofile", "128", "--limits", json.dumps({"request_timeout_s": 120}))
    url = server.wait_for_url()
    note = re.search(r"note: at most (\d+) connections at once, not 256", server.text())
    assert note is not None, server.text()
    port = int(url.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(200):
            connection = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S)
            stalled.append(connection)
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        health = httpx.get(f"{url}/health", timeout=HANG_GUARD_S)
        assert health.status_code == 200
        # The first was closed to make room: with 503 if the server had read its partial head by then, else silently.
        evicted = read_to_end(stalled[0])
        assert evicted == b"" or status_of(evicted) == 503
    finally:
        for connection in stalled:
            connection.close()
    assert server.stop() == 0
    assert "Traceback" not in server.text()


def test_sigterm_drains_the_request_in_flight_and_exits_0(processes: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    server = processes(tmp_path, "--gate", str(gate))
    url = server.wait_for_url()
    in_flight = in_thread(lambda: httpx.post(f"{url}/predict", json={"text": "rain"}, timeout=HANG_GUARD_S))
    wait_until(lambda: (gate / "entered").exists(), "the request to reach the model")

    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "Shutting down" in server.text(), "the server to start shutting down")
    with pytest.raises(httpx.ConnectError):  # no new connections while it drains
        httpx.get(f"{url}/health", timeout=HANG_GUARD_S)
    assert server.process.poll() is None  # still draining: the request in flight is not finished

    (gate / "open").touch()
    response = in_flight()
    assert response.status_code == 200
    assert response.json()["predictions"][0]["label"] == "weather"
    assert server.process.wait(timeout=HANG_GUARD_S) == 0
    assert "Traceback" not in server.text()


def test_sigterm_while_the_model_loads_stops_the_start_up_with_0(processes: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    server = processes(tmp_path, "--gate", str(gate), "--gate-warm-up")
    wait_until(lambda: (gate / "entered").exists(), "the warm-up to reach the model")
    assert server.stop() == 0
    assert "stopped by SIGTERM before serving" in server.text()
    assert "serving" not in server.text().replace("before serving", "")
    assert "Traceback" not in server.text()


def test_sigterm_with_idle_and_half_open_connections_exits_0_at_once(processes: Any, tmp_path: Path) -> None:
    server = processes(tmp_path, "--limits", json.dumps({"request_timeout_s": 120, "keep_alive_s": 120}))
    url = server.wait_for_url()
    port = int(url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as idle,
        socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as half_open,
    ):
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert status_of(read_one_response(idle)) == 200  # answered; the connection stays open (keep-alive)
        half_open.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        assert server.stop() == 0  # within the hang guard, far below the 120 s deadlines: idle ones are closed
        assert read_to_end(idle) == b""
    assert "Finished server process" in server.text()
    assert "Traceback" not in server.text()
