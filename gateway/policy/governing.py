"""Which policy governs a dataset: its bound version, else the activated default, else the
shipped `gateway/policies/default.yaml`. Nothing found (or an invalid file): PolicyMissing."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from gateway.core.errors import NotFound
from gateway.core.models import Dataset, PolicyVersion
from gateway.policy.document import policy_digest
from gateway.policy.errors import PolicyInvalid, PolicyMissing
from gateway.policy.loader import load_policy_file
from gateway.policy.schema import PolicyDocument
from gateway.policy.tables import refuse_changes_after_activation
from gateway.shipped import shipped_path

__all__ = ["GoverningPolicy", "governing_policy", "refuse_changes_after_activation"]

DEFAULT_POLICY_NAME = "default"
DEFAULT_POLICY_FILE = shipped_path("policies", "default.yaml")


@dataclass(frozen=True, slots=True)
class GoverningPolicy:
    document: PolicyDocument
    name: str
    digest: str
    source: str  # "dataset-binding" | "default-version" | "default-file"
    version_id: str | None = None
    version: int | None = None

    def reference(self) -> dict[str, Any]:
        """What lineage records name: never the document itself, only its identity."""
        ref: dict[str, Any] = {"policy": self.name, "policy_sha256": self.digest}
        if self.version is not None:
            ref |= {"policy_version": self.version, "policy_version_id": self.version_id}
        return ref


def governing_policy(
    session: Session, dataset_id: str, *, default_file: Path = DEFAULT_POLICY_FILE
) -> GoverningPolicy:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"no dataset {dataset_id!r}", dataset=dataset_id)
    if dataset.policy_version_id is not None:
        row = session.get(PolicyVersion, dataset.policy_version_id)
        if row is None or row.activated_at is None:
            raise PolicyMissing(
                "the dataset's policy version is missing or was never activated",
                dataset=dataset_id,
                policy_version_id=dataset.policy_version_id,
            )
        return from_version(row, source="dataset-binding")
    default = latest_active(session, DEFAULT_POLICY_NAME)
    if default is not None:
        return from_version(default, source="default-version")
    return default_from_file(default_file)


def latest_active(session: Session, name: str) -> PolicyVersion | None:
    return session.exec(
        select(PolicyVersion)
        .where(PolicyVersion.name == name, col(PolicyVersion.activated_at).is_not(None))
        .order_by(col(PolicyVersion.version).desc())
        .limit(1)
    ).first()


def from_version(row: PolicyVersion, *, source: str) -> GoverningPolicy:
    doc = _version_document(row.id, row.digest, row)
    return GoverningPolicy(doc, row.name, row.digest, source, row.id, row.version)


_VERSIONS: dict[tuple[str, str], PolicyDocument] = {}
_MAX_CACHED = 256


def _version_document(version_id: str, digest: str, row: PolicyVersion) -> PolicyDocument:
    """Parsed once per process: an activated version never changes (keyed by id and digest)."""
    cached = _VERSIONS.get((version_id, digest))
    if cached is not None:
        return cached
    try:
        doc = PolicyDocument.model_validate(row.document)
    except ValueError as exc:  # a stored document that no longer validates: fail closed
        raise PolicyMissing(
            f"policy {row.name} v{row.version} no longer validates; activate a new version",
            policy_version_id=row.id,
        ) from exc
    if row.activated_at is not None:
        if len(_VERSIONS) >= _MAX_CACHED:
            _VERSIONS.pop(next(iter(_VERSIONS)))
        _VERSIONS[(version_id, digest)] = doc
    return doc


def default_from_file(path: Path) -> GoverningPolicy:
    try:
        stat = path.stat()
    except OSError:
        raise PolicyMissing(
            f"no policy is bound to the dataset and the default policy file {path} is missing",
            file=str(path),
        ) from None
    return _default_from_file(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _default_from_file(path: Path, mtime_ns: int, size: int) -> GoverningPolicy:
    """Parsed once per version of the file (an edited file has a new mtime or size)."""
    del mtime_ns, size  # the cache key only
    try:
        doc = load_policy_file(path)
    except PolicyInvalid as exc:
        raise PolicyMissing(
            f"the default policy file is invalid: {exc.message}", file=str(path)
        ) from exc
    return GoverningPolicy(doc, doc.name, policy_digest(doc), "default-file")
