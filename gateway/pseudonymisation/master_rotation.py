"""Master-key rotation: every master-wrapped secret is re-wrapped under a new key, in one
database transaction, and the old key is destroyed.

Crash-safe order: (1) the new key is written to `<key file>.new` (fsync); (2) one transaction
re-wraps dataset keys, dataset secrets, gateway secrets, lineage signing keys and Label Studio
destination tokens and records the rotation in lineage; (3) the new file replaces the old one
(atomic rename; the old key's bytes are overwritten first). A crash before (2) commits leaves
the old key in force (the stale `.new` is overwritten next time); a crash after it is finished
by `load_master_key(want=...)`, which moves the pending key into place when the database uses it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import Session, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import KeyCustodyRefused, KeyUnavailable
from gateway.core.keys import (
    KeyProvider,
    LocalMasterKey,
    MasterKey,
    gateway_secret_aad,
    pending_key_file,
)
from gateway.core.models import DatasetKey, GatewaySecret
from gateway.lineage import Action, Actor, recorder
from gateway.lineage.signing import all_keys, rewrap_signing_keys
from gateway.pseudonymisation.dataset_secrets import dataset_secret_aad
from gateway.pseudonymisation.tables import DatasetSecret
from gateway.scaleout.kms import KmsMasterKey, key_region

KeyFilter = Callable[[str], bool]


def rotate_master_key(ctx: GatewayContext, *, actor: Actor, reason: str) -> dict[str, int]:
    """Rotate the local master key file; returns how many secrets of each kind were re-wrapped.
    With a key service: rotate this region's key there (`rotate_region_key`)."""
    if ctx.keys.kms is not None:
        return rotate_region_key(ctx, actor=actor, reason=reason)
    ensure_master_rotatable(ctx)
    path = ctx.settings.resolved_master_key_file
    old = ctx.keys.master
    secret = os.urandom(crypto.KEY_BYTES)
    new = LocalMasterKey(secret)
    _write_key_file(pending_key_file(path), secret)
    with transaction(ctx.engine) as session:
        counts = rewrap_all(session, ctx.keys, new=new)
        recorder(ctx, session, actor).record(
            Action.MASTER_KEY_ROTATED,
            entity=new.key_id,
            inputs={"previous_master_key_id": old.key_id},
            parameters={"reason": reason, **{f"rewrapped_{k}": v for k, v in counts.items()}},
        )
    _destroy_key_file(path)
    os.replace(pending_key_file(path), path)
    _fsync_dir(path.parent)
    ctx.keys.master = new
    return counts


def ensure_master_rotatable(ctx: GatewayContext) -> None:
    if ctx.keys.kms is not None:
        return  # the key service rotates this region's key (rotate_region_key)
    if ctx.settings.master_key is not None:
        raise KeyUnavailable(
            "the master key comes from GATEWAY_MASTER_KEY, which the gateway cannot rotate; "
            "use a key file (GATEWAY_MASTER_KEY_FILE) or rotate it in your secret manager first"
        )


def rewrap_all(session: Session, keys: KeyProvider, *, new: MasterKey) -> dict[str, int]:
    counts = {
        "dataset_keys": _rewrap_dataset_keys(session, keys, new),
        "dataset_secrets": _rewrap_dataset_secrets(session, keys, new),
        "gateway_secrets": _rewrap_gateway_secrets(session, keys, new),
        "lineage_signing_keys": _rewrap_signing_keys(session, keys, new),
        "destination_tokens": _rewrap_destination_tokens(session, keys, new),
    }
    session.flush()
    return counts


def _rewrap_dataset_keys(
    session: Session, keys: KeyProvider, new: MasterKey, *, only: KeyFilter | None = None
) -> int:
    """`only`: re-wrap just the rows whose wrapping key it accepts (one region's key)."""
    count = 0
    for row in session.exec(select(DatasetKey)).all():
        if row.wrapped is None or row.master_key_id == new.key_id:
            continue
        if only is not None and not only(row.master_key_id):
            continue
        aad = f"lpg/v1/dataset-key/{row.dataset_id}/v{row.version}".encode()
        plain = keys.unwrap(row.wrapped, aad=aad, master_key_id=row.master_key_id)
        row.wrapped, row.master_key_id = new.wrap(plain, aad=aad), new.key_id
        session.add(row)
        count += 1
    return count


def _rewrap_dataset_secrets(
    session: Session, keys: KeyProvider, new: MasterKey, *, only: KeyFilter | None = None
) -> int:
    """`only`: re-wrap just the rows whose wrapping key it accepts (one region's key)."""
    count = 0
    for row in session.exec(select(DatasetSecret)).all():
        if row.wrapped is None or row.master_key_id == new.key_id:
            continue
        if only is not None and not only(row.master_key_id):
            continue
        aad = dataset_secret_aad(row.dataset_id, row.purpose, row.version)
        plain = keys.unwrap(row.wrapped, aad=aad, master_key_id=row.master_key_id)
        row.wrapped, row.master_key_id = new.wrap(plain, aad=aad), new.key_id
        session.add(row)
        count += 1
    return count


