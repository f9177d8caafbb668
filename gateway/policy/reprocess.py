"""Re-processing released assets under a dataset's new policy version (dry run first).

Eligible: assets of the dataset that were released (or quarantined) under another version
than the one now governing, and whose original is still stored. Those whose original was
already deleted are listed as not re-processable (their redacted copy stays as it was).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from gateway.asset_states import transition
from gateway.core.context import GatewayContext
from gateway.core.models import Asset, AssetState
from gateway.datasets import get_dataset
from gateway.jobs import queue_redaction
from gateway.lineage import Actor
from gateway.policy.derived import delete_blob
from gateway.policy.governing import governing_policy

REPROCESSABLE = (AssetState.RELEASED, AssetState.QUARANTINED)


@dataclass
class ReprocessPlan:
    dataset_id: str
    policy_version_id: str | None
    eligible: list[str] = field(default_factory=list)
    original_gone: list[str] = field(default_factory=list)
    applied: bool = False

    def describe(self) -> str:
        verb = "queued" if self.applied else "would queue"
        lines = [
            f"re-processing under policy version {self.policy_version_id or '(default file)'}: "
            f"{verb} {len(self.eligible)} asset(s); {len(self.original_gone)} cannot be "
            "re-processed (original deleted)"
        ]
        lines += [f"  {a}" for a in self.eligible]
        return "\n".join(lines)


def plan_reprocess(session: Session, dataset_ref: str) -> ReprocessPlan:
    dataset = get_dataset(session, dataset_ref)
    governing = governing_policy(session, dataset.id)
    plan = ReprocessPlan(dataset.id, governing.version_id)
    rows = session.exec(
        select(Asset)
        .where(Asset.dataset_id == dataset.id, col(Asset.state).in_(REPROCESSABLE))
        .order_by(col(Asset.created_at))
    ).all()
    for asset in rows:
        if asset.policy_version_id == governing.version_id and governing.version_id is not None:
            continue
        (plan.eligible if asset.original_blob else plan.original_gone).append(asset.id)
    return plan


def apply_reprocess(
    ctx: GatewayContext, session: Session, plan: ReprocessPlan, *, actor: Actor
) -> ReprocessPlan:
    """Queue exactly the planned assets (each still eligible) for redaction again."""
    now = ctx.clock()
    queued = []
    for asset_id in plan.eligible:
        asset = session.get(Asset, asset_id)
        if asset is None or asset.state not in REPROCESSABLE or asset.original_blob is None:
            continue
        asset.policy_version_id = plan.policy_version_id
        # the copy made under the old policy goes now: if the new run quarantines, none is left
        delete_blob(ctx, session, asset.redacted_blob, owner=asset.id)
        asset.redacted_blob = asset.redacted_sha256 = None
        transition(
            session,
            asset,
            AssetState.PROCESSING,
            actor=actor,
            now=now,
            region=ctx.settings.region,
            parameters={
                "reprocess": "policy-change",
                "policy_version_id": plan.policy_version_id or "",
            },
        )
        queue_redaction(ctx, session, asset.id, now=now)
        queued.append(asset_id)
    plan.eligible, plan.applied = queued, True
    return plan
