"""Load test of `bertwise serve` on loopback, next to the offline throughput of the same model in the same run.

Trains a probe on examples/banking77_sample (or takes --model DIR), starts `bertwise serve` as a subprocess on a free
port, waits for /health, then runs --clients concurrent clients (one process, asyncio, one keep-alive connection each,
through aiohttp or --client httpx) for --seconds, each sending --texts-per-request texts per request (default 1; texts
cycled from the sample). Before the server starts and after it
stops it measures `bertwise.load(DIR).predict_proba` on the same texts in batches of --offline-batch (default 64, the
server's batch limit), and prints served texts/s over the faster of the two offline figures.

    .venv/bin/python benchmarks/serve_load.py                          # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/serve_load.py --model DIR --clients 32 --seconds 30 --device cpu
    .venv/bin/python benchmarks/serve_load.py --seconds 5              # a quick check
    .venv/bin/python benchmarks/serve_load.py --texts-per-request 8 --out benchmarks/results/serve-load-batched-cpu.json

The clients share the machine with the server: on 2 cores every CPU second the client spends parsing responses is one
the model does not get, so the client is kept to one process, aiohttp by default (0.33 ms of CPU per request here,
httpx 1.4 ms), and the JSON records the CPU seconds of both sides.
Writes benchmarks/results/serve-load-<device>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import REPO, machine, use_checkout, write_json  # noqa: E402

SAMPLE = REPO / "examples" / "banking77_sample"
TARGET_RATIO = 0.7


def sample_rows(name: str) -> tuple[list[str], list[str]]:
    with (SAMPLE / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def train_sample_model(folder: Path, device: str) -> None:
    """A probe trained on the sample's train split and scored on its test split, saved as a model folder."""
    import bertwise

    bertwise.train(SAMPLE, strategy="probe", out=folder, device=device)


def start_server(model: Path, device: str, log: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """`bertwise serve` on a free loopback port; returns the process and its base URL once it announced the port."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "bertwise", "serve", str(model), "--port", "0", "--device", device]
    # Access logs cost the server a line of formatting and I/O per request; a load test measures the serving path.
    command += ["--no-access-log", "--log-level", "warning", *extra]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, env=environment)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            raise SystemExit(f"bertwise serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"bertwise serve did not announce its port within 300 s:\n{log.read_text()[-3000:]}")


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bertwise serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.get(f"{url}/health", timeout=5)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url}/health did not answer 200 within 120 s:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _HttpxClient:
    """One keep-alive connection through httpx (the client most Python services use)."""

    def __init__(self, url: str) -> None:
        import importlib.util

        if importlib.util.find_spec("sniffio") is None:
            # httpcore tries `import sniffio` several times per request and, when it is not installed, pays a failed
            # import search each time (a fifth of the client's CPU here); a None entry makes that import fail at
            # once, with the same outcome (httpcore assumes asyncio).
            sys.modules["sniffio"] = None  # type: ignore[assignment]
        import httpx

        self.errors: tuple[type[BaseException], ...] = (httpx.HTTPError,)
        self._http = httpx.AsyncClient(base_url=url, timeout=60)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        response = await self._http.post(path, json=body)
        return response.status_code, response.text

    async def get_json(self, path: str) -> Any:
        return (await self._http.get(path)).json()

    async def close(self) -> None:
        await self._http.aclose()


class _AiohttpClient:
    """One keep-alive connection through aiohttp, which costs about a quarter of httpx's CPU per request here."""

    def __init__(self, url: str) -> None:
        import aiohttp

        self.errors = (aiohttp.ClientError, asyncio.TimeoutError)
        self._http = aiohttp.ClientSession(
            base_url=url, timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=1)
        )

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        async with self._http.post(path, json=body) as response:
            return response.status, await response.text()

    async def get_json(self, path: str) -> Any:
        async with self._http.get(path) as response:
            return await response.json()

    async def close(self) -> None:
        await self._http.close()


CLIENTS = {"aiohttp": _AiohttpClient, "httpx": _HttpxClient}


