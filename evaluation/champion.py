"""The ComparePrice step: champion vs challenger on the same recent labelled data.

``python -m evaluation.champion --champion-model-uri=URI`` scores the price model this run trained
(the challenger, ``/opt/ml/processing/model/model.tar.gz``) and the serving one (the champion: its
``model.tar.gz``, an ``s3://`` URI or a path; empty when there is none) on the run's test split,
its most recent labelled days, with the rows the truth-free cleaning rule keeps (the same rows
the Evaluate step scores). It writes ``/opt/ml/processing/comparison/comparison.json``, the property
file ``CheckPriceChampion`` reads (``core.pipeline_contract.CHAMPION_REPORT_PATHS``): every metric
of both models, ``champion_present`` and ``challenger_wins`` (lower ``CHAMPION_METRIC``, or no
champion). The decision the pipeline acts on is the condition step's own comparison of the two
metrics; ``challenger_wins`` says the same for a reader.

A metric that cannot be computed (no test rows, a non-finite prediction) fails the job with a
message naming it: a comparison with a missing number is not a decision.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import contract, metrics, model_io, sm_paths
from core.job import JobFailed, run_job
from core.pipeline_contract import (
    CHAMPION_FILE, CHAMPION_METRIC, CHAMPION_METRICS, CHAMPION_MODEL, CHAMPION_OUTPUT, CHAMPION_REPORT_PATHS, MODEL_TABLE,
)  # fmt: skip
from core.tables import read_table

log = logging.getLogger("evaluation")


def score(model: Any, offers: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{metric: {"value": v}}`` of the price model on ``offers`` (already cleaned)."""
    y = offers[contract.PRICE_TARGET].to_numpy(dtype=float)
    pred = np.asarray(model.predict_price(offers), dtype=float)
    found = metrics.regression_metrics(y, pred)
    return {m: found[m] for m in CHAMPION_METRICS}


def compare(challenger: Any, champion: Any | None, offers: pd.DataFrame, champion_uri: str = "") -> dict:
    """The comparison report for ``challenger`` and ``champion`` (None: no champion) on the test offers."""
    from core.cleaning import price_outlier_mask

    if offers.empty:
        raise ValueError("the test split holds no offers: nothing to compare the models on")
    clean = offers.loc[~price_outlier_mask(offers)]
    if clean.empty:
        raise ValueError("the cleaning rule removed every test offer: nothing to compare the models on")
    report: dict[str, Any] = {"model": CHAMPION_MODEL, "metric": CHAMPION_METRIC, "n_test": int(len(offers)),
                              "n_compared": int(len(clean)), "champion_present": champion is not None,
                              "champion_uri": champion_uri or None, "challenger": score(challenger, clean)}  # fmt: skip
    report["champion"] = score(champion, clean) if champion is not None else {m: {"value": None} for m in CHAMPION_METRICS}
    for who in ("challenger", "champion") if champion is not None else ("challenger",):
        missing = [m for m in CHAMPION_METRICS if report[who][m]["value"] is None]
        if missing:
            raise ValueError(f"the {who}'s {', '.join(missing)} on {len(clean)} test offers is not a number "
                             "(non-finite predictions?): no comparison")  # fmt: skip
    mine = report["challenger"][CHAMPION_METRIC]["value"]
    theirs = report["champion"][CHAMPION_METRIC]["value"]
    report["challenger_wins"] = champion is None or mine < theirs
    absent = [p for p in CHAMPION_REPORT_PATHS if not _has(report, p)]
    if absent:  # a bug here: the condition step would read nothing
        raise RuntimeError(f"comparison report lacks contract paths {absent}")
    return report


def _has(doc: Any, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


def load_champion(uri: str, workdir: Path) -> Any:
    """The champion's model from its ``model.tar.gz`` (an ``s3://`` URI or a local path)."""
    from evaluation.evaluate import extract_model

    if uri.startswith("s3://"):
        from core.s3lake import S3Lake

        lake = S3Lake()
        tar = workdir / "champion.tar.gz"
        tar.write_bytes(lake.read_bytes(uri))
    else:
        tar = Path(uri)
        if not tar.exists():
            raise FileNotFoundError(f"--champion-model-uri {uri}: no such file")
    return model_io.load(extract_model(tar, workdir / "champion"))


def run(model_tar: Path, test_dir: Path, out_dir: Path, champion_uri: str = "") -> dict:
    """Load both models, compare them on the test split, write ``comparison.json``; return the report."""
    import json

    from evaluation.evaluate import extract_model

    with tempfile.TemporaryDirectory(prefix="airfare-champion-") as tmp:
        challenger = model_io.load(extract_model(model_tar, Path(tmp) / "challenger"))
        champion = load_champion(champion_uri, Path(tmp)) if champion_uri.strip() else None
        for who, m in (("challenger", challenger), ("champion", champion)):
            if m is not None and m.kind != CHAMPION_MODEL:
                raise ValueError(f"the {who} artifact holds the {m.kind!r} model, not the {CHAMPION_MODEL} model")
        report = compare(challenger, champion, read_table(test_dir, MODEL_TABLE[CHAMPION_MODEL]), champion_uri.strip())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CHAMPION_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.champion", description="The ComparePrice step.")
    p.add_argument("--champion-model-uri", default="",
                   help="the serving (approved) price model's model.tar.gz, s3:// or a path; empty: no champion")
    p.add_argument("--model-tar", type=Path, default=None, help="default /opt/ml/processing/model/model.tar.gz")
    p.add_argument("--test-dir", type=Path, default=None, help="default /opt/ml/processing/test")
    p.add_argument("--output-dir", type=Path, default=None, help="default /opt/ml/processing/comparison")
    return p


def _run(args: argparse.Namespace) -> None:
    try:
        report = run(args.model_tar or sm_paths.processing_dir("model", "model.tar.gz"),
                     args.test_dir or sm_paths.processing_dir("test"),
                     args.output_dir or sm_paths.processing_dir(CHAMPION_OUTPUT), args.champion_model_uri)  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        raise JobFailed(f"ComparePrice: {exc}") from None
    c, h = report["challenger"][CHAMPION_METRIC]["value"], report["champion"][CHAMPION_METRIC]["value"]
    log.info("challenger %s=%.4f, champion %s; challenger wins: %s", CHAMPION_METRIC, c,
             "none" if h is None else f"{h:.4f}", report["challenger_wins"])


def main(argv: list[str] | None = None) -> int:
    return run_job("ComparePrice", _run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
