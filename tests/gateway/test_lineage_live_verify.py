"""Live `verify` against a database-only attacker: real SQL edits (SQLite file, PostgreSQL
role with write access), a signing key pinned by fingerprint and checkpoints pinned in a file
outside the data directory. Each test names the claim of docs/threat-model.md (Ledger) it shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure
from gateway.lineage import Actor, append
from gateway.lineage.anchor import NotAnchored, append_checkpoint, pinned_line
from gateway.lineage.checkpointer import Checkpointer
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.format.canonical import chain_hash
from gateway.lineage.format.errors import AnchorInvalid
from gateway.lineage.format.verify import TrustedKeyInvalid
from gateway.lineage.ledger import drain
from gateway.lineage.live import (
    LedgerUnanchored,
    LiveVerification,
    verify_live_ledger,
    verify_options,
)
from gateway.lineage.signing import ensure_signing_key
from gateway.lineage.walk import LedgerTampered

pytestmark = pytest.mark.db
ACTOR = Actor("system", "test")


def _records(ctx: Any, n: int) -> None:
    with transaction(ctx.engine) as s:
        for i in range(n):
            append(
                s,
                action="api-key.created" if i % 2 else "api-key.used",
                entity_type="api-key",
                entity_id=f"key-{i}",
                dataset_id="d-one" if i % 3 else "d-two",
                actor=ACTOR,
                now=ctx.clock(),
                region="eu-de",
                parameters={"i": i},
            )


def _checkpoint(ctx: Any, pin: Path | None = None) -> str:
    """Sign the current head (in the database); append it to `pin` after commit. Returns the
    signing key's fingerprint, which the verifier pins."""
    with transaction(ctx.engine) as s:  # the key's creation is a record of its own
        ensure_signing_key(ctx, s)
    with transaction(ctx.engine) as s:
        row = create_checkpoint(ctx, s)
        line = pinned_line(s, row)
        fp = ensure_signing_key(ctx, s).fingerprint
    if pin is not None:
        append_checkpoint(pin, line)
    return fp


def _verify(ctx: Any, fp: str | None, *against: Path, **flags: bool) -> LiveVerification:
    drain(ctx.engine)
    options = verify_options(
        ctx.settings,
        trusted_keys=[],
        fingerprints=[fp] if fp else [],
        against=list(against),
        **flags,
    )
    with transaction(ctx.engine) as s:
        return verify_live_ledger(s, options)


def _sql(ctx: Any, statement: str, **params: Any) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(text(statement), params)


def _rewrite(ctx: Any, seq: int, action: str) -> None:
    """What an attacker with write access does: edit one record's payload (and its column),
    then recompute every later hash and link, and move the head, so the chain is consistent."""
    with ctx.engine.begin() as conn:
        rows = conn.execute(
            text("SELECT seq, payload FROM lineagerecord WHERE seq >= :s ORDER BY seq"), {"s": seq}
        ).all()
        prev = conn.execute(
            text("SELECT prev_hash FROM lineagerecord WHERE seq = :s"), {"s": seq}
        ).scalar_one()
        for number, payload in rows:
            body = json.loads(payload)
            body["prev"] = prev
            if number == seq:
                assert body["action"] != action
                body["action"] = action
            payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
            digest = chain_hash(prev, payload.encode())
            conn.execute(
                text(
                    "UPDATE lineagerecord SET payload = :p, prev_hash = :prev, "
                    "record_hash = :h, action = :a WHERE seq = :s"
                ),
                {"p": payload, "prev": prev, "h": digest, "a": body["action"], "s": number},
            )
            prev = digest
        conn.execute(text("UPDATE lineagehead SET head_hash = :h"), {"h": prev})
        conn.execute(text("DELETE FROM lineagetree"))  # the sequencer rebuilds its frontier


