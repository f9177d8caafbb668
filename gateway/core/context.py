"""Everything a unit of work needs, built once at the entry point and passed in."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway.core.clock import Clock, utc_now
from gateway.core.db import make_engine, migrate, require_current_schema
from gateway.core.filemodes import private_dir
from gateway.core.keys import KeyProvider, load_master_key
from gateway.core.settings import Settings
from gateway.core.storage import BlobStore
from gateway.core.storage_s3 import open_store

log = logging.getLogger(__name__)


@dataclass
class GatewayContext:
    settings: Settings
    engine: Engine
    keys: KeyProvider
    store: BlobStore
    clock: Clock = field(default=utc_now)

    @classmethod
    def open(
        cls, settings: Settings, *, create_master_key: bool = False, migrate_schema: bool = True
    ) -> GatewayContext:
        """Connect, migrate the schema to head (or, with migrate_schema=False, refuse a schema
        that is not at head), load the master key and the blob store."""
        private_dir(settings.data_dir)
        engine = make_engine(settings.resolved_database_url)
        if migrate_schema:
            migrate(engine)
        else:
            require_current_schema(engine)
        if settings.storage_backend == "s3" and settings.database_url is None:
            log.warning(
                "blobs go to buckets but the database is this host's SQLite file: other "
                "replicas cannot share it (set GATEWAY_DATABASE_URL to PostgreSQL)"
            )
        return cls(
            settings=settings,
            engine=engine,
            keys=key_provider(settings, create_master_key=create_master_key).attach(engine),
            store=open_store(settings),
        )

    @property
    def custody_region(self) -> str | None:
        """The region the key service says this process's credential belongs to (None: a
        local master key, no per-region custody)."""
        return self.keys.custody_region

    def close(self) -> None:
        self.engine.dispose()


def key_provider(settings: Settings, *, create_master_key: bool) -> KeyProvider:
    """The key service's keys for this process's credential when one is configured (no
    master key on disk), else the local master key file or environment variable."""
    if settings.kms_url is not None:
        # deferred: the key-service client (httpx) only with GATEWAY_KMS_URL
        from gateway.scaleout.kms import kms_key_provider

        return kms_key_provider(settings)
    master = load_master_key(settings, create=create_master_key)
    return KeyProvider(
        master, reload=lambda want: load_master_key(settings, create=False, want=want)
    )
