"""The ETL end to end on hand-written raw events: quarantine reasons, duplicates, reconciliation,
schema, features (hand-computed), reruns and date scoping. One ETL run per module, shared."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from etl_support import event, mutate, offer, write_raw

from core import contract
from seed_infra.etl import lookups
from seed_infra.etl.job import NoRawDataError, run_etl

pytestmark = [pytest.mark.spark, pytest.mark.integration]

DAY, NEXT = "2026-03-01", "2026-03-02"


def _good_events() -> dict[str, dict]:
    e1 = event(
        "e1",
        [
            offer("e1-a", "AA", 300.0),
            offer("e1-b", "DL", 250.0),
            offer("e1-c", "AA", 368.0, currency="EUR", dep="2026-03-10T23:30:00"),  # 400 USD, red-eye
        ],
    )
    e2 = event("e2", [offer("e2-a", "UA", 200.0)])
    e_rt = event(
        "e_rt",
        [offer("e_rt-a", "AA", 500.0, dep="2026-03-12T09:00:00")],
        departure_date="2026-03-12",
        return_date="2026-03-19",
        trip_type="round_trip",
        cabin="business",
    )
    e_hol = event("e_hol", [offer("e_hol-a", "BA", 800.0, currency="GBP", dep="2026-07-06T18:00:00")],
                  origin="BOS", destination="LHR", departure_date="2026-07-06")
    e_empty = event("e_empty", [], origin="SFO", destination="SEA")
    return {"e1": e1, "e2": e2, "e_rt": e_rt, "e_hol": e_hol, "e_empty": e_empty}


def _bad_lines() -> list[tuple[str, object]]:
    base = event("b", [offer("b-a", "AA", 300.0)])
    return [
        ("not_json", '{"event_id": "t1", "query": {"origin": "JF'),
        ("invalid_utf8", b'{"event_id": "u1", "x": "\xff\xfe"}'),
        ("oversized", mutate(base, "padding", "x" * (contract.MAX_RAW_RECORD_BYTES + 10))),
        ("missing_field", mutate(base, "query.origin", delete=True)),
        ("missing_field", mutate(base, "offers.0.price", delete=True)),
        ("wrong_type", mutate(base, "query.passengers.adults", "two")),
        ("wrong_type", mutate(base, "query.departure_date", "next tuesday")),
        ("unknown_airport", mutate(base, "query.destination", "QQX")),
        ("bad_price", mutate(base, "offers.0.price.amount", 0)),
        ("bad_price", mutate(base, "offers.0.price.amount", -12.5)),
        ("bad_price", mutate(base, "offers.0.price.amount", 5e9)),
        ("bad_price", mutate(base, "offers.0.price.currency", "XYZ")),
        ("departure_before_search", event("b", departure_date="2026-02-27")),
        ("departure_too_far", event("b", departure_date="2027-06-01")),
        ("too_many_offers", event("b", [offer(f"b-{k}", "AA", 100.0 + k) for k in range(contract.MAX_OFFERS_PER_SEARCH + 1)])),
        ("invalid_value", mutate(base, "query.cabin", "luxury")),
        ("invalid_value", mutate(base, "query.passengers.adults", 0)),
        ("duplicate_offer_id", event("b", [offer("b-a", "AA", 100.0), offer("b-a", "DL", 120.0)])),
        ("departure_mismatch", event("b", [offer("b-a", "AA", 100.0, dep="2026-03-11T08:00:00")])),
        ("return_before_departure", event("b", trip_type="round_trip", return_date="2026-03-05")),
        ("unsupported_schema_version", mutate(base, "schema_version", 99)),
    ]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("etl")
    good = _good_events()
    bad = _bad_lines()
    lines = [good["e1"], good["e2"], good["e1"], "", good["e_rt"], good["e_hol"], good["e_empty"]]
    for k, (_, line) in enumerate(bad):
        lines.append(mutate(line, "event_id", f"bad{k}") if isinstance(line, dict) else line)
    write_raw(root / "raw", DAY, lines)
    # Firehose delivers late: one event of DAY (and its duplicate) lands in NEXT's folder, beside NEXT's own
    late = event("e_late", [offer("e_late-a", "AA", 310.0)], origin="ORD", destination="MIA", event_time="2026-03-01T23:59:30Z")
    nxt = event("e_next", [offer("e_next-a", "AA", 320.0)], origin="ORD", destination="MIA", event_time="2026-03-02T08:00:00Z")
    write_raw(root / "raw", NEXT, [late, nxt, good["e2"]], hour="00")
    summary = run_etl(spark, str(root / "raw"), str(root / "curated"))
    return root, summary, bad


def _offers(root, day=None) -> pa.Table:
    path = root / "curated" / "offers"
    return ds.dataset(path, partitioning="hive", format="parquet").to_table().sort_by("offer_id") if day is None else \
        ds.dataset(path / f"dt={day}", format="parquet").to_table()


def _quarantine(root) -> list[dict]:
    out = []
    for f in sorted((root / "curated" / "quarantine").glob("dt=*/*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def test_counts_reconcile(lake):
    _, s, bad = lake
    assert s["reconciled"]
    assert s["input_records"] == s["curated_events"] + s["quarantined"] + s["duplicates"]
    assert s["blank_lines"] == 1 and s["reread_records"] == 0 and "out_of_scope_records" not in s
    assert s["new_raw_files"] == 2 and s["rebuilt_dates"] == [DAY, NEXT] and s["quarantined_files"] == []
    assert s["duplicates"] == 2  # e1 twice in DAY, e2 again in NEXT's folder
    assert s["quarantined"] == len(bad)
    assert s["curated_events"] == 5 + 2  # 5 good of DAY (one without offers) + late + next
    assert s["events_without_offers"] == 1
    assert s["curated_offers"] == 3 + 1 + 1 + 1 + 1 + 1
    assert s["lines_read"] == 7 + len(bad) + 3


def test_every_bad_kind_quarantined_with_its_reason(lake):
    root, s, bad = lake
    expected: dict[str, int] = {}
    for reason, _ in bad:
        expected[reason] = expected.get(reason, 0) + 1
    assert s["quarantine_reasons"] == expected
    rows = _quarantine(root)
    assert len(rows) == len(bad)
    by_id = {r.get("event_id"): r for r in rows}
    for k, (reason, _) in enumerate(bad):
        if f"bad{k}" in by_id:
            assert by_id[f"bad{k}"]["reason"] == reason, by_id[f"bad{k}"]
    for r in rows:
        assert r["source"].endswith(".json.gz") and r["detail"] and r["raw"]
    wrong = [r for r in rows if r["reason"] == "wrong_type"]
    assert any("adults" in r["detail"] for r in wrong)  # pydantic names the field
    assert any("departure_date" in r["detail"] for r in wrong)
    oversized = next(r for r in rows if r["reason"] == "oversized")
    assert oversized["raw_truncated"] and len(oversized["raw"]) < 10_000
    utf8 = next(r for r in rows if r["reason"] == "invalid_utf8")
    assert utf8["raw_base64"]


def test_curated_schema_is_the_contract(lake):
    root, _, _ = lake
    files = list((root / "curated" / "offers").glob("dt=*/*.parquet"))
    assert files
    expected = pa.schema([f.remove_metadata() for f in contract.CURATED_OFFER_SCHEMA if f.name != contract.PARTITION_COLUMN])
    for f in files:
        assert pq.read_schema(f).remove_metadata().equals(expected)
    table = ds.dataset(root / "curated" / "offers", partitioning="hive", format="parquet").to_table()
    assert table.column_names == contract.CURATED_COLUMNS
    assert sorted(p.name for p in (root / "curated" / "offers").glob("dt=*")) == [f"dt={DAY}", f"dt={NEXT}"]


def test_features_on_a_hand_computed_example(lake):
    root, s, _ = lake
    rows = {r["offer_id"]: r for r in _offers(root).to_pylist()}
    a, b, c = rows["e1-a"], rows["e1-b"], rows["e1-c"]
    assert a["days_to_departure"] == 9 and a["search_weekday"] == 6 and a["departure_weekday"] == 1
    assert c["price_usd"] == pytest.approx(400.0) and c["currency"] == "EUR" and c["price_amount"] == 368.0
    assert (b["price_rank_in_search"], a["price_rank_in_search"], c["price_rank_in_search"]) == (1, 2, 3)
    assert a["competitor_min_price_usd"] == 250.0 and a["competitor_median_price_usd"] == 250.0
    assert b["competitor_min_price_usd"] == 300.0 and b["competitor_median_price_usd"] == pytest.approx(350.0)
    assert rows["e2-a"]["competitor_min_price_usd"] is None and rows["e2-a"]["price_vs_competitor_median"] is None
    assert a["num_offers_in_search"] == 3 and a["num_airlines_in_search"] == 2
    # JFK-LAX on DAY: e1 (deduplicated), e2, e_rt; departing 03-10: e1, e2
    assert a["route_searches_day"] == 3 and a["route_date_searches_day"] == 2
    assert rows["e_rt-a"]["route_date_searches_day"] == 1
    # economy JFK-LAX prices of the day: 200, 250, 300, 400 -> 275; business alone: 500
    assert a["route_cabin_median_price_usd"] == pytest.approx(275.0)
    assert a["price_vs_route_median"] == pytest.approx(300 / 275)
    assert rows["e_rt-a"]["route_cabin_median_price_usd"] == 500.0
    assert rows["e_rt-a"]["length_of_stay"] == 7 and a["length_of_stay"] == 0
    assert c["is_red_eye"] and not a["is_red_eye"] and a["is_nonstop"]
    assert a["flight_key"] == f"AA-{a['flight_number']}-2026-03-10"
    assert a["distance_km"] == pytest.approx(lookups.great_circle_km(40.639928, -73.778692, 33.942501, -118.407997), rel=1e-3)
    assert 3950 < a["distance_km"] < 4000 and a["is_domestic"]
    # US holidays 2026: Washington's Birthday 02-16 is 22 days before 03-10; 07-04 is 2 days before 07-06
    assert a["days_to_nearest_holiday"] == 22 and not a["is_holiday_window"]
    hol = rows["e_hol-a"]
    assert hol["days_to_nearest_holiday"] == 2 and hol["is_holiday_window"] and not hol["is_domestic"]
    assert hol["price_usd"] == pytest.approx(800 / contract.FX_PER_USD["GBP"])
    assert {r["etl_run_id"] for r in rows.values()} == {s["run_id"]}
    assert "e_empty" not in {r["event_id"] for r in rows.values()}
    assert rows["e_late-a"]["dt"] == DAY  # late arrival lands in its search date's partition


def test_rerun_of_a_day_replaces_it(spark, lake):
    root, first, _ = lake
    before_day = _offers(root, DAY).num_rows
    next_files = sorted(p.name for p in (root / "curated" / "offers" / f"dt={NEXT}").glob("*.parquet"))
    s = run_etl(spark, str(root / "raw"), str(root / "curated"), dates=[DAY])
    assert s["reconciled"] and s["dates"] == [DAY] and s["rebuilt_dates"] == [DAY]
    assert _offers(root, DAY).num_rows == before_day  # replaced, not appended
    assert {r["etl_run_id"] for r in _offers(root, DAY).to_pylist()} == {s["run_id"]}
    # Both raw files hold DAY (the late event sits in NEXT's folder): both are re-read; NEXT's own
    # record is counted as re-read (curated by the first run), and NEXT is not rewritten.
    assert s["new_raw_files"] == 0 and s["reread_raw_files"] == 2
    assert sorted(p.name for p in (root / "curated" / "offers" / f"dt={NEXT}").glob("*.parquet")) == next_files
    assert s["reread_records"] == 1  # e_next
    assert s["lines_read"] == first["lines_read"]
    assert s["input_records"] == first["input_records"] - 1 and s["duplicates"] == 2
    assert len(_quarantine(root)) == first["quarantined"]
    saved = json.loads((root / "curated" / "etl_summary.json").read_text())
    assert saved["run_id"] == s["run_id"]


def test_no_raw_data_is_a_clear_error(spark, tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(NoRawDataError, match="no raw files"):
        run_etl(spark, str(tmp_path / "raw"), str(tmp_path / "out"))
    with pytest.raises(NoRawDataError):
        run_etl(spark, str(tmp_path / "raw"), str(tmp_path / "out"), dates=["2026-01-01"])
