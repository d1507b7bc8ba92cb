"""The search-stream monitors (``monitoring.traffic``: 2-day search volume, per-currency price level)
on generated worlds, many seeds and magnitudes at a time: quiet false alarms and days to alarm.

    .venv/bin/python benchmarks/bench_stream_monitor.py [--seeds 7,11,42] [--days 30]
        [--kinds demand-collapse:0.6,demand-collapse:0.3,currency-units:100] [--searches-per-day 250]

The same checks and alarm rule as ``airfare replay`` (``monitoring.traffic.StreamAlarm``: a price
level out of its band on its last two datapoints, the 2-day volume on its last one), fed from the simulator's search
events directly (no files, no ETL: the ETL drops under 1 % of searches, malformed ones). A world
per (seed, drift) spans ``--train-days`` of history before the replayed ``--days``; the drift's
onset is ``--onset-day`` of the replayed days. Quiet runs (no drift) count alarm days over all
replayed days. It takes seconds per world, where a full replay takes minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring import traffic  # noqa: E402
from seed_infra.world.generator import _FX, CURRENCY_CODES, World  # noqa: E402


def stream_days(world: World):
    """(searches, price levels) of each simulated day."""
    for day in range(world.days):
        rows = []
        searches = 0
        for hour, part, n in world.chunks_of_day(day):
            c = world.simulate(day, hour, part, n).columns
            searches += n
            usd = c.amount / _FX[c.cur]
            rows.append(pd.DataFrame({"event_id": (hour * 1000 + part) * 100_000 + c.o_search, "currency": CURRENCY_CODES[c.cur],
                                      "price_usd": usd}))  # fmt: skip
        yield searches, traffic.price_levels(pd.concat(rows, ignore_index=True))


def alarms(world: World, first_replayed: int) -> list[tuple[int, list[str]]]:
    """(day index from the first replayed day, reasons) of each alarm day, by the replay's rule."""
    mon, alarm = traffic.StreamMonitor(), traffic.StreamAlarm()
    start = world.start_date
    out = []
    for day, (searches, levels) in enumerate(stream_days(world)):
        d = start + dt.timedelta(days=day)
        mon.add(d, searches, levels)
        if day < first_replayed:
            continue
        reasons = alarm.update([c.as_dict() for c in mon.check(d)])
        if reasons:
            out.append((day - first_replayed, sorted(reasons)))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="7,11,42")
    ap.add_argument("--kinds", default="quiet,demand-collapse:0.6,demand-collapse:0.3,currency-units:100,currency-units:10")
    ap.add_argument("--start-date", default="2026-03-02")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--train-days", type=int, default=21)
    ap.add_argument("--onset-day", type=int, default=3)
    ap.add_argument("--searches-per-day", type=int, default=250)
    a = ap.parse_args(argv)
    start = dt.date.fromisoformat(a.start_date)
    first = start - dt.timedelta(days=a.train_days)
    onset = start + dt.timedelta(days=a.onset_day)
    print(f"{'drift':32} {'seed':>5} {'alarm days before onset':>24} {'days to alarm':>14}  first reasons")
    for spec in a.kinds.split(","):
        for seed in map(int, a.seeds.split(",")):
            kind, _, mag = spec.partition(":")
            drifts = () if kind == "quiet" else (f"{kind}@{onset.isoformat()}" + (f":{mag}" if mag else ""),)
            world = World(seed=seed, start_date=first, days=a.train_days + a.days, searches_per_day=a.searches_per_day, drifts=drifts)
            found = alarms(world, a.train_days)
            if kind == "quiet":
                print(f"{spec:32} {seed:>5} {len(found):>24} {'-':>14}  {found[:2]}")
                continue
            before = [d for d, _ in found if d < a.onset_day]
            after = [(d - a.onset_day, r) for d, r in found if d >= a.onset_day]
            print(f"{spec:32} {seed:>5} {len(before):>24} {str(after[0][0]) if after else 'none':>14}  {after[0][1] if after else ''}")


if __name__ == "__main__":
    main()