async def load_test(
    url: str, texts: list[str], clients: int, seconds: float, warmup: float, per_request: int, library: str
) -> dict[str, Any]:
    """``clients`` loops sending ``per_request`` texts per request; only requests sent inside the window count."""
    import numpy as np

    latencies: list[float] = []
    errors: list[str] = []
    counted = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start = start + warmup
    window_end = window_start + seconds

    async def client(number: int, http: Any) -> None:
        nonlocal counted
        position = number * per_request  # each client starts at its own place in the texts
        while loop.time() < window_end:
            chosen = [texts[(position + i) % len(texts)] for i in range(per_request)]
            position += clients * per_request
            body = {"text": chosen[0]} if per_request == 1 else {"texts": chosen}
            sent = loop.time()
            try:
                status, text = await http.post("/predict", body)
                failure = None if status == 200 else f"{status}: {text[:200]}"
            except http.errors as error:
                failure = f"{type(error).__name__}: {error}"
            finished = loop.time()
            if sent < window_start or finished > window_end:
                continue  # warm-up, or a request the window's end cut through
            counted += 1
            if failure is None:
                latencies.append(finished - sent)
            else:
                errors.append(failure)

    # One client object (one keep-alive connection) per simulated client, as independent clients would be: one shared
    # pool of 32 connections costs httpcore about 2.5x the CPU per request (it scans the whole pool on every
    # request), and on 2 cores every client CPU second is taken from the server.
    https = [CLIENTS[library](url) for _ in range(clients)]
    # Its own connection: behind a busy client's, the snapshot could wait for that client's last request.
    monitor = CLIENTS[library](url)
    health_before: dict[str, Any] = {}

    async def snapshot() -> None:
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        health_before.update(await monitor.get_json("/health"))

    cpu_before = time.process_time()
    try:
        await asyncio.gather(snapshot(), *(client(number, https[number]) for number in range(clients)))
        client_cpu = time.process_time() - cpu_before
        health_after = await monitor.get_json("/health")
    finally:
        for http in [*https, monitor]:
            await http.close()

    done = len(latencies)
    quantiles = np.percentile(np.array(latencies) * 1000, [50, 95, 99]) if latencies else [float("nan")] * 3
    batches = health_after["batches"] - health_before.get("batches", 0)
    served_texts = health_after["texts"] - health_before.get("texts", 0)
    busy = health_after["busy_s"] - health_before.get("busy_s", 0.0)
    return {
        "clients": clients,
        "client_library": library,
        "texts_per_request": per_request,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "requests": counted,
        "ok": done,
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "requests_per_s": round(done / seconds, 1),
        "texts_per_s": round(done * per_request / seconds, 1),
        "latency_ms": {
            "p50": round(float(quantiles[0]), 1),
            "p95": round(float(quantiles[1]), 1),
            "p99": round(float(quantiles[2]), 1),
            "max": round(max(latencies) * 1000, 1) if latencies else None,
        },
        "server_batches": batches,
        "server_mean_batch_texts": round(served_texts / batches, 1) if batches else None,
        "server_rejected_requests": health_after["rejected_requests"],
        # Share of the window the model spent in predict_proba (the health snapshots bracket the window closely).
        "server_model_busy_share": round(busy / seconds, 3),
        "client_cpu_seconds": round(client_cpu, 1),  # over the warm-up and the window, as server_cpu_seconds
        "cpu_span_seconds": warmup + seconds,
    }


def load_folder(model_dir: Path, device: str) -> Any:
    import bertwise

    return bertwise.load(model_dir, device=device)


