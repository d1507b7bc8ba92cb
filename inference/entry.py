"""The container's ``serve`` entry (SageMaker inference contract, DESIGN.md §1).

SageMaker starts the image with ``serve`` and expects HTTP on port 8080. This runs uvicorn with
uvloop + httptools (several times faster than asyncio + h11, NOTES-platform.md) and one worker
process per core (``SAGEMAKER_MODEL_SERVER_WORKERS`` overrides), each with a single model thread:
XGBoost with two threads in each of two workers on two cores oversubscribes the CPU and throughput
collapses. The thread caps are set in the environment before any worker imports numpy or XGBoost.

Before the workers start, the parent builds the model's compiled trees once (``inference.compiled``),
so each worker only loads the shared libraries. ``--capture DIR`` turns on data capture in
SageMaker's format (``inference.capture``) under ``DIR/<endpoint-name>/AllTraffic/...``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
DEFAULT_PORT = 8080
# Longer than SageMaker's 60 s invocation timeout, so the front end never reuses a connection we closed.
KEEP_ALIVE_S = 75


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    raw = os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "").strip()
    if not raw:
        return cpu_count()
    try:
        n = int(raw)
    except ValueError:
        raise SystemExit(f"SAGEMAKER_MODEL_SERVER_WORKERS must be a whole number, got {raw!r}") from None
    if n < 1:
        raise SystemExit(f"SAGEMAKER_MODEL_SERVER_WORKERS must be >= 1, got {n}")
    return n


def single_thread_env(environ=os.environ) -> None:
    """One math thread per worker process (inherited by the workers uvicorn spawns)."""
    for name in THREAD_ENV:
        environ[name] = "1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="serve", description="Serve the model in /opt/ml/model on SageMaker's inference contract.")
    p.add_argument("--host", default=os.environ.get("AIRFARE_SERVE_HOST", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT)))
    p.add_argument("--workers", type=int, default=None, help="Worker processes (default: SAGEMAKER_MODEL_SERVER_WORKERS or cores).")
    p.add_argument("--model-dir", default=None, help="Model folder or model.tar.gz (default: /opt/ml/model, SM_MODEL_DIR).")
    p.add_argument("--endpoint-name", default=os.environ.get("AIRFARE_ENDPOINT_NAME"),
                   help="Name answered on POST /endpoints/NAME/invocations (default: any name).")
    p.add_argument("--capture", default=None, help="Write sampled requests and responses here in SageMaker's capture format.")
    p.add_argument("--capture-percent", type=float, default=100.0, help="Percent of invocations captured (0..100).")
    p.add_argument("--log-level", default=os.environ.get("AIRFARE_LOG_LEVEL", "info"))
    # SageMaker passes the bare word `serve`; tolerate it when this runs as an ENTRYPOINT.
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["serve"]:
        args_in = args_in[1:]
    return p.parse_args(args_in)


def precompile(model_path) -> None:
    """Build the compiled trees once, here, so the workers only load them (a failure is left to the
    workers, which fall back to the native libraries or report it on /ping)."""
    if os.environ.get("AIRFARE_BACKEND", "compiled") != "compiled":
        return
    try:
        from inference import compiled
        from inference.model import load_model

        compiled.prepare(load_model(model_path))
    except Exception as e:  # noqa: BLE001
        logging.getLogger("inference").warning("trees not precompiled: %s", e)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        raise SystemExit("--workers must be >= 1")
    if not 0 <= args.capture_percent <= 100:
        raise SystemExit("--capture-percent must be within 0..100")
    single_thread_env()
    if args.model_dir:
        os.environ["AIRFARE_MODEL_PATH"] = str(args.model_dir)
    if args.endpoint_name:
        os.environ["AIRFARE_ENDPOINT_NAME"] = args.endpoint_name
    if args.capture:
        os.environ["AIRFARE_CAPTURE_DIR"] = str(args.capture)
        os.environ["AIRFARE_CAPTURE_PERCENT"] = str(args.capture_percent)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    precompile(os.environ.get("AIRFARE_MODEL_PATH") or None)

    import uvicorn

    uvicorn.run(
        "inference.app:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level.lower(),
        access_log=False,  # one log line per request costs more than the prediction
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
