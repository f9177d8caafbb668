"""Pseudonymisation: keyed pseudonyms, the metadata allowlist, the re-identification vault.

Public surface (other parts of the gateway use only these):
  pseudonym(ctx, session, *, dataset_id, field, value, remember=False) -> str
  task_metadata(ctx, session, asset) -> dict   (what a Label Studio task may carry)
  PseudonymField, PseudonymisationPolicy, policy_for_dataset
"""

from gateway.pseudonymisation.policies import policy_for_dataset
from gateway.pseudonymisation.policy import (
    CaptureTimeGranularity,
    FileMetadata,
    PseudonymField,
    PseudonymisationPolicy,
)
from gateway.pseudonymisation.task_meta import pseudonym, task_metadata

__all__ = [
    "CaptureTimeGranularity",
    "FileMetadata",
    "PseudonymField",
    "PseudonymisationPolicy",
    "policy_for_dataset",
    "pseudonym",
    "task_metadata",
]
