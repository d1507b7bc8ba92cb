"""Learning curve: test metric against training sample size, to choose Preprocess' default sample sizes.

Reads a curated world (default: the one `make run` leaves in .lake/airfare-lake), splits it by
time exactly as the pipeline does, then for each training size draws the pipeline's own sample
(``processing.sampling.BottomK``, the same hash and seed) and trains the real trainer with its
default hyperparameters:
- price and anomaly: ``--sizes`` offers of the train split (the anomaly threshold is picked on the
  validation sample of ``--validation-rows``);
- demand: ``--demand-sizes`` snapshots (the trainer's own ``max_train_rows``).
Every model is scored on the whole test split (not a sample), so only the training size moves.
A second table shows how far a test sample of each size puts the price RMSE from the whole-split
figure (the evaluation's sampling error). Prints both tables; ``--out`` writes them as JSON and a
PNG plot.

    .venv/bin/python benchmarks/bench_learning_curve.py --lake .lake/airfare-lake
    .venv/bin/python benchmarks/bench_learning_curve.py --sizes 20000,50000 --demand-sizes 5000 --models price
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import contract  # noqa: E402
from core.cleaning import price_outlier_mask  # noqa: E402
from processing.preprocess import iter_day, list_days, preprocess_stream, read_outcomes, to_contract_table  # noqa: E402
from processing.sampling import BottomK  # noqa: E402


def sample(df: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """The pipeline's sample of ``k`` offers of ``df`` (0 or >= len: all)."""
    if k <= 0 or k >= len(df):
        return df
    s = BottomK(k, seed)
    s.add(to_contract_table(df))
    out = s.result().to_pandas()
    out[contract.PARTITION_COLUMN] = out[contract.PARTITION_COLUMN].astype(str)
    return out


def read_truth(lake: Path, offer_ids: pd.Series) -> pd.DataFrame:
    import pyarrow.dataset as ds

    dataset = ds.dataset(lake / "truth" / "offers", format="parquet")
    flt = ds.field("offer_id").isin(pd.unique(offer_ids.astype(str)).tolist())
    return dataset.to_table(columns=["offer_id", "true_price_usd", "is_anomaly"], filter=flt).to_pandas()


def price_point(train, val, test, truth, tmp: Path) -> dict:
    from core import model_io
    from training import price

    t0 = time.perf_counter()
    meta = price.train(train, val, tmp / "price", None)
    seconds = time.perf_counter() - t0
    model = model_io.load(tmp / "price")
    clean = test.loc[~price_outlier_mask(test)]
    y = clean[contract.PRICE_TARGET].to_numpy(dtype=float)
    pred = np.asarray(model.predict_price(clean), dtype=float)
    rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    r2 = float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    t = clean[["offer_id"]].merge(truth, on="offer_id", how="left")
    normal = (t["is_anomaly"] == False).to_numpy()  # noqa: E712
    vs_true = float(np.sqrt(np.mean((t["true_price_usd"].to_numpy()[normal] - pred[normal]) ** 2)))
    return {"rmse": rmse, "r2": r2, "rmse_vs_true": vs_true, "trees": meta["trees"], "fit_seconds": round(seconds, 1),
            "rows": int(meta["train_rows"])}


def anomaly_point(train, val, test, truth, tmp: Path) -> dict:
    from core import model_io
    from training import anomaly

    labels = truth[["offer_id", "is_anomaly"]]
    t0 = time.perf_counter()
    meta = anomaly.train(train, val, tmp / "anomaly", labels, None)
    seconds = time.perf_counter() - t0
    model = model_io.load(tmp / "anomaly")
    flags = np.asarray(model.anomaly_score(test), dtype=float) >= float(meta["threshold"])
    y = test[["offer_id"]].merge(labels, on="offer_id", how="left")["is_anomaly"].fillna(False).to_numpy(dtype=bool)
    tp = int((flags & y).sum())
    return {"precision": tp / max(int(flags.sum()), 1), "recall": tp / max(int(y.sum()), 1), "fit_seconds": round(seconds, 1),
            "rows": int(len(train))}


