"""Checkpoints at intervals: a supervised loop in the service (and `lineage checkpoint
--watch`) signs a tree head when enough records or enough time have passed since the last."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.background import Periodic, Supervisor
from gateway.db import transaction
from gateway.lineage.checkpoints import checkpoint_if_due
from gateway.lineage.ledger import drain
from gateway.lineage.tables import LineageCheckpoint

if TYPE_CHECKING:
    from gateway.context import GatewayContext

log = logging.getLogger(__name__)
EVERY_RECORDS = 10_000
EVERY = timedelta(minutes=5)


class Checkpointer:
    def __init__(
        self,
        ctx: GatewayContext,
        *,
        every_records: int = EVERY_RECORDS,
        every: timedelta = EVERY,
        poll_seconds: float = 30.0,
    ) -> None:
        self.ctx, self.every_records, self.every = ctx, every_records, every
        self.poll_seconds = poll_seconds

    def run_once(self) -> LineageCheckpoint | None:
        """Sequence what waits in the outbox, then sign a checkpoint if one is due."""
        drain(self.ctx.engine)
        with transaction(self.ctx.engine) as session:
            made = checkpoint_if_due(
                self.ctx, session, every_records=self.every_records, every=self.every
            )
        if made is not None:
            log.info("lineage checkpoint", extra={"tree_size": made.tree_size})
        return made

    def periodic(self) -> Periodic:
        """The loop a supervisor runs (a database away: logged, backed off, tried again)."""
        return Periodic("lineage-checkpointer", self.poll_seconds, self.run_once)

    def run_forever(self) -> None:
        """`lineage checkpoint --watch`: the same supervised loop, in the foreground."""
        supervisor = Supervisor().add(self.periodic()).start()
        try:
            threading.Event().wait()
        finally:
            supervisor.stop()
