"""The world generator: determinism, contract conformance, lake layout, truth and documented effects."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core import contract
from seed_infra.world import World, generate_world, iter_search_events

START = dt.date(2026, 3, 2)
OPTS = dict(seed=7, start_date=START, days=2, searches_per_day=600, progress=False)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _events(folder: Path) -> list[dict]:
    return [orjson.loads(line) for f in sorted((folder / "raw").rglob("*.json.gz")) for line in gzip.open(f)]


def _offers(events: list[dict]) -> pd.DataFrame:
    rows = []
    for e in events:
        q = e["query"]
        for o in e["offers"]:
            rows.append({
                "event_id": e["event_id"], "search_date": e["event_time"][:10], "cabin": q["cabin"], "trip_type": q["trip_type"],
                "route": f"{q['origin']}-{q['destination']}", "departure_date": q["departure_date"], "offer_id": o["offer_id"],
                "airline": o["airline"], "flight_number": o["flight_number"], "fare_class": o["fare_class"],
                "seats_left": o["seats_left"], "stops": o["stops"],
                "price_usd": contract.to_usd(o["price"]["amount"], o["price"]["currency"]),
            })
    df = pd.DataFrame(rows)
    df["dtd"] = (pd.to_datetime(df.departure_date) - pd.to_datetime(df.search_date)).dt.days
    df["flight_key"] = df.airline + "-" + df.flight_number + "-" + df.departure_date
    return df


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(out, **OPTS)
    return out


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A larger world (about 40k offers) for statistical effects."""
    out = tmp_path_factory.mktemp("big")
    summary = generate_world(out, seed=3, start_date=dt.date(2026, 6, 1), days=3, searches_per_day=1500, progress=False)
    events = _events(out)
    offers = _offers(events)
    truth = pq.read_table(out / "truth" / "offers").to_pandas()
    outcomes = pq.read_table(out / "outcomes" / "flights").to_pandas()
    return summary, offers.merge(truth, on="offer_id", how="left"), outcomes


def test_same_seed_same_bytes_different_seed_differs(world_dir, tmp_path):
    again = tmp_path / "again"
    generate_world(again, **OPTS)
    assert _digest(world_dir) == _digest(again)
    other = tmp_path / "other"
    generate_world(other, **{**OPTS, "seed": 8})
    a, b = _digest(world_dir), _digest(other)
    assert a.keys() & b.keys()
    assert all(a[k] != b[k] for k in a.keys() & b.keys() if k.startswith("raw/"))


def test_raw_writes_in_flight_bound_gives_the_same_bytes(world_dir, tmp_path, monkeypatch):
    """Raw parts are gzipped and written on a writer thread, a bounded number in flight: same files."""
    from seed_infra.world import writer

    monkeypatch.setattr(writer, "_MAX_IN_FLIGHT_PARTS", 0)  # wait for every part at once
    threaded = tmp_path / "threaded"
    summary = generate_world(threaded, **OPTS)
    assert _digest(threaded) == _digest(world_dir)
    assert summary.raw_bytes == sum(f.stat().st_size for f in (threaded / "raw").rglob("*.json.gz"))


def test_events_validate_against_contract(world_dir):
    events = _events(world_dir)
    assert len(events) == 2 * 600
    for e in events[::7]:
        ev = contract.SearchEvent.model_validate(e)
        assert e["event_time"].endswith("Z")
        assert ev.event_time.tzinfo is not None
        assert ev.query.departure_date >= ev.event_time.date()
        if ev.query.trip_type == "round_trip":
            assert ev.query.return_date > ev.query.departure_date
        else:
            assert ev.query.return_date is None
        assert 1 <= ev.query.passengers.adults + ev.query.passengers.children <= 9
        for o in ev.offers:
            assert o.arrival_time > o.departure_time - dt.timedelta(hours=24)
            assert contract.MIN_PRICE_USD <= contract.to_usd(o.price.amount, o.price.currency) <= contract.MAX_PRICE_USD
            assert o.price.currency in contract.FX_PER_USD
    ids = [o["offer_id"] for e in events for o in e["offers"]]
    assert len(ids) == len(set(ids))
    assert len({e["event_id"] for e in events}) == len(events)


