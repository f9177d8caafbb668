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
from typing import Any

from sqlalchemy import Table, Text, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session

from gateway.core.errors import IntegrityFailure
from gateway.core.models import Asset, AssetState, Detection, LineageRecord
from gateway.lineage.actions import REDACTION_RUNS, Action

_RECORDS: Table = LineageRecord.__table__  # type: ignore[attr-defined]
_ASSETS: Table = Asset.__table__  # type: ignore[attr-defined]
_DETECTIONS: Table = Detection.__table__  # type: ignore[attr-defined]
STATE_ACTIONS = {Action.entered(s): s.value for s in AssetState}
ADDS_DETECTIONS = REDACTION_RUNS
DELETES_DETECTIONS = (Action.ASSET_EXPIRED, Action.ASSET_ERASED)
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
    TableDisagreesWithLedger naming the first few disagreements. The state comparison runs in
    the database (it returns only disagreements); detections compare per asset and label."""
    result = CrossCheck()
    result.assets = _compare_states(session, up_to, result.problems)
    result.detections = _compare_detections(
        session, _expected_detections(session, up_to), result.problems
    )
    if result.problems:
        shown = "; ".join(result.problems[:SHOWN])
        more = len(result.problems) - SHOWN
        raise TableDisagreesWithLedger(
            shown + (f"; and {more} more" if more > 0 else ""), problems=len(result.problems)
        )
    return result


def _last_state_records(up_to: int) -> Any:
    c = _RECORDS.c
    last = (
        select(c.entity_id, func.max(c.seq).label("seq"))
        .where(c.entity_type == "asset", c.action.in_(list(STATE_ACTIONS)), c.seq <= up_to)
        .group_by(c.entity_id)
        .subquery()
    )
    return (
        select(last.c.entity_id, last.c.seq, c.action)
        .join(_RECORDS, c.seq == last.c.seq)
        .subquery()
    )


def _compare_states(session: Session, up_to: int, problems: list[str]) -> int:
    conn = session.connection()
    a = _ASSETS.c
    last = _last_state_records(up_to)
    # a state no action names (a tampered row) expects "", which no record carries
    expected = {state: action.value for action, state in STATE_ACTIONS.items()}
    expected_action = case(expected, value=a.state, else_="")
    wrong = (
        select(a.id, a.state, last.c.seq, last.c.action)
        .select_from(_ASSETS.outerjoin(last, last.c.entity_id == a.id))
        .where(or_(last.c.seq.is_(None), last.c.action != expected_action))
        .order_by(a.id)
        .limit(SHOWN + 1)
    )
    for asset_id, state, seq, action in conn.execute(wrong):
        if seq is None:
            problems.append(f"asset {asset_id} ({state}) has no state record in the ledger")
        else:
            problems.append(
                f"asset {asset_id}: the table says {state}, the ledger's last state record "
                f"(seq {seq}) says {STATE_ACTIONS.get(action, action)}"
            )
    orphans = (
        select(last.c.entity_id)
        .select_from(last.outerjoin(_ASSETS, a.id == last.c.entity_id))
        .where(a.id.is_(None))
        .limit(SHOWN + 1)
    )
    for (asset_id,) in conn.execute(orphans):
        problems.append(f"asset {asset_id} is in the ledger but its row was deleted")
    return int(conn.execute(select(func.count()).select_from(_ASSETS)).scalar_one())


def _regions(session: Session) -> Any:
    """`parameters.regions` of a payload as JSON text, extracted by the database."""
    payload = _RECORDS.c.payload
    if session.get_bind().dialect.name == "postgresql":
        return cast(cast(payload, JSONB)[("parameters", "regions")], Text)
    return func.json_extract(payload, "$.parameters.regions")


def _expected_detections(session: Session, up_to: int) -> dict[tuple[str, str], int]:
    """Per (asset, label): the detections the ledger says are stored."""
    c = _RECORDS.c
    per_asset: dict[str, dict[str, int]] = defaultdict(dict)
    stmt = (
        select(c.entity_id, c.action, _regions(session))
        .where(
            c.entity_type == "asset",
            c.action.in_([*ADDS_DETECTIONS, *DELETES_DETECTIONS]),
            c.seq <= up_to,
        )
        .order_by(c.seq)
    )
    for entity_id, action, regions_text in session.connection().execute(stmt):
        if action in DELETES_DETECTIONS:
            per_asset.pop(entity_id, None)
            continue
        regions = json.loads(regions_text) if regions_text else {}
        counts = per_asset[entity_id]
        for label, n in (regions if isinstance(regions, dict) else {}).items():
            counts[label] = counts.get(label, 0) + int(n)
    return {(a, lab): n for a, c in per_asset.items() for lab, n in c.items() if n}


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
