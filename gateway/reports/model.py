"""The governance report as typed data: the JSON is the source of truth, HTML and PDF render it.

Signed data is deterministic: integers and strings only (ratios are decimal strings such as
"0.8125"), timestamps are ISO 8601 strings in UTC. Every list that can be empty is rendered
with a plain "nothing recorded yet" sentence, never with invented figures.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

REPORT_SCHEMA = "lpg.report/v1"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Count(_Frozen):
    """One bucket of a breakdown (a label, a state, a reason code, a region...)."""

    key: str
    count: int


class Period(_Frozen):
    start: str | None = Field(None, description="inclusive, ISO 8601; None: from the beginning")
    end: str | None = Field(None, description="exclusive, ISO 8601; None: up to generation time")


class DatasetIdentity(_Frozen):
    id: str
    name: str
    purpose: str
    controller: str
    legal_basis: str
    legal_basis_reference: str
    data_subject_categories: list[str]
    personal_data_categories: list[str]
    ontology_labels: list[str]
    created_at: str


class PolicyVersionEntry(_Frozen):
    id: str
    name: str
    version: int
    digest: str
    activated_at: str | None
    assets_governed: int
    retention_days: dict[str, int] = Field(default_factory=dict)
    allowed_regions: dict[str, list[str]] = Field(default_factory=dict)
    transfer_bases: list[str] = Field(default_factory=list)
    origin: str | None = Field(None, description="jurisdiction the data is collected under")
    redaction: dict[str, str] = Field(
        default_factory=dict, description="what the policy redacts (detectors on/off, operator)"
    )
    pseudonymisation: dict[str, str] = Field(
        default_factory=dict, description="the policy's metadata and pseudonym decisions"
    )
    weakened: list[str] = Field(
        default_factory=list,
        description="protections this policy switches off (faces, plates, leak_check); "
        "activating it needed an acknowledgement, recorded in lineage",
    )
    review: dict[str, str] = Field(
        default_factory=dict, description="the policy's human-review settings (sample_rate)"
    )


class PolicySection(_Frozen):
    current_policy_id: str | None
    current: PolicyVersionEntry | None = Field(description="the policy governing the dataset now")
    current_source: str | None = Field(
        description="dataset-binding | default-version | default-file; None: no policy"
    )
    versions: list[PolicyVersionEntry] = Field(description="versions that governed its assets")
    changes: list[Count] = Field(description="policy lineage actions for this dataset")


class Recipient(_Frozen):
    name: str
    kind: str
    region: str
    assets_sent: int
    transfer_basis: str | None = Field(None, description="transfer tool the recipient declared")


class Transfer(_Frozen):
    from_region: str
    to_region: str
    point: str
    basis: str | None
    count: int
    blocked: bool


class SecurityMeasure(_Frozen):
    measure: str
    detail: str
    evidence: str


class ProcessingRecord(_Frozen):
    """GDPR Art. 30(1) record of processing activities, for this dataset."""

    controller: str
    purposes: list[str]
    legal_basis: str
    data_subject_categories: list[str]
    personal_data_categories: list[str]
    recipients: list[Recipient]
    transfers: list[Transfer] = Field(
        description="GDPR Chapter V transfers, allowed or blocked: only moves to a region "
        "outside the origin's free-flow area (refusals inside it are under residency)"
    )
    retention: list[str]
    security_measures: list[SecurityMeasure]


class GovernanceItem(_Frozen):
    reference: str
    title: str
    findings: list[str]


class RecordKeeping(_Frozen):
    scope_note: str
    lineage_records: int
    actions: list[Count]
    first_record_at: str | None
    last_record_at: str | None


class AiActSection(_Frozen):
    article_10: list[GovernanceItem]
    annex_iv_2d: list[GovernanceItem]
    record_keeping: RecordKeeping


class DetectorUse(_Frozen):
    detector: str
    label: str
    stage: str
    regions: int


class RecallFigure(_Frozen):
    data_set: str
    label: str
    boxes: int
    recall: str
    threshold: str


class RedactionSection(_Frozen):
    assets_total: int
    assets_by_state: list[Count]
    regions_by_label: list[Count] = Field(description="detection rows held now, stage detect")
    leak_check_by_label: list[Count] = Field(description="rows the leak check added/strengthened")
    regions_recorded: list[Count] = Field(
        description="regions per label of each asset's current rendition (its latest "
        "redaction run), from lineage (detect and leak check together; includes assets "
        "deleted or erased since)"
    )
    assets_with_regions: int
    detectors: list[DetectorUse]
    tools: list[str]
    redaction_policy_digests: list[str]
    quarantine_reasons: list[Count]
    rejection_reasons: list[Count]
    measured_recall: list[RecallFigure]
    recall_source: str | None
    limits: list[str]


class ResidencySection(_Frozen):
    processing_regions: list[Count] = Field(description="lineage records per recording region")
    storage_regions: list[Count]
    annotation_regions: list[Count]
    blocked_transfers: list[Transfer]


class RetentionEvent(_Frozen):
    action: str
    count: int
    first_at: str
    last_at: str


class DueItem(_Frozen):
    what: str
    due_at: str
    assets: int


class LegalHoldEntry(_Frozen):
    scope: str
    reason: str
    placed_at: str
    released_at: str | None


class RetentionSection(_Frozen):
    deletions: list[RetentionEvent]
    erasure_requests: list[RetentionEvent]
    due_next: list[DueItem]
    legal_holds: list[LegalHoldEntry]
    originals_stored: int | None = Field(
        None, description="assets whose encrypted original is stored now (None: older report)"
    )
    originals_deleted: list[Count] = Field(
        default_factory=list,
        description="assets whose original was deleted (retention, expiry, erasure), by the "
        "lifecycle state they are in now",
    )


class KappaPair(_Frozen):
    annotator_a: str
    annotator_b: str
    items: int
    kappa: str | None


class AnnotationQuality(_Frozen):
    annotations: int = Field(
        description="submitted annotations the gateway holds (not cancelled, not deleted in "
        "Label Studio): those of tasks still in Label Studio plus those kept from withdrawn tasks"
    )
    in_label_studio: int = Field(
        0,
        description="of these, annotations of tasks still in Label Studio: Label Studio's own "
        "count (total_annotations_number) of the synced projects",
    )
    kept_from_withdrawn_tasks: int = Field(
        0,
        description="of these, annotations stored before their task was withdrawn from Label "
        "Studio (privacy flag, residency, erasure, retention): Label Studio no longer holds them",
    )
    cancelled: int = Field(description="cancelled (skipped) annotations, counted apart")
    assets_annotated: int
    assets_with_overlap: int
    overlap_coverage: str | None
    per_annotator: list[Count]
    label_distribution: list[Count]
    subgroup_distribution: list[Count]
    box_comparisons: int
    box_matched_pairs: int
    box_f1: str | None
    box_mean_iou: str | None
    box_label_kappa: str | None
    choice_kappa_pairs: list[KappaPair]
    choice_alpha: str | None
    choice_units: int
    iou_threshold: str
    method: str


class Incident(_Frozen):
    kind: str
    reason: str
    asset_id: str | None
    opened_at: str
    closed_at: str | None


class ErasureEntry(_Frozen):
    """One erasure request (GDPR Art. 17); the subject appears only as the request id."""

    request_id: str
    state: str
    received_at: str
    due_at: str
    completed_at: str | None
    assets_erased: int
    recipients_notified: int


class IncidentsSection(_Frozen):
    incidents: list[Incident]
    quarantined_assets: int
    erasure_register: list[ErasureEntry]


class LeakFigure(_Frozen):
    """Sampled released images with a reviewer finding of one label, under one policy version
    ("all": every version). Ratios are decimal strings; bounds are rounded outwards."""

    label: str = Field(description="face, plate, text, or any (at least one of them)")
    policy_version: str
    samples: int = Field(description="sampled released images decided by a listed reviewer")
    findings: int = Field(description="of these, images where the reviewer drew this label")
    observed: str
    clopper_pearson_lower: str = Field(description="exact two-sided 95% interval")
    clopper_pearson_upper: str
    wilson_lower: str = Field(description="Wilson score two-sided 95% interval")
    wilson_upper: str
    upper_bound_95: str = Field(description="exact one-sided 95% upper bound")
    samples_needed: int = Field(
        description="samples the target bound needs, given these findings and no further one"
    )
    more_samples_needed: int
    statement: str


class ReviewerRecall(_Frozen):
    """Share of deliberately visible faces (calibration items) the reviewers found."""

    calibration_items: int
    planted: int
    found: int
    recall: str
    clopper_pearson_lower: str
    clopper_pearson_upper: str


class ReviewTime(_Frozen):
    """Label Studio's lead time of decided review tasks ("all", or one review reason)."""

    reason: str
    tasks: int
    median_seconds: str
    p90_seconds: str


