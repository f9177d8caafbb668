"""One ontology per dataset, versioned: a new version each time its canonical form changes."""

from __future__ import annotations

from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.models import Dataset
from gateway.datasets import Ontology
from gateway.labelstudio.tables import OntologyVersion
from gateway.lineage import Action, Actor, recorder
from gateway.lineage.canonical import canonical_json


def current_ontology_version(
    ctx: GatewayContext, session: Session, dataset: Dataset, *, actor: Actor
) -> OntologyVersion:
    """The dataset's ontology as a numbered version (recorded when it first appears)."""
    document = Ontology.model_validate(dataset.ontology).model_dump(mode="json")
    digest = crypto.sha256_hex(canonical_json(document))
    latest = session.exec(
        select(OntologyVersion)
        .where(OntologyVersion.dataset_id == dataset.id)
        .order_by(col(OntologyVersion.version).desc())
    ).first()
    if latest is not None and latest.digest == digest:
        return latest
    now = ctx.clock()
    row = OntologyVersion(
        dataset_id=dataset.id,
        version=1 if latest is None else latest.version + 1,
        digest=digest,
        document=document,
        created_at=now,
    )
    session.add(row)
    session.flush()
    recorder(ctx, session, actor, now=now).record(
        Action.ONTOLOGY_VERSIONED,
        entity=dataset.id,
        dataset=dataset.id,
        parameters={"version": row.version, "digest": digest},
    )
    return row
