"""Admin API for policies, retention, legal holds and erasure requests. Thin: parse, call the
core in gateway.policy, return."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.apikeys import Principal
from gateway.datasets import get_dataset
from gateway.deps import Context, CurrentKey, DbSession
from gateway.errors import InvalidRequest
from gateway.models import PolicyVersion, Role
from gateway.policy.catalogue import load_catalogue
from gateway.policy.document import diff_documents
from gateway.policy.loader import load_policy_text
from gateway.policy.schema import PolicyDocument

router = APIRouter(prefix="/v1", tags=["policies"])
MAX_YAML_CHARS = 256 * 1024


class PolicySubmission(BaseModel):
    """A policy as YAML text (errors then name lines) or as a JSON document."""

    model_config = ConfigDict(extra="forbid")
    yaml_text: str | None = Field(None, alias="yaml", max_length=MAX_YAML_CHARS)
    document: dict[str, Any] | None = None
    dataset: str | None = Field(None, description="bind this dataset (name or id) on activation")

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


def _admin(key: Principal) -> None:
    key.require_role(Role.ADMIN)


@router.post("/policies/validate")
def validate_policy(body: PolicySubmission, key: CurrentKey) -> dict[str, Any]:
    """Validate without storing; problems come back as 422 invalid-policy with lines."""
    _admin(key)
    from gateway.policy.document import policy_digest

    doc = body.parse()
    return {"valid": True, "name": doc.name, "sha256": policy_digest(doc)}


@router.post("/policies", status_code=status.HTTP_201_CREATED)
def activate_policy(
    body: PolicySubmission,
    ctx: Context,
    session: DbSession,
    key: CurrentKey,
    response: Response,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Store, activate (immutable from now on) and optionally bind a dataset. Both answers
    list the Label Studio tasks the policy withdraws (`withdraw`: on the next sync or
    reconcile); `dry_run=true` only shows that, changing nothing."""
    _admin(key)
    from gateway.labelstudio.residency_withdrawal import withdrawn_by_policy
    from gateway.policy.versions import activate, preview_activation

    if body.dataset is not None:
        key.require_dataset(get_dataset(session, body.dataset).id)
    doc = body.parse()
    preview = preview_activation(session, doc, dataset_ref=body.dataset)
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
    result = activate(session, ctx, doc, actor=key.actor, dataset_ref=body.dataset)
    return {
        **version_view(result.version),
        "created": result.created,
        "dataset_id": result.dataset_id,
        "changed_fields": result.changed_fields,
        "withdraw": withdraw,
    }


@router.get("/policies")
def list_policies(session: DbSession, key: CurrentKey) -> list[dict[str, Any]]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.versions import list_versions

    return [version_view(r) for r in list_versions(session)]


@router.get("/policies/diff")
def diff_policies(a: str, b: str, session: DbSession, key: CurrentKey) -> dict[str, Any]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.versions import get_version

    old, new = get_version(session, a), get_version(session, b)
    changes = diff_documents(
        PolicyDocument.model_validate(old.document), PolicyDocument.model_validate(new.document)
    )
    return {"a": version_view(old), "b": version_view(new), "changes": changes}


@router.get("/policies/{ref}")
def get_policy(ref: str, session: DbSession, key: CurrentKey) -> dict[str, Any]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.versions import get_version

    return version_view(get_version(session, ref), with_document=True)


@router.get("/regions")
def regions(key: CurrentKey) -> dict[str, Any]:
    """The region catalogue: regions, countries, jurisdictions, adequacy, transfer bases."""
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    return load_catalogue().model_dump(mode="json")


@router.post("/datasets/{dataset_ref}/reprocess")
def reprocess(
    dataset_ref: str, ctx: Context, session: DbSession, key: CurrentKey, dry_run: bool = True
) -> dict[str, Any]:
    """Re-process assets under the dataset's current policy version (dry run by default)."""
    _admin(key)
    from gateway.policy.reprocess import apply_reprocess, plan_reprocess

    key.require_dataset(get_dataset(session, dataset_ref).id)
    plan = plan_reprocess(session, dataset_ref)
    if not dry_run:
        plan = apply_reprocess(ctx, session, plan, actor=key.actor)
    return {
        "dataset_id": plan.dataset_id,
        "policy_version_id": plan.policy_version_id,
        "dry_run": dry_run,
        "assets": plan.eligible,
        "original_deleted": plan.original_gone,
    }


@router.post("/retention/run")
def retention_run(ctx: Context, key: CurrentKey, dry_run: bool = True) -> dict[str, Any]:
    """Run retention now (dry run by default); the service also runs it on a schedule."""
    _admin(key)
    from gateway.policy.retention import run_retention

    report = run_retention(ctx, dry_run=dry_run)
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


@router.post("/retention/holds", status_code=status.HTTP_201_CREATED)
def place_hold(
    body: HoldSubmission, ctx: Context, session: DbSession, key: CurrentKey
) -> dict[str, Any]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.holds import place_hold as place

    key.require_dataset(get_dataset(session, body.dataset).id)
    hold = place(
        ctx,
        session,
        dataset_ref=body.dataset,
        reason=body.reason,
        actor=key.actor,
        asset_id=body.asset_id,
    )
    return {"id": hold.id, "dataset_id": hold.dataset_id, "asset_id": hold.asset_id}


@router.delete("/retention/holds/{hold_id}", status_code=status.HTTP_204_NO_CONTENT)
def release_hold(hold_id: str, ctx: Context, session: DbSession, key: CurrentKey) -> None:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.holds import release_hold as release

    release(ctx, session, hold_id, actor=key.actor)


@router.post("/erasure-requests", status_code=status.HTTP_201_CREATED)
def erasure_request(
    body: ErasureSubmission, ctx: Context, session: DbSession, key: CurrentKey
) -> dict[str, Any]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.erasure import register_view, request_erasure

    key.require_dataset(get_dataset(session, body.dataset).id)
    result = request_erasure(
        ctx,
        session,
        dataset_ref=body.dataset,
        actor=key.actor,
        subject_id=body.subject_id,
        asset_id=body.asset_id,
    )
    return register_view(result.request, now=ctx.clock())


@router.get("/erasure-requests")
def erasure_register(
    ctx: Context, session: DbSession, key: CurrentKey, dataset: str | None = None
) -> list[dict[str, Any]]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE)
    from gateway.policy.erasure import erasure_register as register
    from gateway.policy.erasure import register_view

    dataset_id = get_dataset(session, dataset).id if dataset else None
    if dataset_id is not None:
        key.require_dataset(dataset_id)
    now = ctx.clock()
    return [
        register_view(r, now=now)
        for r in register(session, dataset_id=dataset_id)
        if key.dataset_scope is None or r.dataset_id in key.dataset_scope
    ]