class ReviewSection(_Frozen):
    items_by_reason: list[Count] = Field(description="review items per reason")
    decisions: list[Count] = Field(description="per decision; open: not decided yet")
    originals_missing: int = Field(
        description="items whose original retention had already deleted (reject only)"
    )
    target_bound: str
    confidence: str
    samples_needed_without_findings: int
    residual_leak: list[LeakFigure]
    reviewer_recall: ReviewerRecall | None = Field(description="None: not calibrated")
    bound_kind: str
    corrected_upper_bound: str | None = Field(
        description="the any-label upper bound divided by the recall's lower bound"
    )
    review_time: list[ReviewTime]
    method: str


class GdprDesignSection(_Frozen):
    """GDPR Art. 25 measures in force and the inputs of a DPIA (Art. 35(7)), from records."""

    article_25: list[SecurityMeasure]
    dpia_inputs: list[GovernanceItem]
    dpia_note: str


class SigningKeyInfo(_Frozen):
    key_id: str
    fingerprint: str = Field(description="SHA-256 of the raw Ed25519 public key, hex")
    public_key: str = Field(description="raw Ed25519 public key, base64")
    created_at: str
    retired_at: str | None


class CheckpointInfo(_Frozen):
    tree_size: int
    root_hash: str
    chain_head: str
    key_id: str
    created_at: str