def demand_point(k: int, train, val, test, tmp: Path) -> dict:
    from core import model_io
    from training import demand

    t0 = time.perf_counter()
    meta = demand.train(train, val, tmp / "demand", {"max_train_rows": k})
    seconds = time.perf_counter() - t0
    model = model_io.load(tmp / "demand")
    classes = np.asarray(model.meta["classes"], dtype=object)
    pred = classes[np.asarray(model.predict_demand_proba(test)).argmax(1)]
    acc = float((pred == test[contract.DEMAND_TARGET].astype(str).to_numpy()).mean())
    return {"accuracy": acc, "fit_seconds": round(seconds, 1), "rows": int(meta["train_rows"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", type=Path, default=ROOT / ".lake" / "airfare-lake", help="bucket folder: curated/, outcomes/, truth/")
    p.add_argument("--sizes", default="25000,50000,100000,200000,400000,0", help="train offers (0 = the whole split)")
    p.add_argument("--demand-sizes", default="7500,15000,30000,60000,120000,0", help="demand training snapshots (0 = all)")
    p.add_argument("--test-sizes", default="25000,50000,100000,150000", help="test sample sizes for the sampling-error table")
    p.add_argument("--validation-rows", type=int, default=150_000, help="validation sample (anomaly threshold, early stopping)")
    p.add_argument("--models", default="price,demand,anomaly")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="write results JSON here (and a .png beside it)")
    a = p.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    dsizes = [int(s) for s in a.demand_sizes.split(",") if s.strip()]
    tsizes = [int(s) for s in a.test_sizes.split(",") if s.strip()]
    models = {m.strip() for m in a.models.split(",") if m.strip()}

    curated = str(a.lake / "curated" / "offers")
    days = list_days(curated)
    t0 = time.perf_counter()
    splits, summary = preprocess_stream(days, lambda d: iter_day(curated, d), read_outcomes(str(a.lake / "outcomes" / "flights")),
                                        7, 7, {"validation": a.validation_rows}, a.seed)
    print(f"world {a.lake}: {len(days)} days; train {summary['splits']['train']['offers_available']:,} offers, "
          f"validation sample {len(splits['validation']['offers']):,}, test {len(splits['test']['offers']):,} "
          f"(preprocess {time.perf_counter() - t0:.0f}s)", flush=True)
    train, val, test = (splits[s]["offers"] for s in ("train", "validation", "test"))
    truth = read_truth(a.lake, pd.concat([val["offer_id"], test["offer_id"]]))
    results: dict = {"world": str(a.lake), "train_offers": int(len(train)), "price": [], "anomaly": [], "demand": [],
                     "test_sampling": []}
    with tempfile.TemporaryDirectory(prefix="airfare-lc-") as tmp:
        for k in sizes:
            tr = sample(train, k, a.seed)
            if "price" in models:
                r = {"size": len(tr), **price_point(tr, val, test, truth, Path(tmp) / f"p{k}")}
                results["price"].append(r)
                print(f"price   {len(tr):>9,} offers: RMSE {r['rmse']:.3f}  R2 {r['r2']:.4f}  vs truth {r['rmse_vs_true']:.3f}  "
                      f"{r['trees']} trees  {r['fit_seconds']}s", flush=True)
            if "anomaly" in models:
                r = {"size": len(tr), **anomaly_point(tr, val, test, truth, Path(tmp) / f"a{k}")}
                results["anomaly"].append(r)
                print(f"anomaly {len(tr):>9,} offers: precision {r['precision']:.4f}  recall {r['recall']:.4f}  {r['fit_seconds']}s",
                      flush=True)
        if "demand" in models:
            dtrain, dval, dtest = (splits[s]["flights"] for s in ("train", "validation", "test"))
            for k in dsizes:
                r = {"size": k if 0 < k < len(dtrain) else len(dtrain), **demand_point(k, dtrain, dval, dtest, Path(tmp) / f"d{k}")}
                results["demand"].append(r)
                print(f"demand  {r['size']:>9,} snapshots: accuracy {r['accuracy']:.4f}  {r['fit_seconds']}s", flush=True)
        if "price" in models and tsizes:
            # Sampling error of the evaluation: the price RMSE on test samples vs on the whole test split.
            from core import model_io
            from training import price

            price.train(sample(train, max(sizes) if max(sizes) > 0 else 0, a.seed), val, Path(tmp) / "pt", None)
            model = model_io.load(Path(tmp) / "pt")

            def rmse_of(df):
                c = df.loc[~price_outlier_mask(df)]
                y = c[contract.PRICE_TARGET].to_numpy(dtype=float)
                return float(np.sqrt(np.mean((y - model.predict_price(c)) ** 2)))

            whole = rmse_of(test)
            for k in tsizes:
                per_seed = [rmse_of(sample(test, k, s)) for s in range(5)]
                r = {"size": k, "rmse_whole": whole, "rmse_mean": float(np.mean(per_seed)),
                     "max_abs_error": float(np.max(np.abs(np.asarray(per_seed) - whole)))}
                results["test_sampling"].append(r)
                print(f"test sample {k:>8,}: RMSE {r['rmse_mean']:.3f} (whole split {whole:.3f}, worst of 5 seeds off by "
                      f"{r['max_abs_error']:.3f})", flush=True)
    if a.out:
        a.out.write_text(json.dumps(results, indent=2))
        _plot(results, a.out.with_suffix(".png"))
    return 0


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (model, key, label) in zip(axes, (("price", "rmse", "price RMSE $ (test)"),
                                              ("demand", "accuracy", "demand accuracy (test)"),
                                              ("anomaly", "precision", "anomaly precision (test)"))):
        pts = results.get(model) or []
        if pts:
            ax.plot([r["size"] for r in pts], [r[key] for r in pts], marker="o")
            ax.set_xscale("log")
        ax.set_xlabel("training rows")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
