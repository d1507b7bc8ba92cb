"""Preprocess: time split, partition filter, demand table."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import contract
from core.features import DEMAND_FEATURES, DEMAND_LEAKY, build_demand_table
from processing.entry import main
from processing.preprocess import iter_day, list_days, split_dates, to_contract_table


def test_split_is_by_time_without_overlap(splits):
    out, summary = splits
    ranges = {}
    for name in ("train", "validation", "test"):
        d = pd.to_datetime(out[name]["offers"]["dt"])
        assert len(d) > 0
        ranges[name] = (d.min(), d.max())
        f = out[name]["flights"]["search_date"]
        assert f.min() >= d.min() and f.max() <= d.max()
    assert ranges["train"][1] < ranges["validation"][0]
    assert ranges["validation"][1] < ranges["test"][0]
    ids = [set(out[n]["offers"]["offer_id"]) for n in ("train", "validation", "test")]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    assert summary["splits"]["test"]["start_date"] == "2026-03-26"
    assert summary["splits"]["validation"]["end_date"] == "2026-03-25"


def test_split_dates_rejects_too_short_a_period():
    dates = pd.Series(pd.date_range("2026-01-01", periods=5))
    with pytest.raises(ValueError, match="cannot hold"):
        split_dates(dates, 3, 3)
    with pytest.raises(ValueError):
        split_dates(dates, 0, 1)


def test_the_shortest_window_leaves_a_week_of_training_days():
    """21 days (7 validation + 7 test + 7 training) is the documented minimum; 20 is refused, naming it."""
    from processing.preprocess import MIN_TRAIN_DAYS, MIN_WINDOW_DAYS

    assert (MIN_WINDOW_DAYS, MIN_TRAIN_DAYS) == (21, 7)
    with pytest.raises(ValueError, match="at least 21 days"):
        split_dates(pd.Series(pd.date_range("2026-01-01", periods=20)), 7, 7)
    bounds = split_dates(pd.Series(pd.date_range("2026-01-01", periods=21)), 7, 7)
    assert (bounds["train"][1] - bounds["train"][0]).days + 1 == 7
    # shorter validation and test periods still need the week of training days
    with pytest.raises(ValueError, match="at least 17 days"):
        split_dates(pd.Series(pd.date_range("2026-01-01", periods=16)), 5, 5)


def _write_partitioned(offers: pd.DataFrame, root):
    for day, part in offers.groupby("dt"):
        d = root / f"dt={day}"
        d.mkdir(parents=True)
        table = to_contract_table(part).drop_columns(["dt"])
        pq.write_table(table, d / "part-0.parquet")


def test_partition_filter_on_local_folder(world, tmp_path):
    offers = world[0]
    _write_partitioned(offers[offers["dt"] <= "2026-03-10"], tmp_path / "offers")
    root = str(tmp_path / "offers")
    assert list_days(root, "2026-03-03", "2026-03-05") == ["2026-03-03", "2026-03-04", "2026-03-05"]
    tables = list(iter_day(root, "2026-03-04", batch_rows=7))
    assert len(tables) > 1 and max(t.num_rows for t in tables) <= 7  # streamed in batches
    got = pa.concat_tables(tables)
    assert got.schema.equals(contract.CURATED_OFFER_SCHEMA, check_metadata=False)
    assert set(got.column("dt").to_pylist()) == {"2026-03-04"}
    assert got.num_rows == int((offers["dt"] == "2026-03-04").sum())
    assert len(list_days(root, "", "")) == 10
    with pytest.raises(ValueError, match="no curated offers"):
        list_days(root, "2027-01-01", "2027-01-02")
    with pytest.raises(ValueError, match="after"):
        list_days(root, "2026-03-05", "2026-03-01")
    with pytest.raises(FileNotFoundError):
        list_days(str(tmp_path / "missing"))


def test_demand_table_has_no_leakage_and_correct_labels(world):
    offers, outcomes, _ = world
    table, stats = build_demand_table(offers, outcomes)
    assert not (set(table.columns) & DEMAND_LEAKY)
    assert not (set(DEMAND_FEATURES) & contract.FORBIDDEN_FEATURES)
    assert table.duplicated(["flight_key", "search_date"]).sum() == 0
    truth = outcomes.set_index("flight_key")["demand_class"]
    assert (table["demand_class"] == table["flight_key"].map(truth)).all()
    assert stats["labelled"] == len(table) and stats["dropped_without_outcome"] == 0
    # cumulative search volume never decreases along a flight's snapshots
    cum = table.sort_values("search_date").groupby("flight_key")["route_date_searches_cum"].diff().dropna()
    assert (cum >= 0).all()


def test_demand_table_drops_flights_without_outcome(world):
    offers, outcomes, _ = world
    keep = outcomes.iloc[: len(outcomes) // 2]
    table, stats = build_demand_table(offers, keep)
    assert set(table["flight_key"]) <= set(keep["flight_key"])
    assert stats["dropped_without_outcome"] > 0
    assert stats["labelled"] + stats["dropped_without_outcome"] == stats["snapshots"]


def test_demand_features_use_only_the_past(world):
    """Snapshots of one search date do not change when later days are added."""
    offers, outcomes, _ = world
    early = offers[offers["dt"] <= "2026-03-10"]
    a, _ = build_demand_table(early, outcomes)
    b, _ = build_demand_table(offers, outcomes)
    key = ["flight_key", "search_date"]
    merged = a.merge(b, on=key, suffixes=("_a", "_b"))
    assert len(merged) == len(a)
    for c in ("route_date_searches_cum", "route_date_searches_7d", "flight_searches_cum", "economy_seats_left_vs_max_seen"):
        pd.testing.assert_series_equal(merged[f"{c}_a"], merged[f"{c}_b"], check_names=False)


def test_main_writes_splits_and_summary(world, tmp_path, monkeypatch, capsys):
    """Preprocess (the map) then MergeSplits (the reduce), as the pipeline runs them."""
    from processing import merge_splits

    offers, outcomes, _ = world
    _write_partitioned(offers, tmp_path / "curated" / "offers")
    (tmp_path / "outcomes").mkdir()
    outcomes.to_parquet(tmp_path / "outcomes" / "flights.parquet")
    monkeypatch.setenv("SM_OPT_ML", str(tmp_path / "opt_ml"))
    rc = main(["--curated-uri", str(tmp_path / "curated" / "offers"), "--start-date", "", "--end-date", "",
               "--validation-days", "5", "--test-days", "5"])
    assert rc == 0
    shards = tmp_path / "opt_ml" / "processing" / "output" / "shards"
    assert (shards / "algo-1" / "shard.json").is_file()
    rc = merge_splits.main(["--outcomes-uri", str(tmp_path / "outcomes"), "--input-dir", str(shards),
                            "--output-dir", str(tmp_path / "splits")])
    assert rc == 0
    out = tmp_path / "splits"
    summary = json.loads((out / "split_summary.json").read_text())
    total = 0
    for name in ("train", "validation", "test"):
        t = pq.read_table(out / name / "offers.parquet")
        assert t.schema.equals(contract.CURATED_OFFER_SCHEMA, check_metadata=False)
        total += t.num_rows
        assert t.num_rows == summary["splits"][name]["offers"]
        assert pd.read_parquet(out / name / "flights.parquet")["demand_class"].notna().all()
    assert total == len(offers)
    assert "train" in capsys.readouterr().out
