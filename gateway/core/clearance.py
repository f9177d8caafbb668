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


@dataclass(frozen=True, slots=True)
class Clearances:
    """The clearances of one export that carries several datasets' data (a lineage bundle
    over every dataset, the record of processing activities). It only gathers clearances
    `enforce_residency` made, so it grants nothing they do not: the sink asks it, per dataset
    whose data it is about to write, for that dataset's clearance of the move."""

    items: tuple[Clearance, ...] = ()

    @property
    def dataset_ids(self) -> list[str]:
        return sorted({c.dataset_id for c in self.items})

    def require(self, point: EnforcementPoint, *, dataset_id: str, region: str) -> Clearance:
        """The clearance covering `point` for `dataset_id` in `region`, else refuse."""
        named = [c for c in self.items if c.dataset_id == dataset_id]
        for clearance in named:
            if clearance.point is point and clearance.region == region:
                return clearance
        if named:  # refused with what the nearest one does clear
            return named[0].require(point, dataset_id=dataset_id, region=region)
        raise ClearanceMismatch(
            f"residency clearance refused at the sink: none clears dataset {dataset_id}",
            rule="clearance.mismatch",
            point=point.value,
            dataset_id=dataset_id,
            target_region=region,
            cleared_dataset_ids=",".join(self.dataset_ids),
        )


def policy_version_of(reference: dict[str, object]) -> str:
    """The `policy_version` of a clearance from a governing policy's lineage reference."""
    name = reference.get("policy", "?")
    version = reference.get("policy_version")
    if version is not None:
        return f"{name}@{version}"
    return f"{name}@sha256:{reference.get('policy_sha256', '?')}"
