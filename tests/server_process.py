"""A server in a child process for integration tests and benchmarks: a free port, wait for /ping, stop.

Tests import it by name (``tests/`` is on pytest's path); benchmarks load it by file path, as they
load ``small_world.py``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, timeout_s: float, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early (with the log) if the process exits."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = f":\n{log.read_text(errors='replace')}" if log is not None and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode}{detail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout_s:.0f} s")


def stop(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM (a graceful uvicorn shutdown), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def running(cmd: list[str], port: int, env: dict | None = None, log: Path | None = None,
            timeout_s: float = 60) -> Iterator[tuple[subprocess.Popen, str]]:
    """(process, base URL) of ``cmd`` serving on ``port`` once /ping answers; stopped on exit."""
    out = log.open("wb") if log is not None else None
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{base}/ping", timeout_s, log)
        yield proc, base
    finally:
        stop(proc)
        if out is not None:
            out.close()