def offline_throughput(model: Any, texts: list[str], batch: int, seconds: float) -> dict[str, Any]:
    """``predict_proba`` of the loaded folder on the same texts in batches, for at least ``seconds``."""
    model.predict_proba(texts[:batch])  # first call pays for lazy initialisation, as the server's warm-up does
    done = 0
    position = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        chunk = [texts[(position + i) % len(texts)] for i in range(batch)]
        position += batch
        model.predict_proba(chunk)
        done += batch
    elapsed = time.perf_counter() - started
    return {"texts": done, "seconds": round(elapsed, 1), "texts_per_s": round(done / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: train a probe on the sample)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--texts-per-request", type=int, default=1, help="texts each request carries")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="aiohttp", help="HTTP client library")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured load, after the warm-up")
    parser.add_argument("--warmup-seconds", type=float, default=3.0, help="load before the measured window")
    parser.add_argument("--offline-batch", type=int, default=64, help="texts per offline predict_proba call")
    parser.add_argument("--offline-seconds", type=float, default=15.0, help="each of the two offline runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `bertwise serve` option (repeat)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    use_checkout()
    out = args.out or REPO / "benchmarks" / "results" / f"serve-load-{args.device}.json"

    test_texts, _ = sample_rows("test.csv")
    train_texts, _ = sample_rows("train.csv")
    texts = test_texts + train_texts
    report: dict[str, Any] = {"machine": machine(), "device": args.device}
    with tempfile.TemporaryDirectory(prefix="bertwise-serve-bench-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = args.model
        if model_dir is None:
            model_dir = scratch / "model"
            started = time.perf_counter()
            train_sample_model(model_dir, args.device)
            print(f"trained a probe on {SAMPLE} in {time.perf_counter() - started:.0f} s")
            report["model"] = {"source": "probe trained by bertwise.train on examples/banking77_sample"}
        else:
            report["model"] = {"source": str(model_dir)}

        # Offline before and after the load test: the faster of the two is the reference, so a machine that got
        # busier (or quieter) during the run does not flatter the ratio.
        model = load_folder(model_dir, args.device)
        print(f"offline: predict_proba in batches of {args.offline_batch} for {args.offline_seconds:g} s")
        before = offline_throughput(model, texts, args.offline_batch, args.offline_seconds)

        log = scratch / "serve.log"
        process, url = start_server(model_dir, args.device, log, args.server_arg)
        try:
            wait_healthy(url, process, log)
            import httpx

            metadata = httpx.get(f"{url}/metadata", timeout=10).json()
            report["model"].update({"id": metadata["model"]["id"], "classes": len(metadata["model"]["classes"])})
            report["limits"] = metadata["limits"]
            import psutil

            server_process = psutil.Process(process.pid)
            server_cpu_before = sum(server_process.cpu_times()[:2])
            print(
                f"serving on {url}: {args.clients} clients for {args.warmup_seconds:g} s warm-up + {args.seconds:g} s"
            )
            served = asyncio.run(
                load_test(
                    url,
                    texts,
                    args.clients,
                    args.seconds,
                    args.warmup_seconds,
                    args.texts_per_request,
                    args.client,
                )
            )
            served["server_cpu_seconds"] = round(sum(server_process.cpu_times()[:2]) - server_cpu_before, 1)
        finally:
            stop_server(process)
        report["served"] = served
        report["server_log_tail"] = log.read_text(errors="replace")[-2000:]
        print(f"offline again: predict_proba in batches of {args.offline_batch} for {args.offline_seconds:g} s")
        after = offline_throughput(model, texts, args.offline_batch, args.offline_seconds)
        report["offline"] = {
            "batch": args.offline_batch,
            "before": before,
            "after": after,
            "texts_per_s": max(before["texts_per_s"], after["texts_per_s"]),
        }
        # A diagnostic, not the reference: offline at the batch size the server actually ran, which separates what
        # smaller batches cost from what sharing the cores with HTTP costs.
        served_batch = max(1, round(served["server_mean_batch_texts"] or 1))
        if served_batch != args.offline_batch:
            at_served = offline_throughput(model, texts, served_batch, args.offline_seconds)
            report["offline"]["at_served_batch"] = {"batch": served_batch, **at_served}

    ratio = served["texts_per_s"] / report["offline"]["texts_per_s"]
    report["served_over_offline"] = round(ratio, 3)
    report["target_ratio"] = TARGET_RATIO
    report["meets_target"] = ratio >= TARGET_RATIO and served["errors"] == 0
    latency = served["latency_ms"]
    print(
        f"served: {served['requests_per_s']} requests/s = {served['texts_per_s']} texts/s, "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms, {served['errors']} errors, "
        f"mean batch {served['server_mean_batch_texts']} texts"
    )
    print(
        f"offline: {report['offline']['texts_per_s']} texts/s (batches of {args.offline_batch}; "
        f"{before['texts_per_s']} before the load test, {after['texts_per_s']} after)"
    )
    if "at_served_batch" in report["offline"]:
        diagnostic = report["offline"]["at_served_batch"]
        print(f"offline at the served batch size ({diagnostic['batch']}): {diagnostic['texts_per_s']} texts/s")
    print(f"served/offline: {ratio:.2f} (target >= {TARGET_RATIO})")
    write_json(out, report)


if __name__ == "__main__":
    main()
