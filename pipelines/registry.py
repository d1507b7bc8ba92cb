"""Model registries: a local one (a folder) and SageMaker's, with one shape of record.

The local executor writes `RegisterModel` steps into :class:`LocalRegistry`
(``<root>/<group>/<version>/package.json`` plus the copied artifact, docs/contracts.md), so a
laptop run leaves the same trail as SageMaker's Model Registry. Both registries return records
shaped like SageMaker's ``DescribeModelPackage`` (``ModelPackageGroupName``,
``ModelPackageVersion``, ``ModelPackageArn``, ``ModelApprovalStatus``, ``ModelDataUrl``,
``ImageUri``, ``CreationTime``), so the CLI and deployment code treat them alike.

A package is named the same way on both: its ARN (``local:model-package/G/V`` locally,
``arn:aws:sagemaker:...:model-package/G/V`` on SageMaker) or ``GROUP/VERSION``; SageMaker's API
takes only ARNs, so :class:`SageMakerRegistry` resolves ``GROUP/VERSION`` to the ARN first.
Names are checked against SageMaker's patterns before any path is built from them, so an id such
as ``../1`` can never reach outside the registry root.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from inference import content_types as served_types
from core.catalog import Catalog

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
DEFAULT_LOCAL_ROOT = Catalog().registry_root
LOCAL_ARN_PREFIX = "local:model-package/"
_GROUP_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's EntityName pattern
_PACKAGE_ID = re.compile(r"^(?P<group>[^/]+)/(?P<version>[1-9][0-9]{0,9})$")
# DescribeModelPackage's ModelPackageArn pattern (botocore's sagemaker service model).
SAGEMAKER_PACKAGE_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/[\S]{1,2048}$")


class RegistryError(Exception):
    """A user-facing registry problem (unknown package, bad status, bad group name)."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_status(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise RegistryError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    return status


def _check_group(group: str) -> str:
    if not _GROUP_RE.match(group or ""):
        raise RegistryError(f"model package group name {group!r} is invalid (letters, digits and '-', up to 63)")
    return group


def parse_package_id(package: str, arn_prefix: str | None = None) -> tuple[str, int]:
    """``GROUP/VERSION`` (or ``<arn_prefix>GROUP/VERSION``) -> ``(group, version)``, both checked."""
    ref = (package or "").strip()
    if arn_prefix and ref.startswith(arn_prefix):
        ref = ref[len(arn_prefix) :]
    m = _PACKAGE_ID.match(ref)
    if not m:
        raise RegistryError(f"{package!r} is not a model package id (expected GROUP/VERSION or a package ARN)")
    return _check_group(m.group("group")), int(m.group("version"))


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


class _Decisions:
    """A data scientist's two decisions, on either backend's ``set_status``."""

    def set_status(self, package: str, status: str, description: str | None = None) -> dict:
        raise NotImplementedError

    def approve(self, package: str, description: str | None = None) -> dict:
        return self.set_status(package, "Approved", description)

    def reject(self, package: str, reason: str | None = None) -> dict:
        return self.set_status(package, "Rejected", reason)


