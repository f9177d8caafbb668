"""Tables of the policy, retention and erasure step (migration 0004_policies).

Policy versions themselves live in `gateway.core.models.PolicyVersion` (immutable once activated,
see `gateway.policy.versions`); here: legal holds and the erasure register.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, String, Text, event, inspect
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel

from gateway.core.models import PolicyVersion
from gateway.policy.errors import PolicyImmutable


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class LegalHold(SQLModel, table=True):
    """While a hold is in place (released_at is NULL) retention deletes nothing it covers:
    the whole dataset (asset_id NULL) or one asset. Erasure requests still apply."""

    __tablename__ = "legal_hold"
    id: str = Field(primary_key=True, max_length=36)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    asset_id: str | None = Field(default=None, foreign_key="asset.id", max_length=36)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_by: str = Field(max_length=100)
    placed_at: datetime = _ts()
    released_at: datetime | None = _ts(nullable=True)


class ErasureState(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


class ErasureRequest(SQLModel, table=True):
    """The erasure register (GDPR Art. 17): each request, its one-month deadline (Art. 12(3)),
    its state and the recipients told of it (Art. 19). Holds the subject's keyed pseudonym,
    never the identifier the request named."""

    __tablename__ = "erasure_request"
    id: str = Field(primary_key=True, max_length=36)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    subject_pseudonym: str | None = Field(default=None, max_length=64, index=True)
    asset_id: str | None = Field(default=None, max_length=36)
    state: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    received_at: datetime = _ts()
    due_at: datetime = _ts()
    completed_at: datetime | None = _ts(nullable=True)
    assets_erased: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    recipients: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    requested_by: str = Field(max_length=100)


@event.listens_for(PolicyVersion, "before_update")
def refuse_changes_after_activation(_m: Mapper[Any], _c: Any, target: PolicyVersion) -> None:
    history = inspect(target).attrs.activated_at.history
    was_active = (history.deleted and history.deleted[0] is not None) or (
        not history.has_changes() and target.activated_at is not None
    )
    if was_active:
        raise PolicyImmutable(
            f"policy {target.name} v{target.version} is activated and cannot change; "
            "activate a new version instead",
            policy_version_id=target.id,
        )
