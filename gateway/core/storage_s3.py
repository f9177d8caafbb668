"""S3-compatible buckets behind the `BlobStore` protocol (boto3): AWS S3, MinIO, Ceph RGW,
SeaweedFS. One bucket per region; `open_store(settings)` builds the store a process uses.

What reaches a bucket is what the gateway hands over: originals are already AES-256-GCM
sealed by `gateway.ingest` with the dataset's key (a bucket's own encryption is never relied
on), redacted copies are the released outputs. Errors are translated once, here: a missing
object is `NotFound`, refused credentials `StorageRegionUnavailable`, anything transient
(connection, timeout, 5xx, throttling) a `StorageOutage`, an `OSError`, which the API answers
with 503 and the job runner treats as an outage (the attempt is given back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from gateway.core.errors import NotFound
from gateway.core.settings import S3Bucket, Settings
from gateway.core.storage import (
    BlobStore,
    LocalBlobStore,
    RegionalBlobStore,
    StorageRegionUnavailable,
    check_key,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
MISSING = {"404", "NoSuchKey", "NotFound"}
REFUSED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "AllAccessDisabled",
}


class StorageOutage(OSError):
    """The bucket could not be reached or answered with a transient error: nothing was
    written or read; retry later."""


def _read_secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def s3_client(bucket: S3Bucket) -> Any:
    """A boto3 client for one region's bucket, with that bucket's credentials only."""
    # deferred: boto3 only when buckets are configured
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": bucket.addressing_style},
        signature_version="s3v4",
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # CRC checksums on every request (boto3 >= 1.36) are refused by several S3-compatible
        # stores: send them only where the API requires them
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    credentials: dict[str, str] = {}
    if bucket.access_key_id is not None and bucket.secret_access_key is not None:
        credentials = {
            "aws_access_key_id": bucket.access_key_id.get_secret_value(),
            "aws_secret_access_key": bucket.secret_access_key.get_secret_value(),
        }
    elif bucket.access_key_id_file is not None and bucket.secret_access_key_file is not None:
        credentials = {
            "aws_access_key_id": _read_secret(bucket.access_key_id_file),
            "aws_secret_access_key": _read_secret(bucket.secret_access_key_file),
        }
    # a session of its own: the default chain is consulted only with default_credentials
    session = boto3.session.Session(**credentials) if credentials else boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=bucket.endpoint_url,
        region_name=bucket.s3_region or "us-east-1",
        config=config,
        verify=str(bucket.ca_bundle) if bucket.ca_bundle else None,
    )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextmanager
def translated(bucket: str, key: str, *, expect_missing: bool = False) -> Iterator[None]:
    """botocore's errors as the gateway's: typed, and never naming where data lives to a client."""
    # deferred: botocore only when buckets are configured
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in MISSING:
            if not expect_missing:  # the key stays in the operator's log, never in a body
                log.warning("blob missing from bucket %s: %s", bucket, key)
            raise NotFound("blob not found") from exc
        if code in REFUSED:
            log.error("bucket %s refused this process (%s)", bucket, code)
            raise StorageRegionUnavailable(
                "the region's bucket refused this process's credentials", reason=code
            ) from exc
        log.warning("bucket %s answered %s", bucket, code)
        raise StorageOutage(f"object storage error {code}") from exc
    except BotoCoreError as exc:  # connection refused, timeouts, unreadable responses
        log.warning("bucket %s unreachable: %s", bucket, type(exc).__name__)
        raise StorageOutage("object storage unreachable") from exc


class S3BlobStore:
    """One bucket (optionally under a key prefix). Keys are checked as the local store's."""

    def __init__(self, client: Any, bucket: str, *, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, key: str, fn: Callable[[str], T]) -> T:
        with translated(self.bucket, key):
            return fn(self._key(key))

    def put(self, key: str, data: bytes) -> None:
        self._call(key, lambda k: self.client.put_object(Bucket=self.bucket, Key=k, Body=data))

    def get(self, key: str) -> bytes:
        def read(k: str) -> bytes:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=k)["Body"].read()
            return body

        return self._call(key, read)

    def exists(self, key: str) -> bool:
        try:
            with translated(self.bucket, key, expect_missing=True):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> bool:
        """True if the object was there (S3's DELETE answers the same either way)."""
        if not self.exists(key):
            return False
        self._call(key, lambda k: self.client.delete_object(Bucket=self.bucket, Key=k))
        return True


def open_store(settings: Settings) -> BlobStore:
    """The local directory by default; with `storage_backend = "s3"` one bucket per region
    this process has credentials for, writing to its storage region's."""
    if settings.storage_backend == "local":
        return LocalBlobStore(settings.resolved_storage_dir)
    stores: dict[str, BlobStore] = {
        region: S3BlobStore(s3_client(bucket), bucket.bucket, prefix=bucket.prefix)
        for region, bucket in settings.s3_buckets.items()
    }
    return RegionalBlobStore(stores, write_region=settings.storage_region or settings.region)
