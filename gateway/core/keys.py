"""Key custody: one master key wraps per-dataset keys; purpose-bound subkeys come from HKDF.

The master key source is an interface: a local file or environment variable is the embedded
default; a key service with one master key per region (`gateway.scaleout.kms`) implements the
same `MasterKey` protocol. Then dataset keys are wrapped under the region's key (`data_master`)
and gateway-wide secrets under the service's gateway-wide key (`master`).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.clock import utc_now
from gateway.core.errors import KeyUnavailable
from gateway.core.filemodes import private_dir
from gateway.core.models import DatasetKey, GatewaySecret
from gateway.core.settings import Settings

if TYPE_CHECKING:
    from gateway.scaleout.kms import KmsClient


class KeyPurpose(StrEnum):
    """Subkeys of the versioned (rotating) dataset key. Secrets that must stay stable for the
    dataset's life (pseudonyms, keyed digests, the vault key) are separate dataset secrets:
    `gateway.pseudonymisation.dataset_secrets`."""

    AT_REST = "at-rest-encryption"


class MasterKey(Protocol):
    """Wraps and unwraps data keys. Implementations: LocalMasterKey; a KMS client later."""

    key_id: str

    def wrap(self, plaintext: bytes, *, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes: ...

    def derive_gateway_key(self, *, purpose: str) -> bytes: ...


class LocalMasterKey:
    """A 256-bit master key held in this process (from a file or the environment)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != crypto.KEY_BYTES:
            raise KeyUnavailable("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._kek = crypto.derive(secret, info=b"lpg/v1/master/key-wrapping")
        self._secret = secret
        self.key_id = crypto.sha256_hex(crypto.derive(secret, info=b"lpg/v1/master/key-id"))[:16]

    def wrap(self, plaintext: bytes, *, aad: bytes) -> bytes:
        return crypto.seal(plaintext, key=self._kek, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        return crypto.unseal(wrapped, key=self._kek, aad=aad)

    def derive_gateway_key(self, *, purpose: str) -> bytes:
        return crypto.derive(self._secret, info=b"lpg/v1/gateway/" + purpose.encode())


def pending_key_file(path: Path) -> Path:
    """Where a master-key rotation writes the new key until the database is re-wrapped."""
    return path.with_name(path.name + ".new")


def load_master_key(settings: Settings, *, create: bool, want: str | None = None) -> LocalMasterKey:
    """Environment first, then the key file; `create` makes a new file (mode 0600) if absent.

    `want` names the key the database uses. If a rotation stopped after the database was
    re-wrapped but before the new key file replaced the old one, the pending file holds that
    key: it is moved into place now (the old key is destroyed), finishing the rotation.
    """
    if settings.master_key is not None:
        return LocalMasterKey(_decode_key(settings.master_key.get_secret_value(), "environment"))
    path = settings.resolved_master_key_file
    pending = pending_key_file(path)
    if want is not None and pending.exists():
        candidate = LocalMasterKey(_decode_key(pending.read_text().strip(), str(pending)))
        if candidate.key_id == want:
            os.replace(pending, path)
            return candidate
    if not path.exists():
        if not create:
            raise KeyUnavailable(
                f"no master key: set GATEWAY_MASTER_KEY or create {path} "
                "(`privacy-gateway init` makes one)",
                path=str(path),
            )
        _write_new_key(path)
    return LocalMasterKey(_decode_key(path.read_text().strip(), str(path)))


def _write_new_key(path: Path) -> None:
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(os.urandom(crypto.KEY_BYTES)).decode() + "\n")


def _decode_key(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyUnavailable(f"master key in {where} is not valid base64") from exc


@dataclass(frozen=True, slots=True)
class DatasetKeyMaterial:
    dataset_id: str
    version: int
    secret: bytes

    def subkey(self, purpose: KeyPurpose) -> bytes:
        info = f"lpg/v1/dataset/{self.dataset_id}/v{self.version}/{purpose}".encode()
        return crypto.derive(self.secret, info=info)


class KeyProvider:
    """Per-dataset keys, wrapped by the master key and stored in the database.

    Every wrapped row names the master key that wrapped it. When a row names another key than
    the one loaded (another process rotated the master key), `reload` loads the current one,
    so running services keep working through a rotation.
    """

    def __init__(
        self,
        master: MasterKey,
        *,
        reload: Callable[[str], MasterKey] | None = None,
        data_master: Callable[[], MasterKey] | None = None,
        resolve: Callable[[str], MasterKey] | None = None,
    ) -> None:
        """`data_master` gives the key that wraps new dataset keys and secrets, asked each
        time (a key service's current version; default: `master`); `resolve` names any other
        key by id (a key service, which decides whether this process may use it)."""
        self.master = master
        self._data_master = data_master
        self._reload = reload
        self._resolve = resolve
        self._resolved: dict[str, MasterKey] = {}
        self._pepper: bytes | None = None
        self.custody_region: str | None = None  # set by a per-region key service
        self.kms: KmsClient | None = None  # its client (rotation), when one is configured

    @property
    def data_master(self) -> MasterKey:
        """The key that wraps dataset keys and dataset secrets this process creates (read it
        once per wrap: its id and its wrap must agree)."""
        return self._data_master() if self._data_master is not None else self.master

    def attach(self, engine: Engine) -> KeyProvider:
        """Load the gateway-wide secrets kept (wrapped) in the database; call once at start."""
        self._pepper = gateway_secret(engine, self, purpose="api-key-hash")
        return self

    def master_for(self, master_key_id: str) -> MasterKey:
        """The loaded master key if it is `master_key_id`, reloading once if it is not."""
        if self.master.key_id != master_key_id and self._resolve is not None:
            if master_key_id not in self._resolved:
                self._resolved[master_key_id] = self._resolve(master_key_id)
            return self._resolved[master_key_id]
        if self.master.key_id != master_key_id and self._reload is not None:
            self.master = self._reload(master_key_id)
        if self.master.key_id != master_key_id:
            raise KeyUnavailable(
                "this secret is wrapped under a master key that is not loaded",
                wrapped_under=master_key_id,
                loaded=self.master.key_id,
            )
        return self.master

    def unwrap(self, wrapped: bytes, *, aad: bytes, master_key_id: str) -> bytes:
        return self.master_for(master_key_id).unwrap(wrapped, aad=aad)

    @staticmethod
    def _aad(dataset_id: str, version: int) -> bytes:
        return f"lpg/v1/dataset-key/{dataset_id}/v{version}".encode()

    def create_dataset_key(self, session: Session, dataset_id: str, *, now: datetime) -> int:
        latest = self._latest_row(session, dataset_id)
        version = 1 if latest is None else latest.version + 1
        secret = os.urandom(crypto.KEY_BYTES)
        wrapping = self.data_master
        row = DatasetKey(
            dataset_id=dataset_id,
            version=version,
            master_key_id=wrapping.key_id,
            wrapped=wrapping.wrap(secret, aad=self._aad(dataset_id, version)),
            created_at=now,
        )
        session.add(row)
        session.flush()
        return version

    def dataset_key(
        self, session: Session, dataset_id: str, *, version: int | None = None
    ) -> DatasetKeyMaterial:
        row = (
            self._latest_row(session, dataset_id)
            if version is None
            else session.exec(
                select(DatasetKey).where(
                    DatasetKey.dataset_id == dataset_id, DatasetKey.version == version
                )
            ).first()
        )
        if row is None or row.wrapped is None:
            raise KeyUnavailable(
                "the dataset's key does not exist or was shredded",
                dataset_id=dataset_id,
                version=version,
            )
        secret = self.unwrap(
            row.wrapped, aad=self._aad(dataset_id, row.version), master_key_id=row.master_key_id
        )
        return DatasetKeyMaterial(dataset_id, row.version, secret)

    def dataset_key_versions(self, session: Session, dataset_id: str) -> list[DatasetKey]:
        stmt = select(DatasetKey).where(DatasetKey.dataset_id == dataset_id)
        return list(session.exec(stmt.order_by(col(DatasetKey.version))).all())

    @staticmethod
    def _latest_row(session: Session, dataset_id: str) -> DatasetKey | None:
        stmt = (
            select(DatasetKey)
            .where(DatasetKey.dataset_id == dataset_id)
            .order_by(col(DatasetKey.version).desc())
        )
        return session.exec(stmt).first()

    def api_key_pepper(self) -> bytes:
        """The API-key hashing pepper. Once `attach`ed it is a random secret stored wrapped in
        the database (it outlives master-key rotation); before, derived from the master key."""
        if self._pepper is None:
            return self.master.derive_gateway_key(purpose="api-key-hash")
        return self._pepper


def asset_aad(kind: str, asset_id: str, key: DatasetKeyMaterial) -> bytes:
    """AES-GCM associated data of one asset's sealed data: binds the ciphertext to its kind
    (original, private-meta), dataset, asset and key version, so nothing can be swapped."""
    return f"lpg/v1/{kind}/{key.dataset_id}/{asset_id}/v{key.version}".encode()


# Gateway-wide secrets stored wrapped by the master key (they survive its rotation).


def gateway_secret_aad(purpose: str) -> bytes:
    return f"lpg/v1/gateway-secret/{purpose}".encode()


def gateway_secret(engine: Engine, keys: KeyProvider, *, purpose: str) -> bytes:
    """Read the secret for `purpose`, creating it on first use (race-safe: one insert wins)."""
    for _ in range(2):
        with Session(engine, expire_on_commit=False) as session:
            row = session.get(GatewaySecret, purpose)
            if row is not None:
                return keys.unwrap(
                    row.wrapped, aad=gateway_secret_aad(purpose), master_key_id=row.master_key_id
                )
            secret = os.urandom(crypto.KEY_BYTES)
            session.add(
                GatewaySecret(
                    purpose=purpose,
                    master_key_id=keys.master.key_id,
                    wrapped=keys.master.wrap(secret, aad=gateway_secret_aad(purpose)),
                    created_at=utc_now(),
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
            return secret
    raise RuntimeError("could not read or create the gateway secret")  # pragma: no cover
