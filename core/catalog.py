"""Where data lives: the lake's layout, written once (docs/contracts.md, "The lake").

Every writer (world generator, ETL) and reader (pipeline definition defaults, CLIs, DuckDB and
Athena queries, ``airfare run``) asks a :class:`Catalog` for a dataset's place instead of joining
path pieces itself, like Kedro's data catalog. One catalog per environment: construct it with that
environment's bucket and local roots.

Locally a folder stands for S3: ``s3://BUCKET/KEY`` <-> ``<lake_root>/BUCKET/KEY``; with
``s3_endpoint_url`` the lake is that S3 API instead (a moto server, or AWS's S3 for real buckets:
``--s3-endpoint-url`` / ``AWS_ENDPOINT_URL_S3``), and ``lake_root`` is not used. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_BUCKET = "airfare-lake"

# Dataset -> key under the bucket (a prefix, or a file for the ``*.json`` ones).
DATASETS: dict[str, str] = {
    "raw": "raw",  # Firehose (or the generator): dt=YYYY-MM-DD/hour=HH/*.json.gz
    "curated": "curated",  # the ETL's output folder
    "offers": "curated/offers",  # curated offers, dt=YYYY-MM-DD/*.parquet (the Glue/Athena table)
    "quarantine": "curated/quarantine",  # rejected records, dt=YYYY-MM-DD/*.json
    "etl_summary": "curated/etl_summary.json",
    "outcomes": "outcomes/flights",  # the revenue-management export: final load factor per flight
    "incident_labels": "labels/incidents",  # the price-integrity team's verdicts: dt=<verdict date>/, _manifest.json
    "truth": "truth",  # the simulator's answer key (never read by a production path)
    "truth_offers": "truth/offers",
    "world": "truth/world.json",
    "pipeline_runs": "pipeline-runs",  # step outputs: <execution id>/<step>/<output>
    "registry": "registry",  # registered artifacts of the local registry over an S3 lake: <group>/<version>/
}
# What the world generator owns and replaces on every run (nothing else under the bucket).
WORLD_DATASETS = ("raw", "outcomes", "incident_labels", "truth")


def key(dataset: str) -> str:
    """The dataset's key under the bucket."""
    try:
        return DATASETS[dataset]
    except KeyError:
        raise KeyError(f"unknown dataset {dataset!r}; the catalog has {', '.join(DATASETS)}") from None


def relative(dataset: str, within: str) -> str:
    """``dataset``'s key below ``within``'s, for a writer given that folder: ``relative("offers", "curated") == "offers"``."""
    return Path(key(dataset)).relative_to(key(within)).as_posix()


@dataclass(frozen=True)
class Catalog:
    """The lake of one environment: its bucket, its local stand-in and the local run folders."""

    bucket: str = DEFAULT_BUCKET
    lake_root: Path = Path(".lake")  # local folder standing for S3
    registry_root: Path = Path(".lake/registry")  # the local model registry
    runs_root: Path = Path("runs")  # local pipeline runs, one folder per execution
    s3_endpoint_url: str | None = None  # the lake is this S3 API instead of lake_root (core/s3lake.py)

    @property
    def in_s3(self) -> bool:
        """True when the lake is a real S3 API rather than the local folder."""
        return bool(self.s3_endpoint_url)

    def uri(self, dataset: str) -> str:
        """``s3://bucket/key/`` (a prefix ends with ``/``; a file does not)."""
        k = key(dataset)
        return f"s3://{self.bucket}/{k}" + ("" if k.endswith(".json") else "/")

    @property
    def bucket_dir(self) -> Path:
        """The local folder standing for the bucket."""
        return Path(self.lake_root) / self.bucket

    def path(self, dataset: str) -> Path:
        """The dataset's local folder (or file) under :attr:`bucket_dir`."""
        return self.bucket_dir / key(dataset)
