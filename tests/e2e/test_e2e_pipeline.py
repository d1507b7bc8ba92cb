"""The real thing, end to end on a tiny world: generator -> Spark ETL -> the SDK-built pipeline
definition run by the local executor (every step a real process with SageMaker's contract).

One clean world is generated and ETL'd once per session; each test runs the pipeline on its own
copy of the lake. Gate thresholds are pipeline parameters, so a test can make a gate pass or fail
without touching code; the world is too small for the production thresholds to mean anything.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from seed_infra.world.breakage import break_curated
from pipelines.definition import definition_dict
from pipelines.local_executor import run_definition
from pipelines.registry import LocalRegistry

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.integration]

BUCKET = "airfare-lake"
START = dt.date(2026, 1, 5)
DAYS = 21
WINDOW = {"StartDate": START.isoformat(), "EndDate": (START + dt.timedelta(days=DAYS - 1)).isoformat(),
          "ValidationDays": 4, "TestDays": 4}  # fmt: skip
LOOSE_GATES = {"PriceRmseMax": 1e9, "PriceR2Min": -1e9, "DemandAccuracyMin": 0.0, "AnomalyPrecisionMin": 0.0}


@pytest.fixture(scope="session")
def clean_lake(tmp_path_factory) -> Path:
    """A generated and ETL'd world: <lake>/airfare-lake/{raw,outcomes,truth,curated}."""
    from seed_infra.etl.job import run_etl, spark_session
    from seed_infra.world import generate_world

    lake = tmp_path_factory.mktemp("e2e") / "lake"
    root = lake / BUCKET
    generate_world(root, seed=11, start_date=START, days=DAYS, searches_per_day=400, progress=False)
    assert (root / "labels" / "incidents" / "_manifest.json").exists()
    spark = spark_session()
    try:
        summary = run_etl(spark, str(root / "raw"), str(root / "curated"))
    finally:
        spark.stop()
    assert summary["input_records"] == summary["curated_events"] + summary["quarantined"] + summary["duplicates"]
    return lake


def _lake_copy(clean_lake: Path, dest: Path) -> Path:
    shutil.copytree(clean_lake, dest, ignore=shutil.ignore_patterns("raw"))
    return dest


def _run(lake: Path, tmp: Path, registry: Path, **params):
    return run_definition(
        definition_dict(),
        parameters={**WINDOW, **params},
        run_root=tmp / "runs",
        lake_root=lake,
        registry_root=registry,
        progress=False,
        max_workers=2,
    )


def _status(result) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def test_pipeline_registers_all_three_models(clean_lake, tmp_path):
    lake = _lake_copy(clean_lake, tmp_path / "lake")
    registry = tmp_path / "registry"
    result = _run(lake, tmp_path, registry, **LOOSE_GATES, TruthDataUri=f"s3://{BUCKET}/truth/offers/")

    status = _status(result)
    assert result.status == "Succeeded", (result.failed_step, result.failure_reason, result.fail_message)
    for step in ("Preprocess", "MergeSplits", "DataQuality", "TrainPrice", "TrainDemand", "TrainAnomaly",
                 "EvaluatePrice", "EvaluateDemand", "EvaluateAnomaly", "RegisterPrice", "RegisterDemand", "RegisterAnomaly"):  # fmt: skip
        assert status[step] == "Succeeded", step
    for step in ("FailDataQuality", "FailPrice", "FailDemand", "FailAnomaly"):
        assert status[step] == "Skipped", step

    packages = LocalRegistry(registry).list()
    assert sorted(p["ModelPackageGroupName"] for p in packages) == ["airfare-anomaly", "airfare-demand", "airfare-price"]
    for pkg in packages:
        assert pkg["ModelApprovalStatus"] == "PendingManualApproval"
        assert pkg["Metrics"], "the evaluation report is attached as model metrics"
    price = next(p for p in packages if p["ModelPackageGroupName"] == "airfare-price")
    # The registered metrics are the evaluation report the gate read, computed on the test split.
    assert price["Metrics"]["regression_metrics"]["rmse"]["value"] > 0
    assert price["Metrics"]["truth"]["noise_floor_rmse"]["value"] > 0

    dq = json.loads(next((result.run_dir / "DataQuality").rglob("dq_result.json")).read_text())
    assert dq["passed"] is True and dq["blocking_failures"] == 0

    # `airfare run`'s last stage: the new price model answers one invoke_endpoint call on a local endpoint.
    from rich.console import Console

    from pipelines.main_job import _invoke_new_price_model

    console = Console(record=True, width=400)
    _invoke_new_price_model(console, registry, 0, lake / BUCKET / "curated" / "offers")
    shown = console.export_text()
    answer = json.loads(shown.split("answer (application/json): ", 1)[1].splitlines()[0])
    assert answer["predictions"][0]["price_usd"] > 0, shown
    assert "airfare serve --model price --version 1" in shown


