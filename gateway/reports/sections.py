"""The report's sections, worded from collected facts. Where nothing is recorded, the finding
says so: a report never fills a gap with an assumption."""

from __future__ import annotations

from gateway.core.models import AssetState, LegalBasis
from gateway.lineage.actions import Action
from gateway.reports.collect_policy import chapter_v_only, classify_transfers
from gateway.reports.facts import Facts
from gateway.reports.model import (
    AiActSection,
    Count,
    DatasetIdentity,
    GovernanceItem,
    PolicyVersionEntry,
    ProcessingRecord,
    RecordKeeping,
    RedactionSection,
    SecurityMeasure,
)
from gateway.reports.query import iso

NOTHING = "Nothing recorded yet."
LEGAL_BASIS_REFERENCE = {
    LegalBasis.CONSENT: "GDPR Art. 6(1)(a) consent",
    LegalBasis.CONTRACT: "GDPR Art. 6(1)(b) contract",
    LegalBasis.LEGAL_OBLIGATION: "GDPR Art. 6(1)(c) legal obligation",
    LegalBasis.VITAL_INTERESTS: "GDPR Art. 6(1)(d) vital interests",
    LegalBasis.PUBLIC_TASK: "GDPR Art. 6(1)(e) public task",
    LegalBasis.LEGITIMATE_INTERESTS: "GDPR Art. 6(1)(f) legitimate interests",
}
PSEUDONYMISED = (
    "Redacted images of people remain personal data: the gateway pseudonymises them (GDPR Art. "
    "4(5)), it does not anonymise them (Recital 26). Nothing in this report claims anonymisation."
)
ART_12_NOTE = (
    "AI Act Art. 12 requires a high-risk AI system itself to record events (logs) automatically "
    "over its lifetime; it governs the deployed system, not this data pipeline. This section "
    "summarises the gateway's lineage ledger, the record of the data-governance steps behind "
    "Art. 10 and Annex IV; it is not, and does not replace, the Art. 12 log of a system "
    "trained on this data."
)
REDACTION_LIMITS = [
    "Detectors miss some faces, plates and text: measured recall is below 1 on hard images "
    "(small, profile, occluded, blurred or dark faces; distant or angled plates).",
    "Person names in image text are not detected (no offline named-entity model is used); "
    "personal-text detection covers e-mail addresses, phone numbers, card numbers, IBANs and "
    "URLs, and only when the dataset's policy enables it.",
    "Bodies, clothing, tattoos, gait, locations and context can still identify people; "
    "redaction lowers, it does not remove, the risk of re-identification.",
]


def identity(facts: Facts) -> DatasetIdentity:
    d = facts.dataset
    basis = LegalBasis(d.legal_basis)
    return DatasetIdentity(
        id=d.id,
        name=d.name,
        purpose=d.purpose,
        controller=d.controller,
        legal_basis=basis.value,
        legal_basis_reference=LEGAL_BASIS_REFERENCE[basis],
        data_subject_categories=list(d.data_subject_categories),
        personal_data_categories=list(d.personal_data_categories),
        ontology_labels=[str(label["name"]) for label in d.ontology.get("labels", [])],
        created_at=iso(d.created_at) or "",
    )


def redaction(facts: Facts) -> RedactionSection:
    return RedactionSection(
        assets_total=facts.assets_total,
        assets_by_state=facts.states,
        regions_by_label=facts.regions_by_label,
        leak_check_by_label=facts.leak_check_by_label,
        regions_recorded=facts.regions_recorded,
        assets_with_regions=facts.assets_with_regions,
        detectors=facts.detectors,
        tools=facts.tools,
        redaction_policy_digests=facts.policy_digests,
        quarantine_reasons=facts.quarantine_reasons,
        rejection_reasons=facts.rejection_reasons,
        measured_recall=facts.recall,
        recall_source=facts.recall_source,
        limits=REDACTION_LIMITS,
    )


def processing_record(facts: Facts) -> ProcessingRecord:
    ident = identity(facts)
    transfers = classify_transfers(
        facts.recipients,
        facts.current_policy,
        home_regions={c.key for c in facts.storage_regions},
        on=facts.now.date(),
    )
    return ProcessingRecord(
        controller=ident.controller,
        purposes=[ident.purpose],
        legal_basis=ident.legal_basis_reference,
        data_subject_categories=ident.data_subject_categories,
        personal_data_categories=ident.personal_data_categories,
        recipients=facts.recipients,
        transfers=[*transfers, *chapter_v_only(facts.blocked, facts.current_policy)],
        retention=retention_lines(facts),
        security_measures=security_measures(facts),
    )


def retention_lines(facts: Facts) -> list[str]:
    current = facts.current_policy
    if current is None or not current.retention_days:
        return ["No retention policy is recorded for this dataset."]
    return [
        f"{name.removesuffix('_days').replace('_', ' ')}: {days} days after ingest "
        f"(policy {_policy_name(current)}, {facts.current_policy_source})"
        for name, days in sorted(current.retention_days.items())
    ]


