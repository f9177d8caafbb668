"""Tables outside the ledger checked against it: what the ledger's records say an entity is now
must be what its row says.

- Asset state: an asset's `state` is the state named by its last state record
  (`asset.<state>`; ingest writes `asset.received` or `asset.rejected`, every transition
  `asset.<new state>`). Every asset row needs one, and every asset the ledger names needs a row.
- Detections: each processing outcome (`asset.released` / `asset.quarantined` written by the
  pipeline) records `parameters.regions` (label -> count) for the detections it stores;
  `asset.expired` and `asset.erased` delete them. The detections table must hold, per asset and
  label, the sum the ledger says since the last deletion.

Annotations are not checked: they come from Label Studio and are read back from it by id
(the ledger records syncs, not annotation contents).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Table, func, select
from sqlmodel import Session

from gateway.errors import IntegrityFailure
from gateway.models import Asset, AssetState, Detection, LineageRecord

_RECORDS: Table = LineageRecord.__table__  # type: ignore[attr-defined]
_ASSETS: Table = Asset.__table__  # type: ignore[attr-defined]
_DETECTIONS: Table = Detection.__table__  # type: ignore[attr-defined]
STATE_ACTIONS = {f"asset.{s.value}": s.value for s in AssetState}
ADDS_DETECTIONS = ("asset.released", "asset.quarantined")
DELETES_DETECTIONS = ("asset.expired", "asset.erased")
SHOWN = 5


class TableDisagreesWithLedger(IntegrityFailure):
    code, title = "lineage-cross-check-failed", "A table disagrees with the lineage ledger"


@dataclass
class CrossCheck:
    assets: int = 0
    detections: int = 0
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{self.assets} asset states and {self.detections} detections agree with the "
            "ledger's last records"
        )


def cross_check(session: Session, *, up_to: int) -> CrossCheck:
    """Compare asset states and detection counts with the ledger's records 1..up_to; raises
    TableDisagreesWithLedger naming the first few disagreements."""
    states, expected = _ledger_view(session, up_to)
    result = CrossCheck()
    rows = session.connection().execute(select(_ASSETS.c.id, _ASSETS.c.state)).all()
    seen = set()
    for asset_id, state in rows:
        seen.add(asset_id)
        recorded = states.get(asset_id)
        value = state.value if isinstance(state, AssetState) else str(state)
        if recorded is None:
            result.problems.append(f"asset {asset_id} ({value}) has no state record in the ledger")
        elif recorded[1] != value:
            result.problems.append(
                f"asset {asset_id}: the table says {value}, the ledger's last state record "
                f"(seq {recorded[0]}) says {recorded[1]}"
            )
    for asset_id in states.keys() - seen:
        result.problems.append(f"asset {asset_id} is in the ledger but its row was deleted")
    result.assets = len(rows)
    result.detections = _compare_detections(session, expected, result.problems)
    if result.problems:
        shown = "; ".join(result.problems[:SHOWN])
        more = len(result.problems) - SHOWN
        raise TableDisagreesWithLedger(
            shown + (f"; and {more} more" if more > 0 else ""), problems=len(result.problems)
        )
    return result


def _ledger_view(
    session: Session, up_to: int
) -> tuple[dict[str, tuple[int, str]], dict[tuple[str, str], int]]:
    """Per asset: the last state record (seq, state); per (asset, label): detections expected."""
    c = _RECORDS.c
    conn = session.connection()
    states: dict[str, tuple[int, str]] = {}
    stmt = (
        select(c.seq, c.entity_id, c.action)
        .where(c.entity_type == "asset", c.action.in_(list(STATE_ACTIONS)), c.seq <= up_to)
        .order_by(c.seq)
    )
    for seq, entity_id, action in conn.execute(stmt):
        states[entity_id] = (seq, STATE_ACTIONS[action])
    per_asset: dict[str, dict[str, int]] = defaultdict(dict)
    stmt = (
        select(c.entity_id, c.action, c.payload)
        .where(
            c.entity_type == "asset",
            c.action.in_([*ADDS_DETECTIONS, *DELETES_DETECTIONS]),
            c.seq <= up_to,
        )
        .order_by(c.seq)
    )
    for entity_id, action, payload in conn.execute(stmt):
        if action in DELETES_DETECTIONS:
            per_asset.pop(entity_id, None)
            continue
        regions = json.loads(payload).get("parameters", {}).get("regions") or {}
        counts = per_asset[entity_id]
        for label, n in regions.items():
            counts[label] = counts.get(label, 0) + int(n)
    expected = {(a, lab): n for a, c in per_asset.items() for lab, n in c.items() if n}
    return states, expected


def _compare_detections(
    session: Session, expected: dict[tuple[str, str], int], problems: list[str]
) -> int:
    d = _DETECTIONS.c
    stmt = select(d.asset_id, d.label, func.count()).group_by(d.asset_id, d.label)
    stored = {(a, lab): int(n) for a, lab, n in session.connection().execute(stmt)}
    for key in sorted(stored.keys() | expected.keys()):
        have, want = stored.get(key, 0), expected.get(key, 0)
        if have != want:
            problems.append(
                f"asset {key[0]}: {have} {key[1]} detections stored, the ledger recorded {want}"
            )
    return sum(stored.values())
