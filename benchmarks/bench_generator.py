"""Generator throughput: generation + JSON serialisation + gzip of search events (no disk writes).

Prints events/s and offers/s against the seed's target of 10,000 events/s.
Usage: python benchmarks/bench_generator.py [searches]   (default 50,000)
"""

from __future__ import annotations

import datetime as dt
import gzip
import sys
import time

import orjson

from seed_infra.world import World
from seed_infra.world.writer import GZIP_LEVEL

TARGET_EVENTS_PER_S = 10_000


def main(searches: int = 50_000) -> None:
    t_setup = time.perf_counter()
    world = World(seed=42, start_date=dt.date(2026, 6, 1), days=1, searches_per_day=searches)
    setup_s = time.perf_counter() - t_setup
    events = offers = raw = 0
    t0 = time.perf_counter()
    for hour, part, n in world.chunks_of_day(0):
        chunk = world.chunk(0, hour, part, n)
        payload = b"\n".join(orjson.dumps(e) for e in chunk.events) + b"\n"
        raw += len(gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0))
        events += len(chunk.events)
        offers += len(chunk.offer_id)
    secs = time.perf_counter() - t0
    eps = events / secs
    print(f"world setup           {setup_s:8.2f} s (network, calendars; once per run)")
    print(f"searches              {events:8,d} in {secs:.2f} s, {offers / events:.1f} offers/search, {raw / events:.0f} gzip bytes/event")
    print(f"events/s              {eps:8,.0f}")
    print(f"offers/s              {offers / secs:8,.0f}")
    print(f"vs target {TARGET_EVENTS_PER_S:,} ev/s   {eps / TARGET_EVENTS_PER_S:8.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