class LineageSection(_Frozen):
    verified: bool
    records_verified: int
    failure: str | None
    head_seq: int
    head_hash: str
    dataset_records: int
    signing_keys: list[SigningKeyInfo]
    checkpoints: list[CheckpointInfo]


class DatasheetAnswer(_Frozen):
    question: str
    answer: str


class Datasheet(_Frozen):
    """A "Datasheets for Datasets" (Gebru et al., 2021) summary, answered from records."""

    sections: dict[str, list[DatasheetAnswer]]


class GovernanceReport(_Frozen):
    report_schema: str = REPORT_SCHEMA
    report_id: str
    generated_at: str
    generated_by: str
    gateway_region: str
    period: Period
    statements: list[str]
    dataset: DatasetIdentity
    policies: PolicySection
    processing_record: ProcessingRecord
    ai_act: AiActSection
    redaction: RedactionSection
    residency: ResidencySection
    retention: RetentionSection
    annotation_quality: AnnotationQuality | None = Field(
        description="None: no annotation has come back from Label Studio"
    )
    incidents: IncidentsSection
    lineage: LineageSection
    datasheet: Datasheet
    review: ReviewSection | None = Field(
        None, description="human review and the residual-leak estimate (None: older report)"
    )
    gdpr_design: GdprDesignSection | None = Field(
        None, description="GDPR Art. 25 and Art. 35(7) DPIA inputs (None: older report)"
    )


class ProcessingActivities(_Frozen):
    """GDPR Art. 30 record over every dataset: one processing record per dataset."""

    report_schema: str = "lpg.processing-activities/v1"
    report_id: str
    generated_at: str
    generated_by: str
    gateway_region: str
    period: Period
    statements: list[str]
    activities: list[ProcessingRecord]
    datasets: list[DatasetIdentity]
    lineage: LineageSection


class SignatureEnvelope(_Frozen):
    key_id: str
    alg: str
    signature: str


class SignedReport(_Frozen):
    """What `report --format json` writes: the report and a detached lineage-key signature
    over its RFC 8785 canonical JSON."""

    report: GovernanceReport | ProcessingActivities
    signature: SignatureEnvelope
