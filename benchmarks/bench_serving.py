"""Serving throughput and latency: `serve` against `mlflow models serve` of the same model, and the fast path's parts.

For each model (price, demand, anomaly) this starts our ``serve`` (uvicorn, uvloop + httptools, one
model thread per worker) and ``mlflow models serve`` of the same trained model (a pyfunc around
``model_io``'s DataFrame path: the same predictions), and drives each from another process with
``wrk`` (keep-alive, ``--latency``): one-record and 100-record requests at 1, 8 and 64 connections.
It prints req/s, p50 and p99 per cell and the ratio serve/mlflow. Without ``wrk`` on PATH it says so
and uses a small asyncio load generator in a child process (less accurate); without mlflow it skips
the baseline and says so. ``--micro`` adds the in-process figures that chose the fast path: one-row
prediction through pandas (the training path), through the native libraries on an array, and through
the treelite/tl2cgen compiled library, and the request handler with and without data capture (and with
the rows in turn, not one row repeated). ``--capture-check`` adds, per model, one record at 64
connections with 100 % capture against the same cell without: req/s and the server's CPU per request.

    .venv/bin/python benchmarks/bench_serving.py [--models price] [--connections 1,8,64] [--records 1,100]
        [--duration 5] [--workers 2] [--no-mlflow] [--micro] [--onnx] [--no-servers] [--model-root DIR]
        [--capture-check] [--rows-in-turn]

In-process figures are CPU time of the benchmark process (median of interleaved batches), and each
load cell also reports the server's CPU µs per request (its processes' CPU time over the requests
served): both hold up on a shared machine far better than req/s, which another engineer's job halves.

Without ``--model-root`` (folders price/, demand/, anomaly/ of ``model_meta.json`` models, e.g. a
registry version's artifacts) the three models are trained on the training tests' synthetic world.
This is a benchmark, not a test: CI never runs it. On a shared machine the figures are far below a
quiet one's: report the load average next to them (the script prints it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("price", "demand", "anomaly")
MLFLOW_WRAPPER = ROOT / "benchmarks" / "mlflow_pyfunc.py"


def _load_tests_module(name: str):
    """A support module of tests/ by file path (the benchmark shares the world and the server helpers)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "tests" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


server_process = _load_tests_module("server_process")


def _world():
    mod = _load_tests_module("small_world")
    from processing.preprocess import preprocess

    offers, outcomes, truth = mod.make_world(days=30, searches_per_day=60, seed=7, anomaly_rate=0.03)
    splits, _ = preprocess(offers, outcomes, validation_days=5, test_days=5)
    return splits, truth


def train_models(root: Path, splits, truth) -> dict[str, Path]:
    """Price as `make run` trains it (depth-2 additive trees, ~700), demand and anomaly with their defaults, on a small world."""
    from training import anomaly, demand, price

    price.train(splits["train"]["offers"], splits["validation"]["offers"], root / "price", {"nthread": 2})
    demand.train(splits["train"]["flights"], splits["validation"]["flights"], root / "demand", {"nthread": 2})
    anomaly.train(splits["train"]["offers"], splits["validation"]["offers"], root / "anomaly",
                  truth[["offer_id", "is_anomaly"]], {"nthread": 2})
    return {k: root / k for k in KINDS}


def request_rows(model_dir: Path, splits, n: int = 200) -> list[dict]:
    from inference.schema import field_specs
    from core import model_io

    m = model_io.load(model_dir)
    fields = [s.name for s in field_specs(m.meta)]
    frame = splits["test"]["flights" if m.kind == "demand" else "offers"]
    frame = frame.sample(min(n, len(frame)), random_state=1, replace=len(frame) < n)
    return json.loads(frame[fields].to_json(orient="records"))


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------
_stop = server_process.stop


