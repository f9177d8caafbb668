"""Region-pinned queues: a job goes to a queue of a region its dataset may be processed in.

Routing is not enforcement: the worker checks residency again for its own region, and holds
only its region's key material (`gateway.scaleout.kms`), before it touches data.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from gateway.context import GatewayContext
from gateway.models import Asset, DatasetKey, Job
from gateway.policy.enforcement import EnforcementPoint, check_residency
from gateway.scaleout.broker import region_queue
from gateway.scaleout.kms import key_region

UNROUTED = "default"  # what the job table holds before routing (and the embedded runner)
HELD = "held.no-region"
"""No region with workers may process the dataset: the job waits (never sent anywhere)."""


Routes = dict[tuple[str, int | None], str]
"""Queues already chosen in one relay pass, by dataset and key version."""


def queue_for(
    ctx: GatewayContext, session: Session, job: Job, *, seen: Routes | None = None
) -> str:
    """The queue of the first worker region (in the configured order) whose processing the
    dataset's residency allows and, when its key is held per region, that holds its key;
    `HELD` if none does. `seen` remembers the answer per dataset for one pass."""
    asset = session.get(Asset, job.asset_id)
    if asset is None:
        return HELD
    key = (asset.dataset_id, asset.key_version)
    if seen is not None and key in seen:
        return seen[key]
    queue = _choose(ctx, session, asset)
    if seen is not None:
        seen[key] = queue
    return queue


def _choose(ctx: GatewayContext, session: Session, asset: Asset) -> str:
    custody = key_custody_region(session, asset)
    for region in ctx.settings.routing_regions:
        if custody is not None and region != custody:
            continue
        decision, _ = check_residency(
            session,
            point=EnforcementPoint.INGEST,
            dataset_id=asset.dataset_id,
            target_region=region,
            transfer_basis=None,
            ctx=ctx,
        )
        if decision.allowed:
            return region_queue(region, prefix=ctx.settings.broker_queue_prefix)
    return HELD


def key_custody_region(session: Session, asset: Asset) -> str | None:
    """The region whose key service key wraps the asset's dataset key (None: a local key)."""
    stmt = select(DatasetKey).where(DatasetKey.dataset_id == asset.dataset_id)
    if asset.key_version is not None:
        stmt = stmt.where(DatasetKey.version == asset.key_version)
    row = session.exec(stmt.order_by(col(DatasetKey.version).desc())).first()
    return None if row is None else key_region(row.master_key_id)
