"""False-alarm rate of data-quality monitoring on a month of quiet traffic, in daily windows.

    .venv/bin/python benchmarks/bench_monitor.py [--baseline-days 28] [--quiet-days 30] [--searches-per-day 300]
                                                 [--curated DIR --outcomes DIR] [--models price,demand,anomaly]
                                                 [--no-calibration]

The baseline is the price, demand and anomaly models' inputs over the first ``--baseline-days``
search days, as the pipeline's DataQualityCheck step computes it: its thresholds measured on the
baseline's own daily windows (``analyzer.calibrate_constraints``; ``--no-calibration`` for the
suggested constraints alone). Then each day of traffic is
captured in SageMaker's data-capture format and checked with ``monitoring.monitor.run_data_quality``
(the ``airfare monitor data-quality`` path), one window per day. Two kinds of quiet month:

- **stationary**: daily windows drawn (without replacement) from held-out records of the baseline
  period itself: no drift exists, so every violation is a false alarm;
- **next month**: the days that follow the baseline period, with no regime change in the world
  but the calendar moving on (departure months, booking horizons): what a real quiet month looks like.

Detection: the next-month windows again with one input drifted (``DRIFTS``: bookings two weeks
earlier, an unseen carrier on 15 % of records, 40 % of economy searches turned business); a window
counts as caught when that feature is flagged.

The world is the evaluation tests' in-process world (``tests/evaluation/eval_world.py``), or a
curated folder of a generated + ETL'd world (``--curated .lake/airfare-lake/curated/offers
--outcomes .lake/airfare-lake/outcomes/flights`` after ``make run``). Also printed: the monitor's
cost per window against the cost of only parsing the captured JSON lines (same process).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _world(args):
    if args.curated:
        import pyarrow as pa

        from processing.preprocess import _table_to_frame, iter_day, list_days

        uri = str(args.curated)  # a benchmark-sized world: read whole, day by day
        offers = _table_to_frame(pa.concat_tables([t for d in list_days(uri) for t in iter_day(uri, d)]))
        outcomes = pd.read_parquet(args.outcomes) if args.outcomes else None
        return offers, outcomes
    sys.path.insert(0, str(ROOT / "tests" / "evaluation"))
    from eval_world import make_world

    offers, outcomes, _ = make_world(days=args.warmup_days + args.baseline_days + args.quiet_days, searches_per_day=args.searches_per_day,
                                     seed=args.seed)
    return offers, outcomes


def _metas():
    from core.features import ANOMALY_SOURCE_DEFAULT, DEMAND_CATEGORICAL, DEMAND_NUMERIC
    from training.price import DEFAULTS as PRICE_DEFAULTS

    # the trainers' default feature lists: what the registered models receive
    return {"price": {"model": "price", "numeric": PRICE_DEFAULTS["numeric"].split(","),
                      "categorical": PRICE_DEFAULTS["categorical"].split(",")},
            "demand": {"model": "demand", "numeric": DEMAND_NUMERIC, "categorical": DEMAND_CATEGORICAL},
            "anomaly": {"model": "anomaly", "source_columns": list(ANOMALY_SOURCE_DEFAULT)}}


def _write_day_capture(root: Path, inputs: pd.DataFrame, day: dt.date, endpoint: str) -> None:
    from monitoring import capture

    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
    every = dt.timedelta(days=1) / max(len(inputs), 1)
    lines: dict[Path, list[str]] = {}
    for i, row in enumerate(inputs.to_dict("records")):
        when = start + i * every
        body = json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}, default=_plain)
        lines.setdefault(capture.hour_path(root / endpoint / "AllTraffic", when) / "capture.jsonl", []).append(
            capture.capture_line(f"{day}-{i}", when, body, '{"predictions": [{}]}'))
    for path, ls in lines.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(ls) + "\n")


def _plain(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    return str(o)


def run_scenario(name, model, meta, baseline, windows, tmp: Path, baseline_days=None):
    """``windows``: list of (day, inputs DataFrame); ``baseline_days``: each baseline record's search
    date (the thresholds are then calibrated on the baseline's daily windows). Returns a result dict."""
    from monitoring import job, monitor

    base_dir = tmp / f"{model}-baseline"
    job.data_quality(baseline, base_dir, overrides=monitor.comparison_overrides(list(baseline.columns)), windows=baseline_days)
    base = monitor.baseline_from_dir(base_dir)
    base.meta = meta
    cap = tmp / f"{name}-{model}-capture"
    for day, inputs in windows:
        _write_day_capture(cap, inputs, day, f"{model}-endpoint")
    alarms, features, seconds, records, parse_s, flagged = 0, collections.Counter(), [], 0, 0.0, []
    for day, inputs in windows:
        since = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        t0 = time.perf_counter()
        result = monitor.run_data_quality(model, cap, tmp / f"out-{name}-{model}-{day}", baseline=base, since=since,
                                          until=since + dt.timedelta(days=1))  # fmt: skip
        seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for path in sorted((cap / f"{model}-endpoint").rglob(f"{day:%Y/%m/%d}/*/*.jsonl")):
            for line in path.read_text().splitlines():
                json.loads(json.loads(line)["captureData"]["endpointInput"]["data"])
        parse_s += time.perf_counter() - t0
        records += result.records
        if not result.ok:
            alarms += 1
            features.update(f"{v['feature_name']}:{v['constraint_check_type'].replace('_check', '')}" for v in result.violations["violations"])
            flagged.extend({v["feature_name"] for v in result.violations["violations"]})
    return {"features_by_window": flagged, "scenario": name, "model": model, "windows": len(windows), "alarms": alarms, "rate": alarms / max(len(windows), 1),
            "records_per_window": records / max(len(windows), 1), "s_per_window": float(np.median(seconds)),
            "parse_s_per_window": parse_s / max(len(windows), 1), "features": features}


def _earlier(w, rng):
    w["days_to_departure"] = w["days_to_departure"] + 14  # travellers booking two weeks earlier
    return w


def _new_carrier(w, rng):
    w.loc[rng.random(len(w)) < 0.15, "airline"] = "ZZ"  # a carrier the model never saw, on 15 % of records
    return w


def _cabin_mix(w, rng):
    eco = (w["cabin"] == "economy") & (rng.random(len(w)) < 0.4)
    w.loc[eco, "cabin"] = "business"  # a corporate campaign: 40 % of economy searches become business
    return w


# drift scenario -> (the feature that must be flagged, how the window's inputs change)
DRIFTS = {"drift:earlier": ("days_to_departure", _earlier), "drift:new-carrier": ("airline", _new_carrier),
          "drift:cabin-mix": ("cabin", _cabin_mix)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup-days", type=int, default=50,
                        help="first days left out: a simulated world starts with no search history (cumulative counts grow)")
    parser.add_argument("--baseline-days", type=int, default=28)
    parser.add_argument("--quiet-days", type=int, default=30)
    parser.add_argument("--searches-per-day", type=int, default=300)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--curated", type=Path, default=None)
    parser.add_argument("--outcomes", type=Path, default=None)
    parser.add_argument("--models", default="price,demand,anomaly")
    parser.add_argument("--no-calibration", action="store_true",
                        help="suggested constraints only (no thresholds from the baseline's daily windows): the previous behaviour")
    args = parser.parse_args(argv)

    from core import monitoring_datasets as datasets
    from core.features import build_demand_table

    t0 = time.perf_counter()
    offers, outcomes = _world(args)
    offers = offers.sort_values("event_time").reset_index(drop=True)
    all_offers = offers  # the demand table needs the history of the warm-up days
    days = sorted(offers["dt"].unique())[args.warmup_days:]
    base_days, quiet_days = days[: args.baseline_days], days[args.baseline_days: args.baseline_days + args.quiet_days]
    print(f"world: {len(offers):,} offers over {len(days)} days ({time.perf_counter() - t0:.1f} s); "
          f"baseline {base_days[0]}..{base_days[-1]}, quiet month {quiet_days[0] if quiet_days else '-'}..{quiet_days[-1] if quiet_days else '-'}")
    metas = _metas()
    tables = {"price": offers, "anomaly": offers}
    if "demand" in args.models:
        flights, _ = build_demand_table(all_offers, outcomes)  # on the whole world: the warm-up days give the history
        flights["dt"] = flights["search_date"].astype(str)
        tables["demand"] = flights
    rng = np.random.default_rng(args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        tmp = Path(tmp)
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            meta, table = metas[model], tables[model]
            in_base = table["dt"].isin(base_days).to_numpy()
            inputs_all = datasets.model_inputs(meta, table)
            per_day = int(round(in_base.sum() / len(base_days)))
            # stationary: half of the baseline period's records make the baseline, the other half the windows
            idx = rng.permutation(np.flatnonzero(in_base))
            half = len(idx) // 2
            baseline = inputs_all.iloc[np.sort(idx[:half])].reset_index(drop=True)
            cal = None if args.no_calibration else table["dt"].astype(str).to_numpy()
            base_windows = None if cal is None else cal[np.sort(idx[:half])]
            pool = idx[half:]
            n_windows = min(args.quiet_days, max(1, len(pool) // max(per_day // 2, 1)))
            size = len(pool) // n_windows
            start = dt.date.fromisoformat(str(quiet_days[0])) if quiet_days else dt.date(2030, 1, 1)
            stationary = [(start + dt.timedelta(days=i), inputs_all.iloc[pool[i * size:(i + 1) * size]].reset_index(drop=True))
                          for i in range(n_windows)]  # fmt: skip
            results.append(run_scenario("stationary", model, meta, baseline, stationary, tmp, base_windows))
            # next month: the full baseline period as baseline (as the pipeline does), each later day a window
            full = inputs_all.loc[in_base].reset_index(drop=True)
            full_windows = None if cal is None else cal[in_base]
            later = [(dt.date.fromisoformat(str(d)), inputs_all.loc[(table["dt"] == d).to_numpy()].reset_index(drop=True)) for d in quiet_days]
            later = [(d, w) for d, w in later if len(w)]
            if later:
                results.append(run_scenario("next-month", model, meta, full, later, tmp, full_windows))
                # detection: the same quiet days with one input drifted; caught = flagged on that feature
                for drift, (feature, fn) in DRIFTS.items():
                    if feature in full.columns:
                        drifted = [(d, fn(w.copy(), np.random.default_rng(i))) for i, (d, w) in enumerate(later)]
                        r = run_scenario(drift, model, meta, full, drifted, tmp, full_windows)
                        r["caught"] = r["features_by_window"].count(feature) if "features_by_window" in r else 0
                        r["expected"] = feature
                        results.append(r)
    print(f"\n{'scenario':<17} {'model':<7} {'windows':>7} {'alarms':>6} {'alarm rate':>10} {'caught on':>22} {'records/window':>14} "
          f"{'s/window':>9} {'vs parse':>8}")
    for r in results:
        ratio = r["s_per_window"] / r["parse_s_per_window"] if r["parse_s_per_window"] else float("nan")
        caught = f"{r['expected']} {r['caught']}/{r['windows']}" if "expected" in r else "(false alarms)"
        print(f"{r['scenario']:<17} {r['model']:<7} {r['windows']:>7} {r['alarms']:>6} {r['rate']:>10.1%} {caught:>22} "
              f"{r['records_per_window']:>14.0f} {r['s_per_window']:>9.3f} {ratio:>7.1f}x")
        if r["features"]:
            print(f"{'':<19}violations: " + ", ".join(f"{k} x{v}" for k, v in r["features"].most_common(8)))
    print("\n(s/window: one `monitor data-quality` run per daily window; 'vs parse': that time over the time to only "
          "json-parse the same captured lines. Measured on a shared machine: rerun on a quiet one for timings.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
