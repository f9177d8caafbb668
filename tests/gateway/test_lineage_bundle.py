"""Signed checkpoints, bundles and offline verification; every kind of tampering is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure
from gateway.lineage import Actor, append
from gateway.lineage.bundle import BundleFilter, export_bundle
from gateway.lineage.checkpoints import create_checkpoint, verify_stored_checkpoints
from gateway.lineage.format.bundle import entries_digest
from gateway.lineage.format.canonical import canonical_json, chain_hash
from gateway.lineage.format.keys import b64, fingerprint, key_id_for, public_raw, verify_document
from gateway.lineage.format.merkle import Frontier, leaf_hash
from gateway.lineage.format.verify import Anchor, BundleInvalid, verify_bundle
from gateway.lineage.service import check_export_residency
from gateway.lineage.signing import (
    ensure_signing_key,
    public_keys,
    rotate_signing_key,
    sign_document,
)

pytestmark = pytest.mark.db
ACTOR = Actor("system", "test")


def _records(ctx: Any, n: int, *, entity: str = "e", dataset: str | None = None) -> None:
    with transaction(ctx.engine) as s:
        for i in range(n):
            append(
                s,
                action="test.event",
                entity_type="asset",
                entity_id=f"{entity}{i % 3}",
                actor=ACTOR,
                now=ctx.clock(),
                region="eu-de",
                dataset_id=dataset,
                inputs={"original_keyed_digest": f"{i:064x}"},
                parameters={"i": i, "threshold_milli": 500},
            )


def _export(ctx: Any, path: Path, flt: BundleFilter | None = None) -> list[dict[str, Any]]:
    with transaction(ctx.engine) as s:
        flt = flt or BundleFilter()
        cleared = check_export_residency(ctx, s, flt, target_region="eu-de", actor=ACTOR)
        export_bundle(ctx, s, path, flt, clearances=cleared, to_region="eu-de")
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))
    return path


def _anchor(ctx: Any) -> Anchor:
    with transaction(ctx.engine) as s:
        return Anchor(fingerprints=[ensure_signing_key(ctx, s).fingerprint])


def _record_lines(lines: list[dict[str, Any]]) -> list[int]:
    return [i for i, x in enumerate(lines) if x["kind"] == "record"]


def _fails(path: Path, anchor: Anchor, *, seq: int, problem: str) -> None:
    with pytest.raises(BundleInvalid) as info:
        verify_bundle(path, anchor=anchor)
    assert info.value.details.get("seq") == seq, info.value.message
    assert info.value.details.get("problem") == problem, info.value.message
    assert f"seq {seq}" in info.value.message


@pytest.fixture
def bundle(ctx: Any, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    _records(ctx, 6)
    with transaction(ctx.engine) as s:
        create_checkpoint(ctx, s)  # an older checkpoint inside the bundle
    _records(ctx, 6)
    path = tmp_path / "bundle.jsonl"
    return path, _export(ctx, path)


def test_untouched_bundle_verifies_anchored_and_says_when_unanchored(ctx, bundle) -> None:
    path, _ = bundle
    report = verify_bundle(path, anchor=_anchor(ctx))
    assert report.complete and report.records >= 12 and report.checkpoints == 2
    assert report.anchored_to is not None and "WARNING" not in report.describe()
    loose = verify_bundle(path, anchor=Anchor())
    assert loose.anchored_to is None and "WARNING: no trusted key" in loose.describe()


def test_edited_field_is_named(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    i = _record_lines(lines)[4]
    lines[i]["payload"] = lines[i]["payload"].replace('"i":4', '"i":40')
    _fails(
        _write(tmp_path / "t.jsonl", lines), _anchor(ctx), seq=lines[i]["seq"], problem="modified"
    )


def test_dropped_record_is_named_missing(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    i = _record_lines(lines)[3]
    seq = lines[i]["seq"]
    del lines[i]
    _fails(_write(tmp_path / "t.jsonl", lines), _anchor(ctx), seq=seq, problem="missing")


def test_swapped_records_are_named_reordered(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    a, b = _record_lines(lines)[7:9]
    seq = lines[a]["seq"]
    lines[a], lines[b] = lines[b], lines[a]
    _fails(_write(tmp_path / "t.jsonl", lines), _anchor(ctx), seq=seq, problem="reordered")


def test_inserted_record_is_named(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    i = _record_lines(lines)[5]
    forged = dict(lines[i])
    payload = json.loads(forged["payload"])
    payload["action"] = "asset.released"  # a step that never happened
    forged["payload"] = canonical_json(payload).decode()
    forged["record_hash"] = chain_hash(payload["prev"], forged["payload"].encode())
    lines.insert(i, forged)
    _fails(_write(tmp_path / "t.jsonl", lines), _anchor(ctx), seq=forged["seq"], problem="inserted")


def test_record_with_a_new_sequence_number_is_named_inserted(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    last = _record_lines(lines)[-1]
    extra = dict(lines[last])
    payload = json.loads(extra["payload"])
    payload.update(seq=payload["seq"] + 1, prev=extra["record_hash"])
    extra["payload"] = canonical_json(payload).decode()
    extra["seq"] = payload["seq"]
    extra["record_hash"] = chain_hash(payload["prev"], extra["payload"].encode())
    lines.insert(last + 1, extra)
    _fails(_write(tmp_path / "t.jsonl", lines), _anchor(ctx), seq=extra["seq"], problem="inserted")


def _reforge(lines: list[dict[str, Any]], key: Ed25519PrivateKey, *, replace_keys: bool) -> None:
    """A careful forger: edit a record, recompute the whole chain, the checkpoints and the
    manifest, and sign them with their own key."""
    idx = _record_lines(lines)
    payloads = [json.loads(lines[i]["payload"]) for i in idx]
    payloads[2]["action"] = "asset.erased"
    prev, frontier, roots = "0" * 64, Frontier(), {}
    for i, p in zip(idx, payloads, strict=True):
        p["prev"] = prev
        text = canonical_json(p).decode()
        prev = chain_hash(prev, text.encode())
        lines[i].update(payload=text, record_hash=prev)
        frontier.append(leaf_hash(bytes.fromhex(prev)))
        roots[frontier.size] = (frontier.root().hex(), prev)
    pub = public_raw(key.public_key())
    kid = key_id_for(pub)
    for line in lines:
        if line["kind"] == "checkpoint":
            body = json.loads(line["body"])
            body["root_hash"], body["chain_head"] = roots[body["tree_size"]]
            body["key_id"] = kid
            text = canonical_json(body).decode()
            line.update(body=text, key_id=kid, signature=b64(key.sign(text.encode())))
        if line["kind"] == "manifest":
            line["entries"] = [[lines[i]["seq"], lines[i]["record_hash"]] for i in idx]
            line["body"]["entries_sha256"] = entries_digest(line["entries"])
            line["body"]["root_hash"] = roots[line["body"]["tree_size"]][0]
            msg = canonical_json(line["body"])
            line["signature"] = {"key_id": kid, "alg": "Ed25519", "signature": b64(key.sign(msg))}
    keys = [x for x in lines if x["kind"] == "key"]
    forged_key = {
        "kind": "key",
        "key_id": kid,
        "alg": "Ed25519",
        "public_key": b64(pub),
        "fingerprint": fingerprint(pub),
        "created_at": "2026-01-01T00:00:00",
        "retired_at": None,
        "previous_key_id": None,
        "handover": None,
        "handover_old_signature": None,
        "handover_new_signature": None,
    }
    if replace_keys:
        for k in keys:
            lines.remove(k)
        lines.insert(1, forged_key)


def test_resigned_with_a_foreign_key_fails_against_the_trusted_fingerprint(
    ctx, bundle, tmp_path
) -> None:
    _path, lines = bundle
    _reforge(lines, Ed25519PrivateKey.generate(), replace_keys=True)
    forged = _write(tmp_path / "t.jsonl", lines)
    assert verify_bundle(forged, anchor=Anchor()).anchored_to is None  # consistent, unanchored
    with pytest.raises(BundleInvalid, match="no key in the bundle matches the trusted"):
        verify_bundle(forged, anchor=_anchor(ctx))


def test_checkpoint_signed_by_a_key_outside_the_chain_is_refused(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    _reforge(lines, Ed25519PrivateKey.generate(), replace_keys=False)
    with pytest.raises(BundleInvalid, match=r"wrongly signed|outside the rotation chain"):
        verify_bundle(_write(tmp_path / "t.jsonl", lines), anchor=_anchor(ctx))


def test_checkpoint_with_a_broken_signature_is_refused(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    cp = next(x for x in lines if x["kind"] == "checkpoint")
    cp["signature"] = b64(bytes(64))
    with pytest.raises(BundleInvalid, match="wrongly signed"):
        verify_bundle(_write(tmp_path / "t.jsonl", lines), anchor=_anchor(ctx))


def test_truncated_bundle_is_refused(ctx, bundle, tmp_path) -> None:
    _path, lines = bundle
    with pytest.raises(BundleInvalid, match="no manifest"):
        verify_bundle(_write(tmp_path / "t.jsonl", lines[:-1]), anchor=_anchor(ctx))


def test_partial_bundle_for_one_asset_verifies_with_inclusion_proofs(ctx, tmp_path) -> None:
    _records(ctx, 9, entity="asset-")
    with transaction(ctx.engine) as s:
        create_checkpoint(ctx, s)
    _records(ctx, 5, entity="other-")
    path = tmp_path / "asset.jsonl"
    lines = _export(ctx, path, BundleFilter(entity_id="asset-1"))
    report = verify_bundle(path, anchor=_anchor(ctx))
    assert not report.complete and report.records == 3
    assert all("proof" in x for x in lines if x["kind"] == "record")
    assert any(x["kind"] == "consistency" for x in lines)
    i = _record_lines(lines)[1]
    lines[i]["payload"] = lines[i]["payload"].replace('"i":4', '"i":5')
    _fails(
        _write(tmp_path / "t.jsonl", lines), _anchor(ctx), seq=lines[i]["seq"], problem="modified"
    )


def test_rotation_hands_over_and_old_checkpoints_still_verify(ctx, tmp_path) -> None:
    _records(ctx, 4)
    with transaction(ctx.engine) as s:
        first = ensure_signing_key(ctx, s)
        create_checkpoint(ctx, s)
    with transaction(ctx.engine) as s:
        second = rotate_signing_key(ctx, s, actor=ACTOR)
    _records(ctx, 4)
    path = tmp_path / "b.jsonl"
    lines = _export(ctx, path)
    cps = [x for x in lines if x["kind"] == "checkpoint"]
    assert {c["key_id"] for c in cps} == {first.key_id, second.key_id}
    # trusting either end of the rotation chain anchors the whole bundle
    for fp in (first.fingerprint, second.fingerprint):
        assert verify_bundle(path, anchor=Anchor(fingerprints=[fp])).anchored_to
    with transaction(ctx.engine) as s:
        assert verify_stored_checkpoints(s) == 2
    key = next(x for x in lines if x["kind"] == "key" and x["previous_key_id"])
    key["handover_old_signature"] = b64(bytes(64))
    with pytest.raises(BundleInvalid, match="hand-over"):
        verify_bundle(_write(tmp_path / "t.jsonl", lines), anchor=Anchor())


def test_sign_document_round_trip_and_refusals(ctx) -> None:
    doc = {"report": "dataset governance", "records": 12, "share_milli": 250}
    with transaction(ctx.engine) as s:
        env = sign_document(ctx, s, doc)
        keys = public_keys(s)
    assert env["alg"] == "Ed25519" and env["key_id"] in keys
    verify_document(doc, env, keys)
    with pytest.raises(IntegrityFailure):
        verify_document({**doc, "records": 13}, env, keys)
    with pytest.raises(IntegrityFailure, match="unknown key"):
        verify_document(doc, {**env, "key_id": "ed25519-0000"}, keys)
    with pytest.raises(TypeError):  # floats never get signed
        sign_document(ctx, None, {"score": 0.5})  # type: ignore[arg-type]


def test_signing_key_is_wrapped_with_its_key_id_as_context(ctx) -> None:
    from gateway.lineage.tables import LineageSigningKey

    with transaction(ctx.engine) as s:
        row = ensure_signing_key(ctx, s)
        stored = s.get(LineageSigningKey, row.key_id)
    assert stored is not None and stored.wrapped is not None
    assert stored.master_key_id == ctx.keys.master.key_id
    seed = ctx.keys.master.unwrap(
        stored.wrapped, aad=f"lpg/v1/lineage-signing-key/{row.key_id}".encode()
    )
    assert public_raw(Ed25519PrivateKey.from_private_bytes(seed).public_key()) == row.public_key
    with pytest.raises(IntegrityFailure):
        ctx.keys.master.unwrap(stored.wrapped, aad=b"lpg/v1/lineage-signing-key/other")


def test_checkpoints_come_at_intervals_of_records_or_time(ctx, clock) -> None:
    from datetime import timedelta

    from gateway.lineage.checkpointer import Checkpointer

    cp = Checkpointer(ctx, every_records=5, every=timedelta(minutes=5))
    assert cp.run_once() is None  # an empty ledger needs no checkpoint
    _records(ctx, 2)
    first = cp.run_once()
    assert first is not None  # the first checkpoint comes as soon as there is anything
    _records(ctx, 2)
    assert cp.run_once() is None  # neither 5 records nor 5 minutes since
    clock.advance(minutes=6)
    by_time = cp.run_once()
    assert by_time is not None and by_time.tree_size > first.tree_size
    _records(ctx, 6)
    by_count = cp.run_once()
    assert by_count is not None and by_count.tree_size >= by_time.tree_size + 6


def test_unreadable_bundles_get_a_clear_error(tmp_path) -> None:
    with pytest.raises(BundleInvalid, match="no bundle file"):
        verify_bundle(tmp_path / "absent.jsonl", anchor=Anchor())
    (binary := tmp_path / "b.jsonl").write_bytes(b'{"kind":"header"}\n\xff\xfe\x00garbage\n')
    with pytest.raises(BundleInvalid, match="not UTF-8"):
        verify_bundle(binary, anchor=Anchor())
    (junk := tmp_path / "j.jsonl").write_text("not json\n")
    with pytest.raises(BundleInvalid, match="line 1 is not JSON"):
        verify_bundle(junk, anchor=Anchor())


def test_shredding_a_dataset_leaves_its_lineage_verifiable(settings, clock, tmp_path) -> None:
    """Records hold keyed digests only: once the dataset's keys are gone (shredding also rotates
    the master key, re-wrapping the lineage signing key) the chain, the old checkpoints and a
    new bundle still verify, and the gateway still signs with the same lineage key."""
    from sqlmodel import select

    from gateway.core.context import GatewayContext
    from gateway.core.models import DatasetKey
    from gateway.datasets import DatasetSpec, create_dataset
    from gateway.lineage.ledger import verify_chain
    from gateway.pseudonymisation.custody import shred_dataset
    from tests.conftest import DATASET_SPEC

    ctx = GatewayContext.open(
        settings.model_copy(update={"master_key": None}), create_master_key=True
    )
    ctx.clock = clock
    try:
        with transaction(ctx.engine) as s:
            ds = create_dataset(s, ctx, DatasetSpec.model_validate(DATASET_SPEC), actor=ACTOR)
        _records(ctx, 3, dataset=ds.id)
        with transaction(ctx.engine) as s:
            key_before = ensure_signing_key(ctx, s).key_id
            create_checkpoint(ctx, s)
        shred_dataset(ctx, ds.id, actor=ACTOR, reason="erasure test")
        with transaction(ctx.engine) as s:
            assert all(k.wrapped is None for k in s.exec(select(DatasetKey)).all())
            assert verify_chain(s) > 3
            assert verify_stored_checkpoints(s) >= 1
        path = tmp_path / "after-shred.jsonl"
        _export(ctx, path, BundleFilter(dataset_id=ds.id))
        report = verify_bundle(path, anchor=_anchor(ctx))
        assert report.records >= 4 and report.keys == [key_before]
    finally:
        ctx.close()


def test_export_since_a_time_holds_only_later_records(ctx, clock, tmp_path) -> None:
    from gateway.lineage.service import export_lineage

    _records(ctx, 3)
    clock.advance(days=1)
    since = clock.now.replace(tzinfo=None)  # as the CLI parses it: UTC without a zone
    _records(ctx, 2)
    path = tmp_path / "since.jsonl"
    with transaction(ctx.engine) as s:
        summary = export_lineage(
            ctx, s, path, fmt="bundle", dataset_ref=None, since=since,
            target_region="eu-de", actor=ACTOR,
        )  # fmt: skip
    assert "exported 2 records" in summary
    report = verify_bundle(path, anchor=_anchor(ctx))
    assert report.records == 2 and not report.complete
