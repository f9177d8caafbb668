"""The data of a Label Studio task the gateway writes, and the one home of its field names.

The sync writes `TaskData` for an annotation task, the review writes one for a review task;
the webhooks, the read-back, the refresh, the removal and the ML backend read the same fields
back through `TaskField`, so a field is renamed in one place. What Label Studio hands back is
whatever its database holds, so readers use the `claimed_*` helpers, which never trust a type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TaskField(StrEnum):
    IMAGE = "image"
    ASSET_ID = "gateway_asset_id"
    DATASET_ID = "gateway_dataset_id"
    META = "meta"
    REVIEW_ITEM = "gateway_review_item"
    REVIEW_NOTE = "review_note"

    @property
    def column(self) -> str:
        """The column of Label Studio's data manager that shows this field."""
        return f"tasks:data.{self.value}"


@dataclass(frozen=True, slots=True)
class TaskData:
    """One task's `data`: the image URL (a signed gateway URL or a local-files URL), the
    gateway ids and, for annotation tasks, the pseudonymous metadata; for review tasks the
    review item and its note."""

    image: str
    asset_id: str
    dataset_id: str | None = None
    meta: dict[str, Any] | None = None
    review_item: str | None = None
    review_note: str | None = None

    def to_label_studio(self) -> dict[str, Any]:
        fields: list[tuple[TaskField, Any]] = [
            (TaskField.IMAGE, self.image),
            (TaskField.REVIEW_NOTE, self.review_note),
            (TaskField.REVIEW_ITEM, self.review_item),
            (TaskField.ASSET_ID, self.asset_id),
            (TaskField.DATASET_ID, self.dataset_id),
            (TaskField.META, self.meta),
        ]
        return {field.value: value for field, value in fields if value is not None}


def claimed(data: Mapping[str, Any] | None, field: TaskField) -> Any:
    """What a task handed back by Label Studio says in `field` (None when absent): a claim to
    check against the gateway's own records, never a fact."""
    if not isinstance(data, Mapping):
        return None
    return data.get(field.value)
