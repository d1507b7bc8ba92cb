"""The pipeline step (dq_result.json layout, exit codes) and `airfare dq` (table, exit codes, report)."""

from __future__ import annotations

import json

import pytest
from dq_support import END, make_offers, write_curated, write_splits
from typer.testing import CliRunner

from data_quality import entry, step
from seed_infra.world import breakage
from data_quality.reference import build_reference, write_reference


@pytest.fixture(scope="module")
def ref_path(tmp_path_factory, reference):
    return write_reference(reference, tmp_path_factory.mktemp("ref") / "reference.json")


def test_step_on_clean_splits_writes_the_three_outputs(tmp_path, clean_offers, clean_flights, ref_path, monkeypatch):
    write_splits(clean_offers, clean_flights, tmp_path / "processing" / "input")
    monkeypatch.setenv("SM_OPT_ML", str(tmp_path))  # the local executor's mapping of /opt/ml
    assert entry.main(["--end-date", END.isoformat(), "--reference", str(ref_path)]) == 0
    out = tmp_path / "processing" / "output" / "dq"
    result = json.loads((out / "dq_result.json").read_text())
    assert result["blocking_failures"] == 0, result["failed_expectations"]
    assert isinstance(result["blocking_failures"], int) and isinstance(result["warnings"], int)
    assert result["failed_expectations"] == "none" and result["passed"] is True
    full = json.loads((out / "validation.json").read_text())
    assert set(full) == {"summary", "expectations", "great_expectations"}
    assert "train.flights" in full["great_expectations"] and "splits_order" in full["great_expectations"]
    html = (out / "report.html").read_text()
    assert "splits.time_order" in html and "PASSED" in html


def test_step_names_broken_labels_and_split_order(tmp_path, clean_offers, clean_flights, ref_path):
    flights = clean_flights.copy()
    test_days = sorted(flights["dt"].unique())[-1:]
    test_rows = flights["dt"].isin(test_days)
    flights.loc[test_rows] = breakage.break_flights(flights[test_rows], share=0.9)
    root = write_splits(clean_offers, flights, tmp_path / "in")
    # validation and test swapped: the split order is broken
    (root / "validation").rename(root / "tmp")
    (root / "test").rename(root / "validation")
    (root / "tmp").rename(root / "test")
    summary = step.run_step(root, tmp_path / "out", end_date=END, reference_path=ref_path)
    failed = summary["failed_expectations"].split(",")
    assert summary["passed"] is False and summary["blocking_failures"] == len(failed)
    assert "splits.time_order" in failed
    assert "validation.flights.demand_class.share_high" in failed  # the broken labels are now in "validation"
    assert json.loads((tmp_path / "out" / "dq_result.json").read_text())["failed_expectations"] == summary["failed_expectations"]


def test_a_season_with_another_demand_mix_warns_but_trains(tmp_path, clean_offers, clean_flights, ref_path):
    """A summer window, every split alike: 'high' far above the (winter) reference world's share.
    That is the season, not a broken feed: a warning, not a refusal (a June world: 'high' 0.40 of
    flights against the reference's 0.17 stopped every summer run before)."""
    import numpy as np

    flights = clean_flights.copy()
    y = flights["demand_class"]
    hit = (y == "low").to_numpy() & (np.random.default_rng(3).random(len(flights)) < 0.8)
    flights.loc[hit, "demand_class"] = "high"
    root = write_splits(clean_offers, flights, tmp_path / "in")
    summary = step.run_step(root, tmp_path / "out", end_date=END, reference_path=ref_path)
    assert summary["passed"] is True and summary["blocking_failures"] == 0, summary["failed_expectations"]
    assert "train.flights.demand_class.share_high.vs_reference" in summary["warning_expectations"].split(",")


def test_step_fails_only_when_unreadable(tmp_path, monkeypatch):
    monkeypatch.setenv("SM_OPT_ML", str(tmp_path / "opt_ml"))
    assert entry.main(["--input-dir", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "out")]) == 1
    assert "DataQuality: cannot read the input" in (tmp_path / "opt_ml" / "output" / "message").read_text()


def test_step_rejects_a_bad_date():
    with pytest.raises(SystemExit) as exc:
        entry.main(["--end-date", "14/01/2026"])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------------------------
# airfare dq
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app():
    from pipelines.cli import app

    return app


def test_cli_clean_exit_0(tmp_path, app, clean_offers, ref_path):
    write_curated(clean_offers, tmp_path / "curated")
    report = tmp_path / "r.html"
    args = ["dq", "--data", str(tmp_path / "curated"), "--end-date", END.isoformat(), "--reference", str(ref_path),
            "--min-rows", "500", "--report", str(report)]  # fmt: skip
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "0 blocking failure(s)" in res.output and str(report) in res.output.replace("\n", "")
    assert report.exists() and "PASSED" in report.read_text()


def test_cli_broken_exit_1_with_table(tmp_path, app, clean_offers, ref_path):
    offers = write_curated(clean_offers, tmp_path / "curated")
    breakage.break_curated(offers, "price_units")
    args = ["dq", "--data", str(offers), "--end-date", END.isoformat(), "--reference", str(ref_path), "--min-rows", "500"]
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output and "offers.price_usd.plausible_economy" in res.output
    assert (tmp_path / "curated" / "dq_report.html").exists()


def test_cli_unreadable_exit_2(tmp_path, app):
    res = CliRunner().invoke(app, ["dq", "--data", str(tmp_path / "missing")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "--data" in res.output and "not an existing folder" in res.output  # checked up front
    (tmp_path / "junk" / "dt=2026-01-01").mkdir(parents=True)
    (tmp_path / "junk" / "dt=2026-01-01" / "part-0.parquet").write_text("not parquet")
    res = CliRunner().invoke(app, ["dq", "--data", str(tmp_path / "junk")])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_cli_bad_date_is_a_usage_error(tmp_path, app):
    res = CliRunner().invoke(app, ["dq", "--data", str(tmp_path), "--end-date", "yesterday"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output


def test_break_curated_round_trips_partitions(tmp_path):
    offers = write_curated(make_offers(days=6, searches_per_day=10), tmp_path / "curated")
    breakage.break_curated(offers, "stale_window")
    days = sorted(p.name for p in offers.iterdir())
    assert days == ["dt=2026-03-05", "dt=2026-03-06", "dt=2026-03-07"]  # the feed stalled: newest 3 days missing


def test_reference_refresh_command(tmp_path, app, clean_offers, clean_flights):
    write_curated(clean_offers, tmp_path / "curated")
    write_splits(clean_offers, clean_flights, tmp_path / "splits")
    out = tmp_path / "ref.json"
    res = CliRunner().invoke(app, ["dq-reference", "--data", str(tmp_path / "curated"), "--flights", str(tmp_path / "splits"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    ref = json.loads(out.read_text())
    expected = build_reference(clean_offers, clean_flights)
    assert ref["price_usd_median_by_cabin"] == pytest.approx(expected["price_usd_median_by_cabin"])
    assert ref["demand_class_share"] == pytest.approx(expected["demand_class_share"])
