"""Model registries: the local folder registry and SageMaker's (against moto)."""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines.registry import LocalRegistry, RegistryError, SageMakerRegistry


@pytest.fixture()
def artifact(tmp_path):
    path = tmp_path / "work" / "model.tar.gz"
    path.parent.mkdir()
    path.write_bytes(b"model-bytes")
    return path


def test_local_round_trip(tmp_path, artifact):
    reg = LocalRegistry(tmp_path / "registry")
    metrics = {"model": "price", "regression_metrics": {"rmse": {"value": 9.8}}}
    p1 = reg.register("airfare-price", artifact, "img:1", "PendingManualApproval", metrics, {"execution_id": "e1"})
    p2 = reg.register("airfare-price", artifact, "img:2", "PendingManualApproval", metrics, {"execution_id": "e2"})
    reg.register("airfare-demand", artifact, "img:1", "Approved", {}, {})

    assert (p1["ModelPackageVersion"], p2["ModelPackageVersion"]) == (1, 2)
    assert p1["ModelPackageArn"] == "local:model-package/airfare-price/1"
    # The artifact is copied in: the registry does not depend on the run folder surviving.
    copied = tmp_path / "registry" / "airfare-price" / "1" / "model.tar.gz"
    assert p1["ModelDataUrl"] == str(copied.resolve()) and copied.read_bytes() == b"model-bytes"
    on_disk = json.loads((tmp_path / "registry" / "airfare-price" / "2" / "package.json").read_text())
    assert on_disk["ImageUri"] == "img:2" and on_disk["Metrics"] == metrics and on_disk["Source"] == {"execution_id": "e2"}

    assert [p["ModelPackageVersion"] for p in reg.list("airfare-price")] == [1, 2]
    assert {p["ModelPackageGroupName"] for p in reg.list()} == {"airfare-price", "airfare-demand"}
    assert reg.latest("airfare-price") is None

    approved = reg.approve("airfare-price/1", "good enough")
    assert approved["ModelApprovalStatus"] == "Approved" and approved["ApprovalDescription"] == "good enough"
    rejected = reg.reject("local:model-package/airfare-price/2", "drift")
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert reg.latest("airfare-price")["ModelPackageVersion"] == 1
    assert reg.get("airfare-price/2")["ApprovalDescription"] == "drift"


def test_local_errors(tmp_path, artifact):
    reg = LocalRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="does not exist"):
        reg.register("airfare-price", tmp_path / "nope.tar.gz", "img", "PendingManualApproval", {}, {})
    with pytest.raises(RegistryError, match="approval status"):
        reg.register("airfare-price", artifact, "img", "Maybe", {}, {})
    with pytest.raises(RegistryError, match="group name"):
        reg.register("bad/group", artifact, "img", "Approved", {}, {})
    with pytest.raises(RegistryError, match="no model package"):
        reg.approve("airfare-price/7")
    with pytest.raises(RegistryError, match="not a model package id"):
        reg.approve("airfare-price")


