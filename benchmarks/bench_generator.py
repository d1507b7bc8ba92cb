"""Generator throughput against the seed's target of 10,000 events/s.

Two measurements of one simulated day of ``searches`` searches:
- ``generate_world`` end to end into a temporary folder (world setup, raw gzip JSON lines, truth
  and outcomes Parquet, world.json): what `airfare generate` gives, after a warm-up run that pays
  the process's one-time lazy imports;
- the in-memory stages of the same day, one chunk at a time: simulation + JSON encoding
  (``World.chunk``) and gzip at the writer's level (no disk writes);
- ``generate_world`` end to end in the CLI's default shape (1,500 searches a day, 20 days: 480
  small chunks and raw files), where per-chunk and per-file costs dominate.

Usage: python benchmarks/bench_generator.py [searches] [repeats]   (default 50,000 and 1; the
median of the repeats is printed). To compare with another version of the generator in the same
run, point PYTHONPATH at its checkout and run this file again (older versions without
``Chunk.lines`` are serialised with orjson from ``Chunk.events``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import statistics
import sys
import tempfile
import time

import orjson

from seed_infra.world import World, generate_world
from seed_infra.world.writer import GZIP_LEVEL

TARGET_EVENTS_PER_S = 10_000
START = dt.date(2026, 6, 1)


def _lines(chunk) -> bytes:
    if hasattr(chunk, "lines"):
        return chunk.lines
    return b"\n".join(orjson.dumps(e) for e in chunk.events) + b"\n"  # generator versions before the column encoder


def stages(searches: int) -> dict:
    world = World(seed=42, start_date=START, days=1, searches_per_day=searches)
    events = offers = raw = 0
    sim = gz = 0.0
    for hour, part, n in world.chunks_of_day(0):
        t = time.perf_counter()
        chunk = world.chunk(0, hour, part, n)
        payload = _lines(chunk)
        t1 = time.perf_counter()
        raw += len(gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0))
        t2 = time.perf_counter()
        sim, gz = sim + t1 - t, gz + t2 - t1
        events += n
        offers += len(chunk.offer_id)
    return {"events": events, "offers": offers, "raw": raw, "sim_encode_s": sim, "gzip_s": gz}


def end_to_end(searches: int, days: int = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp:
        s = generate_world(tmp, seed=42, start_date=START, days=days, searches_per_day=searches, progress=False)
    return {"events": s.events, "offers": s.offers, "seconds": s.seconds}


def main(searches: int = 50_000, repeats: int = 1) -> None:
    end_to_end(100)  # warm-up: lazy imports (holidays, airportsdata) are paid once per process, not per world
    e2e = [end_to_end(searches) for _ in range(repeats)]
    st = [stages(searches) for _ in range(repeats)]
    secs = statistics.median(r["seconds"] for r in e2e)
    events, offers = e2e[0]["events"], e2e[0]["offers"]
    sim = statistics.median(r["sim_encode_s"] for r in st)
    gz = statistics.median(r["gzip_s"] for r in st)
    eps = events / secs
    print(f"searches              {events:8,d}, {offers / events:.1f} offers/search, {st[0]['raw'] / events:.0f} gzip bytes/event (level {GZIP_LEVEL})")
    print(f"generate_world        {secs:8.2f} s end to end (world setup, raw, truth, outcomes)")
    print(f"  events/s            {eps:8,.0f}")
    print(f"  offers/s            {offers / secs:8,.0f}")
    print(f"  vs target {TARGET_EVENTS_PER_S:,} ev/s {eps / TARGET_EVENTS_PER_S:8.2f}x")
    print(f"in memory, per stage  simulate+encode {sim:.2f} s ({events / sim:,.0f} ev/s), gzip {gz:.2f} s ({events / gz:,.0f} ev/s)")
    print(f"  events/s            {events / (sim + gz):8,.0f} (both stages, one thread)")
    # the CLI's default shape: 1,500 searches a day, so about 60 per (day, hour) chunk and raw file
    small = [end_to_end(1500, days=20) for _ in range(repeats)]
    secs = statistics.median(r["seconds"] for r in small)
    eps = small[0]["events"] / secs
    print(f"default shape         {small[0]['events']:8,d} searches (20 days x 1,500) in {secs:.2f} s end to end")
    print(f"  events/s            {eps:8,.0f}   offers/s {small[0]['offers'] / secs:,.0f}   vs target {eps / TARGET_EVENTS_PER_S:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000, int(sys.argv[2]) if len(sys.argv) > 2 else 1)
