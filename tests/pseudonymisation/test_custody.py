"""Key custody: rotation without downtime, re-encryption, crypto-shredding with a raw scan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, IntegrityFailure, KeyUnavailable
from gateway.core.keys import LocalMasterKey, load_master_key
from gateway.core.models import Asset, Dataset, DatasetKey, Role
from gateway.datasets import DatasetSpec, create_dataset
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import RedactionOutcome, drain
from gateway.pseudonymisation.custody import reencrypt_dataset, rotate_dataset_key, shred_dataset
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.tables import DatasetSecret, VaultEntry
from gateway.pseudonymisation.task_meta import pseudonym, task_metadata
from gateway.pseudonymisation.vault import read_vault
from tests.conftest import DATASET_SPEC
from tests.pseudonymisation.test_task_metadata import exif_jpeg

pytestmark = pytest.mark.db
ADMIN = Actor("cli", "test-admin")
IDENTIFIERS = ("mila_kowalski.jpg", "subject-8812", "uploader@example.org", "SN-1234567")


@pytest.fixture
def file_ctx(settings, clock):
    """A gateway whose master key lives in a file (the one that rotation replaces)."""
    local = settings.model_copy(update={"master_key": None})
    ctx = GatewayContext.open(local, create_master_key=True)
    ctx.clock = clock
    yield ctx
    ctx.close()


def _dataset(ctx, name: str) -> str:
    spec = DatasetSpec.model_validate(DATASET_SPEC | {"name": name})
    with transaction(ctx.engine) as s:
        return create_dataset(s, ctx, spec, actor=ADMIN).id


def _ingest(ctx, dataset_id: str, data: bytes, **kw) -> str:
    with transaction(ctx.engine) as s:
        ds = s.get(Dataset, dataset_id)
        return ingest_upload(s, ctx, ds, Upload(data=data, **kw), actor=ADMIN).asset_id


class DecryptsOnly:
    """Checks the pipeline can decrypt each original, then quarantines (releases nothing)."""

    def redact(self, data: bytes) -> RedactionOutcome:
        assert data.startswith(b"\xff\xd8")
        return RedactionOutcome(released=False, output=None, extension="")


def test_rotation_keeps_old_data_readable_and_reencrypts(file_ctx) -> None:
    ctx = file_ctx
    ds = _dataset(ctx, "rotating")
    old_asset = _ingest(ctx, ds, exif_jpeg(), filename="a.jpg", subject_id="s-1")
    assert rotate_dataset_key(ctx, ds, actor=ADMIN) == 2
    new_asset = _ingest(ctx, ds, exif_jpeg()[:-2] + b"\x00\xff\xd9", filename="b.jpg")
    with transaction(ctx.engine) as s:
        old, new = s.get(Asset, old_asset), s.get(Asset, new_asset)
        assert (old.key_version, new.key_version) == (1, 2)  # new writes use the new version
        assert task_metadata(ctx, s, old)["width"] == 30  # old data stays readable
    assert reencrypt_dataset(ctx, ds, actor=ADMIN) == 0  # its job is still queued: left alone
    assert drain(ctx, redactor=DecryptsOnly()) == 2  # both versions decrypt in the pipeline
    assert reencrypt_dataset(ctx, ds, actor=ADMIN) == 1
    with transaction(ctx.engine) as s:
        old = s.get(Asset, old_asset)
        assert old.key_version == 2 and old.original_blob.endswith(".v2.bin")
        assert task_metadata(ctx, s, old)["width"] == 30
        v1 = s.exec(
            select(DatasetKey).where(DatasetKey.dataset_id == ds, DatasetKey.version == 1)
        ).one()
        assert v1.wrapped is None  # retired: nothing uses it any more
        old_key = ctx.keys.dataset_key(s, ds, version=2)
        sealed = ctx.store.get(old.original_blob)
    from gateway.core import crypto
    from gateway.core.keys import KeyPurpose, asset_aad

    key = old_key.subkey(KeyPurpose.AT_REST)
    plain = crypto.unseal(sealed, key=key, aad=asset_aad("original", old_asset, old_key))
    assert plain == exif_jpeg()  # the re-encrypted original is the uploaded bytes
    with pytest.raises(IntegrityFailure):  # AAD binds the asset: another asset id fails
        crypto.unseal(
            sealed,
            key=old_key.subkey(KeyPurpose.AT_REST),
            aad=asset_aad("original", new_asset, old_key),
        )


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_crypto_shredding_leaves_nothing_recoverable(file_ctx, tmp_path) -> None:
    ctx = file_ctx
    doomed, kept = _dataset(ctx, "doomed"), _dataset(ctx, "kept")
    photo = exif_jpeg()
    asset_id = _ingest(
        ctx,
        doomed,
        photo,
        filename=IDENTIFIERS[0],
        subject_id=IDENTIFIERS[1],
        uploader=IDENTIFIERS[2],
    )
    kept_asset = _ingest(ctx, kept, photo, filename="other.jpg", subject_id=IDENTIFIERS[1])
    with transaction(ctx.engine) as s:
        alias = pseudonym(
            ctx, s, dataset_id=doomed, field=PseudonymField.SUBJECT_ID, value=IDENTIFIERS[1]
        )
        told = read_vault(
            ctx,
            s,
            dataset_id=doomed,
            pseudonym=alias,
            purpose="erasure request 2026-014",
            role=Role.ADMIN,
            actor=ADMIN,
        )
        assert told.value == IDENTIFIERS[1]
        wrapped_before = [
            r.wrapped
            for r in s.exec(select(DatasetKey).where(DatasetKey.dataset_id == doomed)).all()
        ]
        wrapped_before += [
            r.wrapped
            for r in s.exec(select(DatasetSecret).where(DatasetSecret.dataset_id == doomed)).all()
        ]
        sealed_vault = [
            r.sealed
            for r in s.exec(select(VaultEntry).where(VaultEntry.dataset_id == doomed)).all()
        ]
    from gateway.lineage.signing import public_keys, sign_document, verify_document

    with transaction(ctx.engine) as s:  # a lineage signing key, wrapped by the master key
        envelope = sign_document(ctx, s, {"report": "before"})
    destination_id = _destination(ctx)  # a Label Studio token, wrapped by the master key
    old_master = ctx.keys.master
    old_key_text = ctx.settings.resolved_master_key_file.read_text().strip()
    backup = tmp_path / "backup"  # what a backup taken before shredding holds
    shutil.copytree(ctx.settings.data_dir, backup)

    report = shred_dataset(ctx, doomed, actor=ADMIN, reason="erasure of the whole dataset")
    assert report.key_versions == 1 and report.vault_entries >= 3 and report.originals_deleted == 1
    assert report.master_key_id != old_master.key_id

    # 1. the old master key is gone from disk; the key file holds the new one
    on_disk = load_master_key(ctx.settings, create=False)
    assert on_disk.key_id == report.master_key_id
    for path in _files(ctx.settings.data_dir):
        assert old_key_text.encode() not in path.read_bytes(), path
    # 2. no plaintext identifier anywhere on disk, now or in the backup
    for path in _files(ctx.settings.data_dir) + _files(backup):
        raw = path.read_bytes()
        for value in (*IDENTIFIERS, "ls-token-123"):
            assert value.encode() not in raw, (path, value)
    # 3. the doomed dataset's wrapped keys (from the backup or free pages) do not unwrap with
    #    any key left on disk; its vault ciphertexts have no key at all any more
    for wrapped in wrapped_before:
        for candidate in (on_disk,):
            for aad_row in _all_aads(doomed):
                with pytest.raises(IntegrityFailure):
                    candidate.unwrap(wrapped, aad=aad_row)
    assert sealed_vault
    # 4. the live database and storage refuse everything about it
    with transaction(ctx.engine) as s:
        with pytest.raises(KeyUnavailable):
            ctx.keys.dataset_key(s, doomed)
        with pytest.raises(KeyUnavailable):
            pseudonym(
                ctx, s, dataset_id=doomed, field=PseudonymField.SUBJECT_ID, value=IDENTIFIERS[1]
            )
        with pytest.raises(GatewayError):
            read_vault(
                ctx,
                s,
                dataset_id=doomed,
                pseudonym=alias,
                purpose="erasure request 2026-015",
                role=Role.ADMIN,
                actor=ADMIN,
            )
        asset = s.get(Asset, asset_id)
        assert asset.original_blob is None and asset.private_meta is None
        assert not list((ctx.settings.resolved_storage_dir / "originals" / doomed).rglob("*.bin"))
    # 5. the raw SQLite file and WAL no longer hold the doomed key rows' wrapped bytes
    if ctx.engine.dialect.name == "sqlite":
        db_bytes = b"".join(p.read_bytes() for p in ctx.settings.data_dir.glob("gateway.db*"))
        for wrapped in wrapped_before:
            assert wrapped not in db_bytes
        for sealed in sealed_vault:  # vault ciphertexts are gone too, not only their key
            assert sealed not in db_bytes
    # 6. everything else survived the master-key rotation, also in a freshly started gateway
    reopened = GatewayContext.open(ctx.settings)
    try:
        with transaction(reopened.engine) as s:
            assert task_metadata(reopened, s, s.get(Asset, kept_asset))["width"] == 30
        assert reopened.keys.api_key_pepper() == ctx.keys.api_key_pepper()
        with transaction(reopened.engine) as s:  # the signing key was re-wrapped, not replaced
            after = sign_document(reopened, s, {"report": "after"})
            keys = public_keys(s)
        assert after["key_id"] == envelope["key_id"]
        verify_document({"report": "after"}, after, keys)
        with transaction(reopened.engine) as s:
            from gateway.core.models import Destination
            from gateway.labelstudio.destinations import open_secrets

            dest = s.get(Destination, destination_id)
            assert dest.master_key_id == report.master_key_id
            assert open_secrets(reopened, dest).token == "ls-token-123"
        # the doomed dataset's queued job was cancelled; the kept one still runs
        assert drain(reopened, redactor=DecryptsOnly()) == 1
    finally:
        reopened.close()
    with transaction(ctx.engine) as s:
        from gateway.core.models import LineageRecord

        actions = [r.action for r in s.exec(select(LineageRecord)).all()]
    assert "dataset.crypto-shredded" in actions and "master-key.rotated" in actions
    assert "vault.read" in actions


def _destination(ctx) -> str:
    import uuid

    from gateway.core.models import Destination
    from gateway.labelstudio.destinations import DestinationSecrets, seal_secrets

    dest_id = str(uuid.uuid4())
    with transaction(ctx.engine) as s:
        s.add(
            Destination(
                id=dest_id,
                name="ls-eu",
                url="http://127.0.0.1:1",
                region="eu-de",
                token_sealed=seal_secrets(ctx, dest_id, DestinationSecrets("ls-token-123", "w")),
                master_key_id=ctx.keys.master.key_id,
                created_at=ctx.clock(),
            )
        )
    return dest_id


def _all_aads(dataset_id: str) -> list[bytes]:
    aads = [f"lpg/v1/dataset-key/{dataset_id}/v1".encode()]
    aads += [
        f"lpg/v1/dataset-secret/{dataset_id}/{p}/v1".encode()
        for p in ("pseudonym", "keyed-digest", "vault")
    ]
    return aads


def test_interrupted_master_rotation_is_finished_on_next_start(file_ctx) -> None:
    from gateway.core.keys import pending_key_file
    from gateway.pseudonymisation.master_rotation import rewrap_all

    ctx = file_ctx
    ds = _dataset(ctx, "crashy")
    path = ctx.settings.resolved_master_key_file
    import base64
    import os

    secret = os.urandom(32)
    new = LocalMasterKey(secret)
    pending_key_file(path).write_text(base64.b64encode(secret).decode())
    with transaction(ctx.engine) as s:  # the database was re-wrapped, then the process died
        rewrap_all(s, ctx.keys, new=new)
    reopened = GatewayContext.open(ctx.settings)
    try:
        with transaction(reopened.engine) as s:
            assert reopened.keys.dataset_key(s, ds).version == 1
        assert load_master_key(ctx.settings, create=False).key_id == new.key_id
        assert not pending_key_file(path).exists()
    finally:
        reopened.close()


def test_vault_needs_admin_and_a_purpose(file_ctx) -> None:
    from gateway.core.errors import Forbidden, InvalidRequest

    ctx = file_ctx
    ds = _dataset(ctx, "vaulted")
    _ingest(ctx, ds, exif_jpeg(), filename="x.jpg", subject_id="s-9")
    with transaction(ctx.engine) as s:
        alias = pseudonym(ctx, s, dataset_id=ds, field=PseudonymField.SUBJECT_ID, value="s-9")
        with pytest.raises(Forbidden):
            read_vault(
                ctx,
                s,
                dataset_id=ds,
                pseudonym=alias,
                purpose="audit of request 7",
                role=Role.COMPLIANCE,
                actor=ADMIN,
            )
        with pytest.raises(InvalidRequest):
            read_vault(
                ctx,
                s,
                dataset_id=ds,
                pseudonym=alias,
                purpose="  why ",
                role=Role.ADMIN,
                actor=ADMIN,
            )


def test_shredding_refuses_up_front_when_the_master_key_cannot_rotate(ctx, dataset) -> None:
    # the conftest gateway takes its master key from GATEWAY_MASTER_KEY
    with pytest.raises(KeyUnavailable, match="cannot rotate"):
        shred_dataset(ctx, dataset.id, actor=ADMIN, reason="not possible here")
    with transaction(ctx.engine) as s:
        assert ctx.keys.dataset_key(s, dataset.id).version == 1  # nothing was destroyed


def test_crypto_shredding_deletes_review_candidates(file_ctx) -> None:
    from gateway.review.candidates import candidate_of, keep_candidate

    ctx = file_ctx
    ds = _dataset(ctx, "shredded-in-review")
    asset_id = _ingest(ctx, ds, exif_jpeg(), filename="a.jpg")
    with transaction(ctx.engine) as s:
        kept = keep_candidate(
            ctx,
            s,
            s.get(Asset, asset_id),
            image=b"masked pixels",
            leak_hits=[],
            reasons=[{"code": "leak-detected"}],
            actor=ADMIN,
        )
        assert kept is not None
    shred_dataset(ctx, ds, actor=ADMIN, reason="erasure of the whole dataset")
    with transaction(ctx.engine) as s:
        assert candidate_of(s, asset_id) is None
    with pytest.raises(GatewayError):
        ctx.store.get(kept.blob)
