"""The ETL on the automated path: curate by event date whatever folder Firehose used, take only
what arrived since the last run, rebuild each touched day whole (late events, cross-run
duplicates), stay idempotent, and quarantine unreadable raw files as files without stopping."""

from __future__ import annotations

import gzip
import json
import os
import zlib

import pyarrow.dataset as ds
import pytest
from etl_support import event, offer, write_raw
from typer.testing import CliRunner

from seed_infra.etl.job import MANIFEST_DIR, RawFilesMissingError, gzip_problem, run_etl

pytestmark = pytest.mark.spark

D1, D2 = "2026-03-01", "2026-03-02"


def _ev(eid: str, day: str, hour: int = 10, price: float = 200.0, origin: str = "JFK", destination: str = "LAX") -> dict:
    dep = "2026-03-20"
    return event(eid, [offer(f"{eid}-a", "AA", price, dep=dep + "T08:15:00"), offer(f"{eid}-b", "DL", price + 50, dep=dep + "T09:00:00")],
                 origin=origin, destination=destination, event_time=f"{day}T{hour:02d}:30:00Z", departure_date=dep)


def _table(out, columns=None):
    return ds.dataset(out / "offers", partitioning="hive", format="parquet").to_table(columns=columns).sort_by("offer_id")


def _rows(out) -> list[dict]:
    """Curated rows without the run id (which differs by construction)."""
    return [{k: v for k, v in r.items() if k != "etl_run_id"} for r in _table(out).to_pylist()]


def test_late_events_merge_into_their_day_like_one_full_run(spark, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "curated"
    write_raw(raw, D1, [_ev("a1", D1), _ev("a2", D1, price=300.0)], hour="10", name="f1.json.gz")
    first = run_etl(spark, str(raw), str(out))
    assert first["reconciled"] and first["rebuilt_dates"] == [D1] and first["curated_events"] == 2
    before = {r["offer_id"]: r["route_searches_day"] for r in _table(out).to_pylist()}
    assert set(before.values()) == {2}

    # After D1's run: Firehose delivers a late D1 event, a second copy of a1 and a D2 event into D2's folder.
    write_raw(raw, D2, [_ev("a3", D1, hour=23, price=250.0), _ev("a1", D1), _ev("b1", D2)], hour="00", name="f2.json.gz")
    second = run_etl(spark, str(raw), str(out))
    assert second["reconciled"]
    assert second["new_raw_files"] == 1 and second["reread_raw_files"] == 1  # f1 is read again to rebuild D1 whole
    assert second["rebuilt_dates"] == [D1, D2]
    assert second["per_date"][D1] == {"curated_events": 3, "curated_offers": 6, "duplicates": 1, "quarantined": 0}
    assert second["per_date"][D2]["curated_events"] == 1
    rows = _table(out).to_pylist()
    assert {r["event_id"] for r in rows if r["dt"] == D1} == {"a1", "a2", "a3"}  # D1's earlier rows kept, late one added
    assert {r["route_searches_day"] for r in rows if r["dt"] == D1} == {3}  # day-level features over the whole day
    assert {r["etl_run_id"] for r in rows} == {second["run_id"]}

    # The same files in one run from scratch give the same rows: incremental == full.
    full_out = tmp_path / "full"
    full = run_etl(spark, str(raw), str(full_out))
    assert full["curated_events"] == 4 and full["duplicates"] == 1
    assert _rows(out) == _rows(full_out)

    # Nothing new: nothing read, nothing rewritten.
    files_before = sorted((p.name, p.stat().st_mtime_ns) for p in (out / "offers").rglob("*.parquet"))
    again = run_etl(spark, str(raw), str(out))
    assert again["reconciled"] and again["new_raw_files"] == 0 and again["lines_read"] == 0 and again["rebuilt_dates"] == []
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (out / "offers").rglob("*.parquet")) == files_before
    assert len(list((out / MANIFEST_DIR).glob("*.jsonl"))) == 2  # one per run that took files

    # A raw file that a date was built from disappears: rebuilding that date would drop rows, so say so.
    write_raw(raw, D2, [_ev("b2", D1)], hour="01", name="f3.json.gz")
    os.remove(raw / f"dt={D1}" / "hour=10" / "f1.json.gz")
    with pytest.raises(RawFilesMissingError, match="f1.json.gz"):
        run_etl(spark, str(raw), str(out))


def test_replayed_past_events_in_todays_folder_are_all_curated(spark, tmp_path):
    """The issue's case: a raw dt=2026-11-30 folder holding 6 replayed events of 2026-01-05 and 4 of its own day."""
    raw, out = tmp_path / "raw", tmp_path / "curated"
    past = [_ev(f"p{i}", "2026-01-05", hour=8 + i) for i in range(6)]
    for e in past:
        e["query"]["departure_date"] = "2026-01-20"
        for o in e["offers"]:
            o["departure_time"] = "2026-01-20" + o["departure_time"][10:]
    now = [_ev(f"n{i}", "2026-11-30", hour=8 + i) for i in range(4)]
    for e in now:
        e["query"]["departure_date"] = "2026-12-10"
        for o in e["offers"]:
            o["departure_time"] = "2026-12-10" + o["departure_time"][10:]
    write_raw(raw, "2026-11-30", past + now, hour="12")
    s = run_etl(spark, str(raw), str(out))
    assert s["reconciled"] and s["lines_read"] == 10 and s["input_records"] == 10 and s["curated_events"] == 10
    assert s["reread_records"] == 0 and s["quarantined"] == 0
    assert {d: p["curated_events"] for d, p in s["per_date"].items()} == {"2026-01-05": 6, "2026-11-30": 4}
    assert sorted(p.name for p in (out / "offers").glob("dt=*")) == ["dt=2026-01-05", "dt=2026-11-30"]


