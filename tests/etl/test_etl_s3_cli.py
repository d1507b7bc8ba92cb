"""`airfare etl` on s3:// locations: what is refused before Spark starts (the staged run itself is
covered end to end by tests/e2e/test_e2e_s3.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from seed_infra.etl.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--raw", "s3://airfare-lake/raw/", "--out", "curated-folder"], "--out"),
        (["--raw", "raw-folder", "--out", "s3://airfare-lake/curated"], "--raw"),
        (["--raw", "s3://airfare-lake//etc/passwd", "--out", "s3://airfare-lake/curated"], "--raw"),
        (["--raw", "s3://airfare-lake/raw/", "--out", "s3://airfare-lake/../x"], "--out"),
        (["--raw", "s3://airfare-lake/raw/", "--out", "s3://airfare-lake/curated", "--break", "null_burst"], "--break"),
    ],
)
def test_s3_locations_are_checked_before_any_work(args, flag):
    result = runner.invoke(app, ["etl", *args])
    assert result.exit_code == 2, result.output
    assert flag in result.output
