"""S3 fixtures: moto's S3 server on a loopback port (one per session, a fresh bucket per test
and region), and a gateway context whose blob store is the buckets (real database, real keys)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.core.context import GatewayContext
from gateway.core.settings import Settings
from gateway.core.storage_s3 import open_store
from tests.conftest import make_context

# moto accepts any key pair; each region's differs, so a mix-up would show in the requests
CREDENTIALS = {
    "eu-de": ("eu-access-key", "eu-secret-key"),
    "us-east": ("us-access-key", "us-secret-key"),
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def bucket_entry(endpoint: str, region: str, bucket: str, **extra: Any) -> dict[str, Any]:
    access, secret = CREDENTIALS[region]
    return {
        "bucket": bucket,
        "endpoint_url": endpoint,
        "addressing_style": "path",
        "access_key_id": access,
        "secret_access_key": secret,
        **extra,
    }


def admin_client(endpoint: str) -> Any:
    """A client of the test itself (creating buckets, reading raw objects), not the gateway's."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-admin",
        aws_secret_access_key="test-admin",  # moto accepts any pair
    )


@pytest.fixture
def buckets(moto_endpoint: str) -> dict[str, str]:
    """A fresh bucket per region for this test."""
    client = admin_client(moto_endpoint)
    made = {}
    for region in CREDENTIALS:
        name = f"gw-{region}-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        made[region] = name
    return made


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    pages = admin_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture
def settings(settings: Settings, moto_endpoint: str, buckets: dict[str, str]) -> Settings:
    """The shared settings, but blobs go to the eu-de bucket (the only one this process holds)."""
    return Settings(
        **{
            **settings.model_dump(exclude={"s3_buckets", "storage_backend"}),
            "storage_backend": "s3",
            "s3_buckets": {"eu-de": bucket_entry(moto_endpoint, "eu-de", buckets["eu-de"])},
        }
    )


@pytest.fixture
def ctx(settings: Settings, clock: Any) -> Iterator[GatewayContext]:
    """As tests/conftest.py's `ctx`, with the store built from the settings (the buckets)."""
    context = make_context(settings, clock, open_store(settings))
    yield context
    context.close()
