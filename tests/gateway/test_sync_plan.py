"""Why a sync leaves an asset out: one reason per state, and none for a released asset whose
redacted copy lives (whether or not its original is still stored)."""

from __future__ import annotations

import pytest

from gateway.core.models import AssetState, SyncState
from gateway.labelstudio.sync_plan import skip_reason, skipped_by_reason

S = AssetState


@pytest.mark.parametrize(
    ("state", "copy", "reasons", "sync", "expected"),
    [
        (S.RELEASED, True, [], None, None),
        (S.RELEASED, True, [], SyncState.FAILED, None),  # tried again
        (S.RELEASED, True, [], SyncState.SYNCED, None),  # already there
        (S.RELEASED, False, [], None, "released, but its redacted copy is missing"),
        (S.RELEASED, True, [], SyncState.REMOVED, "its task was withdrawn from this destination"),
        (
            S.QUARANTINED,
            False,
            [{"code": "leak-check"}, {"code": "a"}],
            None,
            "quarantined: a, leak-check",
        ),
        (S.REJECTED, False, [{"code": "corrupt-image"}], None, "rejected: corrupt-image"),
        (S.PROCESSING, False, [], None, "processing: not redacted yet"),
        (S.RECEIVED, False, [], None, "received: not redacted yet"),
        (S.ERASED, False, [], None, "erased"),
        (S.EXPIRED, False, None, None, "expired"),
    ],
)
def test_skip_reason(state, copy, reasons, sync, expected) -> None:
    got = skip_reason(state, has_redacted_copy=copy, reasons=reasons, sync_state=sync)
    assert got == expected


def test_skipped_by_reason_counts() -> None:
    skipped = {"a": "erased", "b": "quarantined: x", "c": "erased"}
    assert skipped_by_reason(skipped) == {"erased": 2, "quarantined: x": 1}