def test_raw_partitions_match_event_time(world_dir):
    files = sorted((world_dir / "raw").rglob("*.json.gz"))
    assert {f.parent.parent.name for f in files} == {f"dt={START}", f"dt={START + dt.timedelta(days=1)}"}
    for f in files:
        day, hour = f.parent.parent.name[3:], int(f.parent.name[5:])
        times = [orjson.loads(line)["event_time"] for line in gzip.open(f)]
        assert times == sorted(times)
        assert all(t[:10] == day and int(t[11:13]) == hour for t in times)


def test_truth_and_outcomes_keyed_by_raw_offers(world_dir):
    offers = _offers(_events(world_dir))
    truth = pq.read_table(world_dir / "truth" / "offers")
    assert truth.schema.equals(contract.TRUTH_OFFER_SCHEMA, check_metadata=False)
    t = truth.to_pandas()
    assert sorted(t.offer_id) == sorted(offers.offer_id)
    outcomes = pq.read_table(world_dir / "outcomes" / "flights")
    assert outcomes.schema.equals(contract.FLIGHT_OUTCOME_SCHEMA, check_metadata=False)
    o = outcomes.to_pandas()
    assert o.flight_key.is_unique
    assert set(offers.flight_key) == set(o.flight_key)
    assert (o.seats_sold <= o.capacity).all()
    assert np.allclose(o.load_factor, o.seats_sold / o.capacity)
    assert list(o.demand_class) == [contract.demand_class(x) for x in o.load_factor]
    doc = json.loads((world_dir / "truth" / "world.json").read_text())
    assert doc["seed"] == 7 and doc["counts"]["offers"] == len(offers)
    assert doc["noise_floor"]["price_rmse_usd"] > 0


def test_anomaly_rate_and_truth_factors(big):
    summary, df, _ = big
    share = df.is_anomaly.mean()
    assert 0.003 < share < 0.0075  # requested 0.5 % of ~40k offers
    a = df[df.is_anomaly]
    ratio = a.price_usd / a.true_price_usd
    assert ((ratio >= 1.9) | (ratio <= 1 / 1.9)).all()
    assert set(a.anomaly_kind) == {"spike", "drop"}
    assert (a.anomaly_kind == "spike").eq(ratio > 1).all()
    clean = df[~df.is_anomaly]
    assert clean.anomaly_kind.isna().all()
    floor = np.sqrt(np.mean((clean.price_usd - clean.true_price_usd) ** 2))
    assert floor == pytest.approx(summary.noise_floor_usd, rel=1e-6)
    assert 2.0 < floor < 12.0


def test_documented_price_effects(big):
    _, df, _ = big
    clean = df[~df.is_anomaly & (df.trip_type == "one_way") & (df.stops == 0)]
    eco = clean[clean.cabin == "economy"]
    # the last week costs more than the 3-week to 3-month trough, route by route
    by = eco.assign(window=np.select([eco.dtd <= 6, eco.dtd.between(21, 90)], ["last", "trough"], "other"))
    med = by[by.window != "other"].groupby(["route", "window"]).true_price_usd.median().unstack().dropna()
    assert (med["last"] > med["trough"]).mean() > 0.9
    # business > economy on the same route
    cab = clean.groupby(["route", "cabin"]).true_price_usd.median().unstack()[["economy", "business"]].dropna()
    assert (cab.business > cab.economy).mean() > 0.95
    assert (cab.business / cab.economy).median() > 2
    # legacy above low-cost on shared routes
    kind = eco.assign(kind=eco.airline.map({"AA": "legacy", "DL": "legacy", "UA": "legacy", "WN": "lcc", "NK": "lcc"})).dropna(subset=["kind"])
    lk = kind.groupby(["route", "kind"]).true_price_usd.median().unstack().dropna()
    assert len(lk) >= 5 and (lk.legacy > lk.lcc).mean() > 0.8
    # prices step up with the fare bucket within the cabin
    order = {c: i for i, c in enumerate("LVQHMBY")}
    eco = eco.assign(b=eco.fare_class.map(order))
    r = eco.groupby("route").apply(lambda g: np.corrcoef(g.b, np.log(g.true_price_usd))[0, 1] if g.b.nunique() > 1 and len(g) > 20 else np.nan, include_groups=False).dropna()
    assert r.median() > 0


