"""Which redaction policy an asset is redacted under: the `redaction` section of the policy
governing its dataset. A redactor that can switch policies (`for_policy`) gets that section;
one that cannot (a test double, the not-built step) runs as it is. No governing policy raises
PolicyMissing, and the pipeline quarantines the asset (fail closed)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sqlmodel import Session

from gateway.core.models import Asset
from gateway.policy.governing import governing_policy
from gateway.redaction_step import Redactor
from redaction.policy import RedactionPolicy


@runtime_checkable
class PolicyRedactor(Protocol):
    def for_policy(self, policy: RedactionPolicy) -> Redactor: ...


def redactor_for(session: Session, asset: Asset, redactor: Redactor) -> Redactor:
    """The redactor for this asset, and the asset stamped with its governing version."""
    governing = governing_policy(session, asset.dataset_id)
    asset.policy_version_id = governing.version_id
    session.add(asset)
    if isinstance(redactor, PolicyRedactor):
        return redactor.for_policy(governing.document.redaction)
    return redactor
