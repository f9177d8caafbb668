"""Dataset key custody: rotation without downtime, re-encryption, crypto-shredding.

Rotation adds a key version; new writes use it at once, old data stays readable under the
version its row names. `reencrypt_dataset` then moves each asset (original blob and sealed
private metadata) to the newest version, one asset per transaction, and retires old versions
once nothing uses them. Shredding destroys every key and secret of a dataset, deletes its vault
entries and encrypted originals, and rotates the master key so backups of the old wrapped rows
can no longer be unwrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import NotFound
from gateway.core.keys import KeyPurpose, asset_aad
from gateway.core.models import Asset, AssetState, Dataset, DatasetKey, Job, JobState
from gateway.core.storage import put_cleared, region_of
from gateway.lineage import Action, Actor, recorder
from gateway.policy.derived import candidate_key_versions
from gateway.policy.enforcement import reseal_clearance
from gateway.pseudonymisation.master_rotation import (
    ensure_master_rotatable,
    ensure_region_holds,
    rotate_master_key,
)
from gateway.pseudonymisation.tables import DatasetSecret, VaultEntry
from gateway.review.models import ReviewCandidate


def rotate_dataset_key(ctx: GatewayContext, dataset_id: str, *, actor: Actor) -> int:
    with transaction(ctx.engine) as session:
        _dataset(session, dataset_id)
        previous = ctx.keys.dataset_key(session, dataset_id).version
        version = ctx.keys.create_dataset_key(session, dataset_id, now=ctx.clock())
        _record(
            ctx,
            session,
            Action.DATASET_KEY_ROTATED,
            dataset_id,
            actor,
            {"from": previous, "to": version},
        )
    return version


def reencrypt_dataset(ctx: GatewayContext, dataset_id: str, *, actor: Actor) -> int:
    """Re-seal every asset still on an older key version; returns how many moved."""
    moved = 0
    while True:
        with transaction(ctx.engine) as session:
            current = ctx.keys.dataset_key(session, dataset_id).version
            asset_id = session.exec(
                select(Asset.id).where(
                    Asset.dataset_id == dataset_id,
                    col(Asset.key_version).is_not(None),
                    col(Asset.key_version) < current,
                    # a queued or running job reads the original under the version it saw:
                    # leave those assets for the next run (no downtime for the pipeline)
                    col(Asset.state).not_in([AssetState.RECEIVED, AssetState.PROCESSING]),
                )
            ).first()
        if asset_id is None:
            break
        _reencrypt_asset(ctx, asset_id)
        moved += 1
    with transaction(ctx.engine) as session:
        retired = _retire_unused_versions(ctx, session, dataset_id)
        _record(
            ctx,
            session,
            Action.DATASET_KEY_REENCRYPTED,
            dataset_id,
            actor,
            {"assets": moved, "retired_versions": retired},
        )
    return moved


def _reencrypt_asset(ctx: GatewayContext, asset_id: str) -> None:
    """New blob under a new name first, then the row, then the old blob: a crash leaves at
    most an orphan blob, never an asset whose key version does not match its ciphertext."""
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.key_version is not None  # noqa: S101
        old = ctx.keys.dataset_key(session, asset.dataset_id, version=asset.key_version)
        new = ctx.keys.dataset_key(session, asset.dataset_id)
        old_blob = asset.original_blob
        if old_blob is not None and ctx.store.exists(old_blob):
            plain = crypto.unseal(
                ctx.store.get(old_blob),
                key=old.subkey(KeyPurpose.AT_REST),
                aad=asset_aad("original", asset.id, old),
            )
            new_blob = f"{old_blob.split('.v', 1)[0].removesuffix('.bin')}.v{new.version}.bin"
            # re-sealed in place: same bucket as the old blob, so no move to check residency
            # of (the old blob goes once the row names the new one)
            region = region_of(ctx.store, old_blob, default=ctx.settings.region)
            put_cleared(
                ctx.store,
                new_blob,
                crypto.seal(
                    plain,
                    key=new.subkey(KeyPurpose.AT_REST),
                    aad=asset_aad("original", asset.id, new),
                ),
                reseal_clearance(asset.dataset_id, region),
            )
            asset.original_blob = new_blob
        if asset.private_meta is not None:
            meta = crypto.unseal(
                asset.private_meta,
                key=old.subkey(KeyPurpose.AT_REST),
                aad=asset_aad("private-meta", asset.id, old),
            )
            asset.private_meta = crypto.seal(
                meta,
                key=new.subkey(KeyPurpose.AT_REST),
                aad=asset_aad("private-meta", asset.id, new),
            )
        asset.key_version = new.version
        session.add(asset)
    if old_blob is not None and old_blob != asset.original_blob:
        ctx.store.delete(old_blob)


def _retire_unused_versions(ctx: GatewayContext, session: Session, dataset_id: str) -> list[int]:
    current = ctx.keys.dataset_key(session, dataset_id).version
    used = set(session.exec(select(Asset.key_version).where(Asset.dataset_id == dataset_id)).all())
    used |= candidate_key_versions(session, dataset_id)  # kept until the review ends
    retired = []
    for row in ctx.keys.dataset_key_versions(session, dataset_id):
        if row.version < current and row.wrapped is not None and row.version not in used:
            row.wrapped, row.shredded_at = None, ctx.clock()
            session.add(row)
            retired.append(row.version)
    return retired


@dataclass(frozen=True, slots=True)
class ShredReport:
    dataset_id: str
    key_versions: int
    secrets: int
    vault_entries: int
    originals_deleted: int
    master_key_id: str


def shred_dataset(
    ctx: GatewayContext, dataset_id: str, *, actor: Actor, reason: str
) -> ShredReport:
    """Make the dataset's originals, vault entries and keyed digests permanently unreadable."""
    ensure_master_rotatable(ctx)  # refuse before destroying anything, not half-way through
    with transaction(ctx.engine) as session:
        _dataset(session, dataset_id)
        now = ctx.clock()
        key_rows = [
            r
            for r in session.exec(
                select(DatasetKey).where(DatasetKey.dataset_id == dataset_id)
            ).all()
            if r.wrapped is not None
        ]
        if ctx.keys.kms is not None:  # per-region custody: only the key's region shreds
            ensure_region_holds(ctx, [r.master_key_id for r in key_rows])
        for key_row in key_rows:
            key_row.wrapped, key_row.shredded_at = None, now
            session.add(key_row)
        secret_rows = [
            r
            for r in session.exec(
                select(DatasetSecret).where(DatasetSecret.dataset_id == dataset_id)
            ).all()
            if r.wrapped is not None
        ]
        for secret_row in secret_rows:
            secret_row.wrapped, secret_row.shredded_at = None, now
            session.add(secret_row)
        entries = session.exec(select(VaultEntry).where(VaultEntry.dataset_id == dataset_id)).all()
        for entry in entries:
            session.delete(entry)
        blobs, candidates = [], []
        for asset in session.exec(select(Asset).where(Asset.dataset_id == dataset_id)).all():
            if asset.original_blob is not None:
                blobs.append(asset.original_blob)
            asset.original_blob, asset.private_meta = None, None
            session.add(asset)
            candidate = session.get(ReviewCandidate, asset.id)  # sealed masked pixels: they go
            if candidate is not None:
                candidates.append(candidate.blob)
                session.delete(candidate)
        cancelled = _cancel_jobs(session, dataset_id, now=now)
        params = {
            "key_versions": len(key_rows),
            "secrets": len(secret_rows),
            "vault_entries": len(entries),
            "originals": len(blobs),
            "review_candidates": len(candidates),
            "jobs_cancelled": cancelled,
            "reason": reason,
        }
        _record(ctx, session, Action.DATASET_CRYPTO_SHREDDED, dataset_id, actor, params)
    deleted = sum(1 for blob in blobs if ctx.store.delete(blob))
    for blob in candidates:
        ctx.store.delete(blob)
    rotate_master_key(ctx, actor=actor, reason=f"crypto-shredding of dataset {dataset_id}")
    scrub_database(ctx)
    return ShredReport(
        dataset_id, len(key_rows), len(secret_rows), len(entries), deleted, ctx.keys.master.key_id
    )