def security_measures(facts: Facts) -> list[SecurityMeasure]:
    keys = facts.key_rows
    roles = ", ".join(f"{c.key} {c.count}" for c in facts.api_keys) or "none active"
    chain = (
        f"chain verified ({facts.lineage.records_verified} records)"
        if facts.lineage.verified
        else f"VERIFICATION FAILED: {facts.lineage.failure}"
    )
    return [
        SecurityMeasure(
            measure="Encryption at rest (Art. 32(1)(a))",
            detail="Originals sealed with AES-256-GCM under a per-dataset key wrapped by the "
            "master key; deletion crypto-shreds the key.",
            evidence=f"{keys['versions']} dataset key version(s), {keys['shredded']} shredded",
        ),
        SecurityMeasure(
            measure="Pseudonymisation (Art. 32(1)(a), Art. 4(5))",
            detail="Faces, plates and configured personal text are masked; all embedded "
            "metadata is stripped; identifiers are replaced by keyed pseudonyms.",
            evidence=f"{facts.held(AssetState.RELEASED.value)} asset(s) released after "
            f"redaction, {facts.held(AssetState.QUARANTINED.value)} quarantined; "
            f"re-identification vault entries held: {_counts(facts.vault_entries)}; "
            f"vault reads recorded: {_action_count(facts, Action.VAULT_READ)}",
        ),
        SecurityMeasure(
            measure="Access control (Art. 32(1)(b))",
            detail="API keys with one role each and an optional dataset scope, stored as "
            "keyed hashes; annotators only reach redacted images through Label Studio.",
            evidence=f"active keys reaching this dataset by role: {roles}",
        ),
        SecurityMeasure(
            measure="Integrity and accountability (Art. 5(2), Art. 32(1)(b))",
            detail="Every state change appends a hash-chained lineage record in the same "
            "transaction; this report is signed with the lineage key.",
            evidence=chain,
        ),
    ]


def _count_line(items: list[tuple[str, int]]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in items) or "none"


def _pairs(facts: Facts, section: str) -> str:
    policy = facts.current_policy
    values: dict[str, str] = getattr(policy, section) if policy is not None else {}
    return ", ".join(f"{k}: {v}" for k, v in values.items()) or NOTHING


def _policy_name(policy: PolicyVersionEntry) -> str:
    return f"{policy.name} v{policy.version}" if policy.version else policy.name


def _action_count(facts: Facts, action: Action) -> int:
    return next((c.count for c in facts.actions if c.key == action), 0)


def _policies(facts: Facts) -> str:
    named = [f"{p.name} v{p.version}" for p in facts.policies]
    if facts.current_policy is not None:
        named.append(f"now {facts.current_policy.name} ({facts.current_policy_source})")
    return ", ".join(named) or NOTHING


def _counts(items: list[Count]) -> str:
    return _count_line([(c.key, c.count) for c in items])


def ai_act(facts: Facts) -> AiActSection:
    d = facts.dataset
    states = _counts(facts.states)
    labels = [str(label["name"]) for label in d.ontology.get("labels", [])]
    instructions = str(d.ontology.get("instructions", "")).strip()
    q = facts.quality
    distribution = _counts(q.label_distribution) if q else ""
    unused = [label for label in labels if q and label not in {c.key for c in q.label_distribution}]
    steps = _counts(facts.actions)
    article_10 = [
        GovernanceItem(
            reference="Art. 10(2)(a)",
            title="Relevant design choices",
            findings=[
                f"Purpose: {d.purpose}",
                f"Ontology: {', '.join(labels) or 'none'}.",
                "Only redacted, metadata-free images leave the gateway; policy versions "
                f"in force: {_policies(facts)}",
            ],
        ),
        GovernanceItem(
            reference="Art. 10(2)(b)",
            title="Data collection processes, origin of data, original purpose",
            findings=[
                f"{facts.assets_total} asset(s) received; by state: {states}.",
                f"Received in region(s): {_counts(facts.storage_regions)}.",
                f"Original purpose of collection as recorded: {d.purpose}",
            ],
        ),
        GovernanceItem(
            reference="Art. 10(2)(c)",
            title="Data-preparation operations (annotation, labelling, cleaning, ...)",
            findings=[
                f"Recorded pipeline steps: {steps}.",
                f"Regions redacted (current renditions): {_counts(facts.regions_recorded)}.",
                f"Redaction policy now: {_pairs(facts, 'redaction')}.",
                f"Pseudonymisation policy now: {_pairs(facts, 'pseudonymisation')}.",
                f"Annotations: {q.annotations} submitted ({q.in_label_studio} on tasks still in "
                f"Label Studio, {q.kept_from_withdrawn_tasks} kept from withdrawn tasks; "
                f"{q.cancelled} cancelled, not counted)."
                if q
                else "Annotations: " + NOTHING,
            ],
        ),
        GovernanceItem(
            reference="Art. 10(2)(d)",
            title="Assumptions (what the data is supposed to measure and represent)",
            findings=[
                f"Annotation instructions as recorded: {instructions}"
                if instructions
                else "No assumptions were recorded with the dataset (its ontology has no "
                "instructions)."
            ],
        ),
        GovernanceItem(
            reference="Art. 10(2)(e)",
            title="Availability, quantity and suitability",
            findings=[
                f"Released (usable) assets: {facts.held(AssetState.RELEASED.value)} of "
                f"{facts.assets_total}; quarantined: {facts.held(AssetState.QUARANTINED.value)}; "
                f"rejected: {facts.state(AssetState.REJECTED.value)}.",
                f"Formats: {_counts(facts.formats)}; width "
                f"{facts.dimensions['min_width']}-{facts.dimensions['max_width']} px, height "
                f"{facts.dimensions['min_height']}-{facts.dimensions['max_height']} px.",
            ],
        ),
        GovernanceItem(
            reference="Art. 10(2)(f)",
            title="Examination for possible biases",
            findings=[
                f"Class distribution of annotations: {distribution}."
                if q and distribution
                else "Class distribution: no annotations recorded yet.",
                "Per-subgroup figures: "
                + (
                    _counts(q.subgroup_distribution)
                    if q and q.subgroup_distribution
                    else "the ontology defines no subgroups, so none can be computed."
                ),
            ],
        ),
        GovernanceItem(
            reference="Art. 10(2)(g)",
            title="Measures to detect, prevent and mitigate biases",
            findings=["No bias-mitigation measure is recorded by the gateway."],
        ),
        GovernanceItem(
            reference="Art. 10(2)(h)",
            title="Data gaps and shortcomings",
            findings=gaps(facts, unused),
        ),
    ]
    return AiActSection(
        article_10=article_10, annex_iv_2d=annex_iv(facts), record_keeping=record_keeping(facts)
    )


