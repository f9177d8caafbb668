"""Exports carry a Clearance to the place they write: a lineage export (bundle, OpenLineage,
PROV), a governance report (every format) and an annotation export are refused with
`clearance-mismatch` (403) unless the export clearance of every dataset they carry, for the
region they go to, comes with them; a refused export writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.core.clearance import Clearance, ClearanceMismatch, Clearances, EnforcementPoint
from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.datasets import DatasetSpec, create_dataset
from gateway.labelstudio.export import Export, write_export
from gateway.lineage import Actor
from gateway.lineage.bundle import BundleFilter, export_bundle
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.format.verify import Anchor, verify_bundle
from gateway.lineage.ledger import drain
from gateway.lineage.service import check_export_residency, export_lineage, write_view
from gateway.reports.build import (
    cleared_dataset_report,
    cleared_processing_activities,
    gateway_public_keys,
    verify_report,
)
from gateway.reports.export import report_bytes
from gateway.reports.render import ReportFormat
from tests.conftest import DATASET_SPEC
from tests.policy.helpers import bind, policy_doc

P = EnforcementPoint
T = Actor("cli", "t")
HERE = "eu-de"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where exports go (empty; the gateway's own data lives beside it)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def _wrong(dataset_id: str) -> list[Clearances]:
    """Clearances that do not cover exporting `dataset_id` to HERE."""
    return [
        Clearances(),  # none at all
        Clearances((Clearance(dataset_id, P.SYNC, HERE, "p@1"),)),  # another move
        Clearances((Clearance("another-dataset", P.EXPORT, HERE, "p@1"),)),  # another dataset
        Clearances((Clearance(dataset_id, P.EXPORT, "us-east", "p@1"),)),  # another region
    ]


def test_clearances_give_the_one_that_covers_the_dataset() -> None:
    sync = Clearance("ds-a", P.SYNC, HERE, "p@1")
    export = Clearance("ds-a", P.EXPORT, HERE, "p@1")
    both = Clearances((sync, export, Clearance("ds-b", P.EXPORT, HERE, "p@1")))
    assert both.require(P.EXPORT, dataset_id="ds-a", region=HERE) is export
    assert both.dataset_ids == ["ds-a", "ds-b"]
    with pytest.raises(ClearanceMismatch, match="none clears dataset ds-c") as info:
        both.require(P.EXPORT, dataset_id="ds-c", region=HERE)
    assert info.value.status == 403 and info.value.code == "clearance-mismatch"
    with pytest.raises(ClearanceMismatch, match="not us-east"):
        both.require(P.EXPORT, dataset_id="ds-a", region="us-east")


def _write(ctx, path: Path, fmt: str, flt: BundleFilter, cleared: Clearances) -> None:
    with transaction(ctx.engine) as s:
        if fmt == "bundle":
            export_bundle(ctx, s, path, flt, clearances=cleared, to_region=HERE)
        else:
            size = create_checkpoint(ctx, s).tree_size
            write_view(s, path, flt, size, fmt, clearances=cleared, to_region=HERE)


@pytest.mark.db
@pytest.mark.parametrize("fmt", ["bundle", "openlineage", "prov"])
@pytest.mark.parametrize("scoped", [False, True], ids=["every-dataset", "one-dataset"])
def test_a_lineage_export_writes_only_what_its_clearances_cover(
    ctx, dataset, out: Path, fmt: str, scoped: bool
) -> None:
    drain(ctx.engine)  # the dataset's creation records are in the chain
    flt = BundleFilter(dataset_id=dataset.id if scoped else None)
    path = out / f"lineage.{fmt}"
    for wrong in _wrong(dataset.id):
        with pytest.raises(ClearanceMismatch):
            _write(ctx, path, fmt, flt, wrong)
        assert sorted(out.iterdir()) == []  # no file, no partial file
    with transaction(ctx.engine) as s:
        cleared = check_export_residency(ctx, s, flt, target_region=HERE, actor=T)
    assert [c.dataset_id for c in cleared.items] == [dataset.id]
    _write(ctx, path, fmt, flt, cleared)
    assert path.stat().st_size > 0
    if fmt == "bundle":
        assert verify_bundle(path, anchor=Anchor()).records > 0


@pytest.mark.db
def test_a_one_dataset_export_is_refused_even_with_no_record_to_write(
    ctx, dataset, out: Path
) -> None:
    flt = BundleFilter(dataset_id=dataset.id, since=ctx.clock().replace(year=2999))
    for fmt in ("bundle", "openlineage"):
        with pytest.raises(ClearanceMismatch):
            _write(ctx, out / "empty", fmt, flt, Clearances())
    assert sorted(out.iterdir()) == []


@pytest.mark.db
def test_a_record_of_a_dataset_the_check_did_not_see_stops_the_export(
    ctx, dataset, out: Path
) -> None:
    """Clearances for the datasets in scope at the check; a dataset whose records arrive
    between the check and the write is not covered: the whole export is refused."""
    drain(ctx.engine)
    with transaction(ctx.engine) as s:
        cleared = check_export_residency(ctx, s, BundleFilter(), target_region=HERE, actor=T)
    spec = DatasetSpec.model_validate({**DATASET_SPEC, "name": "arrived-later"})
    with transaction(ctx.engine) as s:
        create_dataset(s, ctx, spec, actor=T)
    drain(ctx.engine)
    with pytest.raises(ClearanceMismatch, match="none clears dataset"):
        _write(ctx, out / "all.jsonl", "bundle", BundleFilter(), cleared)
    assert sorted(out.iterdir()) == []


@pytest.mark.db
def test_a_lineage_export_the_policy_denies_writes_nothing(ctx, dataset, out: Path) -> None:
    drain(ctx.engine)
    path = out / "denied.jsonl"
    with pytest.raises(ResidencyViolation), transaction(ctx.engine) as s:
        export_lineage(
            ctx, s, path, fmt="bundle", dataset_ref=None, since=None,
            target_region="us-east", actor=T,
        )  # fmt: skip
    assert sorted(out.iterdir()) == []


@pytest.mark.db
@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_a_report_leaves_only_under_its_datasets_export_clearance(ctx, dataset, fmt) -> None:
    cleared = cleared_dataset_report(ctx, dataset.id, actor=T)
    assert [c.point for c in cleared.clearances.items] == [P.EXPORT]
    for wrong in _wrong(dataset.id):
        with pytest.raises(ClearanceMismatch):
            report_bytes(cleared.signed, fmt, clearances=wrong, to_region=HERE)
    with pytest.raises(ClearanceMismatch, match="not us-east"):  # its own, elsewhere
        report_bytes(cleared.signed, fmt, clearances=cleared.clearances, to_region="us-east")
    body = report_bytes(cleared.signed, fmt, clearances=cleared.clearances, to_region=HERE)
    if fmt is ReportFormat.JSON:
        verify_report(json.loads(body), gateway_public_keys(ctx))


@pytest.mark.db
def test_the_record_of_processing_needs_every_datasets_export_clearance(ctx, dataset) -> None:
    spec = DatasetSpec.model_validate({**DATASET_SPEC, "name": "second"})
    with transaction(ctx.engine) as s:
        second = create_dataset(s, ctx, spec, actor=T)
    cleared = cleared_processing_activities(ctx, actor=T)
    assert cleared.clearances.dataset_ids == sorted([dataset.id, second.id])
    one = Clearances(tuple(c for c in cleared.clearances.items if c.dataset_id == dataset.id))
    with pytest.raises(ClearanceMismatch, match=f"none clears dataset {second.id}"):
        report_bytes(cleared.signed, ReportFormat.JSON, clearances=one, to_region=HERE)
    body = report_bytes(
        cleared.signed, ReportFormat.JSON, clearances=cleared.clearances, to_region=HERE
    )
    assert json.loads(body)["report"]["report_id"] == cleared.signed.report.report_id


@pytest.mark.db
def test_a_report_the_policy_denies_is_not_generated(ctx, dataset) -> None:
    bind(ctx, dataset, policy_doc(residency={"export_regions": ["US"]}))
    with pytest.raises(ResidencyViolation):
        cleared_dataset_report(ctx, dataset.id, actor=T)


def test_an_annotation_export_writes_its_files_only_under_its_clearance(tmp_path: Path) -> None:
    right = Clearance("ds-a", P.EXPORT, HERE, "p@1")
    export = Export({"labels/a.txt": b"0 0.5 0.5 0.1 0.1\n"}, 1, 0, "ds-a", HERE, right)
    for wrong in (
        Clearance("ds-a", P.SYNC, HERE, "p@1"),
        Clearance("ds-b", P.EXPORT, HERE, "p@1"),
        Clearance("ds-a", P.EXPORT, "us-east", "p@1"),
    ):
        with pytest.raises(ClearanceMismatch):
            write_export(tmp_path / "out", export, clearance=wrong)
        assert not (tmp_path / "out").exists()
    assert write_export(tmp_path / "out", export, clearance=right) == [
        tmp_path / "out" / "labels" / "a.txt"
    ]
