"""A real leak-check quarantine keeps the engine's candidate rendition for review only.

The policy is honest, not a tampered output: a weak primary face pass (CenterFace at 0.95)
and one round of leak-check fixes, so RetinaFace on the output still sees faces the primary
pass let through (bundled photo masks_maksssksksss201.jpg, measured: quarantined with
`leak-detected`). The candidate is sealed at rest, metadata-free, served only through the
review URL while the item is open, shown with the leak hits as pre-annotations, and deleted
when the review ends and with the asset on erasure and retention."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from PIL import Image
from sqlmodel import select

from gateway.core.clearance import Clearance, EnforcementPoint
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import NotFound
from gateway.core.models import Asset, AssetState, Dataset, Destination
from gateway.ingest import Upload, ingest_upload
from gateway.labelstudio.annotation_store import HeldAnnotation
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.removal import LabelStudioTaskRemover
from gateway.lineage import Actor
from gateway.pipeline import drain
from gateway.policy.erasure import request_erasure
from gateway.policy.retention import run_retention
from gateway.pseudonymisation.custody import reencrypt_dataset, rotate_dataset_key
from gateway.redactor import IsolatedRedactor
from gateway.review.candidates import candidate_image, candidate_of
from gateway.review.images import resolve_review_image, review_image_url
from gateway.review.labelconfig import ReviewAnswer
from gateway.review.models import ReviewDecision, ReviewItem, ReviewProject
from gateway.review.project import _task
from gateway.review.queue import enqueue_for_review
from gateway.review.records import close_item
from tests.conftest import PHOTOS, FakeClock
from tests.policy.helpers import bind, policy_doc

pytestmark = [pytest.mark.db, pytest.mark.integration]
ADMIN = Actor("cli", "t")
LEAKY = ("masks_maksssksksss201.jpg", "masks_maksssksksss79.jpg")
PNG = b"\x89PNG\r\n\x1a\n"
UNREACHABLE = LabelStudioTaskRemover(
    retry=RetryPolicy(attempts=1, first_delay=0, sleep=lambda _: None)
)


@pytest.fixture
def quarantined(ctx: GatewayContext, dataset: Dataset) -> Iterator[list[str]]:
    weak_primary = policy_doc(
        "weak-primary-pass",
        redaction={"faces": {"enabled": True, "threshold": 0.95}, "leak_check": {"max_rounds": 1}},
    )
    bind(ctx, dataset, weak_primary)
    with transaction(ctx.engine) as s:
        ids = [
            ingest_upload(
                s, ctx, dataset, Upload(name, (PHOTOS / name).read_bytes()), actor=ADMIN
            ).asset_id
            for name in LEAKY
        ]
    redactor = IsolatedRedactor(ctx.settings)
    try:
        assert drain(ctx, redactor=redactor) == len(LEAKY)
    finally:
        redactor.close()
    yield ids


def _shown(asset: Asset) -> Clearance:
    """What serving the candidate to a reviewer in eu-de needs (made by hand: the test reads
    the image the review route would serve under `fetch_clearance`)."""
    return Clearance(asset.dataset_id, EnforcementPoint.SYNC, "eu-de", "test@1")


def _review_destination(ctx: GatewayContext, dataset: Dataset) -> Destination:
    with transaction(ctx.engine) as s:
        destination = Destination(
            id="dest-review",
            name="review-eu",
            url="http://127.0.0.1:9",
            region="eu-de",
            token_sealed=b"",
            gateway_url="http://gateway.test",
            created_at=ctx.clock(),
        )
        s.add(destination)
        s.flush()
        s.add(
            ReviewProject(
                dataset_id=dataset.id,
                destination_id=destination.id,
                marker="m",
                created_at=ctx.clock(),
            )
        )
    return destination


def _serve(ctx: GatewayContext, url: str) -> bytes:
    parsed = urlparse(url)
    _, _, _, destination_id, item_id = parsed.path.split("/")
    query = parse_qs(parsed.query)
    with transaction(ctx.engine) as s:
        return resolve_review_image(
            ctx,
            s,
            destination_id=destination_id,
            item_id=item_id,
            key_version=int(query["k"][0]),
            signature=query["s"][0],
        ).data


def test_a_leak_check_quarantine_is_reviewed_on_its_candidate(
    ctx: GatewayContext, dataset: Dataset, quarantined: list[str]
) -> None:
    reviewed, erased = quarantined
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, reviewed)
        assert asset is not None and asset.state == AssetState.QUARANTINED
        assert asset.redacted_blob is None  # nothing released
        row = candidate_of(s, reviewed)
        assert row is not None and row.leak_hits, "the leak check's evidence is kept"
        sealed = ctx.store.get(row.blob)
        image = candidate_image(ctx, s, asset, row, _shown(asset), to_region="eu-de")
    assert PNG not in sealed[:64] and image not in sealed  # encrypted at rest
    assert image.startswith(PNG)
    shown = Image.open(io.BytesIO(image))
    assert shown.size == (asset.width, asset.height)
    assert not shown.getexif() and "icc_profile" not in shown.info  # metadata-free
    original = Image.open(PHOTOS / LEAKY[0]).convert("RGB")
    assert shown.convert("RGB").tobytes() != original.tobytes()  # the engine masked something

    destination = _review_destination(ctx, dataset)
    with transaction(ctx.engine) as s:
        enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, sample=False)
        item = s.exec(select(ReviewItem).where(ReviewItem.asset_id == reviewed)).one()
        url = review_image_url(ctx, s, destination=destination, item=item)
        task = _task(ctx, s, destination, item)
    assert _serve(ctx, url) == image  # the reviewer sees the candidate, not a placeholder
    assert "no redacted copy" not in task["data"]["review_note"]
    boxes = task["predictions"][0]["result"]
    leak_boxes = [b for b in boxes if b["id"].startswith("leak-")]
    assert len(leak_boxes) == len(row.leak_hits)
    assert all(b["value"]["rectanglelabels"][0] in ("face", "plate") for b in leak_boxes)

    held = HeldAnnotation(ls_id=1, task_id=1, result=[], was_cancelled=False, completed_by=1)
    answer = ReviewAnswer(ReviewDecision.REJECTED, ())
    close_item(ctx, item, held, "rev", answer, ReviewDecision.REJECTED, None, ADMIN)
    with transaction(ctx.engine) as s:
        assert candidate_of(s, reviewed) is None
    with pytest.raises(NotFound):
        ctx.store.get(row.blob)
    with pytest.raises(NotFound):
        _serve(ctx, url)

    with transaction(ctx.engine) as s:
        gone = candidate_of(s, erased)
        assert gone is not None
        request_erasure(
            ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id=erased, task_remover=UNREACHABLE
        )
    with transaction(ctx.engine) as s:
        assert candidate_of(s, erased) is None
    with pytest.raises(NotFound):
        ctx.store.get(gone.blob)


def test_key_rotation_keeps_candidates_readable_and_retention_deletes_them(
    ctx: GatewayContext, dataset: Dataset, quarantined: list[str], clock: FakeClock
) -> None:
    with transaction(ctx.engine) as s:
        blobs = [row.blob for a in quarantined if (row := candidate_of(s, a)) is not None]
    assert len(blobs) == len(quarantined)
    assert rotate_dataset_key(ctx, dataset.id, actor=ADMIN) == 2
    assert reencrypt_dataset(ctx, dataset.id, actor=ADMIN) == len(quarantined)
    with transaction(ctx.engine) as s:  # the originals moved to v2; v1 stays for the candidates
        for asset_id in quarantined:
            asset, row = s.get(Asset, asset_id), candidate_of(s, asset_id)
            assert asset is not None and asset.key_version == 2
            assert row is not None and candidate_image(
                ctx, s, asset, row, _shown(asset), to_region="eu-de"
            ).startswith(PNG)
    clock.advance(days=400)  # past every retention period of the default policy
    assert run_retention(ctx, dry_run=False, task_remover=UNREACHABLE).done
    with transaction(ctx.engine) as s:
        assert [candidate_of(s, a) for a in quarantined] == [None] * len(quarantined)
        assert all(s.get(Asset, a).original_blob is None for a in quarantined)
    for blob in blobs:
        with pytest.raises(NotFound):
            ctx.store.get(blob)
