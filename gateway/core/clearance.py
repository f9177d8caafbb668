"""A `Clearance`: the proof, as a value, that a residency check allowed one kind of move.

Only the residency enforcement code makes one (`gateway.policy.enforcement`; a test over the
syntax tree holds every other module to that). Every sink that moves personal data takes one
and checks it at run time against what it is about to do: the enforcement point, the dataset
and the region. A clearance for a sync is no good for an export, one for dataset A none for
dataset B, one for `eu-de` none for `us-east`: the mismatch is refused as a typed
`ClearanceMismatch` (a residency violation, 403), so the data does not move.

    clearance = enforce_residency(ctx, session, point=EnforcementPoint.SYNC, ...)
    client.import_tasks(project_id, tasks, clearance=clearance)

This module is core: it imports nothing of the policy engine or the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.core.errors import ResidencyViolation


class EnforcementPoint(StrEnum):
    INGEST = "ingest"
    STORAGE_WRITE = "storage_write"
    SYNC = "sync"
    ML_BACKEND = "ml_backend"
    EXPORT = "export"


class ClearanceMismatch(ResidencyViolation):
    """A sink was handed a clearance for another move, dataset or region: nothing moved."""

    code, title = "clearance-mismatch", "The residency clearance does not cover this move"


@dataclass(frozen=True, slots=True)
class Clearance:
    """What one allowed residency check covers. `policy_version` names the policy that
    allowed it (`name@version`, or `name@sha256:<digest>` for an unversioned file)."""

    dataset_id: str
    point: EnforcementPoint
    region: str
    policy_version: str

    def require(
        self, point: EnforcementPoint, *, dataset_id: str, region: str | None = None
    ) -> Clearance:
        """Refuse unless this clearance covers `point` for `dataset_id` (and `region`, where
        the sink knows where the data goes). Returns itself, for chaining at the sink."""
        problems = []
        if self.point is not point:
            problems.append(f"it clears {self.point.value}, not {point.value}")
        if self.dataset_id != dataset_id:
            problems.append(f"it clears dataset {self.dataset_id}, not {dataset_id}")
        if region is not None and self.region != region:
            problems.append(f"it clears region {self.region}, not {region}")
        if problems:
            raise ClearanceMismatch(
                "residency clearance refused at the sink: " + "; ".join(problems),
                rule="clearance.mismatch",
                point=point.value,
                dataset_id=dataset_id,
                target_region=region,
                cleared_point=self.point.value,
                cleared_dataset_id=self.dataset_id,
                cleared_region=self.region,
                policy_version=self.policy_version,
            )
        return self


def policy_version_of(reference: dict[str, object]) -> str:
    """The `policy_version` of a clearance from a governing policy's lineage reference."""
    name = reference.get("policy", "?")
    version = reference.get("policy_version")
    if version is not None:
        return f"{name}@{version}"
    return f"{name}@sha256:{reference.get('policy_sha256', '?')}"