def test_load_factor_drives_seats_left_and_classes(big):
    _, df, outcomes = big
    shares = outcomes.demand_class.value_counts(normalize=True)
    assert set(shares.index) == set(contract.DEMAND_CLASSES) and shares.min() > 0.05
    m = df[df.cabin == "economy"].merge(outcomes[["flight_key", "load_factor", "capacity"]], on="flight_key")
    near = m[m.dtd <= 14]
    hi, lo = near[near.load_factor > 0.9], near[near.load_factor < 0.75]
    assert (hi.seats_left / hi.capacity).mean() < (lo.seats_left / lo.capacity).mean()
    # seats left falls as departure nears
    assert m[m.dtd <= 7].seats_left.mean() < m[m.dtd >= 60].seats_left.mean()


def test_iterator_is_lazy_and_matches_files(world_dir):
    it = iter_search_events(**{k: v for k, v in OPTS.items() if k != "progress"})
    assert iter(it) is it  # a generator, not a list
    first = list(itertools.islice(it, 5))
    assert [e["event_id"] for e in first] == [e["event_id"] for e in _events(world_dir)[:5]]
    assert first + list(it) == _events(world_dir)  # the same documents, in the files' order


def test_generation_is_chunked_day_by_day():
    w = World(seed=1, start_date=START, days=3, searches_per_day=2500, chunk_size=100)
    plan = [w.chunks_of_day(d) for d in range(3)]
    for day in plan:
        assert sum(n for _, _, n in day) == 2500
        assert max(n for _, _, n in day) <= 100
    c = w.chunk(0, *plan[0][0])
    assert len(c.events) == plan[0][0][2]
    # a chunk depends only on (seed, day, hour, part): regenerating it gives the same events
    assert w.chunk(0, *plan[0][0]).events == c.events


def test_cli_generates_and_rejects_bad_input(tmp_path):
    from pipelines.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["generate", "--out", str(tmp_path / "w"), "--days", "1", "--searches-per-day", "50", "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert "noise floor" in ok.output
    assert (tmp_path / "w" / "truth" / "world.json").exists()
    for args, msg in ((["--days", "-1"], "--days"), (["--start-date", "2026-02-30"], "YYYY-MM-DD"), (["--anomaly-rate", "2"], "--anomaly-rate")):
        bad = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), *args])
        assert bad.exit_code != 0
        assert msg in bad.output
        assert "Traceback" not in bad.output


def test_fast_encoder_matches_dict_reference():
    """The column-wise JSON encoder writes exactly orjson.dumps of the original nested dicts."""
    from world_reference import reference_events

    currencies, offers = set(), 0
    for opts in (
        dict(seed=7, start_date=START, days=1, searches_per_day=600),
        dict(seed=3, start_date=dt.date(2026, 12, 20), days=1, searches_per_day=1500, chunk_size=97, anomaly_rate=0.3),
    ):
        w = World(**opts)
        for hour, part, n in w.chunks_of_day(0):
            chunk = w.chunk(0, hour, part, n)
            events, offer_ids = reference_events(w, chunk.columns)
            assert chunk.lines == b"".join(orjson.dumps(e) + b"\n" for e in events)
            assert chunk.offer_id.to_pylist() == offer_ids
            assert chunk.events == events and chunk.n_events == n == len(events)
            currencies |= {o["price"]["currency"] for e in events for o in e["offers"]}
            offers += len(offer_ids)
    assert offers > 10_000
    assert {"USD", "EUR", "GBP"} <= currencies


