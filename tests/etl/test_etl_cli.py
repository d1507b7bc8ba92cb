"""`airfare query` on a small curated folder and `airfare etl`'s user-error paths (no Spark)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from seed_infra import analytics
from seed_infra.etl.cli import app

pytestmark = pytest.mark.integration  # the real thing, run locally: `pytest -m integration`

runner = CliRunner()


@pytest.fixture()
def curated(tmp_path):
    """Two dt partitions of a tiny offers table, and a quarantine file."""
    for day, prices in (("2026-03-01", [100.0, 250.0]), ("2026-03-02", [175.5])):
        folder = tmp_path / "offers" / f"dt={day}"
        folder.mkdir(parents=True)
        table = pa.table(
            {
                "offer_id": [f"{day}-{i}" for i in range(len(prices))],
                "route": ["JFK-LAX"] * len(prices),
                "price_usd": prices,
                "departure_date": [dt.date(2026, 3, 10)] * len(prices),
            }
        )
        pq.write_table(table, folder / "part-0.parquet")
    q = tmp_path / "quarantine" / "dt=2026-03-01"
    q.mkdir(parents=True)
    (q / "part-0.jsonl").write_text(json.dumps({"reason": "not_json", "detail": "x", "source": "f", "raw": "{"}) + "\n")
    return tmp_path


def test_query_local_exposes_offers_with_dt(curated):
    df = analytics.query_local("SELECT dt, count(*) AS n, sum(price_usd) AS s FROM offers GROUP BY dt ORDER BY dt", curated)
    assert df.to_dict(orient="records") == [
        {"dt": "2026-03-01", "n": 2, "s": 350.0},
        {"dt": "2026-03-02", "n": 1, "s": 175.5},
    ]
    q = analytics.query_local("SELECT reason, count(*) AS n FROM quarantine GROUP BY reason", curated)
    assert q.to_dict(orient="records") == [{"reason": "not_json", "n": 1}]


def test_query_cli_prints_a_table(curated):
    result = runner.invoke(app, ["query", "SELECT route, max(price_usd) AS top FROM offers GROUP BY route", "--curated", str(curated)])
    assert result.exit_code == 0, result.output
    assert "JFK-LAX" in result.output and "250.0" in result.output and "1 rows" in result.output


def test_query_cli_json_and_limit(curated):
    result = runner.invoke(app, ["query", "SELECT offer_id FROM offers ORDER BY offer_id", "--curated", str(curated), "--json", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "2026-03-01-0" in result.output and "2026-03-02-0" not in result.output


def test_query_cli_bad_sql_is_a_clean_error(curated):
    result = runner.invoke(app, ["query", "SELEC nonsense FROM offers", "--curated", str(curated)])
    assert result.exit_code == 1
    assert "query failed" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["query", "SELECT no_such_column FROM offers", "--curated", str(curated)])
    assert result.exit_code == 1 and "no_such_column" in result.output


def test_query_cli_without_curated_data(tmp_path):
    result = runner.invoke(app, ["query", "SELECT 1", "--curated", str(tmp_path)])
    assert result.exit_code == 1 and "airfare etl" in result.output


def test_query_athena_goes_through_awswrangler(monkeypatch):
    import awswrangler as wr
    import pandas as pd

    calls = {}

    def fake(sql, **kw):
        calls.update(kw, sql=sql)
        return pd.DataFrame({"n": [3]})

    monkeypatch.setattr(wr.athena, "read_sql_query", fake)
    result = runner.invoke(app, ["query", "SELECT count(*) n FROM offers", "--athena", "--database", "lakedb", "--workgroup", "wg"])
    assert result.exit_code == 0, result.output
    assert calls["database"] == "lakedb" and calls["workgroup"] == "wg" and calls["sql"].startswith("SELECT")


def test_etl_cli_user_errors(tmp_path):
    result = runner.invoke(app, ["etl", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a folder" in result.output
    result = runner.invoke(app, ["etl", "--raw", str(tmp_path), "--out", str(tmp_path / "out"), "--dates", "2026-13-01"])
    assert result.exit_code == 2 and "not a date" in result.output
