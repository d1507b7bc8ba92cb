"""Shared test setup: no real AWS, ever. AWS clients go to moto (server or mock_aws)."""

from __future__ import annotations

import os

import pytest

# Before any AWS or SageMaker import: fake credentials, a region, no role validation.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_ENDPOINT_URL_S3", None)  # the S3 lake's endpoint: tests pass it explicitly
os.environ.pop("AWS_PROFILE", None)

from small_world import splits, world  # noqa: E402,F401 - session fixtures: a small synthetic curated world (tests/{core,processing,training})


@pytest.fixture(scope="session")
def moto_server():
    """A moto server on a free loopback port; yields its endpoint URL.

    Tests that talk to it set ``AWS_ENDPOINT_URL`` with ``monkeypatch.setenv`` (every boto3
    client of the project honours it) and use unique resource names.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def aws_endpoint(moto_server, monkeypatch):
    """Point every AWS client of the project at the shared moto server for one test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server
