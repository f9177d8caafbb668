"""Label Studio's webhooks (ANNOTATION_CREATED, ANNOTATION_UPDATED, ANNOTATIONS_DELETED).

Open-source Label Studio signs nothing, and the secret header is shown to every user who opens
the project's webhook settings: a webhook is a hint. The request guard refuses a webhook
without its secret header and bounds the body before anything is read; the raw body (at most
1 MiB) is taken first, while Label Studio is still connected, then the secret is checked
against the destination before the body is parsed, and the answer goes at once (Label Studio
waits 1 s inside the annotator's Submit, and never retries). The read-back runs on its own,
not tied to the answer, so a Label Studio that already hung up loses nothing: each annotation
named is read back from Label Studio's API and only what Label Studio holds is stored
(`gateway.labelstudio.annotations`); `privacy-gateway annotations pull` reconciles anything
missed or failed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from gateway.api.views import WebhookAccepted
from gateway.authz import public
from gateway.core.context import GatewayContext
from gateway.deps import Context, Workers
from gateway.http_limits import WEBHOOK_BODY_LIMIT, PayloadTooLarge
from gateway.labelstudio.annotations import (
    WebhookHint,
    accept_hint,
    authorise_webhook,
    confirm_hint,
    parse_hint,
)
from gateway.metrics import WEBHOOKS
from gateway.review.project import REVIEW_PULL_LOOP, is_open_review_task

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)


@router.post(
    "/v1/webhooks/labelstudio/{destination_id}",
    dependencies=[public("Label Studio sends the destination's webhook secret in a header")],
    response_model=WebhookAccepted,
)
async def labelstudio_webhook(
    destination_id: str,
    request: Request,
    ctx: Context,
    workers: Workers,
    x_gateway_webhook_secret: Annotated[str | None, Header()] = None,
) -> Any:
    try:  # bytes only, bounded: parsing waits for the secret check
        body = await bounded_body(request, WEBHOOK_BODY_LIMIT)
    except ClientDisconnect:  # Label Studio gave up (its 1 s): the pull reconciles the event
        log.warning("webhook: Label Studio hung up before its body arrived")
        WEBHOOKS.labels(outcome="disconnected").inc()
        return Response(status_code=204)
    await run_in_threadpool(authorise_webhook, ctx, destination_id, x_gateway_webhook_secret)
    hint = parse_hint(body)
    quarantined = await run_in_threadpool(accept_hint, ctx, destination_id, hint)
    WEBHOOKS.labels(outcome="flagged" if quarantined else "accepted").inc()
    # not a response background task: it runs even when the client is gone before the answer
    asyncio.get_running_loop().run_in_executor(
        None, confirm_in_background, ctx, destination_id, hint
    )
    if hint.task_id is not None and await run_in_threadpool(
        is_open_review_task, ctx, destination_id, hint.task_id
    ):  # a review decision: the review pull reads it back by task id now
        workers.wake_loop(REVIEW_PULL_LOOP)
    return {
        "accepted": list(hint.annotation_ids),
        "action": hint.action,
        "quarantined": quarantined,
        "note": "read back from Label Studio before anything is stored",
    }


async def bounded_body(request: Request, limit: int) -> bytes:
    """At most `limit` bytes (the service's request guard applies the same limit first; an
    event over it is answered 413 and left to the pull)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"webhook bodies are limited to {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"webhook bodies are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def confirm_in_background(ctx: GatewayContext, destination_id: str, hint: WebhookHint) -> None:
    """Runs after the answer; a fault is logged (the pull retries), never raised into the
    server."""
    try:
        confirm_hint(ctx, destination_id, hint)
    except Exception:  # background work never dies of a fault: the pull picks it up again
        log.exception("reading back webhook %s failed", hint.action)