def _unreadable_files(raw) -> dict[str, str]:
    """One raw file per way of being unreadable, each beside good data; returns name -> expected reason."""
    folder = raw / f"dt={D1}" / "hour=11"
    folder.mkdir(parents=True)
    body = b"".join(json.dumps(_ev(f"x{i}", D1)).encode() + b"\n" for i in range(40))
    packed = gzip.compress(body)
    (folder / "truncated.json.gz").write_bytes(packed[: len(packed) // 2])
    corrupt = bytearray(packed)
    for i in range(30, len(corrupt) - 30, 7):  # deflate data damaged, header intact
        corrupt[i] ^= 0x5A
    (folder / "corrupt.json.gz").write_bytes(bytes(corrupt))
    (folder / "plain.json.gz").write_bytes(body)  # not gzip at all
    (folder / "utf16.json.gz").write_bytes(gzip.compress(body.decode().encode("utf-16")))
    return {"truncated.json.gz": "truncated_gzip", "corrupt.json.gz": "corrupt_gzip", "plain.json.gz": "not_gzip",
            "utf16.json.gz": "undecodable_encoding"}


def test_unreadable_raw_files_are_quarantined_as_files_and_the_run_goes_on(spark, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "curated"
    write_raw(raw, D1, [_ev("g1", D1), _ev("g2", D1)], hour="10", name="good.json.gz")
    expected = _unreadable_files(raw)
    s = run_etl(spark, str(raw), str(out))
    assert s["reconciled"] and s["curated_events"] == 2 and s["quarantined"] == 0  # the good file's events
    got = {f["path"].rsplit("/", 1)[-1]: f for f in s["quarantined_files"]}
    assert {name: f["reason"] for name, f in got.items()} == expected
    for name, f in got.items():
        assert f["path"].endswith(f"dt={D1}/hour=11/{name}") and f["detail"] and "\n" not in f["detail"]
    # Lines read from them (all of the UTF-16 file, the start of the truncated one) are set aside with them.
    assert got["utf16.json.gz"]["lines"] > 0 and s["lines_in_quarantined_files"] == sum(f["lines"] for f in got.values())
    assert s["lines_read"] == s["blank_lines"] + s["input_records"] + s["lines_in_quarantined_files"]
    # In quarantine/ as well: one record per file, with its reason and path.
    rows = [json.loads(line) for f in (out / "quarantine").glob("dt=*/*.jsonl") for line in f.read_text().splitlines()]
    assert sorted((r["reason"], r["source"].rsplit("/", 1)[-1]) for r in rows) == sorted((r, n) for n, r in expected.items())
    # Remembered: a re-run does not trip on them again, and a rebuild of their day keeps their records.
    again = run_etl(spark, str(raw), str(out), dates=[D1])
    assert again["new_raw_files"] == 0 and again["reconciled"] and again["curated_events"] == 2
    rows = [json.loads(line) for f in (out / "quarantine").glob("dt=*/*.jsonl") for line in f.read_text().splitlines()]
    assert len(rows) == len(expected)


def test_cli_names_an_unreadable_file_in_one_line(spark, tmp_path):
    from seed_infra.etl.cli import app

    raw, out = tmp_path / "raw", tmp_path / "curated"
    write_raw(raw, D1, [_ev("c1", D1)], hour="10", name="good.json.gz")
    bad = raw / f"dt={D1}" / "hour=10" / "cut.json.gz"
    bad.write_bytes(gzip.compress(b'{"a": 1}\n' * 500)[:40])
    result = CliRunner().invoke(app, ["etl", "--raw", str(raw), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "cut.json.gz" in line]
    assert len(lines) == 1 and "truncated_gzip" in lines[0], result.output
    assert "Exception" not in result.output.replace("EOFException", "")  # no stack trace


def test_gzip_problem_names_each_case(tmp_path):
    names = _unreadable_files(tmp_path)
    folder = tmp_path / f"dt={D1}" / "hour=11"
    for name, reason in names.items():
        if reason != "undecodable_encoding":  # that one is good gzip: its lines are the problem
            got = gzip_problem((folder / name).read_bytes())
            assert got is not None and got[0] == reason and "\n" not in got[1], (name, got)
    assert gzip_problem((folder / "utf16.json.gz").read_bytes()) is None
    assert gzip_problem(gzip.compress(b"a\n") + gzip.compress(b"b\n")) is None  # multi-member gzip is fine


def test_zlib_sanity_of_the_corrupt_fixture(tmp_path):
    """The corrupt fixture must really be undecodable (else the test above proves nothing)."""
    _unreadable_files(tmp_path)
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress((tmp_path / f"dt={D1}" / "hour=11" / "corrupt.json.gz").read_bytes())
