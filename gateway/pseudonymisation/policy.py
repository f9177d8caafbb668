"""What the pseudonymisation step may keep, as a typed policy embedded in policy documents.

Everything not named here is dropped: the redacted file carries no metadata except what
`file_allowlist` names, and task metadata carries only the facts switched on below.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PseudonymField(StrEnum):
    """The identifying fields the gateway replaces by keyed pseudonyms (one HMAC domain each)."""

    SUBJECT_ID = "subject_id"
    FILE_NAME = "file_name"
    DEVICE_SERIAL = "device_serial"
    UPLOADER = "uploader"
    ANNOTATOR = "annotator"


class CaptureTimeGranularity(StrEnum):
    """How precisely the capture time may travel with a task (coarser is safer)."""

    DROP = "drop"
    YEAR = "year"
    MONTH = "month"
    DAY = "day"
    HOUR = "hour"


class FileMetadata(StrEnum):
    """Metadata that may stay inside a released file. Nothing else ever does."""

    ICC_PROFILE = "icc_profile"


class PseudonymisationPolicy(BaseModel):
    """Metadata allowlist and pseudonymisation settings of a dataset's policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capture_time: CaptureTimeGranularity = Field(
        CaptureTimeGranularity.MONTH,
        description="granularity of the capture time in task metadata ('drop' removes it)",
    )
    camera_model: bool = Field(
        False, description="put the camera make and model (never its serial) in task metadata"
    )
    file_allowlist: frozenset[FileMetadata] = Field(
        frozenset(), description="metadata kept inside the released file; empty keeps none"
    )
    task_pseudonyms: frozenset[PseudonymField] = Field(
        frozenset({PseudonymField.SUBJECT_ID, PseudonymField.FILE_NAME}),
        description="fields whose pseudonyms travel as task metadata",
    )
    reidentification_vault: bool = Field(
        True,
        description="keep pseudonym -> original in the encrypted vault (off: irreversible)",
    )
