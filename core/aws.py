"""The one place where boto3 clients are made (DESIGN.md §4).

``AWS_ENDPOINT_URL`` (read by botocore itself) points every client at a moto server in tests;
``AWS_ENDPOINT_URL_S3`` points S3 alone elsewhere: the lake's S3 API of ``--s3-endpoint-url``
(core/s3lake.py passes it explicitly, and jobs of the local executor inherit it).
Retries use botocore's adaptive mode rather than hand-written loops.
"""

from __future__ import annotations

import os
from functools import lru_cache

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"max_attempts": 10, "mode": "adaptive"}, user_agent_extra="airfare-mlops")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=None)
def _session(region_name: str, endpoint: str | None) -> boto3.session.Session:
    return boto3.session.Session(region_name=region_name)


def client(service: str, **kwargs):
    """A boto3 client for ``service`` with the project's retry policy and region."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    session = _session(region(), endpoint)
    return session.client(service, config=kwargs.pop("config", RETRY_CONFIG), **kwargs)
