"""Every command checks its numbers, dates, seeds and paths up front: exit code 2 and a message
that names the flag, before anything is generated, read, written or sent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.fixture()
def a_file(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    return f


CASES = [
    # (command line, the flag the message must name)
    (["produce", "-s", "s", "--seed", "-1"], "--seed"),
    (["produce", "-s", "s", "--seed", str(2**64)], "--seed"),
    (["produce", "-s", "s", "--start-date", "2026-13-01"], "--start-date"),
    (["produce", "-s", "s", "--delay", "nan"], "--delay"),
    (["produce", "-s", "s", "--delay", "inf"], "--delay"),
    (["produce", "-s", "s", "--num-records", "0"], "--num-records"),
    (["produce", "-s", "s", "--start-date", "2199-12-30", "--num-records", "100000", "--searches-per-day", "1"], "--start-date"),
    (["etl", "--raw", "r", "--out", "{file}"], "--out"),
    (["etl", "--raw", "r", "--out", "o", "--master", "local[two]"], "--master"),
    (["etl", "--raw", "r", "--out", "o", "--driver-memory", "4q"], "--driver-memory"),
    (["etl", "--raw", "r", "--out", "o", "--dates", "2026-02-30"], "--dates"),
    (["etl", "--raw", "r", "--out", "o", "--break-seed", "-1"], "--break-seed"),
    (["dq", "--data", "{missing}"], "--data"),
    (["dq", "--data", "{dir}", "--start-date", "yesterday"], "--start-date"),
    (["dq", "--data", "{dir}", "--min-rows", "-5"], "--min-rows"),
    (["run", "--seed", str(2**64)], "--seed"),
    (["run", "--start-date", "1900-01-01"], "--start-date"),
    (["run", "--days", "6"], "--days"),
    (["run", "--lake", "{file}"], "--lake"),
    (["run", "--workers", "0"], "--workers"),
    (["run", "--break", "everything"], "--break"),
    (["pipeline", "run-local", "--workers", "0"], "--workers"),
    (["pipeline", "run-local", "--execution-id", "../x"], "--execution-id"),
    (["pipeline", "run-local", "--definition", "{missing}"], "--definition"),
    (["pipeline", "run-local", "--runs", "{file}"], "--runs"),
    (["pipeline", "definition", "--bucket", "Not_A_Bucket"], "--bucket"),
    (["pipeline", "definition", "--max-runtime", "0"], "--max-runtime"),
    (["deploy", "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1", "--endpoint-name", "e",
      "--invocations-target", "nan", "--role-arn", "arn:aws:iam::123456789012:role/r"], "--invocations-target"),
    (["deploy", "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1", "--endpoint-name", "e",
      "--role-arn", "not-an-arn"], "--role-arn"),
    (["deploy", "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1", "--endpoint-name", "e", "--min", "0"], "--min"),
    (["models", "list", "--registry", "{file}"], "--registry"),
]


@pytest.mark.parametrize(("argv", "flag"), CASES, ids=[" ".join(a[:2]) + " " + f for a, f in CASES])
def test_bad_value_is_refused_up_front_naming_its_flag(argv, flag, a_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command that wrongly ran would write here, not in the repository
    subst = {"{file}": str(a_file), "{missing}": str(tmp_path / "missing"), "{dir}": str(tmp_path)}
    argv = [subst.get(a, a) for a in argv]
    out = CliRunner().invoke(app, argv, env={"COLUMNS": "250", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert out.exit_code == 2, out.output
    assert flag in out.output, out.output
    assert "Traceback" not in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing generated or written


PARAM_CASES = [
    ("StartDate=2026-99-01", "StartDate"),
    ("ValidationDays=seven", "ValidationDays"),
    ("AnomalyPrecisionMin=nan", "AnomalyPrecisionMin"),
    ("CuratedDataUri=/etc/passwd", "CuratedDataUri"),
    ("LabelsDataUri=s3://airfare-lake/../x/", "LabelsDataUri"),
    ("ModelApprovalStatus=Yes", "ModelApprovalStatus"),
]


@pytest.mark.parametrize(("pair", "name"), PARAM_CASES)
def test_pipeline_parameters_are_checked_against_their_declaration(pair, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["pipeline", "run-local", "-p", pair, "--lake", str(tmp_path / "lake"),
                                   "--runs", str(tmp_path / "runs"), "--quiet"], env={"COLUMNS": "250"})
    assert out.exit_code == 2, out.output
    assert "--param" in out.output and name in out.output
    assert not (tmp_path / "runs").exists()
