"""The one shell of every container entry (``processing/entry.py``, ``data_quality/entry.py``,
``training/entry.py``, ``evaluation/entry.py``): logging, argument parsing, the failure file and
exit codes, so that every job fails the same way.

Exit codes: 0 done; 1 the job failed (its reason written where SageMaker reads it:
``/opt/ml/output/failure`` for training jobs -> ``FailureReason``, ``/opt/ml/output/message``
for processing jobs -> ``ExitMessage``; the local executor reads both); 2 bad command line
(argparse's own message). Paths honour ``SM_OPT_ML``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from core import sm_paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REASON_LIMIT = 1024  # SageMaker keeps the first 1 KiB

log = logging.getLogger("job")


class JobFailed(Exception):
    """A failure whose message is the whole reason (no traceback needed), e.g. a failed check."""


def reason_file(kind: Literal["training", "processing"]) -> Path:
    return sm_paths.failure_file() if kind == "training" else sm_paths.message_file()


def write_reason(kind: Literal["training", "processing"], reason: str) -> None:
    path = reason_file(kind)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(reason[:REASON_LIMIT])
    except OSError:
        log.exception("could not write %s", path)


def run_job(
    name: str,
    body: Callable[[argparse.Namespace], object],
    parser: argparse.ArgumentParser | None = None,
    argv: list[str] | None = None,
    *,
    kind: Literal["training", "processing"] = "processing",
) -> int:
    """Parse ``argv`` with ``parser`` (none: no arguments), run ``body(args)`` and return the exit code.

    Any exception is logged with its traceback and its reason (prefixed with ``name``) goes to
    the failure file; a usage error exits 2 through argparse before anything runs.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = parser.parse_args(argv) if parser is not None else argparse.Namespace()
    try:
        body(args)
    except JobFailed as exc:
        log.error("%s failed: %s", name, exc)
        write_reason(kind, f"{name}: {exc}")
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the container contract: any failure -> reason file + exit 1
        reason = f"{type(exc).__name__}: {exc}"
        log.error("%s failed: %s\n%s", name, reason, traceback.format_exc())
        write_reason(kind, f"{name}: {reason}")
        return EXIT_FAILED
    return EXIT_OK
