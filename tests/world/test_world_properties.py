"""Property tests of the generator over seeds, dates and options a user might type (hypothesis).

Small worlds (a day or two, a few searches) so that many combinations run in seconds: any seed
from 0 to 2^64-1 and any start date of the documented range gives contract-valid, deterministic
events, and an incident feed that only speaks of offers that exist, within the review window.
"""

from __future__ import annotations

import datetime as dt
import gzip

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from core import contract
from seed_infra.world import World, generate_world, validate_options
from seed_infra.world.params import FIRST_DATE, LAST_DATE, SEED_MAX

SEEDS = st.one_of(st.integers(0, 2**23), st.integers(2**23, SEED_MAX), st.sampled_from([0, 2**23, 8675309, 2**32, SEED_MAX]))
DATES = st.dates(min_value=FIRST_DATE, max_value=LAST_DATE - dt.timedelta(days=3))
# no shrinking: a failure prints its example as found (shrinking a world can take minutes)
PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


@PROPERTY
@given(seed=SEEDS, start=DATES, days=st.integers(1, 2), per_day=st.integers(1, 40), rate=st.floats(0.0, 0.5))
@example(seed=0, start=dt.date(2000, 1, 1), days=1, per_day=1, rate=0.0)  # a year Spain's holiday table lacks
@example(seed=SEED_MAX, start=LAST_DATE - dt.timedelta(days=1), days=2, per_day=5, rate=0.5)  # no holiday data at all
def test_any_seed_and_date_gives_a_valid_world(tmp_path_factory, seed, start, days, per_day, rate):
    out = tmp_path_factory.mktemp("w")
    s = generate_world(out, seed=seed, start_date=start, days=days, searches_per_day=per_day, anomaly_rate=rate, progress=False)
    assert s.events == days * per_day
    events = [orjson.loads(line) for f in sorted((out / "raw").rglob("*.json.gz")) for line in gzip.open(f)]
    assert len(events) == s.events
    offers = {}
    for e in events:
        ev = contract.SearchEvent.model_validate(e)
        day = ev.event_time.date()
        assert start <= day < start + dt.timedelta(days=days)
        assert ev.query.departure_date >= day
        for o in e["offers"]:
            offers[o["offer_id"]] = ev.event_time
    assert len(offers) == s.offers
    labels = pd.concat([pq.read_table(f).to_pandas() for f in (out / "labels" / "incidents").rglob("*.parquet")]
                       or [pd.DataFrame(columns=contract.INCIDENT_COLUMNS)])
    assert len(labels) == s.labels["rows"]
    if len(labels):
        assert labels["offer_id"].isin(offers.keys()).all() and labels["offer_id"].is_unique
        quoted = labels["offer_id"].map(offers)
        assert (pd.to_datetime(labels["search_time"], utc=True) == pd.to_datetime(quoted, utc=True)).all()
        delay = labels["confirmed_at"] - labels["search_time"]
        assert (delay > pd.Timedelta(0)).all() and (delay <= pd.Timedelta(days=7)).all()
        assert set(labels["source"]) <= set(contract.INCIDENT_SOURCES)


@PROPERTY
@given(seed=SEEDS, start=DATES, hour=st.integers(0, 23), n=st.integers(1, 30))
def test_a_chunk_is_a_function_of_its_seed(seed, start, hour, n):
    a = World(seed=seed, start_date=start, days=1, searches_per_day=24 * n)
    b = World(seed=seed, start_date=start, days=1, searches_per_day=24 * n)
    ca, cb = a.chunk(0, hour, 0, n), b.chunk(0, hour, 0, n)
    assert ca.lines == cb.lines
    ra, rb = a.review(ca), b.review(cb)
    assert all((ra[k] == rb[k]).all() for k in ra)


@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=SEED_MAX + 1)))
@settings(max_examples=20, deadline=None)
def test_seeds_outside_the_range_are_refused(seed):
    with pytest.raises(ValueError, match="seed must be between 0 and 2\\^64-1"):
        validate_options(seed=seed, days=1, searches_per_day=1, anomaly_rate=0.0)


def test_documented_seed_limits_through_the_cli(tmp_path):
    from pipelines.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["generate", "--out", str(tmp_path / "w"), "--seed", "8675309", "--days", "1",
                             "--searches-per-day", "20", "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert "8675309" in ok.output
    for bad, flag in ((str(SEED_MAX + 1), "--seed"), ("-1", "--seed"), ("2026-02-30", "--start-date"),
                      ("9999-12-31", "--start-date"), ("nan", "--anomaly-rate")):
        opt = {"--seed": ["--seed", bad], "--start-date": ["--start-date", bad], "--anomaly-rate": ["--anomaly-rate", bad]}[flag]
        out = runner.invoke(app, ["generate", "--out", str(tmp_path / "w"), *opt, "--quiet"], env={"COLUMNS": "200"})
        assert out.exit_code == 2, (bad, out.output)
        assert flag in out.output, (bad, out.output)
    # the refused runs left the earlier world alone
    assert any((tmp_path / "w" / "raw").rglob("*.json.gz"))