def test_fast_encoder_number_formatting():
    """Whole-number JPY amounts, big and small prices and empty searches encode as orjson would."""
    import dataclasses

    from world_reference import reference_events

    w = World(seed=5, start_date=START, days=1, searches_per_day=300)
    hour, part, n = w.chunks_of_day(0)[3]
    cols = w.chunk(0, hour, part, n).columns
    m = len(cols.amount)
    rng = np.random.default_rng(0)
    cur = rng.integers(0, len(contract.FX_PER_USD), m)
    currency = np.array(sorted(contract.FX_PER_USD))[cur]
    amount = np.round(np.exp(rng.uniform(np.log(0.01), np.log(5e7), m)), 2)
    amount[:6] = [0.1, 0.3, 1e7, 123456789.99, 100000.0, 5.0]
    amount = np.where(currency == "JPY", np.round(amount), amount)
    assert (currency == "JPY").sum() > 10
    cols = dataclasses.replace(cols, cur=cur, amount=amount)
    lines, offer_id = w.encode_events(cols)
    events, offer_ids = reference_events(w, cols)
    assert lines == b"".join(orjson.dumps(e) + b"\n" for e in events)
    assert offer_id.to_pylist() == offer_ids
    # a search whose flights are all full has no offers: "offers":[]
    keep = cols.o_search != cols.o_search[0]
    empty = dataclasses.replace(cols, **{k: getattr(cols, k)[keep] for k in (
        "o_search", "o_sched", "o_dep", "seats_left", "bucket", "o_cabin", "amount", "cur")})
    lines, _ = w.encode_events(empty)
    assert lines == b"".join(orjson.dumps(e) + b"\n" for e in reference_events(w, empty)[0])
    assert b'"offers":[]' in lines


def test_rerun_replaces_world_folders_only(tmp_path):
    """A re-run with fewer days leaves no stale raw/truth/outcomes partition; other folders survive."""
    lake = tmp_path / "lake"
    generate_world(lake, **{**OPTS, "days": 3, "searches_per_day": 200})
    assert len(list((lake / "raw").glob("dt=*"))) == 3
    keep = {
        lake / "curated" / "offers" / "dt=2026-03-02" / "part-0.parquet": b"curated",
        lake / "outcomes" / "other" / "notes.txt": b"not the generator's",
        lake / "README.txt": b"lake root file",
    }
    for path, data in keep.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (lake / "truth" / "stray.json").write_text("{}")
    assert (lake / "labels" / "incidents" / "dt=2026-03-04").is_dir()  # verdicts on the 3-day world's last day
    (lake / "labels" / "incidents" / "dt=2026-03-04" / "part-2026-03-04.parquet").write_bytes(b"stale")
    (lake / "outcomes" / "flights" / "part-00001.parquet").write_bytes(b"stale")

    generate_world(lake, **{**OPTS, "days": 1, "searches_per_day": 200})
    fresh = tmp_path / "fresh"
    generate_world(fresh, **{**OPTS, "days": 1, "searches_per_day": 200})
    world = {k: v for k, v in _digest(lake).items()
             if k.split("/")[0] in ("raw", "truth") or k.startswith(("outcomes/flights/", "labels/incidents/"))}
    assert world == _digest(fresh)  # exactly a fresh world: nothing stale in raw/, truth/, outcomes/flights/, labels/
    assert [p.name for p in (lake / "raw").iterdir()] == [f"dt={START}"]
    for path, data in keep.items():
        assert path.read_bytes() == data
    from pipelines.cli import app

    help_text = CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "200"}).output
    assert "replaced" in help_text and "curated/" in help_text


def test_bad_options_do_not_clear_existing_world(world_dir, tmp_path):
    before = _digest(world_dir)
    with pytest.raises(ValueError):
        generate_world(world_dir, **{**OPTS, "days": 0})
    assert _digest(world_dir) == before


def test_batched_encoding_matches_chunk_by_chunk(world_dir):
    """generate_world encodes a day's small chunks together: each raw part is still its chunk's lines."""
    w = World(**{k: v for k, v in OPTS.items() if k != "progress"})
    for day in range(OPTS["days"]):
        search_day = START + dt.timedelta(days=day)
        for hour, part, n in w.chunks_of_day(day):
            f = world_dir / "raw" / f"dt={search_day}" / f"hour={hour:02d}" / f"part-{part:05d}.json.gz"
            assert gzip.decompress(f.read_bytes()) == w.chunk(day, hour, part, n).lines
