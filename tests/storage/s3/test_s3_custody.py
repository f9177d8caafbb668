"""Dataset key rotation with the buckets: the original is re-sealed in place (same region's
bucket, under the new key version) and the old object goes."""

from __future__ import annotations

import pytest

from gateway.core.db import transaction
from gateway.core.models import Asset
from gateway.pipeline import drain
from gateway.pseudonymisation.custody import reencrypt_dataset, rotate_dataset_key
from tests.pseudonymisation.test_custody import ADMIN, DecryptsOnly, _ingest
from tests.pseudonymisation.test_task_metadata import exif_jpeg
from tests.storage.s3.conftest import bucket_keys

pytestmark = pytest.mark.db


def test_reencryption_reseals_in_the_same_bucket(ctx, dataset, moto_endpoint, buckets) -> None:
    asset_id = _ingest(ctx, dataset.id, exif_jpeg(), filename="a.jpg")
    with transaction(ctx.engine) as s:
        before = s.get(Asset, asset_id).original_blob
    assert rotate_dataset_key(ctx, dataset.id, actor=ADMIN) == 2
    drain(ctx, redactor=DecryptsOnly())  # quarantined: its original stays for re-encryption
    assert reencrypt_dataset(ctx, dataset.id, actor=ADMIN) == 1
    with transaction(ctx.engine) as s:
        after = s.get(Asset, asset_id).original_blob
    assert after.startswith("regions/eu-de/") and after.endswith(".v2.bin")
    stored = bucket_keys(moto_endpoint, buckets["eu-de"])
    assert after.removeprefix("regions/eu-de/") in stored
    assert before.removeprefix("regions/eu-de/") not in stored
    assert ctx.store.get(after)[:2] != b"\xff\xd8"  # sealed, as before
