"""Preprocess streaming and sampling: bounded, deterministic, the same answer as the in-memory path, no leak across the split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.features import build_demand_table
from processing.entry import main
from processing.preprocess import preprocess, preprocess_stream, split_dates, to_contract_table
from processing.sampling import BottomK, KeySample, row_hashes


def _stream(offers: pd.DataFrame, batch_rows: int):
    """Each day's offers as tables of at most ``batch_rows`` rows, in shuffled row order."""
    by_day = {d: g.sample(frac=1.0, random_state=1) for d, g in offers.groupby("dt")}

    def batches(day):
        t = to_contract_table(by_day[day])
        return [t.slice(i, batch_rows) for i in range(0, t.num_rows, batch_rows)]

    return sorted(by_day), batches


def test_streamed_demand_table_equals_the_whole_window_one(world):
    """Day by day, in small batches, the demand table is exactly the one built from every offer at once."""
    offers, outcomes, _ = world
    days, batches = _stream(offers, batch_rows=50)
    out, summary = preprocess_stream(days, batches, outcomes, validation_days=5, test_days=5)
    streamed = pd.concat([out[s]["flights"] for s in ("train", "validation", "test")], ignore_index=True)
    whole, _ = build_demand_table(offers, outcomes)
    key = ["flight_key", "search_date"]
    a = streamed.sort_values(key).reset_index(drop=True)
    b = whole.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert summary["splits"]["train"]["offers"] == summary["splits"]["train"]["offers_available"]


def test_samples_are_bounded_deterministic_and_batch_free(world):
    offers, outcomes, _ = world
    sizes = {"train": 300, "validation": 80, "test": 60}
    days, small = _stream(offers, batch_rows=17)
    _, large = _stream(offers, batch_rows=10_000)
    a, sa = preprocess_stream(days, small, outcomes, 5, 5, sample_rows=sizes, seed=7)
    b, _ = preprocess_stream(days, large, outcomes, 5, 5, sample_rows=sizes, seed=7)
    c, _ = preprocess_stream(days, large, outcomes, 5, 5, sample_rows=sizes, seed=8)
    for split, k in sizes.items():
        assert len(a[split]["offers"]) == k < sa["splits"][split]["offers_available"]
        assert sa["splits"][split]["sampled"]
        # same rows in the same order whatever the batch size; another seed draws another sample
        assert a[split]["offers"]["offer_id"].tolist() == b[split]["offers"]["offer_id"].tolist()
        assert set(a[split]["offers"]["offer_id"]) != set(c[split]["offers"]["offer_id"])
        # the demand table is not sampled
        pd.testing.assert_frame_equal(a[split]["flights"], b[split]["flights"])


def test_no_sample_crosses_the_time_split(world):
    """Sampled offers lie inside their split's dates; validation/test samples never share an offer or a day with train."""
    offers, outcomes, _ = world
    days, batches = _stream(offers, batch_rows=64)
    out, summary = preprocess_stream(days, batches, outcomes, 5, 5, sample_rows={"train": 200, "validation": 50, "test": 50})
    bounds = split_dates(pd.Series(pd.to_datetime(days)), 5, 5)
    seen_days = {}
    for split, (lo, hi) in bounds.items():
        d = pd.to_datetime(out[split]["offers"]["dt"]).dt.date
        assert d.between(lo, hi).all(), split
        f = pd.to_datetime(out[split]["flights"]["search_date"]).dt.date
        assert f.between(lo, hi).all(), split
        seen_days[split] = set(d)
    ids = {s: set(out[s]["offers"]["offer_id"]) for s in out}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"] and not ids["validation"] & ids["test"]
    assert max(seen_days["train"]) < min(seen_days["validation"]) <= max(seen_days["validation"]) < min(seen_days["test"])
    # every sampled row is a real offer of its own day
    real = offers.set_index("offer_id")["dt"]
    for split in out:
        o = out[split]["offers"]
        assert (o["offer_id"].map(real) == o["dt"]).all()


def test_sample_is_proportional_to_day_volume(world):
    """A uniform sample: each day's share of the sample follows its share of the split's offers."""
    offers, outcomes, _ = world
    days, batches = _stream(offers, batch_rows=1000)
    out, _ = preprocess_stream(days, batches, outcomes, 5, 5, sample_rows={"train": 2000})
    train_days = out["train"]["offers"]["dt"].unique()
    full = offers[offers["dt"].isin(train_days)]["dt"].value_counts(normalize=True).sort_index()
    got = out["train"]["offers"]["dt"].value_counts(normalize=True).reindex(full.index, fill_value=0)
    assert (got - full).abs().max() < 0.03
    routes = offers[offers["dt"].isin(train_days)]["route"].value_counts(normalize=True)
    got_r = out["train"]["offers"]["route"].value_counts(normalize=True).reindex(routes.index, fill_value=0)
    assert (got_r - routes).abs().max() < 0.03


def test_bottom_k_holds_at_most_twice_k():
    ids = pa.array([f"o{i}" for i in range(5000)])
    s = BottomK(100, seed=3)
    peak = 0
    for i in range(0, 5000, 250):
        s.add(pa.table({"offer_id": ids.slice(i, 250)}))
        peak = max(peak, s._held)
    assert peak <= 200 + 250
    got = s.result().column("offer_id").to_pylist()
    h = row_hashes(ids, 3)
    assert got == [f"o{i}" for i in np.argsort(h)[:100]]
    assert BottomK(0, 3).result() is None


