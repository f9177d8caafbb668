from __future__ import annotations

import base64
import os

import pytest

from gateway.core import crypto
from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure, KeyUnavailable
from gateway.core.keys import KeyPurpose, LocalMasterKey, load_master_key
from gateway.core.settings import Settings


def test_seal_binds_context() -> None:
    key = os.urandom(32)
    sealed = crypto.seal(b"original pixels", key=key, aad=b"dataset-a/asset-1/v1")
    assert crypto.unseal(sealed, key=key, aad=b"dataset-a/asset-1/v1") == b"original pixels"
    with pytest.raises(IntegrityFailure):
        crypto.unseal(sealed, key=key, aad=b"dataset-b/asset-1/v1")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IntegrityFailure):
        crypto.unseal(tampered, key=key, aad=b"dataset-a/asset-1/v1")


def test_master_key_must_be_32_bytes() -> None:
    with pytest.raises(KeyUnavailable):
        LocalMasterKey(b"short")


def test_missing_master_key_is_a_clear_error(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(KeyUnavailable, match="privacy-gateway init"):
        load_master_key(settings, create=False)
    created = load_master_key(settings, create=True)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert load_master_key(settings, create=False).key_id == created.key_id


def test_environment_key_wins(tmp_path) -> None:
    raw = os.urandom(32)
    settings = Settings(data_dir=tmp_path, master_key=base64.b64encode(raw).decode())
    assert load_master_key(settings, create=False).key_id == LocalMasterKey(raw).key_id


@pytest.mark.db
def test_dataset_keys_are_wrapped_versioned_and_purpose_bound(ctx, dataset) -> None:
    with transaction(ctx.engine) as s:
        first = ctx.keys.dataset_key(s, dataset.id)
        assert ctx.keys.create_dataset_key(s, dataset.id, now=ctx.clock()) == 2
    with transaction(ctx.engine) as s:
        a, b = ctx.keys.dataset_key(s, dataset.id, version=1), ctx.keys.dataset_key(s, dataset.id)
    assert a == first and b.version == 2
    assert a.secret != b.secret
    subkeys = {a.subkey(p) for p in KeyPurpose} | {b.subkey(p) for p in KeyPurpose}
    assert len(subkeys) == 2 * len(KeyPurpose)
    other = LocalMasterKey(os.urandom(32))
    from gateway.core.keys import KeyProvider

    with transaction(ctx.engine) as s, pytest.raises(KeyUnavailable, match="not loaded"):
        KeyProvider(other).dataset_key(s, dataset.id)  # rows name the master key that wrapped them
    with transaction(ctx.engine) as s:  # a key claiming the right id still cannot unwrap
        row = ctx.keys.dataset_key_versions(s, dataset.id)[0]
        other.key_id = row.master_key_id
        with pytest.raises(IntegrityFailure):
            KeyProvider(other).dataset_key(s, dataset.id, version=1)
