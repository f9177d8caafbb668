"""What the gateway keeps on disk is its own user's only: the SQLite database (and its WAL and
shared-memory files), the master key and the blob store are 0600 files in 0700 directories,
whatever the umask; a database an earlier version left world-readable is tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from tests.conftest import DATASET_SPEC
from tests.gateway.bad_inputs import good_jpeg

pytestmark = pytest.mark.db


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the common default, under which files come out 0644
    yield
    os.umask(previous)


def test_database_master_key_and_store_are_private(tmp_path: Path, open_umask: None) -> None:
    del open_umask
    data = tmp_path / "fresh" / "data"
    settings = Settings(data_dir=data, region="eu-de")  # SQLite and a master key file
    ctx = GatewayContext.open(settings, create_master_key=True)
    try:
        from gateway.datasets import DatasetSpec, create_dataset

        with transaction(ctx.engine) as s:
            dataset = create_dataset(
                s, ctx, DatasetSpec.model_validate(DATASET_SPEC), actor=Actor("cli", "t")
            )
        with transaction(ctx.engine) as s:
            ingest_upload(s, ctx, dataset, Upload("a.jpg", good_jpeg(1)), actor=Actor("cli", "t"))
        db = data / "gateway.db"
        files = [db, data / "master.key"]
        files += [
            db.with_name(db.name + x)
            for x in ("-wal", "-shm")
            if (data / f"gateway.db{x}").exists()
        ]
        stored = list(settings.resolved_storage_dir.rglob("*"))
        assert any(p.is_file() for p in stored), "the upload stored no blob"
        files += [p for p in stored if p.is_file()]
        dirs = [data, settings.resolved_storage_dir] + [p for p in stored if p.is_dir()]
        assert {str(p): oct(mode(p)) for p in files} == {str(p): "0o600" for p in files}
        assert {str(p): oct(mode(p)) for p in dirs} == {str(p): "0o700" for p in dirs}
        assert len(files) >= 4  # database, its WAL, the master key, a blob at least
    finally:
        ctx.close()


def test_a_world_readable_database_is_tightened(tmp_path: Path, open_umask: None) -> None:
    del open_umask
    data = tmp_path / "data"
    data.mkdir()
    db = data / "gateway.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    ctx = GatewayContext.open(Settings(data_dir=data, region="eu-de"), create_master_key=True)
    ctx.close()
    assert mode(db) == 0o600
