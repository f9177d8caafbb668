"""Blob storage: a local directory by default; S3-compatible buckets, one per region, at scale.

Local writes are atomic (temporary file, fsync, rename), so a killed process never leaves a
half-written blob under its final name (an S3 PUT is atomic by itself).

With buckets (`RegionalBlobStore`), a blob's key names its region, `regions/<region>/<key>`,
so every reader finds the bucket from the key alone, and a process holding only one region's
credentials gets a typed `StorageRegionUnavailable` for the others. Every write needs a
storage permit for the key's dataset and region, which only `put_cleared` grants, from the
`Clearance` an allowed residency check (`enforce_residency(point=STORAGE_WRITE)`) made: the
store itself refuses a write no residency check let through. `put_cleared` is the one way
dataset blobs are written, whatever the store.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from gateway.core.clearance import Clearance, EnforcementPoint
from gateway.core.errors import GatewayError, NotFound, ResidencyViolation
from gateway.core.filemodes import private_dir

log = logging.getLogger(__name__)
_SAFE_KEY = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_.\-]*)*$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9\-]{0,39}$")
REGIONS_PREFIX = "regions"
# key prefixes that belong to no dataset (readiness probes): written without a permit
NO_DATASET_PREFIXES = ("health/",)


class StorageRegionUnavailable(GatewayError):
    """This process holds no credentials for the bucket of the region a blob lives in (or the
    bucket refused them): another region's worker or replica must handle it."""

    code, status, title = "storage-region-unavailable", 503, "Storage region not available here"


def check_key(key: str) -> str:
    """Keys are built by the gateway from ids and hex digests; refuse anything else outright."""
    if not _SAFE_KEY.match(key) or ".." in key:
        raise ValueError(f"unsafe blob key: {key!r}")
    return key


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            # the path stays in the operator's log: error bodies never name where data lives
            log.warning("blob missing from the store: %s", key)
            raise NotFound("blob not found") from exc

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def original_key(dataset_id: str, asset_id: str) -> str:
    """One blob per asset, named by its random id: the path says nothing about the content,
    and two uploads racing with the same bytes never overwrite each other's ciphertext."""
    return f"originals/{dataset_id}/{asset_id[:2]}/{asset_id}.bin"


def redacted_key(dataset_id: str, asset_id: str, sha256: str, extension: str) -> str:
    """Per asset, never shared: identical redacted copies of two assets are two blobs, so
    deleting one asset (erasure, retention, re-processing) never takes another's bytes.
    Stores written before this layout may hold shared keys; `gateway.policy.derived.delete_blob`
    keeps those while any other asset row still names them."""
    return f"redacted/{dataset_id}/{asset_id}/{sha256}.{extension}"


def candidate_key(dataset_id: str, asset_id: str) -> str:
    """A leak-check quarantine's sealed candidate rendition (review only), one per asset."""
    return f"candidates/{dataset_id}/{asset_id[:2]}/{asset_id}.bin"


def dataset_of(key: str) -> str | None:
    """The dataset a blob key belongs to (`originals/<dataset>/...`, `redacted/<dataset>/...`,
    `candidates/<dataset>/...`)."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] in ("originals", "redacted", "candidates"):
        return parts[1]
    return None


# (dataset id, region) pairs an allowed storage residency check let through in this context
_PERMITS: contextvars.ContextVar[frozenset[tuple[str, str]]] = contextvars.ContextVar(
    "storage_permits", default=frozenset()
)


def grant_storage_write(clearance: Clearance) -> None:
    """A permit for the next write of the cleared dataset's blob to the cleared region (only
    there); that write uses it up. `put_cleared` grants it just before its write."""
    clearance.require(
        EnforcementPoint.STORAGE_WRITE, dataset_id=clearance.dataset_id, region=clearance.region
    )
    _PERMITS.set(_PERMITS.get() | {(clearance.dataset_id, clearance.region)})


def put_cleared(store: BlobStore, key: str, data: bytes, clearance: Clearance) -> None:
    """Write a dataset's blob under the storage clearance of that dataset and region: the
    clearance is checked against the key (its dataset, and its region with buckets) before
    anything is written."""
    region = region_of(store, key, default=clearance.region)
    inner = store.split(key)[1] if isinstance(store, RegionalBlobStore) else check_key(key)
    dataset_id = dataset_of(inner)
    if dataset_id is None:
        raise ValueError(f"not a dataset blob key: {key!r}")
    clearance.require(EnforcementPoint.STORAGE_WRITE, dataset_id=dataset_id, region=region)
    if isinstance(store, RegionalBlobStore):  # the bucket store checks the permit itself
        grant_storage_write(clearance)
    store.put(key, data)


def get_cleared(
    store: BlobStore, key: str, clearance: Clearance, *, point: EnforcementPoint, to_region: str
) -> bytes:
    """Read a dataset's blob to hand it onwards (to Label Studio, an ML backend, an export) in
    `to_region`, under the clearance of that move for the blob's dataset."""
    inner = store.split(key)[1] if isinstance(store, RegionalBlobStore) else check_key(key)
    dataset_id = dataset_of(inner)
    if dataset_id is None:
        raise ValueError(f"not a dataset blob key: {key!r}")
    clearance.require(point, dataset_id=dataset_id, region=to_region)
    return store.get(key)


