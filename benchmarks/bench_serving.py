"""One-record POST /invocations on the price model: requests/s and p50/p99 against a real server.

Starts the ``serve`` console script (uvicorn, uvloop + httptools, one XGBoost thread per worker)
on loopback, drives it with a small keep-alive HTTP/1.1 client on asyncio (cheap enough not to be
the bottleneck on a 2-core box the way httpx would be), and compares with a baseline measured in
the same run: ``model_io.predict_price`` on a one-row DataFrame in this process, i.e. the same
prediction work without HTTP, JSON and validation. Stops by itself after ``--requests`` or
``--duration`` seconds, whichever comes first.

    .venv/bin/python benchmarks/bench_serving.py [--model-dir DIR] [--workers 2] [--connections 32]

Without ``--model-dir`` a price model (300 trees, depth 8, as in NOTES-platform.md) is trained
on the synthetic curated-like world of ``tests/small_world.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _world_rows():
    spec = importlib.util.spec_from_file_location("bench_world", ROOT / "tests" / "small_world.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    offers, outcomes, _ = mod.make_world(days=30, searches_per_day=60, seed=7)
    return offers, outcomes


def train_price_model(target: Path) -> Path:
    from processing.preprocess import preprocess
    from training import price

    offers, outcomes = _world_rows()
    splits, _ = preprocess(offers, outcomes, validation_days=5, test_days=5)
    price.train(splits["train"]["offers"], splits["validation"]["offers"], target,
                {"n_estimators": 300, "max_depth": 8, "early_stopping_rounds": 1000, "nthread": 2})
    return target


def sample_rows(model, n: int = 200) -> list[dict]:
    import json

    offers, _ = _world_rows()
    return json.loads(offers.sample(n, random_state=1)[model.features].to_json(orient="records"))


def baseline(model, rows: list[dict], seconds: float) -> dict:
    """Direct per-row calls in this process: the work a request needs minus HTTP."""
    import pandas as pd

    frames = [pd.DataFrame([r]) for r in rows]
    lat, i, t_end = [], 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        model.predict_price(frames[i % len(frames)])
        lat.append(time.perf_counter() - t0)
        i += 1
    total = sum(lat)
    return {"count": len(lat), "rps": len(lat) / total, "p50_ms": 1e3 * np.percentile(lat, 50),
            "p99_ms": 1e3 * np.percentile(lat, 99)}


async def _connection(port: int, bodies: list[bytes], budget: dict, lat: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget["left"] > 0 and time.perf_counter() < budget["deadline"]:
            budget["left"] -= 1
            body = bodies[budget["left"] % len(bodies)]
            req = (b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            payload = await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0] + b" " + payload[:200])
    finally:
        writer.close()


async def _drive(port: int, bodies: list[bytes], connections: int, requests: int, seconds: float) -> dict:
    budget = {"left": requests, "deadline": time.perf_counter() + seconds}
    lat: list[float] = []
    errors: list[bytes] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_connection(port, bodies, budget, lat, errors) for _ in range(connections)))
    wall = time.perf_counter() - t0
    return {"count": len(lat), "errors": len(errors), "first_error": errors[0].decode(errors="replace") if errors else None,
            "rps": len(lat) / wall, "p50_ms": 1e3 * np.percentile(lat, 50), "p99_ms": 1e3 * np.percentile(lat, 99),
            "wall_s": wall}


def start_server(model_dir: Path, port: int, workers: int, timeout_s: float = 60) -> subprocess.Popen:
    serve = Path(sys.executable).with_name("serve")
    cmd = [str(serve)] if serve.exists() else [sys.executable, "-m", "inference.entry"]
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)}
    proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port), "--model-dir", str(model_dir),
                             "--log-level", "warning"], env=env)
    deadline = time.monotonic() + timeout_s
    import httpx

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                # every worker loads its own model: give the others a moment after the first answers
                time.sleep(1.0 if workers > 1 else 0)
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve did not answer /ping in time")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--duration", type=float, default=15.0, help="Stop the load after this many seconds.")
    p.add_argument("--baseline-seconds", type=float, default=3.0)
    args = p.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from core import model_io

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        model_dir = args.model_dir or train_price_model(Path(tmp) / "price")
        model = model_io.load(model_dir)
        rows = sample_rows(model)
        bodies = [orjson.dumps({"instances": [r]}) for r in rows]
        print(f"price model: {model.meta.get('trees')} trees, {len(model.features)} features; "
              f"{os.cpu_count()} cores, {args.workers} workers, {args.connections} connections")

        base = baseline(model, rows, args.baseline_seconds)
        print(f"baseline  model_io.predict_price, one-row DataFrame, in-process: {base['rps']:8.0f} calls/s  "
              f"p50 {base['p50_ms']:.3f} ms  p99 {base['p99_ms']:.3f} ms  ({base['count']} calls)")

        port = _free_port()
        proc = start_server(model_dir, port, args.workers)
        try:
            try:
                import uvloop

                uvloop.install()
            except ImportError:
                pass
            asyncio.run(_drive(port, bodies, min(4, args.connections), 200, 5))  # warm-up
            res = asyncio.run(_drive(port, bodies, args.connections, args.requests, args.duration))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        print(f"serve     POST /invocations, one record, loopback:            {res['rps']:8.0f} req/s    "
              f"p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms  ({res['count']} requests, "
              f"{res['errors']} errors, {res['wall_s']:.1f} s)")
        if res["errors"]:
            print(f"first error: {res['first_error']}")
        print(f"ratio     server req/s / in-process calls/s: {res['rps'] / base['rps']:.2f}")
        return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