def gaps(facts: Facts, unused_labels: list[str]) -> list[str]:
    found = [
        f"{facts.held(AssetState.QUARANTINED.value)} asset(s) quarantined and "
        f"{facts.state(AssetState.REJECTED.value)} rejected are not in the usable data.",
        "Person names in image text are not redacted (see Redaction, limits).",
    ]
    if facts.quality is None or facts.quality.annotations == 0:
        found.append("No annotations have come back from Label Studio yet.")
    elif unused_labels:
        found.append(f"Ontology labels with no annotation: {', '.join(unused_labels)}.")
    if not facts.recall:
        found.append("No measured redaction recall is on record for this installation.")
    found.extend(weakened_policies(facts))
    return found


def weakened_policies(facts: Facts) -> list[str]:
    """A flag for each policy governing this dataset that switches a protection off."""
    seen = {p.id: p for p in [*facts.policies, facts.current_policy] if p is not None}
    return [
        f"WEAKENED PROTECTION: policy {_policy_name(p)} switches off {', '.join(p.weakened)}; "
        "assets it governs were released without it (acknowledged at activation, in lineage)."
        for p in seen.values()
        if p.weakened
    ]


def annex_iv(facts: Facts) -> list[GovernanceItem]:
    d = facts.dataset
    size = facts.dimensions.get("total_bytes") or 0
    return [
        GovernanceItem(
            reference="Annex IV §2(d)",
            title="General description, provenance, scope and main characteristics",
            findings=[
                f"Dataset '{d.name}' of controller {d.controller}, created {iso(d.created_at)}.",
                f"{facts.assets_total} image(s), {size} bytes of originals received; subjects: "
                f"{', '.join(d.data_subject_categories)}; personal data: "
                f"{', '.join(d.personal_data_categories)}.",
            ],
        ),
        GovernanceItem(
            reference="Annex IV §2(d)",
            title="How the data was obtained and selected",
            findings=[
                "Images are pushed into the gateway (REST upload or CLI folder import); each is "
                "validated by magic bytes, size and pixel limits before it is accepted.",
                f"Rejected at intake: {_counts(facts.rejection_reasons)}.",
            ],
        ),
        GovernanceItem(
            reference="Annex IV §2(d)",
            title="Labelling procedures",
            findings=[
                f"Annotated in Label Studio on redacted images; annotators: "
                f"{len(facts.quality.per_annotator)} pseudonymous annotator(s)."
                if facts.quality and facts.quality.per_annotator
                else "Labelling: " + NOTHING,
            ],
        ),
        GovernanceItem(
            reference="Annex IV §2(d)",
            title="Data cleaning",
            findings=[
                f"Quarantine reasons: {_counts(facts.quarantine_reasons)}.",
                f"Deletions: {_count_line([(e.action, e.count) for e in facts.deletions])}.",
            ],
        ),
    ]


def record_keeping(facts: Facts) -> RecordKeeping:
    n, first, last = facts.span
    return RecordKeeping(
        scope_note=ART_12_NOTE,
        lineage_records=n,
        actions=facts.actions,
        first_record_at=first,
        last_record_at=last,
    )