def test_local_registers_a_model_directory(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.ubj").write_bytes(b"x")
    pkg = LocalRegistry(tmp_path / "registry").register("airfare-demand", model_dir, "img", "Approved", {}, {})
    assert (tmp_path / "registry" / "airfare-demand" / "1" / "model" / "model.ubj").exists()
    assert pkg["ModelDataUrl"].endswith("/model")


def test_sagemaker_registry_against_moto(aws_endpoint):
    reg = SageMakerRegistry()
    group = f"airfare-test-{uuid.uuid4().hex[:8]}"
    arn = reg.ensure_group(group)
    assert reg.ensure_group(group) == arn  # idempotent
    assert group in reg.groups()

    pkg = reg.register(
        group,
        model_data_url="s3://airfare-lake/pipeline-runs/e1/TrainPrice/model/model.tar.gz",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/airfare:1",
        metrics_s3_uri="s3://airfare-lake/pipeline-runs/e1/EvaluatePrice/evaluation/evaluation.json",
    )
    assert pkg["ModelApprovalStatus"] == "PendingManualApproval"
    assert pkg["ModelDataUrl"].endswith("model.tar.gz") and pkg["ImageUri"].endswith("airfare:1")

    listed = reg.list(group)
    assert [p["ModelPackageArn"] for p in listed] == [pkg["ModelPackageArn"]]
    assert reg.latest(group) is None

    approved = reg.approve(pkg["ModelPackageArn"], "gates passed")
    assert approved["ModelApprovalStatus"] == "Approved"
    assert reg.latest(group)["ModelPackageArn"] == pkg["ModelPackageArn"]
    assert reg.reject(pkg["ModelPackageArn"], "rolled back")["ModelApprovalStatus"] == "Rejected"


# ---- package ids: GROUP/VERSION or an ARN, and nothing that escapes the registry ---------------


@pytest.mark.parametrize("bad", ["../1", "../../etc/1", "airfare-price/../1", "/abs/1", "airfare-price/0", "airfare-price/-1",
                                 "airfare price/1", "..", "airfare-price/1/extra", "local:model-package/../1"])
def test_local_ids_cannot_reach_outside_the_registry(tmp_path, artifact, bad):
    root = tmp_path / "registry"
    reg = LocalRegistry(root)
    reg.register("airfare-price", artifact, "img", "PendingManualApproval", {}, {})
    # A package.json beside the registry root: what "../1" used to rewrite.
    decoy = tmp_path / "1" / "package.json"
    decoy.parent.mkdir()
    decoy.write_text('{"ModelApprovalStatus": "PendingManualApproval"}')
    with pytest.raises(RegistryError):
        reg.approve(bad)
    with pytest.raises(RegistryError):
        reg.get(bad)
    assert json.loads(decoy.read_text()) == {"ModelApprovalStatus": "PendingManualApproval"}
    assert reg.get("airfare-price/1")["ModelApprovalStatus"] == "PendingManualApproval"


def test_local_registry_refuses_bad_groups_and_sagemaker_arns(tmp_path, artifact):
    reg = LocalRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="group name"):
        reg.list("..")
    with pytest.raises(RegistryError, match="--sagemaker"):
        reg.approve("arn:aws:sagemaker:us-east-1:123456789012:model-package/airfare-price/1")


def test_sagemaker_ids_resolve_to_arns_the_api_accepts(aws_endpoint):
    from api_patterns import PatternError, validating

    from core import aws

    sm = validating(aws.client("sagemaker"))
    # The hook is real: the request the CLI used to send fails here as it fails on AWS.
    with pytest.raises(PatternError, match="ModelPackageArn"):
        sm.update_model_package(ModelPackageArn="airfare-price/3", ModelApprovalStatus="Approved")

    reg = SageMakerRegistry(sm)
    group = f"airfare-ids-{uuid.uuid4().hex[:8]}"
    first = reg.register(group, "s3://airfare-lake/m/1/model.tar.gz", "img:1")
    second = reg.register(group, "s3://airfare-lake/m/2/model.tar.gz", "img:2")
    assert reg.resolve(f"{group}/2") == second["ModelPackageArn"]
    assert reg.resolve(first["ModelPackageArn"]) == first["ModelPackageArn"]

    approved = reg.approve(f"{group}/1", "by GROUP/VERSION")
    assert approved["ModelPackageArn"] == first["ModelPackageArn"] and approved["ModelApprovalStatus"] == "Approved"
    assert reg.reject(second["ModelPackageArn"], "by ARN")["ModelApprovalStatus"] == "Rejected"
    assert reg.get(f"{group}/2")["ModelApprovalStatus"] == "Rejected"

    with pytest.raises(RegistryError, match=f"no model package {group}/9"):
        reg.approve(f"{group}/9")
    for bad in ("../1", f"{group}/x", "local:model-package/airfare-price/1", "arn:aws:sagemaker:us-east-1:1:model-package/x"):
        with pytest.raises(RegistryError):
            reg.approve(bad)
