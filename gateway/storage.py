"""Blob storage: a local directory by default (S3-compatible stores later, same interface).

Writes are atomic (temporary file, fsync, rename), so a killed process never leaves a
half-written blob under its final name.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from gateway.errors import NotFound
from gateway.filemodes import private_dir

log = logging.getLogger(__name__)
_SAFE_KEY = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_.\-]*)*$")


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
        # keys are built by the gateway from ids and hex digests; refuse anything else outright
        if not _SAFE_KEY.match(key) or ".." in key:
            raise ValueError(f"unsafe blob key: {key!r}")
        return self.root / key

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
