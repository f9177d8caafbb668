"""Human review of redaction: a dataset's review destination, its reviewers, what is queued
for review (quarantined, flagged, sampled), a sample's verification, and the review images
Label Studio's editor loads (a signed URL is their credential). Decisions come back through
`privacy-gateway review pull`, the service's review loop or `POST .../review/pull` (read back
from Label Studio by task id; with a broker, sent to the worker of the dataset's region)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gateway.api.images import signed_image_response
from gateway.api.views import JobId, binary
from gateway.authz import DatasetFrom, Grant, authority, public
from gateway.core.db import transaction
from gateway.core.errors import NotFound
from gateway.core.models import MAX_BIGINT, Role
from gateway.deps import Context, DbSession, Workers
from gateway.review import project as review_projects
from gateway.review.images import resolve_review_image
from gateway.review.models import ReviewSample
from gateway.review.project import push_review_tasks, set_review_destination
from gateway.review.pull_jobs import review_pull_job, review_pull_job_view
from gateway.review.queue import enqueue_for_review, verify_sample
from gateway.review.schedule import pull_now

router = APIRouter(tags=["review"])
DatasetAdmin = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.path("dataset_ref"))]
Governance = Annotated[
    Grant, authority(Role.ADMIN, Role.COMPLIANCE, scope=DatasetFrom.path("dataset_ref"))
]


class ReviewDestinationBody(BaseModel):
    destination: str = Field(description="name or id of the destination that holds reviews")


class ReviewerBody(BaseModel):
    labelstudio_user_id: int = Field(ge=1, le=MAX_BIGINT, description="the Label Studio user")


class ReviewProjectView(BaseModel):
    dataset_id: str
    destination_id: str
    project_id: int | None


class ReviewerView(BaseModel):
    dataset_id: str
    pseudonym: str


class QueueView(BaseModel):
    quarantined: list[str]
    flagged: list[str]
    sample_id: str | None
    sampled: list[str]
    tasks_created: int
    project_id: int


class ReviewPullView(BaseModel):
    decided: dict[str, str] = Field(description="review item id -> decision applied")
    ignored: list[int] = Field(description="Label Studio annotation ids by non-reviewers")
    refused: dict[str, str] = Field(description="review item id -> why it was not applied")
    resynced: list[str] = Field(description="asset ids re-rendered and sent to annotators again")


class ReviewPullJobView(BaseModel):
    job_id: int
    state: Literal["queued", "running", "done", "failed"]
    queue: str | None = Field(description="the region queue it was handed to (None: not yet)")
    attempts: int
    error_code: str | None
    error: str | None
    report: ReviewPullView | None = Field(description="once done: what the pull decided")


class SampleCheckView(BaseModel):
    sample_id: str
    checkpoint_tree_size: int
    seed: str
    drawn: list[str]
    matches: bool


@router.put("/v1/datasets/{dataset_ref}/review/destination", response_model=ReviewProjectView)
def set_destination(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    body: ReviewDestinationBody,
    ctx: Context,
    session: DbSession,
    key: DatasetAdmin,
) -> dict[str, Any]:
    """Name the destination that holds the dataset's review project (residency checked)."""
    row = set_review_destination(ctx, session, key.dataset_id, body.destination, actor=key.actor)
    return {
        "dataset_id": row.dataset_id,
        "destination_id": row.destination_id,
        "project_id": row.project_id,
    }


@router.post(
    "/v1/datasets/{dataset_ref}/review/reviewers", status_code=201, response_model=ReviewerView
)
def add_reviewer(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    body: ReviewerBody,
    ctx: Context,
    session: DbSession,
    key: DatasetAdmin,
) -> dict[str, Any]:
    """Allow a Label Studio user of the review destination to decide this dataset's reviews."""
    row = review_projects.add_reviewer(
        ctx, session, key.dataset_id, user=body.labelstudio_user_id, actor=key.actor
    )
    return {"dataset_id": row.dataset_id, "pseudonym": row.pseudonym}


