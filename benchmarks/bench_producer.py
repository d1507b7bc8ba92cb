"""Producer throughput vs the seed's target of 10,000 events/s.

Stages, each the median of ``--repeats`` runs over the same events:
1. encode + batch: orjson records packed into PutRecords batches (``seed_infra.kinesis_producer``), no client;
2. botocore, no network: the full ``KinesisProducer.send`` through a real boto3 client (parameter
   validation, base64, JSON body, SigV4 signing), answered in-process by a ``before-send`` hook;
   then the same with a simulated round trip (``--latency-ms``), sequential and with 4 calls in flight;
3. ``--moto``: the same against a local moto server over HTTP (client and server share this
   process and its GIL, so it is a floor, not what Kinesis would do);
4. generator-fed, when ``seed_infra.world.iter_search_events`` exists: the world generator alone,
   and generator + encode + batch.

Run: ``.venv/bin/python benchmarks/bench_producer.py [--events 20000] [--moto]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from seed_infra.kinesis_producer import (  # noqa: E402
    KinesisProducer,
    ProducerConfig,
    Record,
    batch_records,
    encode_events,
    put_records_entries,
)

TARGET_EVENTS_PER_S = 10_000  # the seed producer's stated target
_ROUTES = [("JFK", "LAX"), ("LHR", "CDG"), ("SFO", "NRT"), ("FRA", "MAD"), ("SYD", "MEL"), ("DXB", "BOM")]
_AIRLINES = ["AA", "DL", "UA", "BA", "AF", "LH", "QF", "EK"]


def synthetic_events(n: int, offers: int = 12) -> list[dict]:
    """Contract-shaped searches (``core.contract.SearchEvent``) with ``offers`` offers each."""
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        origin, destination = _ROUTES[i % len(_ROUTES)]
        dep = dt.date(2026, 4, 1) + dt.timedelta(days=i % 90)
        out.append(
            {
                "schema_version": 1,
                "event_id": f"ev-{i:09d}",
                "event_time": base + dt.timedelta(seconds=i),
                "session": {"session_id": f"s-{i // 4}", "user_id": f"u-{i // 9}", "country": "US", "device": "web", "loyalty_tier": "none"},
                "query": {
                    "origin": origin,
                    "destination": destination,
                    "departure_date": dep,
                    "return_date": None,
                    "trip_type": "one_way",
                    "cabin": "economy",
                    "passengers": {"adults": 1, "children": 0, "infants": 0},
                },
                "offers": [
                    {
                        "offer_id": f"of-{i:09d}-{k:02d}",
                        "airline": _AIRLINES[(i + k) % len(_AIRLINES)],
                        "flight_number": f"{_AIRLINES[(i + k) % len(_AIRLINES)]}{100 + k}",
                        "departure_time": dt.datetime.combine(dep, dt.time(6 + k % 16)),
                        "arrival_time": dt.datetime.combine(dep, dt.time(9 + k % 14)),
                        "stops": k % 2,
                        "duration_minutes": 180 + 45 * (k % 2),
                        "fare_class": "YBMHQVL"[k % 7],
                        "seats_left": 9 - k % 9,
                        "price": {"amount": round(189.0 + 7.5 * k + (i % 13), 2), "currency": "USD"},
                    }
                    for k in range(offers)
                ],
            }
        )
    return out


def _median_rate(n: int, fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median events/s, median seconds) of ``fn`` processing ``n`` events."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return n / med, med


def encode_and_batch(events: Iterable[dict]) -> int:
    """Everything the producer does before the network: records, batches, request entries."""
    calls = 0
    for batch in batch_records(r for r in encode_events(events) if isinstance(r, Record)):
        put_records_entries(batch)
        calls += 1
    return calls


def offline_kinesis_client(latency_s: float = 0.0):
    """A real boto3 Kinesis client whose HTTP sends are answered in-process with success.

    ``latency_s`` sleeps in each send, a stand-in for the network round trip to Kinesis.
    """
    import threading

    from botocore.awsrequest import AWSResponse

    from core.aws import client

    kinesis = client(
        "kinesis",
        endpoint_url="http://kinesis.offline.invalid",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    pending = threading.local()  # both hooks run in the calling thread
    bodies = {}

    def remember(params, **_):
        pending.n = len(params["Records"])

    def answer(request, **_):
        n = pending.n
        if latency_s:
            time.sleep(latency_s)
        if n not in bodies:
            bodies[n] = orjson.dumps(
                {"FailedRecordCount": 0, "Records": [{"SequenceNumber": str(i), "ShardId": f"shardId-00000000000{i % 4}"} for i in range(n)]}
            )

        class Raw:
            def stream(self, **_):
                yield bodies[n]

        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, Raw())

    kinesis.meta.events.register("provide-client-params.kinesis.PutRecords", remember)
    kinesis.meta.events.register("before-send.kinesis.PutRecords", answer)
    return kinesis


def bench_moto(events: list[dict], repeats: int) -> tuple[float, float]:
    """Full send to a local moto server (in this process)."""
    import logging

    from moto.server import ThreadedMotoServer

    from core.aws import client

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        kinesis = client("kinesis", endpoint_url=f"http://{host}:{port}", aws_access_key_id="bench", aws_secret_access_key="bench")
        counter = itertools.count()

        def run():
            name = f"bench-{next(counter)}"
            kinesis.create_stream(StreamName=name, ShardCount=4)
            KinesisProducer(name, client=kinesis).send(events)

        return _median_rate(len(events), run, repeats)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per run (default 20000)")
    parser.add_argument("--offers", type=int, default=12, help="offers per synthetic search (default 12)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage; the median is reported")
    parser.add_argument("--moto", action="store_true", help="also stream to a local moto server")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="simulated PutRecords round trip (default 30)")
    parser.add_argument("--seed", type=int, default=42, help="world seed for the generator-fed stage")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    events = synthetic_events(args.events, args.offers)
    sizes = [len(orjson.dumps(e)) for e in events[:1000]]
    print(f"{args.events:,} synthetic searches, {args.offers} offers each, ~{statistics.mean(sizes):,.0f} bytes per record")
    print(f"target: {TARGET_EVENTS_PER_S:,} events/s (the seed producer)\n")

    rows: list[tuple[str, float, float]] = []
    rows.append(("encode + batch (no client)", *_median_rate(len(events), lambda: encode_and_batch(events), args.repeats)))
    offline = offline_kinesis_client()
    rows.append(("send via botocore, no network", *_median_rate(len(events), lambda: KinesisProducer("bench", client=offline).send(events), args.repeats)))
    slow = offline_kinesis_client(args.latency_ms / 1000)
    for concurrency in (1, 4):
        config = ProducerConfig(concurrency=concurrency)
        rows.append(
            (
                f"send, {args.latency_ms:g} ms RTT, concurrency {concurrency}",
                *_median_rate(len(events), lambda c=config: KinesisProducer("bench", client=slow, config=c).send(events), args.repeats),
            )
        )
    if args.moto:
        rows.append(("send to local moto server", *bench_moto(events, args.repeats)))

    try:
        from seed_infra.world import iter_search_events
    except ImportError:
        print("(world generator not available: generator-fed stages skipped)\n")
    else:
        spd = max(args.events, 1_000)

        def world():
            return itertools.islice(
                iter_search_events(seed=args.seed, start_date=dt.date(2026, 1, 5), days=2, searches_per_day=spd), args.events
            )

        rows.append(("world generator alone", *_median_rate(args.events, lambda: sum(1 for _ in world()), args.repeats)))
        rows.append(("generator + encode + batch", *_median_rate(args.events, lambda: encode_and_batch(world()), args.repeats)))
        rows.append(("generator + send via botocore", *_median_rate(args.events, lambda: KinesisProducer("bench", client=offline).send(world()), args.repeats)))

    width = max(len(r[0]) for r in rows)
    print(f"{'stage':<{width}}  {'events/s':>12}  {'seconds':>8}  {'vs target':>9}")
    for name, rate, seconds in rows:
        print(f"{name:<{width}}  {rate:>12,.0f}  {seconds:>8.3f}  {rate / TARGET_EVENTS_PER_S:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