def _require_permit(key: str, region: str) -> None:
    if key.startswith(NO_DATASET_PREFIXES):
        return
    dataset_id = dataset_of(key)
    permits = _PERMITS.get()
    if dataset_id is None or (dataset_id, region) not in permits:
        log.error("blob write without a residency check refused: %s in %s", key, region)
        raise ResidencyViolation(
            f"no storage residency check allowed this write to region {region}",
            rule="storage.unchecked-write",
            point="storage_write",
            target_region=region,
        )
    _PERMITS.set(permits - {(dataset_id, region)})  # one write per check: none lingers


class RegionalBlobStore:
    """One store per region (buckets), routed by the region the key names. `stores` holds only
    the regions this process has credentials for; `write_region` is where it writes."""

    def __init__(self, stores: Mapping[str, BlobStore], *, write_region: str) -> None:
        self.stores = dict(stores)
        self.write_region = write_region

    def key_in(self, region: str, key: str) -> str:
        if not _REGION.match(region):
            raise ValueError(f"unsafe region name: {region!r}")
        return f"{REGIONS_PREFIX}/{region}/{check_key(key)}"

    def split(self, key: str) -> tuple[str, str, BlobStore]:
        """(region, key inside the region's bucket, that bucket's store)."""
        parts = key.split("/", 2)
        if len(parts) != 3 or parts[0] != REGIONS_PREFIX or not _REGION.match(parts[1]):
            raise StorageRegionUnavailable(
                "this blob names no storage region (written by a local store?)"
            )
        store = self.stores.get(parts[1])
        if store is None:
            log.warning("no credentials here for the bucket of region %s", parts[1])
            raise StorageRegionUnavailable(
                f"this process holds no credentials for region {parts[1]}'s bucket",
                region=parts[1],
            )
        return parts[1], check_key(parts[2]), store

    def put(self, key: str, data: bytes) -> None:
        region, inner, store = self.split(key)
        _require_permit(inner, region)
        store.put(inner, data)

    def get(self, key: str) -> bytes:
        _, inner, store = self.split(key)
        return store.get(inner)

    def delete(self, key: str) -> bool:
        _, inner, store = self.split(key)
        return store.delete(inner)

    def exists(self, key: str) -> bool:
        _, inner, store = self.split(key)
        return store.exists(inner)


def located_key(store: BlobStore, key: str, *, region: str) -> str:
    """The key a blob written to `region` is stored (and recorded) under: with buckets the key
    names its region; a local store has one region and keeps the key as it is."""
    if isinstance(store, RegionalBlobStore):
        return store.key_in(region, key)
    return key


def probe_key(store: BlobStore, key: str) -> str:
    """Where a readiness probe goes: the bucket this process writes to."""
    if isinstance(store, RegionalBlobStore):
        return store.key_in(store.write_region, key)
    return key


def named_region(key: str) -> str | None:
    """The region a bucket key names (`regions/<region>/...`), read without credentials for
    it; None for a local store's key."""
    parts = key.split("/", 2)
    if len(parts) == 3 and parts[0] == REGIONS_PREFIX and _REGION.match(parts[1]):
        return parts[1]
    return None


def region_of(store: BlobStore, key: str, *, default: str) -> str:
    """The region a stored blob lives in (`default`: the local store's one region)."""
    if isinstance(store, RegionalBlobStore):
        return store.split(key)[0]
    return default