class LocalRegistry(_Decisions):
    """A model registry in a folder: one sub-folder per group, one per version (1, 2, ...).

    With ``s3`` (a ``core.s3lake.S3Lake``), artifacts given as ``s3://`` URIs are copied
    server-side to ``s3://<their bucket>/registry/<group>/<version>/`` and ``ModelDataUrl`` is that
    URI, as SageMaker's registry keeps S3 URIs; the package records stay in the folder.
    """

    def __init__(self, root: Path | str = DEFAULT_LOCAL_ROOT, s3: Any = None):
        self.root = Path(root)
        self.s3 = s3

    # -- writing -----------------------------------------------------------------------------
    def register(
        self,
        group: str,
        model_data_path: Path | str,
        image_uri: str,
        approval_status: str = "PendingManualApproval",
        metrics: dict | None = None,
        source: dict | None = None,
        description: str | None = None,
        files: dict[str, Path] | None = None,
    ) -> dict:
        """Register a new version of ``group``: copy the artifact in and write ``package.json``.

        ``files`` (relative name -> file) are copied into the version folder beside the artifact:
        the drift-check baselines (``baselines/data-statistics.json``, ...) that monitoring reads.

        ``metrics`` is the evaluation report (or any JSON-able dict) kept with the package;
        ``source`` records lineage (pipeline execution, step, original artifact URI).
        """
        _check_group(group)
        _check_status(approval_status)
        in_s3 = isinstance(model_data_path, str) and model_data_path.startswith("s3://")
        if in_s3:
            if self.s3 is None:
                raise RegistryError(f"model artifact {model_data_path} is in S3: give the registry an S3 lake")
            if not self.s3.exists(model_data_path):
                raise RegistryError(f"model artifact {model_data_path} does not exist")
        else:
            model_data_path = Path(model_data_path)
            if not model_data_path.exists():
                raise RegistryError(f"model artifact {model_data_path} does not exist")
        group_dir = self.root / group
        group_dir.mkdir(parents=True, exist_ok=True)
        version_dir, version = self._claim_next_version(group_dir)
        if in_s3:
            from core.s3lake import join, parse_s3_uri

            bucket, key = parse_s3_uri(model_data_path)
            name = key.rstrip("/").rsplit("/", 1)[-1]
            from core import catalog

            model_data_url = self.s3.copy(model_data_path, join(f"s3://{bucket}", catalog.key("registry"), group, str(version), name))
        else:
            target = version_dir / model_data_path.name
            if model_data_path.is_dir():
                shutil.copytree(model_data_path, target)
            else:
                shutil.copy2(model_data_path, target)
            model_data_url = str(target.resolve())
        for rel, src in (files or {}).items():  # beside package.json, in either mode: monitoring reads them there
            dest = version_dir / rel
            if dest.resolve().parent != version_dir.resolve() and version_dir.resolve() not in dest.resolve().parents:
                raise RegistryError(f"file {rel!r} would land outside the package folder")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        record = {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": f"{LOCAL_ARN_PREFIX}{group}/{version}",
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": approval_status,
            "ModelDataUrl": model_data_url,
            "ImageUri": image_uri,
            "CreationTime": _now(),
            "Metrics": metrics or {},
            "Source": source or {},
        }
        if description:
            record["ModelPackageDescription"] = description
        _write_json_atomic(version_dir / "package.json", record)
        return record

    def _claim_next_version(self, group_dir: Path) -> tuple[Path, int]:
        """Create the next version folder; ``mkdir`` without exist_ok makes concurrent claims safe."""
        while True:
            versions = [int(p.name) for p in group_dir.iterdir() if p.is_dir() and p.name.isdigit()]
            version = max(versions, default=0) + 1
            try:
                (group_dir / str(version)).mkdir()
            except FileExistsError:
                continue
            return group_dir / str(version), version

    def set_status(self, package: str, status: str, description: str | None = None) -> dict:
        _check_status(status)
        path = self._package_path(package)
        record = json.loads(path.read_text())
        record["ModelApprovalStatus"] = status
        record["LastModifiedTime"] = _now()
        if description:
            record["ApprovalDescription"] = description
        _write_json_atomic(path, record)
        return record

    # -- reading -----------------------------------------------------------------------------
    def groups(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def list(self, group: str | None = None) -> list[dict]:
        """All packages (of one group, or of every group), oldest version first."""
        out: list[dict] = []
        for g in [_check_group(group)] if group else self.groups():
            group_dir = self.root / g
            if not group_dir.is_dir():
                continue
            versions = sorted(int(p.name) for p in group_dir.iterdir() if p.name.isdigit())
            for v in versions:
                path = group_dir / str(v) / "package.json"
                if path.is_file():  # a folder without package.json is a registration in progress
                    out.append(json.loads(path.read_text()))
        return out

    def get(self, package: str) -> dict:
        return json.loads(self._package_path(package).read_text())

    def latest(self, group: str, status: str | None = "Approved") -> dict | None:
        """The newest package of ``group`` with approval ``status`` (any status if None)."""
        packages = [p for p in self.list(group) if status is None or p["ModelApprovalStatus"] == status]
        return packages[-1] if packages else None

    def _package_path(self, package: str) -> Path:
        """Accept ``local:model-package/G/V`` or ``G/V``; the group must be a valid SageMaker
        name and the version a positive integer, so the path stays inside the registry root."""
        if package.startswith("arn:"):
            raise RegistryError(f"{package!r} is a SageMaker ARN: use --sagemaker (the local registry's ids are GROUP/VERSION or {LOCAL_ARN_PREFIX}GROUP/VERSION)")
        group, version = parse_package_id(package, LOCAL_ARN_PREFIX)
        root = self.root.resolve()
        path = (root / group / str(version) / "package.json").resolve()
        if root not in path.parents:  # e.g. a symlinked group folder pointing elsewhere
            raise RegistryError(f"model package {group}/{version} resolves outside the registry {self.root}")
        if not path.is_file():
            raise RegistryError(f"no model package {group}/{version} in {self.root}")
        return path


class SageMakerRegistry(_Decisions):
    """SageMaker Model Registry through boto3 (core/aws.py, so moto works in tests)."""

    def __init__(self, sm_client: Any = None):
        if sm_client is None:
            from core import aws

            sm_client = aws.client("sagemaker")
        self.sm = sm_client

    def ensure_group(self, group: str, description: str | None = None) -> str:
        """Create the model package group if it does not exist; return its ARN."""
        _check_group(group)
        from botocore.exceptions import ClientError

        try:
            return self.sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
        resp = self.sm.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=description or f"airfare {group} models",
        )
        return resp["ModelPackageGroupArn"]

    def register(
        self,
        group: str,
        model_data_url: str,
        image_uri: str,
        approval_status: str = "PendingManualApproval",
        metrics_s3_uri: str | None = None,
        description: str | None = None,
        content_types: tuple[str, ...] = served_types.CONTENT_TYPES,
        instance_types: tuple[str, ...] = ("ml.m5.large", "ml.c5.large"),
    ) -> dict:
        """Create a model package version (the group is created if missing)."""
        _check_status(approval_status)
        self.ensure_group(group)
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": approval_status,
            "InferenceSpecification": {
                "Containers": [{"Image": image_uri, "ModelDataUrl": model_data_url}],
                "SupportedContentTypes": list(content_types),
                "SupportedResponseMIMETypes": list(served_types.RESPONSE_TYPES),
                "SupportedRealtimeInferenceInstanceTypes": list(instance_types),
            },
        }
        if description:
            kwargs["ModelPackageDescription"] = description
        if metrics_s3_uri:
            kwargs["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_s3_uri}}}
        arn = self.sm.create_model_package(**kwargs)["ModelPackageArn"]
        return self.get(arn)

    def list(self, group: str | None = None) -> list[dict]:
        """Package summaries of one group, or of every group, oldest first."""
        groups = [_check_group(group)] if group else self.groups()
        out: list[dict] = []
        for g in groups:
            pages = self.sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=g)
            for page in pages:
                out.extend(page.get("ModelPackageSummaryList", []))
        out.sort(key=lambda p: (p.get("ModelPackageGroupName", ""), p.get("ModelPackageVersion") or 0))
        return out

    def groups(self) -> list[str]:
        names: list[str] = []
        for page in self.sm.get_paginator("list_model_package_groups").paginate():
            names.extend(g["ModelPackageGroupName"] for g in page.get("ModelPackageGroupSummaryList", []))
        return sorted(names)

    def latest(self, group: str, status: str | None = "Approved") -> dict | None:
        packages = [p for p in self.list(group) if status is None or p.get("ModelApprovalStatus") == status]
        return self.get(packages[-1]["ModelPackageArn"]) if packages else None

    def resolve(self, package: str) -> str:
        """A package ARN as is (checked against the API's pattern), or ``GROUP/VERSION`` looked up
        in the group's packages: UpdateModelPackage and DescribeModelPackage need the ARN."""
        if package.startswith("arn:"):
            if not SAGEMAKER_PACKAGE_ARN.match(package):
                raise RegistryError(f"{package!r} is not a SageMaker model package ARN")
            return package
        if package.startswith(LOCAL_ARN_PREFIX):
            raise RegistryError(f"{package!r} is a local registry id: drop --sagemaker")
        group, version = parse_package_id(package)
        for summary in self.list(group):
            if summary.get("ModelPackageVersion") == version:
                return summary["ModelPackageArn"]
        raise RegistryError(f"no model package {group}/{version} in SageMaker's registry")

    def get(self, arn: str) -> dict:
        """DescribeModelPackage of an ARN or ``GROUP/VERSION``."""
        resp = self.sm.describe_model_package(ModelPackageName=self.resolve(arn))
        resp.pop("ResponseMetadata", None)
        containers = resp.get("InferenceSpecification", {}).get("Containers") or [{}]
        resp.setdefault("ModelDataUrl", containers[0].get("ModelDataUrl"))
        resp.setdefault("ImageUri", containers[0].get("Image"))
        return resp

    def set_status(self, package: str, status: str, description: str | None = None) -> dict:
        """``package``: an ARN or ``GROUP/VERSION``."""
        _check_status(status)
        arn = self.resolve(package)
        kwargs = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if description:
            kwargs["ApprovalDescription"] = description
        self.sm.update_model_package(**kwargs)
        return self.get(arn)
