"""Admin API for policies, retention, legal holds and erasure requests. Thin: parse, call the
core in gateway.policy, return."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.paging import PAGED, Paging, page
from gateway.api.views import (
    ActivationPreviewView,
    ActivationView,
    ErasureView,
    HoldView,
    PolicyDiffView,
    PolicyValidation,
    PolicyVersionDocument,
    PolicyVersionView,
    ReprocessView,
    RetentionRunView,
)
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.errors import InvalidRequest
from gateway.core.models import PolicyVersion, Role
from gateway.datasets import get_dataset
from gateway.deps import Context, DbSession
from gateway.labelstudio.residency_withdrawal import withdrawn_by_policy
from gateway.policy import erasure, holds
from gateway.policy.catalogue import RegionCatalogue, load_catalogue
from gateway.policy.document import diff_documents, policy_digest
from gateway.policy.erasure import register_view, request_erasure
from gateway.policy.governing import DEFAULT_POLICY_NAME
from gateway.policy.loader import load_policy_text
from gateway.policy.reprocess import apply_reprocess, plan_reprocess
from gateway.policy.retention import run_retention
from gateway.policy.schema import PolicyDocument
from gateway.policy.versions import activate, get_version, list_versions, preview_activation

router = APIRouter(prefix="/v1", tags=["policies"])
MAX_YAML_CHARS = 256 * 1024
GOVERNANCE = (Role.ADMIN, Role.COMPLIANCE)
# policy documents, versions and the region catalogue hold no dataset's data
AdminCatalogue = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.none)]
Catalogue = Annotated[Grant, authority(*GOVERNANCE, scope=DatasetFrom.none)]
# activating without a dataset changes what governs by name (the `default`): unscoped only
Activating = Annotated[
    Grant,
    authority(Role.ADMIN, scope=DatasetFrom.body("dataset", when_absent=DatasetFrom.global_)),
]
DatasetAdmin = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.path("dataset_ref"))]
# a scoped key's retention run covers its own datasets only
RetentionRun = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.own)]
BodyDataset = Annotated[Grant, authority(*GOVERNANCE, scope=DatasetFrom.body("dataset"))]
HoldOwner = Annotated[Grant, authority(*GOVERNANCE, scope=DatasetFrom.hold("hold_id"))]
Register = Annotated[
    Grant, authority(*GOVERNANCE, scope=DatasetFrom.query("dataset", when_absent=DatasetFrom.own))
]
Protection = Literal["faces", "plates", "leak_check"]


class PolicySubmission(BaseModel):
    """A policy as YAML text (errors then name lines) or as a JSON document."""

    model_config = ConfigDict(extra="forbid")
    yaml_text: str | None = Field(None, alias="yaml", max_length=MAX_YAML_CHARS)
    document: dict[str, Any] | None = None
    dataset: str | None = Field(None, description="bind this dataset (name or id) on activation")
    acknowledge_weakening: list[Protection] = Field(
        default_factory=list,
        description="name each protection the policy switches off (faces, plates, leak_check): "
        "without it such a policy is refused; the acknowledgement is recorded",
    )

    def parse(self) -> PolicyDocument:
        if (self.yaml_text is None) == (self.document is None):
            raise InvalidRequest("send exactly one of 'yaml' (text) or 'document' (JSON)")
        text = self.yaml_text or yaml.safe_dump(self.document, sort_keys=False)
        return load_policy_text(text, source="request" if self.yaml_text else "request.document")


class ErasureSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    subject_id: str | None = Field(None, max_length=500)
    asset_id: str | None = Field(None, max_length=36)


class HoldSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    reason: str = Field(min_length=3, max_length=2000)
    asset_id: str | None = None


def version_view(row: PolicyVersion, *, with_document: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "sha256": row.digest,
        "activated_at": row.activated_at.isoformat() if row.activated_at else None,
    }
    if with_document:
        view["document"] = row.document
    return view


@router.post("/policies/validate", response_model=PolicyValidation)
def validate_policy(body: PolicySubmission, _: AdminCatalogue) -> dict[str, Any]:
    """Validate without storing; problems come back as 422 invalid-policy with lines."""
    doc = body.parse()
    return {"valid": True, "name": doc.name, "sha256": policy_digest(doc)}


@router.post(
    "/policies",
    status_code=status.HTTP_201_CREATED,
    response_model=ActivationView | ActivationPreviewView,
    responses={200: {"model": ActivationPreviewView, "description": "dry_run=true: a preview"}},
)
def activate_policy(
    body: PolicySubmission,
    ctx: Context,
    session: DbSession,
    key: Activating,
    response: Response,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Store, activate (immutable from now on) and optionally bind a dataset. Both answers
    list the Label Studio tasks the policy withdraws (`withdraw`: on the next sync or
    reconcile); `dry_run=true` only shows that, changing nothing."""
    doc = body.parse()
    if doc.name == DEFAULT_POLICY_NAME:
        key.require_unscoped("the default policy governs every dataset without its own")
    dataset_ref = key.dataset_ids[0] if key.dataset_ids else None
    preview = preview_activation(session, doc, dataset_ref=dataset_ref)
    withdraw = [
        g.view() for g in withdrawn_by_policy(ctx, session, doc.residency, preview.dataset_ids)
    ]
    if dry_run:
        response.status_code = status.HTTP_200_OK
        return {
            "dry_run": True,
            "name": preview.name,
            "sha256": preview.digest,
            "existing_version_id": preview.existing_version_id,
            "dataset_ids": preview.dataset_ids,
            "changed_fields": preview.changed_fields,
            "withdraw": withdraw,
        }
    result = activate(
        session,
        ctx,
        doc,
        actor=key.actor,
        dataset_ref=dataset_ref,
        acknowledged_weakening=body.acknowledge_weakening,
    )
    return {
        **version_view(result.version),
        "created": result.created,
        "dataset_id": result.dataset_id,
        "changed_fields": result.changed_fields,
        "withdraw": withdraw,
    }


