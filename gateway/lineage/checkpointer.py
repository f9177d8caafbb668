"""Checkpoints at intervals: a supervised loop in the service (and `lineage checkpoint
--watch`) signs a tree head when enough records or enough time have passed since the last."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.background import Periodic, Supervisor
from gateway.core.db import transaction
from gateway.lineage.anchor import append_checkpoint, pinned_line
from gateway.lineage.checkpoints import checkpoint_if_due
from gateway.lineage.ledger import drain
from gateway.lineage.tables import LineageCheckpoint

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext

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
        """Sequence what waits in the outbox, then sign a checkpoint if one is due; once it
        is committed, append it to the checkpoint log if one is configured."""
        drain(self.ctx.engine)
        with transaction(self.ctx.engine) as session:
            made = checkpoint_if_due(
                self.ctx, session, every_records=self.every_records, every=self.every
            )
            line = None if made is None else pinned_line(session, made)
        log_path = self.ctx.settings.lineage_checkpoint_log
        if line is not None and log_path is not None:
            try:
                append_checkpoint(log_path, line)
            except OSError as exc:  # the checkpoint is signed and stored; only its copy failed
                log.error(
                    "lineage checkpoint %d not appended to %s: %s", line["tree_size"], log_path, exc
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
