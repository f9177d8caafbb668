"""Label Studio's webhooks (ANNOTATION_CREATED, ANNOTATION_UPDATED, ANNOTATIONS_DELETED).

Open-source Label Studio signs nothing, so each destination's webhook carries a secret in a
custom header. Label Studio waits about 1 s and never retries: the handler only stores and
answers; pulling a flagged task from Label Studio runs after the answer, and
`privacy-gateway annotations pull` reconciles anything missed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Header

from gateway.deps import Context, DbSession
from gateway.errors import NotFound
from gateway.labelstudio.annotations import check_webhook_secret, handle_webhook, withdraw_flagged
from gateway.metrics import WEBHOOKS
from gateway.models import Destination

router = APIRouter(tags=["webhooks"])


@router.post("/v1/webhooks/labelstudio/{destination_id}")
def labelstudio_webhook(
    destination_id: str,
    ctx: Context,
    session: DbSession,
    background: BackgroundTasks,
    payload: Annotated[dict[str, Any], Body()],
    x_gateway_webhook_secret: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    destination = session.get(Destination, destination_id)
    if destination is None:
        raise NotFound("no such destination")
    check_webhook_secret(ctx, destination, x_gateway_webhook_secret)
    outcome = handle_webhook(ctx, session, destination, payload)
    session.commit()  # the quarantine holds before anything else happens
    WEBHOOKS.labels(outcome="flagged" if outcome.flagged_assets else "accepted").inc()
    if outcome.flagged_assets:
        background.add_task(withdraw_flagged, ctx, outcome.flagged_assets)
    return {"stored": outcome.stored, "deleted": outcome.deleted, "flagged": outcome.flagged_assets}
