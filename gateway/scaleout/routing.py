"""Region-pinned queues: a job goes to a queue of a region its dataset may be processed in.

Routing is not enforcement: the worker checks residency again for its own region, and holds
only its region's key material (`gateway.scaleout.kms`), before it touches data.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.models import Asset, DatasetKey, Job
from gateway.jobs import REVIEW_PULL_KIND, SYNC_KIND
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
    `HELD` if none does. `seen` remembers the answer per dataset for one pass. A sync or
    review-pull job (no asset) is routed by its dataset, with the dataset's current key."""
    if job.kind in (SYNC_KIND, REVIEW_PULL_KIND):
        dataset_id = str((job.payload or {}).get("dataset_id", ""))
        return _choose_for(ctx, session, dataset_id, key_version=None)
    asset = None if job.asset_id is None else session.get(Asset, job.asset_id)
    if asset is None:
        return HELD
    key = (asset.dataset_id, asset.key_version)
    if seen is not None and key in seen:
        return seen[key]
    queue = _choose(ctx, session, asset)
    if seen is not None:
        seen[key] = queue
    return queue


def dataset_queue(ctx: GatewayContext, session: Session, dataset_id: str) -> str:
    """The queue of work on the dataset as a whole (its current key): `HELD` if none."""
    return _choose_for(ctx, session, dataset_id, key_version=None)


def _choose(ctx: GatewayContext, session: Session, asset: Asset) -> str:
    return _choose_for(ctx, session, asset.dataset_id, key_version=asset.key_version)


def _choose_for(
    ctx: GatewayContext, session: Session, dataset_id: str, *, key_version: int | None
) -> str:
    custody = key_custody_region(session, dataset_id, key_version)
    for region in ctx.settings.routing_regions:
        if custody is not None and region != custody:
            continue
        decision, _ = check_residency(
            session,
            point=EnforcementPoint.INGEST,
            dataset_id=dataset_id,
            target_region=region,
            transfer_basis=None,
            ctx=ctx,
        )
        if decision.allowed:
            return region_queue(region, prefix=ctx.settings.broker_queue_prefix)
    return HELD


def key_custody_region(session: Session, dataset_id: str, version: int | None) -> str | None:
    """The region whose key service key wraps the dataset's key `version` (None: its newest;
    the answer None: a local key)."""
    stmt = select(DatasetKey).where(DatasetKey.dataset_id == dataset_id)
    if version is not None:
        stmt = stmt.where(DatasetKey.version == version)
    row = session.exec(stmt.order_by(col(DatasetKey.version).desc())).first()
    return None if row is None else key_region(row.master_key_id)
