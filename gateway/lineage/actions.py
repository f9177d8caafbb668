"""The one home of lineage action names and the payload each one must carry.

A member's value is the exact string the ledger has always written (signed bundles, Merkle
checkpoints and reports read it back), so naming an action by its member changes no byte.
`SHAPES` says, per action, which entity type it describes and which keys its inputs, outputs
and parameters always hold; the recorder checks them before anything is written. Keys a call
site adds only sometimes are not listed: the shape is the floor a reader can rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    # an asset's lifecycle: "asset." + the state it entered (see `Action.entered`)
    ASSET_RECEIVED = "asset.received"
    ASSET_PROCESSING = "asset.processing"
    ASSET_RELEASED = "asset.released"
    ASSET_QUARANTINED = "asset.quarantined"
    ASSET_REJECTED = "asset.rejected"
    ASSET_EXPIRED = "asset.expired"
    ASSET_ERASED = "asset.erased"
    ASSET_ORIGINAL_DELETED = "asset.original_deleted"
    # keys, datasets and policy
    API_KEY_CREATED = "api-key.created"
    API_KEY_REVOKED = "api-key.revoked"
    DATASET_CREATED = "dataset.created"
    DATASET_POLICY_BOUND = "dataset.policy_bound"
    DATASET_KEY_ROTATED = "dataset-key.rotated"
    DATASET_KEY_REENCRYPTED = "dataset-key.reencrypted"
    DATASET_CRYPTO_SHREDDED = "dataset.crypto-shredded"
    MASTER_KEY_ROTATED = "master-key.rotated"
    KEY_CUSTODY_REFUSED = "key.custody-refused"
    LINEAGE_KEY_CREATED = "lineage-key.created"
    LINEAGE_KEY_ROTATED = "lineage-key.rotated"
    POLICY_VERSION_CREATED = "policy.version_created"
    POLICY_ACTIVATED = "policy.activated"
    POLICY_WEAKENING_ACKNOWLEDGED = "policy.weakening_acknowledged"
    VAULT_READ = "vault.read"
    # residency, retention, erasure, holds
    RESIDENCY_BLOCKED = "residency.blocked"
    # no writer records this name today; reports still count it beside RESIDENCY_BLOCKED
    RESIDENCY_VIOLATION = "residency.violation"
    RETENTION_LABELSTUDIO_TASKS = "retention.labelstudio_tasks"
    RETENTION_VAULT_ENTRY_DELETED = "retention.vault_entry_deleted"
    ERASURE_REQUESTED = "erasure.requested"
    ERASURE_CARRIED_OUT = "erasure.carried_out"
    ERASURE_RETRIED = "erasure.retried"
    LEGAL_HOLD_PLACED = "legal_hold.placed"
    LEGAL_HOLD_RELEASED = "legal_hold.released"
    # Label Studio
    DESTINATION_REGISTERED = "destination.registered"
    DESTINATION_REMOVED = "destination.removed"
    LABELSTUDIO_PROJECT_CREATED = "labelstudio.project_created"
    LABELSTUDIO_WEBHOOK_REGISTERED = "labelstudio.webhook_registered"
    LABELSTUDIO_LABEL_CONFIG_SET = "labelstudio.label_config_set"
    LABELSTUDIO_LOCAL_STORAGE_CONNECTED = "labelstudio.local_storage_connected"
    LABELSTUDIO_IMPORT_INTENT = "labelstudio.import_intent"
    LABELSTUDIO_TASK_SYNCED = "labelstudio.task_synced"
    LABELSTUDIO_TASK_FAILED = "labelstudio.task_failed"
    LABELSTUDIO_SYNC_COMPLETED = "labelstudio.sync_completed"
    LABELSTUDIO_TASK_REFRESHED = "labelstudio.task_refreshed"
    LABELSTUDIO_TASK_REPLACED = "labelstudio.task_replaced"
    LABELSTUDIO_TASK_REFRESH_FAILED = "labelstudio.task_refresh_failed"
    LABELSTUDIO_TASK_REMOVED = "labelstudio.task_removed"
    LABELSTUDIO_RESIDENCY_WITHDRAWN = "labelstudio.residency_withdrawn"
    ONTOLOGY_VERSIONED = "ontology.versioned"
    ANNOTATION_RECEIVED = "annotation.received"
    ANNOTATION_UPDATED = "annotation.updated"
    ANNOTATION_DELETED = "annotation.deleted"
    ANNOTATIONS_EXPORTED = "annotations.exported"
    # review and incidents
    REVIEW_OPENED = "review.opened"
    REVIEW_SAMPLE_DRAWN = "review.sample_drawn"
    REVIEW_CALIBRATION_OPENED = "review.calibration_opened"
    REVIEW_DECIDED = "review.decided"
    REVIEW_DECISION_IGNORED = "review.decision_ignored"
    REVIEW_DECISION_REFUSED = "review.decision_refused"
    REVIEW_DESTINATION_SET = "review.destination_set"
    REVIEW_REVIEWER_ADDED = "review.reviewer_added"
    REVIEW_REVIEWER_REMOVED = "review.reviewer_removed"
    REVIEW_PROJECT_CREATED = "review.project_created"
    REVIEW_WEBHOOK_REGISTERED = "review.webhook_registered"
    REVIEW_TASKS_CREATED = "review.tasks_created"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_CLOSED = "incident.closed"
    # the ML backend, exports and reports
    ML_IMAGE_SERVED = "ml.image-served"
    ML_PREDICTED = "ml.predicted"
    ML_ASSISTED = "ml.assisted"
    ML_CALIBRATED = "ml.calibrated"
    LINEAGE_EXPORTED = "lineage.exported"
    REPORT_GENERATED = "report.generated"

    @classmethod
    def entered(cls, state: StrEnum) -> Action:
        """The record of an asset entering `state` (an `AssetState`; this module stays free of
        the database models so offline verification need not load them)."""
        return cls(f"asset.{state.value}")


# families that reports and checks read together
# what the ML backend may report it did with a redacted image (over HTTP, by name)
ML_USES = frozenset({Action.ML_PREDICTED, Action.ML_ASSISTED, Action.ML_CALIBRATED})
REDACTION_RUNS = (Action.ASSET_RELEASED, Action.ASSET_QUARANTINED)  # carry detections
DELETIONS = (Action.ASSET_ORIGINAL_DELETED, Action.ASSET_EXPIRED, Action.ASSET_ERASED)
RETENTION = (Action.RETENTION_LABELSTUDIO_TASKS, Action.RETENTION_VAULT_ENTRY_DELETED)
ERASURE = (Action.ERASURE_REQUESTED, Action.ERASURE_CARRIED_OUT, Action.ERASURE_RETRIED)
POLICY_CHANGES = (
    Action.POLICY_VERSION_CREATED,
    Action.POLICY_ACTIVATED,
    Action.POLICY_WEAKENING_ACKNOWLEDGED,
    Action.DATASET_POLICY_BOUND,
)
RESIDENCY_REFUSALS = (Action.RESIDENCY_BLOCKED, Action.RESIDENCY_VIOLATION)


@dataclass(frozen=True, slots=True)
class Shape:
    """The entity type an action describes (None: the caller names it) and the keys its
    payload sections always hold."""

    entity: str | None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()


_A = Action
_STATE = Shape("asset", parameters=("from",))
_LS_PROJECT = ("project_id",)
_ERASURE = ("scope", "subject_pseudonym", "asset_id", "due")
_POLICY = ("policy", "policy_version", "policy_sha256")
SHAPES: dict[Action, Shape] = {
    _A.ASSET_RECEIVED: Shape("asset"),  # from ingest, or back from processing
    _A.ASSET_PROCESSING: _STATE,
    _A.ASSET_RELEASED: _STATE,
    _A.ASSET_QUARANTINED: _STATE,
    _A.ASSET_REJECTED: Shape("asset"),  # at ingest, or by a reviewer from quarantine
    _A.ASSET_EXPIRED: _STATE,
    _A.ASSET_ERASED: _STATE,
    _A.ASSET_ORIGINAL_DELETED: Shape("asset", parameters=("state",)),
    _A.API_KEY_CREATED: Shape("api-key", parameters=("role", "scoped")),
    _A.API_KEY_REVOKED: Shape("api-key"),
    _A.DATASET_CREATED: Shape(
        "dataset", parameters=("legal_basis", "key_version", "ontology_labels")
    ),
    _A.DATASET_POLICY_BOUND: Shape(
        "dataset",
        inputs=("previous",),
        outputs=("policy_version_id", "policy_sha256"),
        parameters=("policy", "policy_version", "changed"),
    ),
    _A.DATASET_KEY_ROTATED: Shape("dataset", parameters=("from", "to")),
    _A.DATASET_KEY_REENCRYPTED: Shape("dataset", parameters=("assets", "retired_versions")),
    _A.DATASET_CRYPTO_SHREDDED: Shape(
        "dataset", parameters=("key_versions", "secrets", "vault_entries", "originals", "reason")
    ),
    _A.MASTER_KEY_ROTATED: Shape("key", parameters=("reason",)),
    _A.KEY_CUSTODY_REFUSED: Shape("asset", parameters=("code", "worker_region")),
    _A.LINEAGE_KEY_CREATED: Shape("key", parameters=("alg", "fingerprint", "previous_key_id")),
    _A.LINEAGE_KEY_ROTATED: Shape("key", parameters=("alg", "fingerprint", "previous_key_id")),
    _A.POLICY_VERSION_CREATED: Shape(
        "policy", outputs=("policy_sha256",), parameters=("policy", "policy_version")
    ),
    _A.POLICY_ACTIVATED: Shape("policy", parameters=_POLICY),
    _A.POLICY_WEAKENING_ACKNOWLEDGED: Shape(
        "policy", parameters=(*_POLICY, "turned_off", "governs")
    ),
    _A.VAULT_READ: Shape("pseudonym", parameters=("purpose", "field", "role")),
    _A.RESIDENCY_BLOCKED: Shape(None, parameters=("rule", "point")),
    _A.RESIDENCY_VIOLATION: Shape(None),
    _A.RETENTION_LABELSTUDIO_TASKS: Shape("asset", parameters=("rule", "labelstudio_tasks")),
    _A.RETENTION_VAULT_ENTRY_DELETED: Shape("vault_entry", parameters=("rule", "field")),
    _A.ERASURE_REQUESTED: Shape("erasure_request", parameters=_ERASURE),
    _A.ERASURE_CARRIED_OUT: Shape(
        "erasure_request",
        parameters=(*_ERASURE, "assets", "recipients", "pending_recipients", "state"),
    ),
    _A.ERASURE_RETRIED: Shape(
        "erasure_request", parameters=(*_ERASURE, "pending_recipients", "state")
    ),
    _A.LEGAL_HOLD_PLACED: Shape("legal_hold", parameters=("scope", "asset_id")),
    _A.LEGAL_HOLD_RELEASED: Shape("legal_hold", parameters=("scope", "asset_id")),
    _A.DESTINATION_REGISTERED: Shape(
        "destination",
        parameters=("target_region", "transfer_basis", "master_key_id", "image_delivery"),
    ),
    _A.DESTINATION_REMOVED: Shape("destination"),
    _A.LABELSTUDIO_PROJECT_CREATED: Shape("destination", outputs=_LS_PROJECT),
    _A.LABELSTUDIO_WEBHOOK_REGISTERED: Shape("destination", outputs=(*_LS_PROJECT, "webhook_id")),
    _A.LABELSTUDIO_LABEL_CONFIG_SET: Shape(
        "destination", outputs=(*_LS_PROJECT, "ontology_version")
    ),
    _A.LABELSTUDIO_LOCAL_STORAGE_CONNECTED: Shape(
        "destination", parameters=("project_id", "folder")
    ),
    _A.LABELSTUDIO_IMPORT_INTENT: Shape(
        "destination", inputs=("assets",), parameters=("project_id", "target_region")
    ),
    _A.LABELSTUDIO_TASK_SYNCED: Shape(
        "asset", outputs=("task_id", "project_id"), parameters=("destination_id", "adopted")
    ),
    _A.LABELSTUDIO_TASK_FAILED: Shape("asset", parameters=("destination_id", "error")),
    _A.LABELSTUDIO_SYNC_COMPLETED: Shape(
        "dataset",
        outputs=("created", "adopted", "refreshed", "replaced", "already", "failed", "skipped"),
        parameters=("destination_id", "target_region", "project_id"),
    ),
    _A.LABELSTUDIO_TASK_REFRESHED: Shape(
        "asset",
        inputs=("signed_for_sha256",),
        outputs=("task_id", "signed_for_sha256"),
        parameters=("destination_id", "project_id"),
    ),
    _A.LABELSTUDIO_TASK_REPLACED: Shape(
        "asset", inputs=("task_id", "signed_for_sha256"), parameters=("destination_id", "reason")
    ),
    _A.LABELSTUDIO_TASK_REFRESH_FAILED: Shape("asset", parameters=("destination_id", "error")),
    _A.LABELSTUDIO_TASK_REMOVED: Shape(
        "asset",
        outputs=("deleted_tasks", "verified_absent"),
        parameters=("destination_id", "reason"),
    ),
    _A.LABELSTUDIO_RESIDENCY_WITHDRAWN: Shape(
        "destination",
        inputs=("assets",),
        outputs=("removed", "removal_pending"),
        parameters=("rule", "target_region"),
    ),
    _A.ONTOLOGY_VERSIONED: Shape("dataset", parameters=("version", "digest")),
    _A.ANNOTATION_RECEIVED: Shape(
        "annotation",
        inputs=("asset_id", "task_id"),
        outputs=("result_sha256", "regions"),
        parameters=("annotator", "was_cancelled"),
    ),
    _A.ANNOTATION_UPDATED: Shape(
        "annotation",
        inputs=("asset_id", "task_id"),
        outputs=("result_sha256", "regions"),
        parameters=("annotator", "was_cancelled"),
    ),
    _A.ANNOTATION_DELETED: Shape("annotation"),
    _A.ANNOTATIONS_EXPORTED: Shape(
        "dataset",
        outputs=("files", "images", "sha256"),
        parameters=("format", "target_region", "skipped"),
    ),
    _A.REVIEW_OPENED: Shape(
        "asset",
        parameters=("review_item", "reason", "sample", "original_available", "retention_hold"),
    ),
    _A.REVIEW_SAMPLE_DRAWN: Shape(
        "dataset",
        inputs=("assets",),
        outputs=("drawn",),
        parameters=("sample", "rate", "checkpoint_tree_size", "seed"),
    ),
    _A.REVIEW_CALIBRATION_OPENED: Shape(
        "asset",
        outputs=("redacted_sha256",),
        parameters=("review_item", "seed", "photo_sha256", "planted"),
    ),
    _A.REVIEW_DECIDED: Shape(
        "asset",
        parameters=(
            "review_item",
            "reviewer",
            "decision",
            "reason",
            "findings",
            "task_id",
            "annotation_id",
        ),
    ),
    _A.REVIEW_DECISION_IGNORED: Shape(
        "asset", parameters=("review_item", "by", "why", "annotation_id")
    ),
    _A.REVIEW_DECISION_REFUSED: Shape(
        "asset", parameters=("review_item", "requested", "why", "annotation_id")
    ),
    _A.REVIEW_DESTINATION_SET: Shape("dataset", parameters=("destination_id",)),
    _A.REVIEW_REVIEWER_ADDED: Shape("dataset", parameters=("reviewer",)),
    _A.REVIEW_REVIEWER_REMOVED: Shape("dataset", parameters=("reviewer",)),
    _A.REVIEW_PROJECT_CREATED: Shape("dataset", parameters=("project_id",)),
    _A.REVIEW_WEBHOOK_REGISTERED: Shape("dataset", parameters=("webhook_id",)),
    _A.REVIEW_TASKS_CREATED: Shape("dataset", parameters=("project_id", "items")),
    _A.INCIDENT_OPENED: Shape("incident", inputs=("asset_id",), parameters=("kind",)),
    _A.INCIDENT_CLOSED: Shape("incident", parameters=("outcome", "review_item")),
    _A.ML_IMAGE_SERVED: Shape(
        "asset",
        inputs=("redacted_sha256",),
        outputs=("bytes",),
        parameters=("rendition", "backend_region"),
    ),
    _A.ML_PREDICTED: Shape("asset", inputs=("redacted_sha256",)),
    _A.ML_ASSISTED: Shape("asset", inputs=("redacted_sha256",)),
    _A.ML_CALIBRATED: Shape("asset", inputs=("redacted_sha256",)),
    _A.LINEAGE_EXPORTED: Shape(None, parameters=("format", "target_region", "records")),
    _A.REPORT_GENERATED: Shape("report", outputs=("report_sha256",), parameters=("schema",)),
}
