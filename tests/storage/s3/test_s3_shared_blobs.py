"""tests/storage/test_shared_blobs.py again, with the buckets as the store (this folder's
`ctx`): identical redacted copies stay per asset, and erasure deletes only its own objects."""

from __future__ import annotations

import pytest

from tests.storage.test_shared_blobs import (
    test_a_legacy_shared_key_is_deleted_with_its_last_user_only,
    test_erasing_a_subject_removes_every_copy_of_theirs,
    test_erasing_one_asset_keeps_every_other_assets_identical_copy,
)

pytestmark = pytest.mark.db
__all__ = [
    "test_a_legacy_shared_key_is_deleted_with_its_last_user_only",
    "test_erasing_a_subject_removes_every_copy_of_theirs",
    "test_erasing_one_asset_keeps_every_other_assets_identical_copy",
]