def start_serve(model_dir: Path, port: int, workers: int, capture: Path | None = None) -> subprocess.Popen:
    serve = Path(sys.executable).with_name("serve")
    cmd = [str(serve)] if serve.exists() else [sys.executable, "-m", "inference.entry"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--model-dir", str(model_dir), "--workers", str(workers),
            "--log-level", "warning"]
    if capture is not None:
        cmd += ["--capture", str(capture), "--endpoint-name", "bench"]
    proc = subprocess.Popen(cmd, env=dict(os.environ))
    try:
        server_process.wait_ready(proc, f"http://127.0.0.1:{port}/ping", 180)
        time.sleep(1.0)  # the other workers load their copy
    except Exception:
        _stop(proc)
        raise
    return proc


def mlflow_available() -> str | None:
    """Why mlflow cannot serve here, or None."""
    if importlib.util.find_spec("mlflow") is None:
        return "mlflow is not installed"
    if not Path(sys.executable).with_name("mlflow").exists() and shutil.which("mlflow") is None:
        return "the mlflow command is not on PATH"
    return None


def save_mlflow_model(model_dir: Path, target: Path) -> Path:
    import mlflow.pyfunc

    sys.path.insert(0, str(MLFLOW_WRAPPER.parent))
    from mlflow_pyfunc import AirfareModel  # noqa: E402 - the wrapper travels with the model (code_paths)

    mlflow.pyfunc.save_model(path=str(target), python_model=AirfareModel(), artifacts={"model_dir": str(model_dir)},
                             code_paths=[str(MLFLOW_WRAPPER)])
    return target


def start_mlflow(model_path: Path, port: int, workers: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe) if exe.exists() else "mlflow", "models", "serve", "-m", str(model_path), "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           # mlflow execs `uvicorn` by name: the venv's bin must be on PATH
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server_process.wait_ready(proc, f"http://127.0.0.1:{port}/ping", 240)
    except Exception:
        _stop(proc)
        raise
    return proc


def server_cpu_s(proc: subprocess.Popen) -> float:
    """CPU seconds used so far by a server and its workers: per request, a figure that a shared
    machine's other load disturbs far less than req/s (it still shares the caches)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    root = psutil.Process(proc.pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


# ---------------------------------------------------------------------------------------------
# Load generation (another process)
# ---------------------------------------------------------------------------------------------
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("%s", "rb")
wrk.body = f:read("*a")
f:close()
"""
# Several bodies, one per line (orjson never writes a raw newline), sent in turn.
_WRK_TURN_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _wrk_ms(text: str) -> float:
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
    for u in ("us", "ms", "s", "m"):
        if text.endswith(u):
            return float(text[: -len(u)]) * units[u]
    return float(text)


def _body_file(body: bytes | list[bytes], tmp: Path) -> Path:
    """The request body, or several (sent in turn), one per line."""
    path = tmp / "body.json"
    path.write_bytes(b"\n".join(body) + b"\n" if isinstance(body, list) else body)
    return path