@router.get("/policies", response_model=list[PolicyVersionView], responses=PAGED)
def list_policies(
    session: DbSession, _: Catalogue, paging: Paging, request: Request, response: Response
) -> list[dict[str, Any]]:
    """Every stored policy version, by name and version."""
    return [version_view(r) for r in page(list_versions(session), paging, request, response)]


@router.get("/policies/diff", response_model=PolicyDiffView)
def diff_policies(a: str, b: str, session: DbSession, _: Catalogue) -> dict[str, Any]:
    old, new = get_version(session, a), get_version(session, b)
    changes = diff_documents(
        PolicyDocument.model_validate(old.document), PolicyDocument.model_validate(new.document)
    )
    return {"a": version_view(old), "b": version_view(new), "changes": changes}


@router.get("/policies/{ref}", response_model=PolicyVersionDocument)
def get_policy(ref: str, session: DbSession, _: Catalogue) -> dict[str, Any]:
    return version_view(get_version(session, ref), with_document=True)


@router.get("/regions", response_model=RegionCatalogue)
def regions(_: Catalogue) -> dict[str, Any]:
    """The region catalogue: regions, countries, jurisdictions, adequacy, transfer bases."""
    return load_catalogue().model_dump(mode="json")


@router.post("/datasets/{dataset_ref}/reprocess", response_model=ReprocessView)
def reprocess(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    ctx: Context,
    session: DbSession,
    key: DatasetAdmin,
    dry_run: bool = True,
) -> dict[str, Any]:
    """Re-process assets under the dataset's current policy version (dry run by default)."""
    plan = plan_reprocess(session, key.dataset_id)
    if not dry_run:
        plan = apply_reprocess(ctx, session, plan, actor=key.actor)
    return {
        "dataset_id": plan.dataset_id,
        "policy_version_id": plan.policy_version_id,
        "dry_run": dry_run,
        "assets": plan.eligible,
        "original_deleted": plan.original_gone,
    }


@router.post("/retention/run", response_model=RetentionRunView)
def retention_run(ctx: Context, key: RetentionRun, dry_run: bool = True) -> dict[str, Any]:
    """Run retention now (dry run by default); the service also runs it on a schedule.
    A scoped key's run plans and deletes only within its own datasets."""
    only = None if key.scope is None else frozenset(key.dataset_ids)
    report = run_retention(ctx, dry_run=dry_run, datasets=only)
    items = report.plan.due if dry_run else report.done
    return {
        "dry_run": dry_run,
        "items": [_item(i) for i in items],
        "held": [_item(i) for i in report.plan.held],
        "errors": report.plan.errors,
    }


def _item(item: Any) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "dataset_id": item.dataset_id,
        "entity_id": item.entity_id,
        "due_at": item.due_at.isoformat(),
        "rule": item.rule,
    }


@router.post("/retention/holds", status_code=status.HTTP_201_CREATED, response_model=HoldView)
def place_hold(
    body: HoldSubmission, ctx: Context, session: DbSession, key: BodyDataset
) -> dict[str, Any]:
    hold = holds.place_hold(
        ctx,
        session,
        dataset_ref=key.dataset_id,
        reason=body.reason,
        actor=key.actor,
        asset_id=body.asset_id,
    )
    return {"id": hold.id, "dataset_id": hold.dataset_id, "asset_id": hold.asset_id}


@router.delete("/retention/holds/{hold_id}", status_code=status.HTTP_204_NO_CONTENT)
def release_hold(hold_id: str, ctx: Context, session: DbSession, key: HoldOwner) -> None:
    holds.release_hold(ctx, session, hold_id, actor=key.actor)


@router.post("/erasure-requests", status_code=status.HTTP_201_CREATED, response_model=ErasureView)
def erasure_request(
    body: ErasureSubmission, ctx: Context, session: DbSession, key: BodyDataset
) -> dict[str, Any]:
    result = request_erasure(
        ctx,
        session,
        dataset_ref=key.dataset_id,
        actor=key.actor,
        subject_id=body.subject_id,
        asset_id=body.asset_id,
    )
    return register_view(result.request, now=ctx.clock())


@router.get("/erasure-requests", response_model=list[ErasureView], responses=PAGED)
def erasure_register(
    ctx: Context,
    session: DbSession,
    key: Register,
    paging: Paging,
    request: Request,
    response: Response,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """The register in the caller's scope, oldest request first."""
    dataset_id = get_dataset(session, dataset).id if dataset else None
    now = ctx.clock()
    rows = [
        r
        for r in erasure.erasure_register(session, dataset_id=dataset_id)
        if key.sees(r.dataset_id)
    ]
    return [register_view(r, now=now) for r in page(rows, paging, request, response)]
