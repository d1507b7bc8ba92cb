"""Detection and recovery per drift kind: `airfare replay` once per kind, on the same seed and dates.

    .venv/bin/python benchmarks/bench_replay.py [--kinds fare-hike,new-route,...] [--seed 7]
        [--start-date 2026-03-02] [--onset-day 3] [--days 12] [--searches-per-day 250]
        [--gate PriceRmseMax=100 ...] [--out /tmp/bench-replay]

For each kind (default magnitude; ``kind:magnitude`` to choose one) it prints the days from onset
to the first alarm, the price RMSE (final, with every label in) before the onset, from the onset
until a challenger is promoted (the quality lost meanwhile), and after the promotion; the last
promotion's date and its test-day RMSE (a first retraining soon after the onset may hold no training
day of the new market); and whether
every promotion beat its champion (RMSE on the same test split: the pipeline's ComparePrice /
CheckPriceChampion decision). Each replay is a full one
(world, Spark ETL, pipeline runs): minutes per kind on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.replay import ReplayOptions, replay  # noqa: E402
from seed_infra.world.drift import KINDS  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start-date", default="2026-03-02")
    ap.add_argument("--onset-day", type=int, default=3)
    ap.add_argument("--days", type=int, default=12)
    ap.add_argument("--searches-per-day", type=int, default=250)
    ap.add_argument("--gate", action="append", default=["PriceRmseMax=100", "DemandAccuracyMin=0", "AnomalyPrecisionMin=0"])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-replay"))
    a = ap.parse_args(argv)
    start = dt.date.fromisoformat(a.start_date)
    onset = start + dt.timedelta(days=a.onset_day)
    gates = dict(g.split("=", 1) for g in a.gate)
    rows = []
    for spec in a.kinds.split(","):
        kind, _, magnitude = spec.partition(":")
        drift = f"{kind}@{onset.isoformat()}" + (f":{magnitude}" if magnitude else "")
        t = time.perf_counter()
        doc = replay(ReplayOptions(seed=a.seed, start_date=start, days=a.days, out=a.out / kind, drifts=(drift,),
                                   searches_per_day=a.searches_per_day, gates=gates))
        s = doc["summary"]["drifts"][0]
        fair = all(d["promotion"]["challenger_rmse"] < d["promotion"]["champion_rmse"]
                   for d in doc["timeline"] if d["promotion"] and d["promotion"]["promoted"])
        false_alarms = [d["date"] for d in doc["timeline"] if d["alarm"]["state"] == "ALARM" and d["date"] < onset.isoformat()]
        rows.append((drift, s["days_to_alarm"], s["rmse_before"], s["rmse_until_promotion"], s["promoted_on"],
                     s["rmse_after_promotion"], s["last_promoted_on"], s["last_promotion_test_rmse"], fair, len(false_alarms),
                     time.perf_counter() - t))  # fmt: skip
        print(f"done {drift} in {rows[-1][-1]:.0f} s", flush=True)
    print(f"\nseed {a.seed}, {a.searches_per_day} searches/day, onset {onset} (day {a.onset_day} of {a.days})")
    print(f"{'drift':38} {'days to alarm':>13} {'RMSE before':>11} {'until promo':>11} {'promoted':>10} {'after':>8} "
          f"{'last promo':>10} {'its test RMSE':>13} {'fair':>5} {'false alarms':>12} {'seconds':>8}")
    for r in rows:
        print(f"{r[0]:38} {str(r[1]):>13} {str(r[2]):>11} {str(r[3]):>11} {str(r[4]):>10} {str(r[5]):>8} {str(r[6]):>10} "
              f"{str(r[7]):>13} {str(r[8]):>5} {r[9]:>12} {r[10]:>8.0f}")


if __name__ == "__main__":
    main()
