"""Generate, sign and verify governance reports.

`cleared_dataset_report` (and `cleared_processing_activities` over every dataset) sequences
pending lineage, checks that an export is allowed here (residency: the `Clearances` it
returns with the report), collects the facts in the database, signs the JSON with the lineage
key and records the generation. What leaves the gateway goes through
`gateway.reports.export`, which requires those clearances; `generate_*` give the signed
report alone, for use in this process.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from gateway.core.clearance import Clearance, Clearances
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure, InvalidRequest
from gateway.core.models import AssetState
from gateway.datasets import get_dataset, list_datasets
from gateway.lineage import Action, Actor, recorder
from gateway.lineage.canonical import canonical_json
from gateway.lineage.ledger import drain
from gateway.lineage.signing import (
    ensure_signing_key,
    public_keys,
    sign_document,
    verify_document,
)
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from gateway.reports import design, sections
from gateway.reports.collect_lineage import lineage_section
from gateway.reports.datasheet import datasheet
from gateway.reports.facts import Facts, collect
from gateway.reports.model import (
    Count,
    GovernanceReport,
    IncidentsSection,
    Period,
    PolicySection,
    ProcessingActivities,
    ResidencySection,
    RetentionSection,
    SignatureEnvelope,
    SignedReport,
)
from gateway.reports.query import Scope, iso

STATEMENTS = [
    sections.PSEUDONYMISED,
    "Every figure is drawn from the gateway's database and lineage ledger at generation time; "
    "nothing was typed in by hand. A section that says 'nothing recorded yet' means the "
    "gateway holds no record of it, not that it did not happen elsewhere.",
]


def check_period(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise InvalidRequest(
            "the period's start must be before its end", start=iso(start), end=iso(end)
        )


@dataclass(frozen=True, slots=True)
class ClearedReport:
    """A signed report and the export clearances of the datasets it covers."""

    signed: SignedReport
    clearances: Clearances


def generate_dataset_report(
    ctx: GatewayContext,
    dataset_ref: str,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
) -> SignedReport:
    """The signed report, for use in this process (`gateway.reports.export` to let it out)."""
    return cleared_dataset_report(ctx, dataset_ref, actor=actor, start=start, end=end).signed


def generate_processing_activities(
    ctx: GatewayContext,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
) -> SignedReport:
    """The signed record, for use in this process (`gateway.reports.export` to let it out)."""
    return cleared_processing_activities(ctx, actor=actor, start=start, end=end).signed


def cleared_dataset_report(
    ctx: GatewayContext,
    dataset_ref: str,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ClearedReport:
    check_period(start, end)
    drain(ctx.engine)  # every committed change has its lineage record in the chain
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
        clearance = check_export_allowed(ctx, session, dataset.id, actor=actor)
        ensure_signing_key(ctx, session)  # so the report lists the key that signs it
        now = ctx.clock()
        chain = lineage_section(session, Scope(dataset.id, start, end), ctx=ctx)
        facts = collect(
            session, dataset, Scope(dataset.id, start, end), now=now, lineage_state=chain
        )
        report = dataset_report(facts, ctx=ctx, actor=actor, now=now)
        signed = _sign_and_record(ctx, session, report, dataset_id=dataset.id, actor=actor)
        return ClearedReport(signed, Clearances((clearance,)))


def cleared_processing_activities(
    ctx: GatewayContext,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ClearedReport:
    """The GDPR Art. 30 record over every dataset the gateway holds."""
    check_period(start, end)
    drain(ctx.engine)
    with transaction(ctx.engine) as session:
        ensure_signing_key(ctx, session)
        now = ctx.clock()
        chain = lineage_section(session, Scope(None, start, end), ctx=ctx)
        every = [
            collect(session, d, Scope(d.id, start, end), now=now, lineage_state=chain)
            for d in list_datasets(session)
        ]
        cleared = Clearances(
            tuple(check_export_allowed(ctx, session, f.dataset.id, actor=actor) for f in every)
        )
        report = ProcessingActivities(
            report_id=str(uuid.uuid4()),
            generated_at=now.isoformat(),
            generated_by=f"{actor.kind}:{actor.id}",
            gateway_region=ctx.settings.region,
            period=Period(start=iso(start), end=iso(end)),
            statements=STATEMENTS,
            activities=[sections.processing_record(f) for f in every],
            datasets=[sections.identity(f) for f in every],
            lineage=chain,
        )
        signed = _sign_and_record(ctx, session, report, dataset_id=None, actor=actor)
        return ClearedReport(signed, cleared)


def dataset_report(
    facts: Facts, *, ctx: GatewayContext, actor: Actor, now: datetime
) -> GovernanceReport:
    recall = (
        "Measured redaction recall (share of labelled boxes at least 90% covered), from "
        f"{facts.recall_source}: "
        + "; ".join(
            f"{r.label} on {r.data_set}: {r.recall} ({r.boxes} labelled boxes)"
            for r in facts.recall
        )
        + ". These are benchmark figures, not measured on this dataset (it has no ground truth):"
        " a recall below 1 means some faces or plates stay visible."
        if facts.recall
        else "No measured redaction recall is on record for this installation."
    )
    review = design.review_section(facts)
    return GovernanceReport(
        report_id=str(uuid.uuid4()),
        generated_at=now.isoformat(),
        generated_by=f"{actor.kind}:{actor.id}",
        gateway_region=ctx.settings.region,
        period=Period(start=iso(facts.scope.start), end=iso(facts.scope.end)),
        statements=[*STATEMENTS, recall],
        dataset=sections.identity(facts),
        policies=PolicySection(
            current_policy_id=facts.dataset.policy_version_id,
            current=facts.current_policy,
            current_source=facts.current_policy_source,
            versions=facts.policies,
            changes=facts.policy_actions,
        ),
        processing_record=sections.processing_record(facts),
        ai_act=sections.ai_act(facts),
        redaction=sections.redaction(facts),
        residency=ResidencySection(
            processing_regions=facts.processing_regions,
            storage_regions=facts.storage_regions,
            annotation_regions=_merge((r.region, r.assets_sent) for r in facts.recipients),
            blocked_transfers=facts.blocked,
        ),
        retention=RetentionSection(
            deletions=facts.deletions,
            erasure_requests=facts.erasures,
            due_next=facts.due,
            legal_holds=facts.holds,
            originals_stored=facts.originals_stored,
            originals_deleted=[
                Count(key=k, count=n) for k, n in sorted(facts.originals_deleted.items())
            ],
        ),
        annotation_quality=facts.quality,
        incidents=IncidentsSection(
            incidents=facts.incidents,
            quarantined_assets=facts.held(AssetState.QUARANTINED.value),
            erasure_register=facts.erasure_register,
        ),
        lineage=facts.lineage,
        datasheet=datasheet(facts),
        review=review,
        gdpr_design=design.gdpr_design(facts, review),
    )


def _merge(pairs: Iterable[tuple[str, int]]) -> list[Count]:
    merged: dict[str, int] = {}
    for key, n in pairs:
        merged[key] = merged.get(key, 0) + n
    return [Count(key=k, count=v) for k, v in sorted(merged.items())]


def check_export_allowed(
    ctx: GatewayContext, session: Session, dataset_id: str, *, actor: Actor
) -> Clearance:
    """A report is an export: residency decides whether this region may receive it."""
    return enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.EXPORT,
        dataset_id=dataset_id,
        target_region=ctx.settings.region,
        actor=actor,
        entity_type="dataset",
        entity_id=dataset_id,
    )


def _sign_and_record(
    ctx: GatewayContext,
    session: Session,
    report: GovernanceReport | ProcessingActivities,
    *,
    dataset_id: str | None,
    actor: Actor,
) -> SignedReport:
    payload = report.model_dump(mode="json")
    envelope = SignatureEnvelope.model_validate(sign_document(ctx, session, payload))
    recorder(ctx, session, actor).record(
        Action.REPORT_GENERATED,
        entity=report.report_id,
        dataset=dataset_id,
        outputs={"report_sha256": hashlib.sha256(canonical_json(payload)).hexdigest()},
        parameters={"schema": report.report_schema, "key_id": envelope.key_id},
    )
    return SignedReport(report=report, signature=envelope)


def verify_report(document: Mapping[str, Any], keys: Mapping[str, bytes]) -> SignedReport:
    """Raise IntegrityFailure unless `document` is a well-formed report signed by one of
    `keys` (key id -> raw Ed25519 public key). Returns the parsed report."""
    report, envelope = document.get("report"), document.get("signature")
    if not isinstance(report, Mapping) or not isinstance(envelope, Mapping):
        raise IntegrityFailure("not a signed report: 'report' and 'signature' are required")
    try:
        verify_document(report, envelope, keys)
    except (TypeError, ValueError) as exc:  # e.g. a float: nothing this gateway signs holds one
        raise IntegrityFailure(f"not a report this gateway could have signed: {exc}") from None
    try:
        return SignedReport.model_validate(document)
    except ValidationError as exc:
        raise IntegrityFailure("the signed report does not match the report schema") from exc


def gateway_public_keys(ctx: GatewayContext) -> dict[str, bytes]:
    with transaction(ctx.engine) as session:
        return public_keys(session)
