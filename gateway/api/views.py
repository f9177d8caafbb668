"""Response models: what every operation answers, declared in the OpenAPI document.

The handlers keep building plain dicts; FastAPI validates each against its model here
(`extra="forbid"`: a key a handler adds without declaring it fails the tests and schemathesis,
it never reaches a client undocumented). Times are strings as the handlers format them
(`datetime.isoformat()`), not re-serialised, so no answer changes shape. The aliases the
routes share live here too (`JobId`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from gateway.core.models import MAX_INT, AssetState, Role
from gateway.vocabulary import LegalBasis

Timestamp = Annotated[str, Field(description="ISO 8601 (datetime.isoformat)")]
JSONObject = dict[str, Any]
# a job id in a route's path (a sync's, a review pull's): the job table's id is an Integer column
JobId = Annotated[int, Path(ge=1, le=MAX_INT)]


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiKeyView(View):
    id: str
    role: Role
    label: str
    dataset_scope: list[str] | None
    created_at: Timestamp
    expires_at: Timestamp | None
    revoked_at: Timestamp | None


class NewApiKeyView(ApiKeyView):
    token: str = Field(description="shown once; store it now")


class DatasetView(View):
    id: str
    name: str
    purpose: str
    controller: str
    legal_basis: LegalBasis
    data_subject_categories: list[str]
    personal_data_categories: list[str]
    ontology: JSONObject
    policy_version_id: str | None
    created_at: Timestamp | None


class AssetView(View):
    id: str
    dataset_id: str
    state: AssetState
    reasons: list[JSONObject]
    format: str | None
    width: int | None
    height: int | None
    bytes: int
    redacted_sha256: str | None
    created_at: Timestamp
    updated_at: Timestamp


class UploadResult(View):
    file: str
    asset_id: str
    state: AssetState
    duplicate: bool
    problem: JSONObject | None = Field(None, description="present when the file was refused")


class UploadResults(View):
    results: list[UploadResult]


class DestinationView(View):
    id: str
    name: str
    url: str
    region: str
    gateway_url: str | None
    transfer_basis: str | None
    image_delivery: str
    allow_local_addresses: bool
    created_at: Timestamp


class FailedAsset(View):
    asset_id: str
    error: str


class SkippedAsset(View):
    asset_id: str
    reason: str


class SyncJobView(View):
    """A background sync: poll `GET /v1/datasets/{ref}/sync/{job_id}` until `done` (the
    report is then in `report`) or `failed` (`error_code`, `error`)."""

    job_id: int
    state: str = Field(description="queued, running, done or failed")
    destination: str
    attempts: int
    error_code: str | None
    error: str | None
    report: SyncView | None


class SyncView(View):
    dataset: str
    destination: str
    project_id: int
    created: int
    adopted: int
    already: int
    refreshed: int
    replaced: int
    withdrawn: int
    failed: list[FailedAsset]
    skipped: list[SkippedAsset]
    skipped_by_reason: dict[str, int]


class LiveView(View):
    status: str


class ReadyView(View):
    status: str = Field(description="ready | not-ready")
    role: str
    checks: dict[str, str] = Field(description='name: "ok" or the error type')
    advisory: dict[str, str]


class LineageRecordView(View):
    seq: int
    record_hash: str
    record: JSONObject


class LineagePage(View):
    records: list[LineageRecordView]
    next_after_seq: int | None = Field(description="pass as after_seq; null: no more records")


class CheckpointView(View):
    tree_size: int
    root_hash: str
    body: str
    key_id: str
    signature: str


class ProvenRecordView(LineageRecordView):
    inclusion_proof: list[str]


class AssetHistoryView(View):
    asset_id: str
    checkpoint: CheckpointView
    records: list[ProvenRecordView]


class SigningKeyView(View):
    key_id: str
    alg: str
    public_key: str
    fingerprint: str
    created_at: Timestamp
    retired_at: Timestamp | None
    previous_key_id: str | None
    handover: str | None
    handover_old_signature: str | None
    handover_new_signature: str | None


class SigningKeysView(View):
    keys: list[SigningKeyView]


class MLUseRecorded(View):
    record_id: str


class PolicyValidation(View):
    valid: bool
    name: str
    sha256: str


class PolicyVersionView(View):
    id: str
    name: str
    version: int
    sha256: str
    activated_at: Timestamp | None


class PolicyVersionDocument(PolicyVersionView):
    document: JSONObject


class WithdrawnTask(View):
    asset_id: str
    task_id: int


class Withdrawal(View):
    dataset_id: str
    destination: str
    region: str
    rule: str
    message: str
    tasks: list[WithdrawnTask]


class ActivationPreviewView(View):
    dry_run: bool
    name: str
    sha256: str
    existing_version_id: str | None
    dataset_ids: list[str]
    changed_fields: list[str]
    withdraw: list[Withdrawal]


class ActivationView(PolicyVersionView):
    created: bool
    dataset_id: str | None
    changed_fields: list[str]
    withdraw: list[Withdrawal]


class FieldChange(View):
    field: str
    old: Any = None
    new: Any = None


class PolicyDiffView(View):
    a: PolicyVersionView
    b: PolicyVersionView
    changes: list[FieldChange]


class ReprocessView(View):
    dataset_id: str
    policy_version_id: str | None
    dry_run: bool
    assets: list[str]
    original_deleted: list[str]


class RetentionItem(View):
    kind: str
    dataset_id: str
    entity_id: str
    due_at: Timestamp
    rule: str


class RetentionRunView(View):
    dry_run: bool
    items: list[RetentionItem]
    held: list[RetentionItem]
    errors: list[dict[str, str]]


class HoldView(View):
    id: str
    dataset_id: str
    asset_id: str | None


class ErasureView(View):
    id: str
    dataset_id: str
    scope: str = Field(description="subject | asset")
    subject_pseudonym: str | None
    asset_id: str | None
    state: str
    received_at: Timestamp
    due_at: Timestamp
    overdue: bool
    completed_at: Timestamp | None
    assets_erased: int
    recipients: list[JSONObject]


class VaultEntry(View):
    pseudonym: str
    field: str
    value: str


class WebhookAccepted(View):
    accepted: list[int] = Field(description="annotation ids")
    action: str
    quarantined: list[str] = Field(
        description="asset ids quarantined at once (the hint carries a privacy flag)"
    )
    note: str


def binary(*media_types: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 answer whose body is bytes of one of `media_types` (images, reports)."""
    schema = {"type": "string", "format": "binary"}
    return {
        200: {"description": description, "content": {m: {"schema": schema} for m in media_types}}
    }


SyncJobView.model_rebuild()
