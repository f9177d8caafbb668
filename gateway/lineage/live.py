"""Live verification of the ledger in the database, anchored outside it.

What the verifier trusts: a signing key (PEM or fingerprint) given by the person verifying or
pinned in the gateway's settings, and optionally checkpoint files kept outside the data
directory. The database's signing keys count only as far as a hand-over chain reaches the
trusted key; a checkpoint counts only if a trusted key signed it.

Checks, in order (the first failure raises, naming the record, column or checkpoint):
1. every stored checkpoint: signed by a trusted key, its columns equal its signed body, not
   beyond the chain head (truncation);
2. every pinned checkpoint: signed by a trusted key and present, unchanged, in the database
   (deleting or replacing checkpoints fails), not beyond the chain head;
3. the chain walk (`walk`): from genesis, or with `from_anchor` from the newest pinned
   checkpoint (its chain head must be the record at its size): links, hashes, the columns
   reports read, and the Merkle root of every signed tree head on the way;
4. asset states and detection counts against the ledger (`crosscheck`);
5. the anchor: no trusted key -> NotAnchored; no signed checkpoint at all -> NotAnchored
   unless the ledger is empty and `allow_empty`; `strict` -> records after the newest signed
   checkpoint fail (LedgerUnanchored).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from gateway.core.errors import IntegrityFailure
from gateway.core.models import LineageRecord
from gateway.core.settings import Settings
from gateway.lineage.anchor import NotAnchored, own_key_anchor, trusted_keys
from gateway.lineage.crosscheck import CrossCheck, cross_check
from gateway.lineage.format.canonical import GENESIS_HASH
from gateway.lineage.format.checkpoint import (
    PinnedCheckpoint,
    TreeHead,
    checked_frontier,
    pinned_fields,
    read_checkpoint_file,
)
from gateway.lineage.format.errors import AnchorInvalid
from gateway.lineage.format.keys import Anchor, load_anchor, verify_signature
from gateway.lineage.format.merkle import Frontier
from gateway.lineage.ledger import read_head
from gateway.lineage.signing import public_keys
from gateway.lineage.tables import LineageCheckpoint
from gateway.lineage.walk import LedgerTampered, Position, walk

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext
    from gateway.core.keys import KeyProvider


class LedgerUnanchored(NotAnchored):
    code = "lineage-tail-unanchored"


@dataclass(frozen=True, slots=True)
class LiveOptions:
    anchor: Anchor
    anchor_source: str = "given by the verifier"
    checkpoint_files: Sequence[Path] = ()
    from_anchor: bool = False
    strict: bool = False
    allow_empty: bool = False
    cross_check: bool = True
    require_checkpoint: bool = True


@dataclass
class LiveVerification:
    head_seq: int
    walked_from: int
    stored_checkpoints: int
    pinned_checkpoints: int
    anchored_size: int
    trusted_key: str | None
    anchor_source: str
    cross: CrossCheck | None

    @property
    def unanchored(self) -> int:
        return self.head_seq - self.anchored_size

    def describe(self) -> list[str]:
        start = "genesis" if self.walked_from == 0 else f"pinned checkpoint {self.walked_from}"
        walked = self.head_seq - self.walked_from
        lines = [
            f"lineage chain intact: {self.head_seq} records (walked {walked} from {start}), "
            f"{self.stored_checkpoints} signed checkpoints in the database, "
            f"{self.pinned_checkpoints} pinned outside it verified",
            f"signatures anchored to trusted key {self.trusted_key}, {self.anchor_source}",
            f"newest signed tree head: {self.anchored_size}; {self.unanchored} records after it "
            "are not covered by any signature yet",
        ]
        if self.cross is not None:
            lines.append(self.cross.describe())
        return lines


def verify_options(
    settings: Settings,
    *,
    trusted_keys: Sequence[Path],
    fingerprints: Sequence[str],
    against: Sequence[Path],
    strict: bool = False,
    from_anchor: bool = False,
    allow_empty: bool = False,
) -> LiveOptions:
    """Flags first; without them, the key and checkpoint log pinned in the settings."""
    if not trusted_keys and not fingerprints and settings.lineage_trusted_fingerprint:
        fingerprints = [f for f in settings.lineage_trusted_fingerprint.split(",") if f.strip()]
    log = settings.lineage_checkpoint_log
    if not against and log is not None:
        if not log.is_file():
            raise AnchorInvalid(
                f"GATEWAY_LINEAGE_CHECKPOINT_LOG names {log}, which does not exist: the "
                "checkpoint log was removed",
                path=str(log),
            )
        against = [log]
    return LiveOptions(
        anchor=load_anchor(trusted_keys, fingerprints),
        checkpoint_files=tuple(against),
        from_anchor=from_anchor,
        strict=strict,
        allow_empty=allow_empty,
    )


def verify_live_ledger(session: Session, options: LiveOptions) -> LiveVerification:
    """Checkpoints (pinned and stored) are read before the head: the ledger only grows, so a
    checkpoint signed while we verify cannot look like one beyond a truncated head."""
    anchored = not options.anchor.empty
    if anchored:
        keys, key_name = trusted_keys(session, options.anchor)
    else:
        keys, key_name = public_keys(session), None
    pinned = [p for f in options.checkpoint_files for p in read_checkpoint_file(f, keys)]
    rows = list(session.exec(select(LineageCheckpoint).order_by(col(LineageCheckpoint.tree_size))))
    head_seq, head_hash = read_head(session, lock=False)
    stored = _stored_heads(rows, keys, head_seq)
    _check_pinned_in_database(session, pinned, head_seq)
    heads = [*(h for h, _ in stored.values()), *(p.head for p in pinned)]
    starts = [*stored.values(), *((p.head, p.frontier) for p in pinned)]
    start = _start(session, starts) if options.from_anchor else _genesis()
    end = walk(session, start=start, end_seq=head_seq, heads=heads)
    if end.head != head_hash:
        raise LedgerTampered("the chain head row does not match the last record", seq=head_seq)
    cross = cross_check(session, up_to=head_seq) if options.cross_check else None
    newest = max((h.tree_size for h in heads), default=None)
    result = LiveVerification(
        head_seq=head_seq,
        walked_from=start.seq,
        stored_checkpoints=len(stored),
        pinned_checkpoints=len(pinned),
        anchored_size=newest or 0,
        trusted_key=key_name,
        anchor_source=options.anchor_source,
        cross=cross,
    )
    _require_anchor(result, anchored=anchored, newest=newest, options=options)
    return result


def _genesis() -> Position:
    return Position(0, GENESIS_HASH, Frontier())


def _stored_heads(
    rows: list[LineageCheckpoint], keys: dict[str, bytes], head_seq: int
) -> dict[int, tuple[TreeHead, Frontier | None]]:
    heads = {}
    for cp in rows:
        where = f"database checkpoint {cp.tree_size}"
        if cp.key_id not in keys:
            raise LedgerTampered(
                f"{where} is signed by {cp.key_id}, not a trusted key (nor handed over from "
                "one): checkpoints were forged or the key table was replaced",
                tree_size=cp.tree_size,
            )
        try:
            body = pinned_fields(cp.body, where=where)
        except AnchorInvalid as exc:
            raise LedgerTampered(exc.message, tree_size=cp.tree_size) from exc
        try:
            verify_signature(keys[cp.key_id], cp.body.encode(), cp.signature)
        except IntegrityFailure as exc:
            raise LedgerTampered(
                f"{where}: its signature does not verify", tree_size=cp.tree_size
            ) from exc
        fields = (body["tree_size"], body["root_hash"], body["chain_head"], body["key_id"])
        if fields != (cp.tree_size, cp.root_hash, cp.chain_head, cp.key_id):
            raise LedgerTampered(f"{where}: its columns disagree with its signed body")
        if cp.tree_size > head_seq:
            raise LedgerTampered(
                f"{where} covers records beyond the chain head {head_seq}: records were truncated",
                tree_size=cp.tree_size,
                head=head_seq,
            )
        head = TreeHead(cp.tree_size, cp.root_hash, cp.chain_head, where)
        try:
            nodes = None if cp.frontier is None else json.loads(cp.frontier)
            frontier = checked_frontier(nodes, head, where=where)
        except (ValueError, AnchorInvalid) as exc:
            raise LedgerTampered(
                f"{where}: its Merkle frontier does not lead to its signed root",
                tree_size=cp.tree_size,
            ) from exc
        heads[cp.tree_size] = (head, frontier)
    return heads


def _check_pinned_in_database(
    session: Session, pinned: list[PinnedCheckpoint], head_seq: int
) -> None:
    for p in pinned:
        size = p.head.tree_size
        if size > head_seq:
            raise LedgerTampered(
                f"the ledger ends at {head_seq} but a {p.head.source} covers {size} records: "
                "records were truncated or the database was rolled back",
                tree_size=size,
                head=head_seq,
            )
        row = session.get(LineageCheckpoint, size)
        if row is None:
            raise LedgerTampered(
                f"the checkpoint at tree size {size} ({p.head.source}) is missing from the "
                "database: checkpoints were deleted",
                tree_size=size,
            )
        if (row.body, row.signature) != (p.body, p.signature):
            raise LedgerTampered(
                f"the database's checkpoint at tree size {size} differs from the "
                f"{p.head.source}: checkpoints were replaced",
                tree_size=size,
            )


def _start(session: Session, candidates: list[tuple[TreeHead, Frontier | None]]) -> Position:
    """The newest trusted checkpoint with a frontier (pinned outside, or in the database and
    signed by a trusted key), if the record at its size is still its signed chain head; with
    none, genesis."""
    usable = [(h, f) for h, f in candidates if f is not None and h.tree_size > 0]
    if not usable:
        return _genesis()
    head, frontier = max(usable, key=lambda c: c[0].tree_size)
    assert frontier is not None  # noqa: S101 (filtered above)
    stored = session.exec(
        select(LineageRecord.record_hash).where(col(LineageRecord.seq) == head.tree_size)
    ).first()
    if stored != head.chain_head:
        raise LedgerTampered(
            f"record seq {head.tree_size} is not the chain head signed in the {head.source}: "
            "history was rewritten",
            seq=head.tree_size,
        )
    return Position(head.tree_size, head.chain_head, Frontier(frontier.size, frontier.nodes))


def _require_anchor(
    result: LiveVerification, *, anchored: bool, newest: int | None, options: LiveOptions
) -> None:
    if not anchored:
        raise NotAnchored(
            "the chain is consistent, but nothing outside the database vouches for it: give "
            "the key you trust (--trusted-key PEM or --fingerprint SHA256, or set "
            "GATEWAY_LINEAGE_TRUSTED_FINGERPRINT), and a pinned checkpoint file (--against)",
            records=result.head_seq,
        )
    if (
        newest is None
        and options.require_checkpoint
        and not (options.allow_empty and result.head_seq == 0)
    ):
        raise NotAnchored(
            f"no signed checkpoint covers the {result.head_seq} records: checkpoints were "
            "deleted, or none was ever made (`privacy-gateway lineage checkpoint`); an empty "
            "ledger passes only with --allow-empty",
            records=result.head_seq,
        )
    if options.strict and result.unanchored > 0:
        raise LedgerUnanchored(
            f"{result.unanchored} records after the newest signed checkpoint "
            f"({result.anchored_size}) are covered by no signature (--strict): sign one "
            "with `privacy-gateway lineage checkpoint` and verify again",
            unanchored=result.unanchored,
        )


def with_own_key(options: LiveOptions, keys: KeyProvider, session: Session) -> LiveOptions:
    """Without a key given or pinned in the settings, the gateway's own active key, proven by
    unwrapping it with the master key (an anchor a database-only attacker does not hold)."""
    if not options.anchor.empty:
        return options
    return replace(
        options,
        anchor=own_key_anchor(keys, session),
        anchor_source="the gateway's own key (its private half unwraps under the master key)",
    )


def verify_for_report(ctx: GatewayContext, session: Session) -> LiveVerification:
    """What a governance report states about its lineage: the ledger from the newest trusted
    checkpoint on (pinned log and key from the settings if set, else the gateway's own key).
    Its cost follows the records since that checkpoint, not the ledger's size. Not covered
    here, and covered by `privacy-gateway verify`: old records checked one by one (their
    columns against their payloads) and the cross-check of asset states and detections.
    A ledger with no signed checkpoint yet (a new gateway) is walked from genesis and passes
    on its hash chain alone; `verify` fails it."""
    options = verify_options(
        ctx.settings, trusted_keys=[], fingerprints=[], against=[], from_anchor=True
    )
    options = replace(
        with_own_key(options, ctx.keys, session), cross_check=False, require_checkpoint=False
    )
    return verify_live_ledger(session, options)
