"""Demand model benchmark: accuracy, size and compiled serving cost of demand variants over worlds.

The demand-only companion of ``bench_models.py`` (issues 12 and 14): for each world cell (a seed, a
season, a training window, searches per day) the window is preprocessed once with the pipeline's own
streamed Preprocess (``model_matrix``'s world cache and functions) and its flights tables kept under
``--cache``; then every variant (``training.demand`` hyperparameters; ``{}`` = the defaults,
``previous`` = the XGBoost + LightGBM ensemble the defaults replaced) is trained with
``training.demand.train`` and scored on the test days: accuracy beside the majority baseline, the
tree size the validation search chose, the trees a prediction walks. ``--compile`` also builds each
model with tl2cgen into a fresh cache (the compile ``serve`` does at start-up) and times one-record
predictions through the compiled library (``inference.compiled``), the serving path's trees.

    .venv/bin/python benchmarks/bench_demand.py                                 # 2 seeds x 2 seasons x 21 days, 200 searches/day
    .venv/bin/python benchmarks/bench_demand.py --variants '[{}, "previous"]' --compile
    .venv/bin/python benchmarks/bench_demand.py --cells 7:winter:21:3000 --splits-dir PIPELINE_RUN/MergeSplits

``--splits-dir`` adds a cell from a pipeline run's MergeSplits output (``train|validation|test/flights.parquet``,
e.g. ``make run``'s under ``.lake/airfare-lake/pipeline-runs/<run>/MergeSplits``). Figures on a shared
machine are CPU-bound and disturbed by other jobs: the script prints the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from model_matrix import TEST_DAYS, VALIDATION_DAYS, WorldSpec, ensure_world, refusal, window_days  # noqa: E402
from core import contract  # noqa: E402

SEASONS = {"winter": "2027-02-10", "late-summer": "2026-08-24"}
# The defaults before demand4 (issue 12): an XGBoost + LightGBM ensemble of 63-leaf trees, 60k rows.
PREVIOUS = {"models": "xgb,lgb", "num_leaves": 63, "learning_rate": 0.2, "n_estimators": 300,
            "max_train_rows": 60_000, "early_stopping_rounds": 20}
SPLITS = ("train", "validation", "test")


def parse_cell(text: str) -> tuple[int, str, int, int]:
    """``seed:season:window:searches_per_day`` -> its parts (a clear error naming the flag otherwise)."""
    parts = text.split(":")
    if len(parts) != 4 or parts[1] not in SEASONS:
        raise argparse.ArgumentTypeError(f"--cells wants seed:season:window:searches_per_day with season in {sorted(SEASONS)}, got {text!r}")
    try:
        return int(parts[0]), parts[1], int(parts[2]), int(parts[3])
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cells: seed, window and searches per day must be integers, got {text!r}") from None


def cell_splits(seed: int, season: str, window: int, spd: int, world_days: int, cache: Path) -> dict[str, pd.DataFrame] | str:
    """The cell's train / validation / test flights tables (cached), or the pipeline's refusal message."""
    from processing.preprocess import iter_day, preprocess_stream, read_outcomes

    spec = WorldSpec(seed, season, dt.date.fromisoformat(SEASONS[season]), max(world_days, window), spd)
    out = cache / f"{spec.key}-w{window}-demand-splits"
    if not all((out / f"{s}.parquet").exists() for s in SPLITS):
        world = ensure_world(spec, cache)
        days = window_days(world, spec, window)
        refused = refusal(days)
        if refused:
            return refused
        curated = str(world / "curated" / "offers")
        splits, _ = preprocess_stream(days, lambda d: iter_day(curated, d), read_outcomes(str(world / "outcomes")),
                                      VALIDATION_DAYS, TEST_DAYS)
        out.mkdir(parents=True, exist_ok=True)
        for s in SPLITS:
            splits[s]["flights"].to_parquet(out / f"{s}.parquet")
    return {s: pd.read_parquet(out / f"{s}.parquet") for s in SPLITS}


def compiled_figures(model_dir: Path, test: pd.DataFrame, rows: int = 2000) -> dict:
    """Compile every member into a fresh cache (seconds, library size) and time one-record predictions."""
    from core import model_io
    from inference import compiled
    from inference.fast import FastModel

    m = model_io.load(model_dir)
    out: dict = {"compile_s": 0.0, "library_kb": 0}
    with tempfile.TemporaryDirectory(prefix="bench-demand-cc-") as cache:
        for booster in m._models.values():
            t = time.perf_counter()
            lib, _ = compiled.build(booster, cache)
            out["compile_s"] += time.perf_counter() - t
            out["library_kb"] += os.path.getsize(lib) // 1024
        fast = FastModel(m, "compiled", cache_dir=cache)
        recs = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                for r in test[m.features].head(rows).to_dict("records")]
        x = fast.encoder.matrix(recs, np.float64)
        members = [t for t in (fast.xgb, fast.lgb) if t is not None]
        best = np.inf
        for _ in range(3):  # best of three passes: the least disturbed by other jobs
            t = time.process_time()
            for i in range(len(x)):
                for trees in members:
                    trees.predict_one(x[i])
            best = min(best, (time.process_time() - t) / len(x) * 1e6)
        out["trees_us_per_record"] = best
    return out


def run_variant(splits: dict[str, pd.DataFrame], params: dict, compile_: bool) -> dict:
    from core import model_io
    from training import demand

    tr, va, te = (splits[s] for s in SPLITS)
    with tempfile.TemporaryDirectory(prefix="bench-demand-") as tmp:
        t = time.perf_counter()
        meta = demand.train(tr, va, tmp, params)
        fit_s = time.perf_counter() - t
        m = model_io.load(tmp)
        y = te[contract.DEMAND_TARGET].astype(str).to_numpy()
        counts = meta["train_class_counts"]
        res = {"accuracy": float(np.mean(m.predict_demand(te) == y)),
               "majority": float(np.mean(y == max(counts, key=counts.get))),
               "trees": int(meta.get("serving_trees") or 3 * sum(meta["trees"].values())),
               "chosen": meta.get("search", {}).get("chosen"), "fit_s": fit_s, "test_rows": int(len(te))}
        if compile_:
            res.update(compiled_figures(Path(tmp), te))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=parse_cell, nargs="+",
                    default=[(s, season, 21, 200) for s in (1, 7) for season in SEASONS],
                    help="seed:season:window:searches_per_day (default: seeds 1 and 7, both seasons, 21 days, 200/day)")
    ap.add_argument("--world-days", type=int, default=60, help="world length (windows are its first days; 60 reuses bench_models' worlds)")
    ap.add_argument("--splits-dir", type=Path, nargs="*", default=[], help="MergeSplits folders to add as cells")
    ap.add_argument("--variants", default='[{}]', help='JSON list of demand hyperparameter dicts; "previous" = the replaced ensemble')
    ap.add_argument("--compile", action="store_true", help="also compile each model (tl2cgen) and time one-record predictions")
    ap.add_argument("--cache", type=Path, default=ROOT / ".bench-worlds")
    ap.add_argument("--json", type=Path, default=None, help="also write every result here")
    a = ap.parse_args(argv)
    try:
        variants = [PREVIOUS if v == "previous" else v for v in json.loads(a.variants)]
    except json.JSONDecodeError as exc:
        ap.error(f"--variants is not JSON: {exc}")
    if not all(isinstance(v, dict) for v in variants):
        ap.error('--variants must be a JSON list of objects or "previous"')
    for d in a.splits_dir:
        missing = [s for s in SPLITS if not (d / s / "flights.parquet").exists()]
        if missing:
            ap.error(f"--splits-dir {d} lacks {', '.join(f'{s}/flights.parquet' for s in missing)}")
    warnings.filterwarnings("ignore")
    print(f"load average before: {os.getloadavg()}", flush=True)

    cells: list[tuple[str, object]] = [(f"s{s} {season} {w}d {spd}/day", (s, season, w, spd)) for s, season, w, spd in a.cells]
    cells += [(f"{d}", d) for d in a.splits_dir]
    results = []
    for name, cell in cells:
        if isinstance(cell, Path):
            splits = {s: pd.read_parquet(cell / s / "flights.parquet") for s in SPLITS}
        else:
            splits = cell_splits(*cell, a.world_days, a.cache)
        if isinstance(splits, str):
            print(f"{name}: refused by the pipeline: {splits}", flush=True)
            continue
        for v in variants:
            r = run_variant(splits, v, a.compile)
            results.append({"cell": name, "variant": v, **r})
            extra = (f"  compile {r['compile_s']:.0f}s, {r['library_kb']} KB, trees {r['trees_us_per_record']:.1f} µs/record"
                     if a.compile else "")
            print(f"{name:28s} {json.dumps(v):60s} accuracy {r['accuracy']:.4f} (majority {r['majority']:.3f}, "
                  f"{r['test_rows']} test rows)  {r['trees']} trees {r['chosen'] or ''}  fit {r['fit_s']:.0f}s{extra}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
