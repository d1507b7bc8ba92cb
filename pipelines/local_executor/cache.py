"""Step caching, honouring ``CacheConfig {Enabled, ExpireAfter}`` like SageMaker.

The key hashes the step type, its resolved arguments (job names aside, since they change every
execution) and the contents of its inputs. A hit reuses the earlier execution's properties, so
downstream steps read that execution's outputs, as on SageMaker. As on SageMaker, a change of
code inside the image is not part of the key: disable caching (``use_cache=False``) while
editing step code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from .expressions import Resolver
from .lake import Lake
from .plan import StepSpec

CACHEABLE = {"Processing", "Training"}
_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_PLACEHOLDER_JOB = "<job-name>"


def parse_duration(text: str) -> dt.timedelta:
    """ISO 8601 duration (``P30D``, ``PT12H``, ``P1Y``); a year is 365 days, a month 30."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT"):
        raise ValueError(f"CacheConfig.ExpireAfter {text!r} is not an ISO 8601 duration")
    v = {k: float(x) if x else 0.0 for k, x in m.groupdict().items()}
    return dt.timedelta(
        days=v["years"] * 365 + v["months"] * 30 + v["weeks"] * 7 + v["days"],
        hours=v["hours"],
        minutes=v["minutes"],
        seconds=v["seconds"],
    )


def _input_uris(spec: StepSpec, args: dict[str, Any]) -> list[str]:
    if spec.type == "Processing":
        return [i["S3Input"]["S3Uri"] for i in args.get("ProcessingInputs") or [] if i.get("S3Input")]
    return [
        c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in args.get("InputDataConfig") or []
        if (c.get("DataSource") or {}).get("S3DataSource")
    ]


def _enabled(spec: StepSpec) -> bool:
    return bool((spec.raw.get("CacheConfig") or {}).get("Enabled"))


def cache_key(spec: StepSpec, resolver: Resolver, mapper: Lake) -> str:
    local = {"ProcessingJobName": _PLACEHOLDER_JOB, "TrainingJobName": _PLACEHOLDER_JOB}
    args = resolver.resolve(spec.arguments, local)
    h = hashlib.sha256()
    h.update(json.dumps({"type": spec.type, "arguments": args, "property_files": spec.raw.get("PropertyFiles")},
                        sort_keys=True, default=str).encode())  # fmt: skip
    for uri in _input_uris(spec, args):
        h.update(uri.encode() + b"\0")
        if isinstance(uri, str) and uri.startswith("s3://"):
            mapper.fingerprint(uri, h)  # file contents (folder lake) or ETags and sizes (S3)
    return h.hexdigest()


def _outputs_exist(spec: StepSpec, properties: dict[str, Any], mapper: Lake) -> bool:
    if spec.type == "Processing":
        outputs = (properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        uris = [o["S3Output"]["S3Uri"] for o in outputs]
    else:
        uris = [properties["ModelArtifacts"]["S3ModelArtifacts"]]
    return all(mapper.exists(u) for u in uris)


def _entry_path(cache_dir: Path, spec: StepSpec, key: str) -> Path:
    return cache_dir / spec.name / f"{key}.json"


def lookup(cache_dir: Path, spec: StepSpec, resolver: Resolver, mapper: Lake) -> tuple[str | None, dict | None]:
    """(key, entry) for a cache-enabled step; (None, None) when the step does not cache."""
    if not _enabled(spec):
        return None, None
    key = cache_key(spec, resolver, mapper)
    path = _entry_path(cache_dir, spec, key)
    if not path.is_file():
        return key, None
    entry = json.loads(path.read_text())
    expire = (spec.raw.get("CacheConfig") or {}).get("ExpireAfter")
    if expire:
        created = dt.datetime.fromisoformat(entry["created"])
        if dt.datetime.now(dt.timezone.utc) - created > parse_duration(expire):
            return key, None
    if not _outputs_exist(spec, entry["properties"], mapper):
        return key, None
    return key, entry


def store(cache_dir: Path, key: str, spec: StepSpec, execution_id: str, properties: dict[str, Any]) -> None:
    path = _entry_path(cache_dir, spec, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    entry = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        "execution_id": execution_id,
        "properties": properties,
    }
    tmp.write_text(json.dumps(entry, indent=2, default=str))
    os.replace(tmp, path)