def run_wrk(url: str, body: bytes | list[bytes], connections: int, seconds: float, tmp: Path) -> dict:
    body_file, script = _body_file(body, tmp), tmp / "post.lua"
    script.write_text((_WRK_TURN_SCRIPT if isinstance(body, list) else _WRK_SCRIPT) % body_file)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60).stdout
    res: dict = {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            res["rps"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            res["p50_ms" if parts[0] == "50%" else "p99_ms"] = _wrk_ms(parts[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            res["errors"] += sum(int(x.strip(",")) for x in parts if x.strip(",").isdigit())
    return res


async def _connection(host, port, path, bodies, deadline, lat, errors):
    reader, writer = await asyncio.open_connection(host, port)
    reqs = [(f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]
    try:
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(reqs[i % len(reqs)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(x[15:]) for x in head.split(b"\r\n") if x[:15].lower() == b"content-length:"), 0)
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


def _asyncio_load(url: str, body_file: str, connections: int, seconds: float) -> None:
    """Child-process entry of the fallback generator: prints one JSON line."""
    from urllib.parse import urlparse

    u = urlparse(url)
    text = Path(body_file).read_bytes()
    bodies = text.splitlines() if text.endswith(b"\n") else [text]  # several bodies: one per line
    lat: list[float] = []
    errors: list[int] = []

    async def go():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(u.hostname, u.port, u.path, bodies, deadline, lat, errors)
                               for _ in range(connections)))

    t0 = time.perf_counter()
    asyncio.run(go())
    wall = time.perf_counter() - t0
    print(json.dumps({"rps": len(lat) / wall, "p50_ms": 1e3 * float(np.percentile(lat, 50)),
                      "p99_ms": 1e3 * float(np.percentile(lat, 99)), "errors": len(errors)}))


def run_load(url: str, body: bytes | list[bytes], connections: int, seconds: float, tmp: Path) -> dict:
    """Load from another process: one body, or a list of bodies sent in turn."""
    if shutil.which("wrk"):
        return run_wrk(url, body, connections, seconds, tmp)
    body_file = _body_file(body, tmp)
    out = subprocess.run([sys.executable, __file__, "--_load", url, str(body_file), str(connections), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# In-process micro-benchmark (the fast-path choice)
# ---------------------------------------------------------------------------------------------
def _batches_us(fns: dict, seconds: float, batch: int = 100, after: dict | None = None) -> dict:
    """CPU µs per call of each function, timed in interleaved batches; the median batch.

    CPU time of this process (``time.process_time``: every thread, kernel time included), not wall
    time, so that other processes on a shared machine cost only through the caches they share; the
    functions take turns batch by batch, so a quiet or a busy moment favours none of them.
    ``after[name]`` runs at the end of each of that function's batches, inside its time (the capture
    writer's flush: its batched encoding and write are part of what capture costs).
    """
    after = after or {}
    for fn in fns.values():
        for _ in range(20):
            fn()
    per: dict = {name: [] for name in fns}
    deadline = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < deadline or min(len(v) for v in per.values()) < 5:
        for name, fn in fns.items():
            t0 = time.process_time()
            for _ in range(batch):
                fn()
            if name in after:
                after[name]()
            per[name].append((time.process_time() - t0) / batch)
    return {name: 1e6 * float(np.median(v)) for name, v in per.items()}


def _per_call_us(fn, seconds: float) -> float:
    return _batches_us({"f": fn}, seconds)["f"]


def micro(model_dir: Path, rows: list[dict], seconds: float, tmp: Path) -> dict:
    import pandas as pd

    from inference.app import create_app
    from inference.capture import CaptureWriter
    from inference.fast import FastModel
    from inference.predict import Predictor
    from core import model_io

    m = model_io.load(model_dir)
    frame = pd.DataFrame(rows[:1])
    dataframe_path = {"price": m.predict_price, "demand": m.predict_demand_proba, "anomaly": m.anomaly_score}[m.kind]
    out = {"dataframe (training path)": _per_call_us(lambda: dataframe_path(frame), seconds)}
    p = Predictor(m, "native")
    valid = p.validate(rows[:1])
    out["arrays + native library"] = _per_call_us(lambda: p.predict(valid), seconds)
    fast = FastModel(m, "compiled")
    out["arrays + tl2cgen compiled"] = _per_call_us(lambda: fast.predict(valid), seconds)
    body = orjson.dumps(rows[0])
    loop = asyncio.new_event_loop()

    def handler(app):
        sys.path.insert(0, str(ROOT / "tests" / "inference"))
        from inference_support import asgi_call

        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        return lambda: asgi_call(app, "POST", "/invocations", body, headers, loop=loop)

    plain = create_app(model_dir)
    plain.load()
    writer = CaptureWriter(tmp / "capture", "bench", percent=100)
    captured = create_app(model_dir, predictor=plain.predictor, capture=writer)  # the same model object
    # 500 requests per batch, then the writer's flush: about what a worker takes in the server's flush
    # interval (capture.FLUSH_EVERY_S) at the goal's 15,000 req/s over two workers.
    both = _batches_us({"plain": handler(plain), "capture": handler(captured)}, seconds, batch=500,
                       after={"capture": writer.flush})
    writer.close()
    # The same handler with a different row each call (the request bodies in turn): what the trees
    # cost when the branches they take change, as in production (the line above repeats one row).
    from inference_support import asgi_call  # on sys.path since handler() above

    bodies = [orjson.dumps(r) for r in rows]
    turn = {"i": 0}

    def in_turn():
        turn["i"] = i = (turn["i"] + 1) % len(bodies)
        b = bodies[i]
        return asgi_call(plain, "POST", "/invocations", b, [("content-type", "application/json"),
                                                            ("content-length", str(len(b)))], loop=loop)

    varied = _per_call_us(in_turn, seconds)
    loop.close()
    out["whole request handler (parse, validate, predict, encode)"] = both["plain"]
    out[f"whole request handler, {len(bodies)} different rows in turn"] = varied
    out["whole request handler, 100 % capture (batched write included)"] = both["capture"]
    out["capture cost, % of the handler"] = 100 * (both["capture"] / both["plain"] - 1)
    return out


def onnx_figures(model_dir: Path, rows: list[dict], seconds: float) -> dict:
    """ONNX Runtime (onnxmltools / skl2onnx) against the compiled trees, per tree model of ``model_dir``.

    Each member is converted, checked against the compiled library on ``rows`` (max abs difference)
    and timed on one row (ONNX Runtime with one thread, input preallocated). A member that cannot be
    converted says why (XGBoost's categorical splits: onnxmltools cannot express them).
    """
    import warnings

    from inference.fast import FastModel
    from inference.predict import Predictor
    from core import model_io

    try:
        import onnxmltools
        import onnxruntime as ort
        import skl2onnx
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed (pip install onnxruntime onnxmltools skl2onnx)"}
    warnings.filterwarnings("ignore")
    m = model_io.load(model_dir)
    p = Predictor(m, "compiled")
    valid = p.validate(rows)
    fast: FastModel = p.fast
    members = []  # (name, model, encoder, compiled trees, convert)
    if m.kind == "price" or (m.kind == "demand" and fast.xgb is not None):
        members.append(("xgb", m._models["xgb"], fast.encoder, fast.xgb, "xgboost"))
    if m.kind == "demand":
        members.append(("lgb", m._models["lgb"], fast.encoder, fast.lgb, "lightgbm"))
    if m.kind == "anomaly":
        if fast.norm is not None:
            members.append(("norm xgb", m._models["norm"]._models["xgb"], fast.norm_encoder, fast.norm, "xgboost"))
        members.append(("iforest", m._models["iforest"], None, fast.forest, "sklearn"))
    out: dict = {}
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    for name, model, encoder, trees, how in members:
        if encoder is None:  # the forest's input: the derived features
            expected = fast.norm.predict(fast.norm_encoder.matrix(valid))[:, 0] if fast.norm is not None else None
            x = np.asarray(fast.encoder.matrix(valid, expected), dtype=np.float32)
        else:
            x = encoder.matrix(valid, np.float32)
        t0 = time.perf_counter()
        try:
            types = [("input", FloatTensorType([None, x.shape[1]]))]
            if how == "xgboost":
                onx = onnxmltools.convert_xgboost(model, initial_types=types)
            elif how == "lightgbm":
                onx = onnxmltools.convert_lightgbm(model, initial_types=types, zipmap=False)
            else:
                onx = skl2onnx.to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
        except Exception as e:  # noqa: BLE001 - the figure is why it failed
            out[name] = {"onnx": f"not convertible: {type(e).__name__}: {str(e).splitlines()[0][:160]}"}
            continue
        convert_s = time.perf_counter() - t0
        sess = ort.InferenceSession(onx.SerializeToString(), so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        feed_name = sess.get_inputs()[0].name
        res = sess.run(None, {feed_name: x})
        if how == "lightgbm":
            got = np.asarray(res[names.index("probabilities")], dtype=np.float64)
        elif how == "sklearn":
            # skl2onnx gives decision_function = score_samples - offset_; serving uses -score_samples
            got = -(np.asarray(res[names.index("scores")], dtype=np.float64).reshape(-1, 1) + model.offset_)
        else:
            got = np.asarray(res[-1], dtype=np.float64).reshape(len(x), -1)
        ref = trees.predict(x.astype(np.float64))
        x1 = np.ascontiguousarray(x[:1])
        feed = {feed_name: x1}
        times = _batches_us({"onnx": lambda: sess.run(None, feed), "compiled": lambda: trees.predict(x1)}, seconds)
        out[name] = {"onnx_us": times["onnx"], "compiled_us": times["compiled"], "convert_s": convert_s,
                     "max_abs_diff": float(np.max(np.abs(got.reshape(ref.shape) - ref)))}
    return out


def capture_check(kind: str, model_dir: Path, body: bytes, args, base: dict | None, results: dict, tmp: Path) -> None:
    """One record, 64 connections, with 100 % capture: req/s and the server's CPU µs per request,
    against the same cell without capture (``base``, from the table just measured)."""
    port = server_process.free_port()
    try:
        proc = start_serve(model_dir, port, args.workers, capture=tmp / f"capture-{kind}")
    except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
        print(f"serve --capture for {kind} did not start: {e}")
        return
    try:
        cpu0 = server_cpu_s(proc)
        r = run_load(f"http://127.0.0.1:{port}/invocations", body, 64, args.duration, tmp)
        done = r["rps"] * args.duration
        r["server_cpu_us"] = 1e6 * (server_cpu_s(proc) - cpu0) / done if done else float("nan")
    finally:
        _stop(proc)
    lines = sum(len(f.read_bytes().splitlines()) for f in (tmp / f"capture-{kind}").rglob("*.jsonl"))
    results.setdefault("capture", {})[kind] = {**r, "captured_lines": lines, "without": base}
    line = (f"\n{kind}, one record, 64 connections, 100 % capture: {r['rps']:.0f} req/s p99 {r['p99_ms']:.2f} ms, "
            f"server CPU {r['server_cpu_us']:.0f} µs/request ({lines} lines captured)")
    if base and base.get("rps"):
        line += (f"; without capture {base['rps']:.0f} req/s, {base['server_cpu_us']:.0f} µs/request: "
                 f"CPU {100 * (r['server_cpu_us'] / base['server_cpu_us'] - 1):+.1f} %")
    print(line)


# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--_load":
        _asyncio_load(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(KINDS))
    p.add_argument("--model-root", type=Path, default=None)
    p.add_argument("--connections", default="1,8,64")
    p.add_argument("--records", default="1,100")
    p.add_argument("--duration", type=float, default=5.0, help="Seconds of load per cell.")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--micro", action="store_true", help="Also the in-process fast-path figures.")
    p.add_argument("--micro-seconds", type=float, default=2.0)
    p.add_argument("--onnx", action="store_true", help="Also ONNX Runtime against the compiled trees, per tree model.")
    p.add_argument("--no-servers", action="store_true", help="Only the in-process figures (--micro, --onnx).")
    p.add_argument("--capture-check", action="store_true",
                   help="Also one record at 64 connections with 100 %% capture, per model (needs 64 in --connections "
                        "and 1 in --records for the comparison).")
    p.add_argument("--rows-in-turn", action="store_true",
                   help="One-record requests cycle through 200 different rows (as production sends them; "
                        "the trees then take other branches each time) instead of repeating one row.")
    p.add_argument("--json", type=Path, default=None, help="Write all figures here.")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    conns = [int(c) for c in args.connections.split(",")]
    sizes = [int(r) for r in args.records.split(",")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    print(f"load generator: {'wrk -t1' if shutil.which('wrk') else 'asyncio child process (wrk not on PATH)'}; "
          f"{os.cpu_count()} cores, {args.workers} workers per server; load average before: {os.getloadavg()}")
    mlflow_why = "--no-mlflow" if args.no_mlflow else mlflow_available()
    if mlflow_why:
        print(f"mlflow baseline skipped: {mlflow_why}")
    results: dict = {"load_average_before": os.getloadavg(), "cells": [], "micro": {}}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        splits, truth = _world()
        dirs = ({k: args.model_root / k for k in kinds} if args.model_root else train_models(tmp / "models", splits, truth))
        for kind in kinds:
            rows = request_rows(dirs[kind], splits)
            bodies = {n: orjson.dumps(rows[0]) if n == 1 else orjson.dumps({"instances": (rows * (n // len(rows) + 1))[:n]})
                      for n in sizes}
            if args.rows_in_turn and 1 in bodies:
                bodies[1] = [orjson.dumps(r) for r in rows]
            mlflow_bodies = {n: orjson.dumps({"dataframe_records": (rows * (n // len(rows) + 1))[:n]}) for n in sizes}
            if args.rows_in_turn and 1 in bodies:
                mlflow_bodies[1] = [orjson.dumps({"dataframe_records": [r]}) for r in rows]
            if args.micro:
                figures = micro(dirs[kind], rows, args.micro_seconds, tmp)
                results["micro"][kind] = figures
                print(f"\n{kind}: in-process, one record, µs per call")
                for name, us in figures.items():
                    print(f"  {name:66s} {us:9.1f}")
            if args.onnx:
                figures = onnx_figures(dirs[kind], rows, args.micro_seconds)
                results.setdefault("onnx", {})[kind] = figures
                print(f"\n{kind}: ONNX Runtime vs tl2cgen compiled, one row, CPU µs per call")
                for member, f in figures.items():
                    if isinstance(f, dict) and "onnx_us" in f:
                        print(f"  {member:10s} onnxruntime {f['onnx_us']:8.1f}   compiled {f['compiled_us']:8.1f}   "
                              f"max |diff| {f['max_abs_diff']:.2e}   (conversion {f['convert_s']:.1f} s)")
                    else:
                        print(f"  {member:10s} {f if isinstance(f, str) else f['onnx']}")
            if args.no_servers:
                continue
            servers = [("serve", "/invocations", bodies)]
            if not mlflow_why:
                servers.append(("mlflow", "/invocations", mlflow_bodies))
            table: dict = {}
            for server, path, server_bodies in servers:
                port = server_process.free_port()
                try:
                    if server == "serve":
                        proc = start_serve(dirs[kind], port, args.workers)
                    else:
                        proc = start_mlflow(save_mlflow_model(dirs[kind], tmp / f"mlflow-{kind}"), port, args.workers)
                except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
                    print(f"{server} for {kind} did not start: {e}")
                    continue
                try:
                    for n in sizes:
                        for c in conns:
                            cpu0 = server_cpu_s(proc)
                            r = run_load(f"http://127.0.0.1:{port}{path}", server_bodies[n], c, args.duration, tmp)
                            done = r["rps"] * args.duration
                            r["server_cpu_us"] = 1e6 * (server_cpu_s(proc) - cpu0) / done if done else float("nan")
                            table[(server, n, c)] = r
                            results["cells"].append({"model": kind, "server": server, "records": n, "connections": c, **r})
                finally:
                    _stop(proc)
            print(f"\n{kind}: req/s, p50/p99 ms ({args.duration:g} s per cell)")
            print(f"  {'records':>7} {'conns':>5} | {'serve req/s':>11} {'p50':>7} {'p99':>7} {'CPU µs':>7} | "
                  f"{'mlflow req/s':>12} {'p50':>7} {'p99':>8} | {'ratio':>6}")
            for n in sizes:
                for c in conns:
                    s, m = table.get(("serve", n, c)), table.get(("mlflow", n, c))
                    line = f"  {n:>7} {c:>5} | "
                    line += (f"{s['rps']:>11.0f} {s['p50_ms']:>7.2f} {s['p99_ms']:>7.2f} {s['server_cpu_us']:>7.0f} | "
                             if s else f"{'-':>35} | ")
                    line += f"{m['rps']:>12.0f} {m['p50_ms']:>7.1f} {m['p99_ms']:>8.1f} | " if m else f"{'-':>29} | "
                    line += f"{s['rps'] / m['rps']:>6.1f}" if s and m and m["rps"] else f"{'-':>6}"
                    errs = (s or {}).get("errors", 0) + (m or {}).get("errors", 0)
                    print(line + (f"  ({errs} errors)" if errs else ""))
            if args.capture_check and 1 in bodies:
                capture_check(kind, dirs[kind], bodies[1], args, table.get(("serve", 1, 64)), results, tmp)
    results["load_average_after"] = os.getloadavg()
    print(f"\nload average after: {results['load_average_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