@router.post("/v1/datasets/{dataset_ref}/review/queue", response_model=QueueView)
def queue_for_review(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    ctx: Context,
    key: DatasetAdmin,
    sample: bool = True,
) -> dict[str, Any]:
    """Queue every quarantined and flagged asset, draw this batch's sample of released ones
    (policy `review.sample_rate`), and create their tasks in the review project."""
    with transaction(ctx.engine) as session:
        queued = enqueue_for_review(ctx, session, key.dataset_id, actor=key.actor, sample=sample)
    pushed = push_review_tasks(ctx, key.dataset_id, actor=key.actor)
    return asdict(queued) | {"tasks_created": len(pushed.created), "project_id": pushed.project_id}


@router.post(
    "/v1/datasets/{dataset_ref}/review/pull",
    response_model=ReviewPullView,
    responses={
        202: {
            "model": ReviewPullJobView,
            "description": "with a broker: a job for the worker of the dataset's region, to poll",
        }
    },
)
def pull_review_decisions(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    request: Request,
    ctx: Context,
    key: DatasetAdmin,
    workers: Workers,
) -> Any:
    """Read reviewers' decisions back from Label Studio now and act on them (re-render,
    release, reject, re-process), as `privacy-gateway review pull` and the service's review
    loop do. Without a broker: here, answering what was decided (a redaction process is
    started only if a decision needs a re-render). With a broker: 202 at once with a job for
    the worker of the dataset's region (a release re-renders from the original, which only
    that worker may open), to poll at `GET .../review/pull/{job_id}`."""
    if ctx.settings.broker_configured:
        # deferred: the broker client (Celery) only with a broker
        from gateway.scaleout.review_dispatch import queue_review_pull

        view = queue_review_pull(ctx, key.dataset_id, actor=key.actor)
        workers.wake()  # committed: the broker dispatch may hand it over now
        return JSONResponse(view, status_code=202)
    factory = request.app.state.redactor_factory
    report = pull_now(ctx, key.dataset_id, actor=key.actor, redactor_factory=factory)
    return asdict(report)


@router.get("/v1/datasets/{dataset_ref}/review/pull/{job_id}", response_model=ReviewPullJobView)
def get_review_pull_job(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    job_id: JobId,
    session: DbSession,
    key: DatasetAdmin,
) -> dict[str, Any]:
    """A review-pull job's state (with a broker), and its report once done."""
    return review_pull_job_view(review_pull_job(session, job_id, dataset_id=key.dataset_id))


@router.get(
    "/v1/datasets/{dataset_ref}/review/samples/{sample_id}/verify",
    response_model=SampleCheckView,
)
def verify_review_sample(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    sample_id: str,
    ctx: Context,
    session: DbSession,
    key: Governance,
) -> dict[str, Any]:
    """Recompute a review sample from the signed checkpoint that seeded it."""
    row = session.get(ReviewSample, sample_id)
    if row is None or row.dataset_id != key.dataset_id:
        raise NotFound(f"no review sample {sample_id!r} in this dataset", sample=sample_id)
    check = verify_sample(ctx, session, sample_id)
    return {
        "sample_id": check.sample_id,
        "checkpoint_tree_size": check.checkpoint_tree_size,
        "seed": check.seed,
        "drawn": check.drawn,
        "matches": check.matches,
    }


@router.get(
    "/v1/review-images/{destination_id}/{item_id}",
    dependencies=[public("a signed URL: the HMAC in `s` is the credential")],
    response_class=Response,
    responses=binary("image/jpeg", "image/png", description="the redacted rendition under review"),
)
def get_review_image(
    destination_id: str,
    item_id: str,
    ctx: Context,
    session: DbSession,
    k: Annotated[int, Query(ge=1, le=MAX_BIGINT, description="dataset key version")],
    s: Annotated[str, Query(min_length=64, max_length=64, pattern="^[0-9a-f]+$")],
) -> Response:
    image = resolve_review_image(
        ctx, session, destination_id=destination_id, item_id=item_id, key_version=k, signature=s
    )
    return signed_image_response(image)
