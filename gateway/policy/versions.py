"""Policy versions: stored once, immutable once activated, bound to datasets, recorded.

Activating a document stores it as the next version of its name (or reuses the version with
the same digest), marks it activated, and binds the dataset to it; every step writes
lineage naming the version, its digest and which fields changed (never the values of free
text). A before-update hook refuses any change to an activated row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from gateway.core.context import GatewayContext
from gateway.core.errors import NotFound
from gateway.core.models import Dataset, PolicyVersion
from gateway.datasets import get_dataset
from gateway.lineage import Action, Actor, recorder
from gateway.policy.components import refuse_missing_components
from gateway.policy.document import canonical_document, diff_documents, policy_digest
from gateway.policy.errors import PolicyImmutable
from gateway.policy.governing import DEFAULT_POLICY_NAME, governing_policy
from gateway.policy.schema import PolicyDocument
from gateway.policy.tables import refuse_changes_after_activation
from gateway.policy.weakening import (
    require_acknowledged,
    weakened_protections,
)

__all__ = ["refuse_changes_after_activation"]  # importing this module arms the hook


@dataclass(frozen=True, slots=True)
class Activation:
    version: PolicyVersion
    dataset_id: str | None
    previous_version_id: str | None
    changed_fields: list[str]
    created: bool


def get_version(session: Session, ref: str) -> PolicyVersion:
    """By id, or `name@version`, or a name (its newest version)."""
    row = session.get(PolicyVersion, ref)
    if row is not None:
        return row
    name, _, version = ref.partition("@")
    stmt = select(PolicyVersion).where(PolicyVersion.name == name)
    if version:
        if not version.isdigit():
            raise NotFound(f"no policy version {ref!r}: use NAME@NUMBER", policy=ref)
        stmt = stmt.where(PolicyVersion.version == int(version))
    row = session.exec(stmt.order_by(col(PolicyVersion.version).desc()).limit(1)).first()
    if row is None:
        raise NotFound(f"no policy version {ref!r}", policy=ref)
    return row


def list_versions(session: Session) -> list[PolicyVersion]:
    return list(
        session.exec(
            select(PolicyVersion).order_by(col(PolicyVersion.name), col(PolicyVersion.version))
        ).all()
    )


def store_version(
    session: Session, ctx: GatewayContext, doc: PolicyDocument, *, actor: Actor
) -> tuple[PolicyVersion, bool]:
    """The version holding exactly this document; a new one (next number) if none does."""
    digest = policy_digest(doc)
    same = session.exec(
        select(PolicyVersion).where(PolicyVersion.name == doc.name, PolicyVersion.digest == digest)
    ).first()
    if same is not None:
        return same, False
    latest = session.exec(
        select(func.max(PolicyVersion.version)).where(PolicyVersion.name == doc.name)
    ).one()
    now = ctx.clock()
    row = PolicyVersion(
        id=str(uuid.uuid4()),
        name=doc.name,
        version=(latest or 0) + 1,
        digest=digest,
        document=canonical_document(doc),
        created_at=now,
    )
    session.add(row)
    session.flush()
    recorder(ctx, session, actor, now=now).record(
        Action.POLICY_VERSION_CREATED,
        entity=row.id,
        outputs={"policy_sha256": digest},
        parameters={"policy": row.name, "policy_version": row.version},
    )
    return row, True


@dataclass(frozen=True, slots=True)
class ActivationPreview:
    """What `activate` would do, without doing it (the dry run)."""

    name: str
    digest: str
    existing_version_id: str | None  # the stored version with this exact document, if any
    dataset_ids: list[str]  # the datasets it would govern
    changed_fields: list[str]  # against the named dataset's current policy


def affected_datasets(session: Session, doc: PolicyDocument, dataset_ref: str | None) -> list[str]:
    """The datasets activating `doc` changes the policy of: the one it binds; or, for a
    `default` policy, every dataset bound to no version."""
    if dataset_ref is not None:
        return [get_dataset(session, dataset_ref).id]
    if doc.name != DEFAULT_POLICY_NAME:
        return []
    return list(
        session.exec(
            select(Dataset.id).where(col(Dataset.policy_version_id).is_(None)).order_by(Dataset.id)
        ).all()
    )


def preview_activation(
    session: Session, doc: PolicyDocument, *, dataset_ref: str | None = None
) -> ActivationPreview:
    digest = policy_digest(doc)
    same = session.exec(
        select(PolicyVersion).where(PolicyVersion.name == doc.name, PolicyVersion.digest == digest)
    ).first()
    datasets = affected_datasets(session, doc, dataset_ref)
    changed: list[str] = []
    if dataset_ref is not None:
        before = governing_policy(session, datasets[0]).document
        changed = [c["field"] for c in diff_documents(before, doc)]
    return ActivationPreview(doc.name, digest, same.id if same else None, datasets, changed)


def activate(
    session: Session,
    ctx: GatewayContext,
    doc: PolicyDocument,
    *,
    actor: Actor,
    dataset_ref: str | None = None,
    acknowledged_weakening: Sequence[str] = (),
) -> Activation:
    """Store (or reuse) the version, activate it, and bind the dataset to it if named.

    A policy that switches off faces, plates or the leak check needs each of them named in
    `acknowledged_weakening`; the acknowledgement is recorded. A policy whose enabled roles
    cannot run on this host is refused (ComponentMissing)."""
    weakened = weakened_protections(doc)
    require_acknowledged(weakened, acknowledged_weakening)
    refuse_missing_components(doc.redaction, name=doc.name)
    row, created = store_version(session, ctx, doc, actor=actor)
    now = ctx.clock()
    if row.activated_at is None:
        row.activated_at = now
        session.add(row)
        session.flush()
        recorder(ctx, session, actor, now=now).record(
            Action.POLICY_ACTIVATED,
            entity=row.id,
            parameters={
                "policy": row.name,
                "policy_version": row.version,
                "policy_sha256": row.digest,
            },
        )
    dataset = get_dataset(session, dataset_ref) if dataset_ref is not None else None
    if weakened:
        _record_weakening(session, ctx, row, weakened, actor=actor, dataset=dataset)
    if dataset is None:
        return Activation(row, None, None, [], created)
    return bind_dataset(session, ctx, dataset, row, actor=actor, created=created)


def _record_weakening(
    session: Session,
    ctx: GatewayContext,
    row: PolicyVersion,
    weakened: list[str],
    *,
    actor: Actor,
    dataset: Dataset | None,
) -> None:
    recorder(ctx, session, actor).record(
        Action.POLICY_WEAKENING_ACKNOWLEDGED,
        entity=row.id,
        dataset=dataset.id if dataset is not None else None,
        parameters={
            "policy": row.name,
            "policy_version": row.version,
            "policy_sha256": row.digest,
            "turned_off": weakened,
            "governs": "dataset" if dataset is not None else "by name",
        },
    )


def bind_dataset(
    session: Session,
    ctx: GatewayContext,
    dataset: Dataset,
    row: PolicyVersion,
    *,
    actor: Actor,
    created: bool = False,
) -> Activation:
    if row.activated_at is None:
        raise PolicyImmutable("only activated versions can govern a dataset", policy=row.id)
    before = governing_policy(session, dataset.id)
    previous = dataset.policy_version_id
    changed = [
        c["field"]
        for c in diff_documents(before.document, PolicyDocument.model_validate(row.document))
    ]
    if previous == row.id:
        return Activation(row, dataset.id, previous, [], created)
    dataset.policy_version_id = row.id
    session.add(dataset)
    session.flush()
    recorder(ctx, session, actor).record(
        Action.DATASET_POLICY_BOUND,
        entity=dataset.id,
        dataset=dataset.id,
        inputs={"previous": before.reference()},
        outputs={"policy_version_id": row.id, "policy_sha256": row.digest},
        parameters={"policy": row.name, "policy_version": row.version, "changed": changed},
    )
    return Activation(row, dataset.id, previous, changed, created)
