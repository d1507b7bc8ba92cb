"""The Evaluate job: ``python -m evaluation.entry --model price|demand|anomaly`` (see :mod:`evaluation.evaluate`).

A failed leakage check fails the job after the report is written, so that the pipeline stops
before the gates while the report still says why.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core import sm_paths
from core.job import JobFailed, run_job
from core.pipeline_contract import EVALUATION_FILE, EVALUATION_OUTPUT, MODELS

log = logging.getLogger("evaluation")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.entry", description="The Evaluate step.")
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--model-tar", type=Path, default=None, help="default /opt/ml/processing/model/model.tar.gz")
    p.add_argument("--test-dir", type=Path, default=None, help="default /opt/ml/processing/test")
    p.add_argument("--truth-uri", default="",
                   help="the simulator's truth offers (s3:// prefix or folder) for the 'against truth' columns;"
                        " empty (the default, as on AWS): none")
    p.add_argument("--truth-dir", type=Path, default=None, help="a local truth folder (same as --truth-uri)")
    p.add_argument("--labels-dir", type=Path, default=None,
                   help="the incident feed (anomaly model), default /opt/ml/processing/labels")
    p.add_argument("--output-dir", type=Path, default=None, help="default /opt/ml/processing/evaluation")
    p.add_argument("--train-dir", type=Path, default=None, help="default /opt/ml/processing/train (monitoring baseline)")
    p.add_argument("--monitoring-dir", type=Path, default=None,
                   help="default /opt/ml/processing/monitoring when the train split is there (Model Monitor datasets)")
    return p


def _run(args: argparse.Namespace) -> None:
    from evaluation.evaluate import run

    out_dir = args.output_dir or sm_paths.processing_dir(EVALUATION_OUTPUT)
    train_dir = args.train_dir or sm_paths.processing_dir("train")
    report = run(
        args.model,
        args.model_tar or sm_paths.processing_dir("model", "model.tar.gz"),
        args.test_dir or sm_paths.processing_dir("test"),
        # the truth is optional: --truth-uri, else a truth input folder if one was mounted
        args.truth_uri.strip() or args.truth_dir or sm_paths.processing_dir("truth"),
        out_dir,
        args.labels_dir or sm_paths.processing_dir("labels"),
        train_dir,
        args.monitoring_dir or (sm_paths.processing_dir("monitoring") if train_dir.exists() else None),
    )
    leak = report["leakage"]
    if not leak["passed"]:
        raise JobFailed(f"{args.model}: leakage check failed: " + "; ".join(leak["reasons"]))
    log.info("evaluation of the %s model written to %s", args.model, out_dir / EVALUATION_FILE)
    for line in report["default_gates"]["reasons"]:
        log.info("gate %s", line)


def main(argv: list[str] | None = None) -> int:
    return run_job("Evaluate", _run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
