"""Everything a unit of work needs, built once at the entry point and passed in."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway.clock import Clock, utc_now
from gateway.db import make_engine, migrate, require_current_schema
from gateway.filemodes import private_dir
from gateway.keys import KeyProvider, load_master_key
from gateway.settings import Settings
from gateway.storage import BlobStore

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
        master = load_master_key(settings, create=create_master_key)
        from gateway.storage_s3 import open_store  # boto3 only when buckets are configured

        if settings.storage_backend == "s3" and settings.database_url is None:
            log.warning(
                "blobs go to buckets but the database is this host's SQLite file: other "
                "replicas cannot share it (set GATEWAY_DATABASE_URL to PostgreSQL)"
            )

        return cls(
            settings=settings,
            engine=engine,
            keys=KeyProvider(
                master, reload=lambda want: load_master_key(settings, create=False, want=want)
            ).attach(engine),
            store=open_store(settings),
        )

    def close(self) -> None:
        self.engine.dispose()