def test_pipeline_without_truth_registers_all_three_models(clean_lake, tmp_path):
    """The AWS case: no truth/ in the lake and `-p TruthDataUri=`; every step runs, the anomaly model
    trains and gates on the incident feed (its real 0.90 precision gate), all three are registered."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    lake = _lake_copy(clean_lake, tmp_path / "lake")
    shutil.rmtree(lake / BUCKET / "truth")
    registry, runs = tmp_path / "registry", tmp_path / "runs"
    gates = {k: v for k, v in LOOSE_GATES.items() if k != "AnomalyPrecisionMin"}
    args = ["pipeline", "run-local", "--lake", str(lake), "--runs", str(runs), "--registry", str(registry),
            "--workers", "2", "--quiet", "-p", "TruthDataUri="]
    for name, value in {**WINDOW, **gates}.items():
        args += ["-p", f"{name}={value}"]
    out = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output

    run_dir = next(runs.iterdir())
    steps = {p.parent.name: json.loads(p.read_text())["status"] for p in run_dir.glob("*/step.json")}
    for step in ("Preprocess", "DataQuality", "TrainPrice", "TrainDemand", "TrainAnomaly", "EvaluatePrice",
                 "EvaluateDemand", "EvaluateAnomaly", "RegisterPrice", "RegisterDemand", "RegisterAnomaly"):  # fmt: skip
        assert steps[step] == "Succeeded", (step, steps)
    packages = {p["ModelPackageGroupName"]: p for p in LocalRegistry(registry).list()}
    assert sorted(packages) == ["airfare-anomaly", "airfare-demand", "airfare-price"]
    for pkg in packages.values():
        assert "truth" not in pkg["Metrics"] and pkg["Metrics"]["truth_available"] is False
    anomaly = packages["airfare-anomaly"]["Metrics"]
    bcm = anomaly["binary_classification_metrics"]
    assert bcm["labels_available"] is True and bcm["precision"]["value"] >= 0.9
    assert bcm["reviewed_share_of_flags"]["value"] >= 0.7 and bcm["flags_by_label"]["incident"] > 0
    assert anomaly["labels"]["source"].startswith("incident feed")
    # nothing a step read came from a truth folder
    assert not any("truth" in p.name for p in run_dir.rglob("*") if p.is_dir())


def test_failing_price_gate_ends_in_fail_step_and_registers_no_price_model(clean_lake, tmp_path):
    lake = _lake_copy(clean_lake, tmp_path / "lake")
    registry = tmp_path / "registry"
    result = _run(lake, tmp_path, registry, **{**LOOSE_GATES, "PriceRmseMax": 0.001})

    status = _status(result)
    assert result.status == "Failed"
    assert status["FailPrice"] == "Succeeded" and status["RegisterPrice"] != "Succeeded"
    assert "price" in result.fail_message and "rmse=" in result.fail_message
    assert not any(p["ModelPackageGroupName"] == "airfare-price" for p in LocalRegistry(registry).list())


# Each breakage and the expectation that must name it (seed_infra/world/breakage.py).
BREAKAGES = {
    "missing_column": "days_to_departure",  # the vanished column reads as all-null: not_null names it
    "price_units": "price_usd",
    "null_burst": "price_usd.not_null",
    "duplicated_day": "no_duplicated_day",
    "stale_window": "freshness",
    "shifted_distribution": "business_vs_economy",
}


@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_broken_world_stops_at_data_quality_gate(clean_lake, tmp_path, kind):
    lake = _lake_copy(clean_lake, tmp_path / "lake")
    break_curated(lake / BUCKET / "curated" / "offers", kind, seed=3)
    registry = tmp_path / "registry"
    registry.mkdir()
    before = sorted(p.relative_to(registry) for p in registry.rglob("*"))

    result = _run(lake, tmp_path, registry)

    status = _status(result)
    assert result.status == "Failed"
    assert status["FailDataQuality"] == "Succeeded", (result.failed_step, result.failure_reason)
    assert BREAKAGES[kind] in result.fail_message, result.fail_message
    for step in ("TrainPrice", "TrainDemand", "TrainAnomaly"):
        assert status[step] in ("Skipped", "NotRun"), step
    assert sorted(p.relative_to(registry) for p in registry.rglob("*")) == before
