"""The incident-label feed the world emits: partial, delayed and noisy as documented (WorldParams.label_*)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core import contract
from core.labels import ground_truth_records, read_feed
from seed_infra.world import World, WorldParams, generate_world


@pytest.fixture(scope="module")
def reviewed():
    """About 60k offers of a world with many glitches, and their verdict rows (no disk)."""
    world = World(seed=5, start_date=dt.date(2026, 4, 6), days=1, searches_per_day=6000, anomaly_rate=0.2)
    rows = []
    for hour, part, n in world.chunks_of_day(0):
        chunk = world.simulate(0, hour, part, n)
        r = world.review(chunk)
        anom = chunk.is_anomaly
        frame = pd.DataFrame({"anomaly": anom, "factor": chunk.anomaly_factor, "reviewed": False, "incident": False,
                              "source": -1, "delay_h": np.nan})
        frame.loc[r["offer"], "reviewed"] = True
        frame.loc[r["offer"], "incident"] = r["is_incident"]
        frame.loc[r["offer"], "source"] = r["source"]
        frame.loc[r["offer"], "delay_h"] = (r["confirmed_us"] - r["search_us"]) / 3.6e9
        rows.append(frame)
    return world.p, pd.concat(rows, ignore_index=True)


def test_coverage_grows_with_glitch_size_and_misses_some(reviewed):
    p, f = reviewed
    a = f[f.anomaly]
    size = np.abs(np.log(a.factor))
    small, large = a[size < np.log(3)], a[size > np.log(7)]
    alert = lambda g: ((g.source == 0) & g.reviewed).mean()  # noqa: E731 - raised by the alerts
    assert p.label_alert_coverage_min - 0.05 < alert(small) < alert(large) <= p.label_alert_coverage_max + 0.02
    confirmed = a.incident.mean()
    assert 0.8 < confirmed < 0.95  # partial: some glitches are never confirmed


def test_external_reports_favour_drops_and_are_always_confirmed(reviewed):
    _, f = reviewed
    ext = f[f.source > 0]
    assert len(ext) > 50 and ext.incident.all() and ext.anomaly.all()
    missed = f[f.anomaly & ~((f.source == 0) & f.reviewed)]
    drops, spikes = missed[missed.factor < 1], missed[missed.factor > 1]
    assert (drops.source > 0).mean() > 2 * (spikes.source > 0).mean()


def test_normal_offers_reviewed_rarely_and_verdicts_are_sometimes_wrong(reviewed):
    p, f = reviewed
    normal = f[~f.anomaly]
    assert normal.reviewed.mean() == pytest.approx(p.label_normal_review_rate, rel=0.25)
    wrong_confirm = normal[normal.reviewed].incident.mean()
    assert 0 < wrong_confirm < 3 * p.label_false_confirm_rate
    raised = f[f.anomaly & f.reviewed & (f.source == 0)]
    assert 0 < (~raised.incident).mean() < 3 * p.label_false_clear_rate


def test_verdicts_come_hours_to_days_later_within_the_window(reviewed):
    p, f = reviewed
    d = f.delay_h.dropna()
    assert (d > 0).all() and (d <= p.label_review_window_days * 24).all()
    review, ext = d[f.source == 0], d[f.source > 0]
    assert review.median() == pytest.approx(p.label_review_delay_median_hours, rel=0.15)
    assert ext.median() > 2 * review.median()


def test_parameters_are_tunable():
    world = World(seed=5, start_date=dt.date(2026, 4, 6), days=1, searches_per_day=2400, anomaly_rate=0.2,
                  params=replace(WorldParams(), label_alert_coverage_min=1.0, label_alert_coverage_max=1.0,
                                 label_false_clear_rate=0.0, label_normal_review_rate=0.0, label_review_window_days=30))
    chunk = world.simulate(0, 12, 0, 500)
    r = world.review(chunk)
    assert r["is_incident"].all() and len(r["offer"]) == chunk.is_anomaly.sum()  # every glitch, nothing else
    with pytest.raises(ValueError, match="label_normal_review_rate"):
        WorldParams().with_overrides({"label_normal_review_rate": "1.5"})
    with pytest.raises(ValueError, match="unknown world parameter"):
        WorldParams().with_overrides({"no_such": "1"})
    assert WorldParams().with_overrides({"label_review_window_days": "3"}).label_review_window_days == 3


def test_feed_on_disk_is_partitioned_by_verdict_date_and_readable(tmp_path):
    s = generate_world(tmp_path, seed=2, start_date=dt.date(2026, 5, 4), days=2, searches_per_day=800,
                       anomaly_rate=0.05, progress=False)
    folder = tmp_path / "labels" / "incidents"
    files = sorted(folder.rglob("*.parquet"))
    assert files and sum(pq.read_metadata(f).num_rows for f in files) == s.labels["rows"]
    for f in files:
        t = pq.read_table(f)
        assert t.schema.equals(contract.INCIDENT_LABEL_SCHEMA, check_metadata=False)
        day = f.parent.name.removeprefix("dt=")
        assert set(t.column("confirmed_at").to_pandas().dt.strftime("%Y-%m-%d")) == {day}
    feed = read_feed(folder)
    assert feed.as_of == pd.Timestamp("2026-05-13T00:00:00Z")  # the last quote's window has closed
    assert len(feed.verdicts) == s.labels["rows"]
    # what was known two days into the world: fewer verdicts, none made after then
    early = read_feed(folder, as_of="2026-05-06T00:00:00Z")
    assert 0 < len(early.verdicts) < len(feed.verdicts) and (early.verdicts.confirmed_at <= early.as_of).all()
    # Model Monitor ground truth: one record per verdict, keyed by the offer id
    records = ground_truth_records(feed.verdicts)
    assert {r["groundTruthData"]["data"] for r in records} == {"0", "1"}
    assert [r["eventMetadata"]["eventId"] for r in records] == feed.verdicts.offer_id.tolist()