@pytest.fixture
def pin(tmp_path: Path) -> Path:
    """The compliance officer's copy, outside the data directory."""
    return tmp_path / "officer" / "checkpoints.jsonl"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "'asset.erased'"),
        ("dataset_id", "'d-two'"),
        ("entity_id", "'key-99'"),
        ("entity_type", "'dataset'"),
        ("created_at", None),
    ],
)
def test_an_edited_column_reports_read_fails(
    ctx, pin: Path, column: str, value: str | None
) -> None:
    _records(ctx, 6)
    fp = _checkpoint(ctx, pin)
    assert _verify(ctx, fp, pin).head_seq >= 6
    if column == "created_at":  # a year later: the report's period filter would move it
        from datetime import UTC, datetime

        from sqlalchemy import update

        from gateway.core.models import LineageRecord

        table = LineageRecord.__table__  # type: ignore[attr-defined]
        with ctx.engine.begin() as conn:
            later = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
            conn.execute(update(table).where(table.c.seq == 3).values(created_at=later))
    else:
        _sql(ctx, f"UPDATE lineagerecord SET {column} = {value} WHERE seq = 3")  # noqa: S608
    with pytest.raises(LedgerTampered, match=f"record seq 3: column {column}"):
        _verify(ctx, fp, pin)


def test_history_rewritten_and_checkpoints_deleted_fails(ctx, pin: Path) -> None:
    _records(ctx, 10)
    fp = _checkpoint(ctx, pin)
    _records(ctx, 5)
    _checkpoint(ctx)
    _rewrite(ctx, 4, "api-key.revoked")
    with pytest.raises(LedgerTampered, match="do not match the signed checkpoint"):
        _verify(ctx, fp, pin)
    _sql(ctx, "DELETE FROM lineagecheckpoint")
    with pytest.raises(LedgerTampered, match="missing from the database"):
        _verify(ctx, fp, pin)
    # without the pinned file, nothing signed is left: that fails too ("0 checkpoints")
    with pytest.raises(NotAnchored, match="no signed checkpoint"):
        _verify(ctx, fp)