def test_in_memory_preprocess_keeps_every_row_by_default(world):
    offers, outcomes, _ = world
    out, _ = preprocess(offers, outcomes, 5, 5)
    assert sum(len(out[s]["offers"]) for s in out) == len(offers)


def _write_curated(offers, root):
    for day, part in offers.groupby("dt"):
        (root / f"dt={day}").mkdir(parents=True)
        pq.write_table(to_contract_table(part).drop_columns(["dt"]), root / f"dt={day}" / "part-0.parquet")


def test_three_instances_give_exactly_the_one_instance_splits(world, tmp_path, monkeypatch):
    """Preprocess on 3 instances (each its share of the days, told by resourceconfig.json) + MergeSplits
    == one instance: same samples, same demand table."""
    from processing import merge_splits

    offers, outcomes, _ = world
    root = tmp_path / "curated"
    _write_curated(offers, root)
    (tmp_path / "outcomes").mkdir()
    outcomes.to_parquet(tmp_path / "outcomes" / "flights.parquet")
    args = ["--curated-uri", str(root), "--validation-days", "5", "--test-days", "5", "--train-sample-rows", "400",
            "--validation-sample-rows", "0", "--test-sample-rows", "90", "--sample-flights", "30", "--batch-rows", "33"]
    results = {}
    for n in (1, 3):
        shards = tmp_path / f"shards{n}"
        for i in range(n):
            opt = tmp_path / f"opt{n}-{i}"
            (opt / "config").mkdir(parents=True)
            (opt / "config" / "resourceconfig.json").write_text(json.dumps(
                {"current_host": f"algo-{i + 1}", "hosts": [f"algo-{j + 1}" for j in range(n)]}))
            monkeypatch.setenv("SM_OPT_ML", str(opt))
            assert main([*args, "--output-dir", str(shards)]) == 0
        metas = sorted(shards.rglob("shard.json"))
        assert len(metas) == n
        my_days = [json.loads(m.read_text())["my_days"] for m in metas]
        assert sorted(d for days in my_days for d in days) == sorted(offers["dt"].unique())  # every day once
        assert merge_splits.main(["--outcomes-uri", str(tmp_path / "outcomes"), "--input-dir", str(shards),
                                  "--output-dir", str(tmp_path / f"out{n}"), *args[6:-2]]) == 0
        results[n] = tmp_path / f"out{n}"
    for split in ("train", "validation", "test"):
        for table in ("offers", "flights"):
            a = pd.read_parquet(results[1] / split / f"{table}.parquet")
            b = pd.read_parquet(results[3] / split / f"{table}.parquet")
            pd.testing.assert_frame_equal(a, b)
    summary = json.loads((results[3] / "split_summary.json").read_text())
    assert summary["shards"] == 3 and summary["splits"]["train"]["offers"] == 400
    assert pd.read_parquet(results[3] / "train" / "flights.parquet")["flight_key"].nunique() <= 30
    # a missing shard is refused rather than silently merged
    import shutil

    shutil.rmtree(tmp_path / "shards3" / "shards" / "algo-2")
    assert merge_splits.main(["--outcomes-uri", str(tmp_path / "outcomes"), "--input-dir", str(tmp_path / "shards3"),
                              "--output-dir", str(tmp_path / "x")]) == 1
    from core import sm_paths

    assert "2 shard(s)" in sm_paths.message_file().read_text()  # the job's ExitMessage


def test_main_rejects_bad_sizes(world, tmp_path):
    with pytest.raises(SystemExit):
        main(["--curated-uri", str(tmp_path), "--train-sample-rows", "-1"])
    with pytest.raises(SystemExit):
        main(["--curated-uri", str(tmp_path), "--sample-flights", "-5"])


def test_flight_sample_keeps_whole_histories_with_exact_features(world):
    """The demand table of a flight sample is exactly the full table's rows of those flights."""
    offers, outcomes, _ = world
    days, batches = _stream(offers, batch_rows=40)
    out, summary = preprocess_stream(days, batches, outcomes, 5, 5, sample_flights=25, seed=3)
    got = pd.concat([out[s]["flights"] for s in out], ignore_index=True)
    assert got["flight_key"].nunique() == 25 and summary["sampling"]["sample_flights"] == 25
    whole, _ = build_demand_table(offers, outcomes)
    keys = pd.Series(whole["flight_key"].unique())
    expected_keys = set(keys[np.argsort(row_hashes(keys, 3))[:25]])
    assert set(got["flight_key"]) == expected_keys
    key = ["flight_key", "search_date"]
    want = whole[whole["flight_key"].isin(expected_keys)].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True), want, check_dtype=False)


def test_key_sample_never_holds_much_more_than_its_keys():
    s = KeySample(10, seed=1, key="k")
    for day in range(30):
        t = pa.table({"k": [f"f{i}" for i in range(200)], "day": [day] * 200})
        kept = s.keep(t)
        assert kept.num_rows <= 200
        if day:
            assert kept.num_rows == 10  # the threshold is known after the first batch
        s.add(kept.to_pandas())
    res = s.result()
    assert res["k"].nunique() == 10 and len(res) == 300