def _rewrap_gateway_secrets(session: Session, keys: KeyProvider, new: MasterKey) -> int:
    count = 0
    for row in session.exec(select(GatewaySecret)).all():
        if row.master_key_id == new.key_id:
            continue
        aad = gateway_secret_aad(row.purpose)
        plain = keys.unwrap(row.wrapped, aad=aad, master_key_id=row.master_key_id)
        row.wrapped, row.master_key_id = new.wrap(plain, aad=aad), new.key_id
        session.add(row)
        count += 1
    return count


def _rewrap_signing_keys(session: Session, keys: KeyProvider, new: MasterKey) -> int:
    for row in all_keys(session):  # each row must be under the loaded key (or reloadable)
        if row.wrapped is not None and row.master_key_id != new.key_id:
            keys.master_for(row.master_key_id)
    return rewrap_signing_keys(session, old=keys.master, new=new)


def _rewrap_destination_tokens(session: Session, keys: KeyProvider, new: MasterKey) -> int:
    """Label Studio API tokens: column `token_sealed`, aad names the destination."""
    columns = {c["name"] for c in inspect(session.connection()).get_columns("destination")}
    if "master_key_id" not in columns:
        return 0
    rows = session.execute(text("SELECT id, token_sealed, master_key_id FROM destination")).all()
    count = 0
    for dest_id, sealed, key_id in rows:
        if key_id == new.key_id or sealed is None:
            continue
        aad = f"lpg/v1/destination-token/{dest_id}".encode()
        # rows written before the column existed were wrapped by the key loaded then
        plain = keys.unwrap(bytes(sealed), aad=aad, master_key_id=key_id or keys.master.key_id)
        session.execute(
            text("UPDATE destination SET token_sealed = :t, master_key_id = :k WHERE id = :i"),
            {"t": new.wrap(plain, aad=aad), "k": new.key_id, "i": dest_id},
        )
        count += 1
    return count


def _write_key_file(path: Path, secret: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secret).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(path.parent)


def _destroy_key_file(path: Path) -> None:
    """Overwrite the old key's bytes before the rename drops them (best effort: journaling
    file systems and SSDs may keep copies; the README says what that means)."""
    if not path.exists():
        return
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Rotating a region's master key at the key service (gateway.scaleout.kms), for rotation and
# crypto-shredding.
# (1) the service makes a new version of this region's key (this process's credential names
# the region); (2) one database transaction re-wraps every dataset key and secret wrapped under
# an older version of it and records `master-key.rotated`; (3) the older versions are retired
# at the service, after which nothing wrapped under them (a backup's rows) opens again. A crash
# before (2) commits leaves the old version in use and live (run it again); after (2), the
# retirement is repeated by the next rotation (retiring twice is a no-op). Other replicas need
# no restart: they ask the service for the current version whenever they wrap, and unwrap by
# the version each row names.


def rotate_region_key(ctx: GatewayContext, *, actor: Actor, reason: str) -> dict[str, int]:
    client, region = ctx.keys.kms, ctx.keys.custody_region
    if client is None:
        raise KeyUnavailable("no key service is configured (GATEWAY_KMS_URL)")
    if region is None:
        raise KeyCustodyRefused(
            "this process holds the gateway-wide credential only: rotate a region's key from "
            "a process of that region"
        )
    new = KmsMasterKey(client, str(client.call("rotate")["key_id"]))

    def mine(key_id: str) -> bool:
        return key_region(key_id) == region

    with transaction(ctx.engine) as session:
        counts = {
            "dataset_keys": _rewrap_dataset_keys(session, ctx.keys, new, only=mine),
            "dataset_secrets": _rewrap_dataset_secrets(session, ctx.keys, new, only=mine),
        }
        recorder(ctx, session, actor).record(
            Action.MASTER_KEY_ROTATED,
            entity=new.key_id,
            inputs={"key_service_region": region},
            parameters={"reason": reason, **{f"rewrapped_{k}": v for k, v in counts.items()}},
        )
    version = int(new.key_id.rsplit(":", 1)[1])
    for old in range(1, version):
        client.call("retire", key_id=f"kms:{region}:{old}")
    return counts


def ensure_region_holds(ctx: GatewayContext, master_key_ids: list[str]) -> None:
    """Shredding rotates this process's region key: refuse (before destroying anything) if the
    dataset's keys are another region's, whose old key would then stay live."""
    region = ctx.keys.custody_region
    if region is None:
        if ctx.keys.kms is not None:  # the gateway-wide credential: no region key at all
            raise KeyCustodyRefused(
                "this process holds the gateway-wide credential only: shred the dataset from "
                "a process of the region that holds its keys"
            )
        return
    foreign = sorted({k for k in master_key_ids if key_region(k) not in (None, region)})
    if foreign:
        raise KeyCustodyRefused(
            f"this dataset's keys are held by another region ({', '.join(foreign)}): "
            "shred it from a process of that region",
            region=region,
        )