def test_no_trusted_key_or_no_checkpoint_never_passes(ctx) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.lineage.format.keys import fingerprint, public_raw

    fp = _checkpoint(ctx)
    assert _verify(ctx, fp).unanchored == 0
    _records(ctx, 3)
    with pytest.raises(NotAnchored, match="nothing outside the database vouches"):
        _verify(ctx, None)
    other = fingerprint(public_raw(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(LedgerTampered, match="no key in the database matches the trusted"):
        _verify(ctx, other)
    _sql(ctx, "DELETE FROM lineagecheckpoint")
    with pytest.raises(NotAnchored, match="no signed checkpoint"):
        _verify(ctx, fp)


def test_empty_ledger_passes_only_when_allowed(ctx, pin: Path) -> None:
    with transaction(ctx.engine) as s:
        fp = ensure_signing_key(ctx, s).fingerprint
    _sql(ctx, "DELETE FROM lineagerecord")
    _sql(ctx, "UPDATE lineagehead SET seq = 0, head_hash = :h", h="0" * 64)
    with pytest.raises(NotAnchored, match="allow-empty"):
        _verify(ctx, fp)
    assert _verify(ctx, fp, allow_empty=True).head_seq == 0


def test_records_after_the_last_checkpoint(ctx, pin: Path) -> None:
    """Claim: a consistent rewrite or truncation of records no signature covers yet is not
    detectable; verify says how many there are, --strict fails on them, and the next
    checkpoint in the pinned log covers them."""
    _records(ctx, 8)
    fp = _checkpoint(ctx, pin)
    _records(ctx, 4)
    result = _verify(ctx, fp, pin)
    assert result.unanchored == 4 and "4 records after it" in "\n".join(result.describe())
    with pytest.raises(LedgerUnanchored, match="4 records after the newest signed checkpoint"):
        _verify(ctx, fp, pin, strict=True)
    head = result.head_seq
    _rewrite(ctx, head - 1, "api-key.revoked")
    assert _verify(ctx, fp, pin).unanchored == 4  # undetectable: nothing signed it
    _checkpoint(ctx, pin)  # what the checkpointer does every 10,000 records or 5 minutes
    _rewrite(ctx, head - 1, "api-key.deleted")
    with pytest.raises(LedgerTampered, match="do not match the signed checkpoint"):
        _verify(ctx, fp, pin)


def test_truncation(ctx, pin: Path) -> None:
    _records(ctx, 8)
    fp = _checkpoint(ctx, pin)
    head = _verify(ctx, fp, pin).head_seq
    _records(ctx, 3)
    # the unsigned tail can be dropped without trace (claim: the checkpoint interval bounds it)
    _truncate(ctx, head)
    assert _verify(ctx, fp, pin, strict=True).head_seq == head
    # below a signed checkpoint it cannot: the database's copy says so, and the pinned one
    _truncate(ctx, head - 2)
    with pytest.raises(LedgerTampered, match="truncated"):
        _verify(ctx, fp, pin)
    _sql(ctx, "DELETE FROM lineagecheckpoint")
    with pytest.raises(LedgerTampered, match="truncated or the database was rolled back"):
        _verify(ctx, fp, pin)


def _truncate(ctx: Any, keep: int) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM lineagerecord WHERE seq > :k"), {"k": keep})
        digest = conn.execute(
            text("SELECT record_hash FROM lineagerecord WHERE seq = :k"), {"k": keep}
        ).scalar_one()
        conn.execute(
            text("UPDATE lineagehead SET seq = :k, head_hash = :h"), {"k": keep, "h": digest}
        )


def test_a_forged_key_and_its_checkpoints_fail(ctx, pin: Path) -> None:
    """The attacker adds a key of their own (no hand-over from the pinned one), rewrites
    history and signs fresh checkpoints with it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.lineage.format.canonical import canonical_json
    from gateway.lineage.format.checkpoint import checkpoint_body
    from gateway.lineage.format.keys import b64, fingerprint, key_id_for, public_raw

    _records(ctx, 6)
    fp = _checkpoint(ctx, pin)
    _rewrite(ctx, 2, "api-key.revoked")
    _sql(ctx, "DELETE FROM lineagecheckpoint")
    private = Ed25519PrivateKey.generate()
    raw = public_raw(private.public_key())
    key_id = key_id_for(raw)
    with transaction(ctx.engine) as s:
        seq, head = s.connection().execute(text("SELECT seq, head_hash FROM lineagehead")).one()
        from gateway.lineage.ledger import current_frontier

        root = current_frontier(s, seq)[0].root().hex()
    body = canonical_json(
        checkpoint_body(
            tree_size=seq, root_hash=root, chain_head=head, time=ctx.clock(), key_id=key_id
        )
    )
    _sql(
        ctx,
        "INSERT INTO lineagesigningkey (key_id, public_key, fingerprint, master_key_id, "
        "created_at) VALUES (:k, :p, :f, 'x', :t)",
        k=key_id,
        p=raw,
        f=fingerprint(raw),
        t=ctx.clock(),
    )
    _sql(
        ctx,
        "INSERT INTO lineagecheckpoint (tree_size, root_hash, chain_head, body, key_id, "
        "signature, created_at) VALUES (:n, :r, :h, :b, :k, :s, :t)",
        n=seq,
        r=root,
        h=head,
        b=body.decode(),
        k=key_id,
        s=b64(private.sign(body)),
        t=ctx.clock(),
    )
    with pytest.raises(LedgerTampered, match="keys do not form one rotation chain"):
        _verify(ctx, fp)
    _sql(ctx, "DELETE FROM lineagesigningkey WHERE key_id <> :k", k=key_id)
    with pytest.raises(LedgerTampered, match="no key in the database matches the trusted"):
        _verify(ctx, fp)


def test_from_anchor_walks_only_the_tail(ctx, pin: Path) -> None:
    """Claim: starting at the newest pinned checkpoint costs the records after it, and still
    sees any rewrite that re-chains history (the record at the checkpoint's size must be its
    signed chain head); an edit to an old record that leaves its hash standing is found only
    by the full walk (the default)."""
    _records(ctx, 10)
    fp = _checkpoint(ctx, pin)
    _records(ctx, 3)
    quick = _verify(ctx, fp, pin, from_anchor=True)
    assert quick.walked_from == quick.head_seq - 3
    _sql(ctx, "UPDATE lineagerecord SET action = 'api-key.revoked' WHERE seq = 4")
    assert _verify(ctx, fp, pin, from_anchor=True).walked_from > 0
    with pytest.raises(LedgerTampered, match="record seq 4: column action"):
        _verify(ctx, fp, pin)
    _sql(ctx, "UPDATE lineagerecord SET action = 'api-key.used' WHERE seq = 4")
    _rewrite(ctx, 4, "api-key.revoked")
    with pytest.raises(LedgerTampered, match="history was rewritten"):
        _verify(ctx, fp, pin, from_anchor=True)


def test_checkpointer_appends_to_the_pinned_log(ctx, tmp_path: Path) -> None:
    log = tmp_path / "outside" / "lineage-checkpoints.jsonl"
    ctx.settings.lineage_checkpoint_log = log
    _records(ctx, 5)
    with transaction(ctx.engine) as s:
        fp = ensure_signing_key(ctx, s).fingerprint
    ctx.settings.lineage_trusted_fingerprint = fp
    made = Checkpointer(ctx, every_records=1).run_once()
    assert made is not None and len(log.read_text().splitlines()) == 1
    assert (log.stat().st_mode & 0o777) == 0o600
    drain(ctx.engine)
    with transaction(ctx.engine) as s:  # settings alone pin key and log
        opts = verify_options(ctx.settings, trusted_keys=[], fingerprints=[], against=[])
        assert verify_live_ledger(s, opts).pinned_checkpoints == 1
    log.unlink()
    with pytest.raises(AnchorInvalid, match="does not exist"):
        verify_options(ctx.settings, trusted_keys=[], fingerprints=[], against=[])


def test_every_malformed_pin_is_a_typed_error(ctx, pin: Path, tmp_path: Path) -> None:
    _records(ctx, 3)
    fp = _checkpoint(ctx, pin)
    good = json.loads(pin.read_text())
    body = json.loads(good["body"])
    bad_lines: list[Any] = [
        "not json",
        "[]",
        {**good, "kind": "record"},
        {**good, "signature": "AAAA"},
        {**good, "signature": 5},
        {**good, "key_id": "ed25519-0000000000000000"},
        {**good, "body": good["body"].replace('"tree_size":', '"tree_size": ')},
        {**good, "body": json.dumps({**body, "tree_size": 1.5})},
        {**good, "body": "{"},
        {**good, "frontier": ["zz"]},
        {**good, "frontier": [*good["frontier"][:-1], "00" * 32]},
        {**good, "frontier": good["frontier"] + ["00" * 32]},
        "[" * 100_000,
    ]
    for bad in bad_lines:
        path = tmp_path / "bad.jsonl"
        path.write_text((bad if isinstance(bad, str) else json.dumps(bad)) + "\n")
        with pytest.raises(AnchorInvalid):
            _verify(ctx, fp, path)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(AnchorInvalid, match="holds no checkpoint"):
        _verify(ctx, fp, tmp_path / "empty.jsonl")
    with pytest.raises(AnchorInvalid, match="cannot read"):
        _verify(ctx, fp, tmp_path / "missing.jsonl")
    for fingerprint in ("abc", "g" * 64):
        with pytest.raises(TrustedKeyInvalid):
            _verify(ctx, fingerprint)
    (tmp_path / "key.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    with pytest.raises(TrustedKeyInvalid):
        verify_options(
            ctx.settings, trusted_keys=[tmp_path / "key.pem"], fingerprints=[], against=[]
        )
    assert issubclass(TrustedKeyInvalid, IntegrityFailure)


class _QuarantiningRedactor:
    """Stands in for the model-backed redactor (too slow for this test): it reports two faces
    and a plate and withholds the output, so the real pipeline stores the detections, moves
    the asset to quarantined and records the regions in lineage."""

    def redact(self, data: bytes) -> Any:  # noqa: ARG002 (the bytes are not looked at)
        from gateway.pipeline import RedactionOutcome

        box = {"x": 1, "y": 2, "w": 30, "h": 40, "score": 0.9, "detector": "stub"}
        regions = [box | {"label": "face"}, box | {"label": "face"}, box | {"label": "plate"}]
        reason = {"code": "leak-check", "message": "a face is still visible"}
        return RedactionOutcome(False, None, "", regions=regions, reasons=[reason])


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ("UPDATE asset SET state = 'released' WHERE id = :a", "the table says released"),
        ("DELETE FROM detection WHERE asset_id = :a AND label = 'plate'", "0 plate detections"),
        (
            "INSERT INTO detection (asset_id, label, x, y, w, h, score_milli, detector, stage) "
            "VALUES (:a, 'face', 0, 0, 5, 5, 10, 'x', 'detect')",
            "3 face detections stored, the ledger recorded 2",
        ),
    ],
)
def test_asset_states_and_detections_are_checked_against_the_ledger(
    ctx, dataset, pin: Path, attack: str, message: str
) -> None:
    from gateway.ingest import Upload, ingest_upload
    from gateway.pipeline import drain as run_jobs
    from tests.conftest import PHOTOS

    photo = (PHOTOS / "masks_maksssksksss30.jpg").read_bytes()
    with transaction(ctx.engine) as s:
        asset_id = ingest_upload(
            s, ctx, dataset, Upload("a.jpg", photo), actor=Actor("cli", "t")
        ).asset_id
    assert run_jobs(ctx, redactor=_QuarantiningRedactor()) == 1
    fp = _checkpoint(ctx, pin)
    result = _verify(ctx, fp, pin)
    assert result.cross is not None and (result.cross.assets, result.cross.detections) == (1, 3)
    _sql(ctx, attack, a=asset_id)
    with pytest.raises(IntegrityFailure, match=message) as failure:
        _verify(ctx, fp, pin)
    assert failure.value.code == "lineage-cross-check-failed"


def test_host_access_can_resign_but_not_past_an_offhost_pin(ctx, pin: Path) -> None:
    """Claim: whoever holds the master key can rewrite history and sign it afresh, and the
    database alone then verifies; a checkpoint pinned off the host still exposes it."""
    _records(ctx, 6)
    fp = _checkpoint(ctx, pin)  # the compliance officer keeps this file off the host
    _rewrite(ctx, 3, "api-key.revoked")
    _sql(ctx, "DELETE FROM lineagecheckpoint")
    _checkpoint(ctx)  # re-signed with the gateway's own key (unwrapped with the master key)
    assert _verify(ctx, fp, strict=True).unanchored == 0  # what the host can hide
    with pytest.raises(LedgerTampered, match="checkpoints were replaced"):
        _verify(ctx, fp, pin)


def test_a_report_states_tampering_it_can_see(ctx) -> None:
    """A governance report verifies from the newest trusted checkpoint: an edited column after
    it, or history rewritten below it, turns its lineage section to not verified."""
    from gateway.reports.collect_lineage import lineage_section
    from gateway.reports.query import Scope

    def section() -> Any:
        with transaction(ctx.engine) as s:
            return lineage_section(s, Scope(None, None, None), ctx=ctx)

    _records(ctx, 6)
    _checkpoint(ctx)
    _records(ctx, 3)
    assert section().verified
    head = "(SELECT seq FROM lineagehead)"
    with ctx.engine.begin() as conn:
        original = conn.execute(
            text(f"SELECT dataset_id FROM lineagerecord WHERE seq = {head}")  # noqa: S608
        ).scalar()
    _sql(ctx, f"UPDATE lineagerecord SET dataset_id = 'd-three' WHERE seq = {head}")  # noqa: S608
    edited = section()
    assert not edited.verified and "column dataset_id" in (edited.failure or "")
    _sql(ctx, f"UPDATE lineagerecord SET dataset_id = :d WHERE seq = {head}", d=original)  # noqa: S608
    assert section().verified
    _rewrite(ctx, 2, "api-key.revoked")
    rewritten = section()
    assert not rewritten.verified and "history was rewritten" in (rewritten.failure or "")