def _cancel_jobs(session: Session, dataset_id: str, *, now: datetime) -> int:
    """Queued or running jobs of a shredded dataset can never decrypt their original."""
    jobs = session.exec(
        select(Job)
        .join(Asset, col(Asset.id) == col(Job.asset_id))
        .where(
            Asset.dataset_id == dataset_id,
            col(Job.state).in_([JobState.QUEUED, JobState.RUNNING]),
        )
    ).all()
    for job in jobs:
        job.state, job.error, job.updated_at = JobState.FAILED, "dataset crypto-shredded", now
        session.add(job)
    return len(jobs)


def scrub_database(ctx: GatewayContext) -> None:
    """Push freed rows out of the database files: SQLite checkpoints its WAL into the main file
    (secure_delete zeroes freed pages); PostgreSQL vacuums the dead tuples of key tables."""
    if ctx.engine.dialect.name == "sqlite":
        raw = ctx.engine.raw_connection()  # outside any transaction (no BEGIN IMMEDIATE)
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
        return
    with ctx.engine.connect() as plain:
        conn = plain.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("datasetkey", "dataset_secret", "vault_entry", "asset", "gateway_secret"):
            conn.execute(text(f"VACUUM {table}"))


def _dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("no such dataset", dataset_id=dataset_id)
    return dataset


def _record(
    ctx: GatewayContext,
    session: Session,
    action: Action,
    dataset_id: str,
    actor: Actor,
    params: dict[str, object],
) -> None:
    recorder(ctx, session, actor).record(
        action, entity=dataset_id, dataset=dataset_id, parameters=params
    )
