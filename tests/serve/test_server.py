"""The real server on loopback (uvicorn, sockets, chunked bodies), serve()'s start-up checks, and the CLI command."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bertwise.exceptions import ConfigError
from bertwise.serve import ServeSettings, bind, create_app, serve
from tests.serve.conftest import wait_until
from tests.serve.fakes import GatedModel, KeywordModel


class LiveServer:
    """uvicorn serving an app in a thread, on a free loopback port."""

    def __init__(self, model: Any, **limits: Any) -> None:
        import uvicorn

        self.model = model
        listener = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = uvicorn.Config(create_app(model, ServeSettings(**limits)), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]}, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live() -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(model: Any, **limits: Any) -> LiveServer:
        servers.append(LiveServer(model, **limits))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_concurrent_http_clients_are_batched(live: Any) -> None:
    model = GatedModel()
    server = live(model, max_batch_texts=64)
    texts = ["bake", "goal", "snow", "soup", "match", "wind", "salt", "team"]

    async def clients() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            first = asyncio.create_task(client.post("/predict", json={"text": "rain"}))
            deadline = asyncio.get_running_loop().time() + 20  # guards against a hang; nothing is timed
            while not model.entered.is_set():
                assert asyncio.get_running_loop().time() < deadline, "the first batch never reached the model"
                await asyncio.sleep(0.005)
            rest = [asyncio.create_task(client.post("/predict", json={"text": text})) for text in texts]
            while (await client.get("/health")).json()["queued_texts"] < len(texts):
                assert asyncio.get_running_loop().time() < deadline, "the requests never queued"
                await asyncio.sleep(0.005)
            model.gate.set()
            return [await first, *[await task for task in rest]]

    responses = asyncio.run(clients())
    assert [r.status_code for r in responses] == [200] * (len(texts) + 1)
    labels = [r.json()["predictions"][0]["label"] for r in responses[1:]]
    assert labels == ["cooking", "sports", "weather", "cooking", "sports", "weather", "cooking", "sports"]
    assert model.batch_sizes == [1, len(texts)]


def _raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Sends bytes as written over a plain socket; returns status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(head + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    header_block, _, payload = received.partition(b"\r\n\r\n")
    lines = header_block.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, payload


def test_a_declared_length_over_the_limit_is_refused_before_the_body(live: Any) -> None:
    server = live(KeywordModel(), max_body_bytes=1000)
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n"
    )
    status, headers, payload = _raw_request(server.url, head)  # the 50 MB are never sent
    assert status == 413
    assert headers["connection"] == "close"
    assert "request body is 50000000 bytes" in json.loads(payload)["detail"]


def test_a_chunked_body_over_the_limit_is_refused_on_a_real_socket(live: Any) -> None:
    server = live(KeywordModel(), max_body_bytes=1000)
    chunk = b'{"text": "' + b"a" * 1200 + b'"}'
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    status, _, payload = _raw_request(server.url, head, body)
    assert status == 413
    assert "more than 1000 bytes" in json.loads(payload)["detail"]
    # the server is still fine for the next client
    assert httpx.post(f"{server.url}/predict", json={"text": "rain"}).json()["predictions"][0]["label"] == "weather"


def test_serve_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            bind("127.0.0.1", port)
        with pytest.raises(ConfigError, match="already in use"):
            serve(tmp_path, port=port)  # reported before the folder's model is loaded


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("127.0.0.1", 70000, "--port must be 0 to 65535"),
        ("no-such-host.invalid", 8000, "--host 'no-such-host.invalid' is not an address of this machine"),
        ("192.0.2.1", 0, "no network interface of this machine has that address"),
    ],
)
def test_bad_addresses_are_refused(host: str, port: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bind(host, port)


def test_serve_announces_where_it_listens_once_it_listens_and_warns_off_localhost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bertwise.serve.server import BertwiseServer

    ran: list[BertwiseServer] = []

    async def stop_at_once(self: BertwiseServer) -> None:
        ran.append(self)  # started, then shut down without serving: serve() returns

    monkeypatch.setattr(BertwiseServer, "main_loop", stop_at_once)
    lines: list[str] = []
    connected: list[bool] = []

    def announce(line: str) -> None:
        lines.append(line)
        port = int(line.rsplit("/docs", 1)[0].rsplit(":", 1)[1])
        # The socket must accept a connection when the line is said (the kernel queues it until uvicorn accepts).
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            connected.append(True)

    serve(KeywordModel(), host="127.0.0.1", port=0, announce=announce, max_batch_texts=8)
    config = ran[0].config
    port = int(lines[0].rsplit("/docs", 1)[0].rsplit(":", 1)[1])
    assert lines == [
        f"serving {config.app.state.card.id} (3 labels) on http://127.0.0.1:{port}  "
        f"(docs: http://127.0.0.1:{port}/docs; Ctrl-C stops)"
    ]
    assert connected == [True]
    assert config.app.state.settings.max_batch_texts == 8 and config.workers == 1

    lines.clear()
    serve(KeywordModel(), host="0.0.0.0", port=0, announce=lines.append)
    assert lines[0].startswith("warning: listening on 0.0.0.0, reachable from other machines, with no authentication")
    assert "docs: http://127.0.0.1:" in lines[1]


def test_a_stop_asked_for_during_start_up_skips_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from bertwise.serve.server import BertwiseServer

    original = BertwiseServer.startup

    async def stopped_while_starting(self: BertwiseServer, sockets: Any = None) -> None:
        self.should_exit = True  # what SIGTERM or Ctrl-C during start-up does
        await original(self, sockets=sockets)

    monkeypatch.setattr(BertwiseServer, "startup", stopped_while_starting)
    lines: list[str] = []
    serve(KeywordModel(), host="127.0.0.1", port=0, announce=lines.append)
    assert lines == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200"}  # so rich does not cut the option names in --help
    return subprocess.run(
        [sys.executable, "-m", "bertwise", "serve", *args], capture_output=True, text=True, timeout=120, env=environment
    )


def test_cli_help_lists_the_limits() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for option in (
        "--host",
        "--port",
        "--max-texts-per-request",
        "--max-text-chars",
        "--max-body-bytes",
        "--max-batch-texts",
        "--max-wait-ms",
        "--max-queue-texts",
        "--request-timeout-s",
        "--max-head-bytes",
        "--keep-alive-s",
        "--max-connections",
    ):
        assert option in result.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = _cli(str(tmp_path / "missing"))
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert "bertwise: error: model folder" in missing.stderr and "does not exist" in missing.stderr
    bad_limit = _cli(str(tmp_path), "--max-queue-texts", "10")
    assert bad_limit.returncode == 2
    assert "--max-queue-texts (10) must be at least --max-texts-per-request (256)" in bad_limit.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _cli(str(tmp_path), "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "is already in use by another program" in busy.stderr


def test_the_cli_module_does_not_import_the_server_stack() -> None:
    code = "import sys, bertwise.cli.main; print(sorted({'fastapi', 'uvicorn', 'torch'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]"
