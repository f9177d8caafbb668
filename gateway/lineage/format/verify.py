"""Offline verification of an exported lineage bundle, with public keys only.

Order of checks: the keys' rotation chain and its anchor (a key or fingerprint the verifier
trusts), the manifest's signature, every checkpoint's signature, then the records against the
manifest, the hash chain and the checkpoints' Merkle roots. The first problem raises
BundleInvalid naming the record (seq and line) and what is wrong with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import IntegrityFailure
from gateway.lineage.format.bundle import BUNDLE_SCHEMA, MANIFEST_SCHEMA, entries_digest
from gateway.lineage.format.canonical import GENESIS_HASH, chain_hash
from gateway.lineage.format.checkpoint import checkpoint_fields, is_hex64
from gateway.lineage.format.errors import BundleInvalid, TrustedKeyInvalid
from gateway.lineage.format.keys import (
    Anchor,
    check_key_chain,
    load_anchor,
    verify_document,
    verify_signature,
)
from gateway.lineage.format.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from gateway.lineage.format.records import position

# the verifier's surface: what `privacy-gateway verify BUNDLE` and other verifiers import
__all__ = [
    "Anchor",
    "BundleInvalid",
    "TrustedKeyInvalid",
    "VerificationReport",
    "load_anchor",
    "verify_bundle",
]


@dataclass
class VerificationReport:
    records: int
    tree_size: int
    complete: bool
    checkpoints: int
    keys: list[str]
    anchored_to: str | None

    def describe(self) -> str:
        scope = "complete chain" if self.complete else "partial bundle (inclusion proofs)"
        lines = [
            f"lineage bundle intact: {self.records} records, {scope}, tree size "
            f"{self.tree_size}, {self.checkpoints} signed checkpoints, keys {', '.join(self.keys)}"
        ]
        if self.anchored_to:
            lines.append(f"signatures anchored to trusted key {self.anchored_to}")
        else:
            lines.append(
                "WARNING: no trusted key or fingerprint given: the signatures were checked only "
                "against keys inside the bundle, which proves nothing about who signed it"
            )
        return "\n".join(lines)


@dataclass
class _Parsed:
    header: dict[str, Any]
    keys: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]
    consistency: list[dict[str, Any]]
    manifest: dict[str, Any]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise BundleInvalid(f"no bundle file at {path}", path=str(path))
    with path.open(encoding="utf-8") as fh:
        number = 0
        try:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    yield number, line
        except UnicodeDecodeError as exc:
            raise BundleInvalid(f"line {number + 1} is not UTF-8 text", line=number + 1) from exc


def _kind(number: int, line: str) -> tuple[str, dict[str, Any] | None]:
    if line.startswith('{"kind":"record"'):
        return "record", None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BundleInvalid(f"line {number} is not JSON", line=number) from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise BundleInvalid(f"line {number} has no kind", line=number)
    return obj["kind"], obj


def _parse(path: Path) -> _Parsed:
    header: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    keys: list[dict[str, Any]] = []
    cps: list[dict[str, Any]] = []
    cons: list[dict[str, Any]] = []
    for number, line in _lines(path):
        kind, obj = _kind(number, line)
        if obj is None:
            continue
        if kind == "header" and header is None:
            header = obj
        elif kind == "manifest" and manifest is None:
            manifest = obj
        elif kind in ("key", "checkpoint", "consistency"):
            {"key": keys, "checkpoint": cps, "consistency": cons}[kind].append(obj)
        else:
            raise BundleInvalid(f"line {number}: unexpected {kind!r} line", line=number)
    if header is None or header.get("schema") != BUNDLE_SCHEMA:
        raise BundleInvalid("not a lineage bundle (no header with schema " + BUNDLE_SCHEMA + ")")
    if manifest is None:
        raise BundleInvalid("the bundle has no manifest: it is truncated")
    return _Parsed(header, keys, cps, cons, manifest)


def _check_manifest(manifest: dict[str, Any], chain: dict[str, bytes]) -> list[list[Any]]:
    body, envelope, entries = (
        manifest.get("body"),
        manifest.get("signature"),
        manifest.get("entries"),
    )
    if (
        not isinstance(body, dict)
        or not isinstance(envelope, dict)
        or not isinstance(entries, list)
    ):
        raise BundleInvalid("the manifest is malformed")
    try:
        verify_document(body, envelope, chain)
    except IntegrityFailure as exc:
        raise BundleInvalid(
            f"the manifest is wrongly signed: {exc.message}", key_id=envelope.get("key_id")
        ) from exc
    except (TypeError, ValueError) as exc:  # floats, integers beyond 2**53: not canonical
        raise BundleInvalid("the manifest is not canonical JSON") from exc
    if not all(
        isinstance(e, list)
        and len(e) == 2
        and isinstance(e[0], int)
        and not isinstance(e[0], bool)
        and is_hex64(e[1])
        for e in entries
    ):
        raise BundleInvalid("the manifest's record list is malformed")
    if body.get("schema") != MANIFEST_SCHEMA or body.get("entries_sha256") != entries_digest(
        entries
    ):
        raise BundleInvalid("the manifest's record list does not match its signed digest")
    if body.get("count") != len(entries):
        raise BundleInvalid("the manifest's record count does not match its list")
    return entries


def _check_checkpoints(cps: list[dict[str, Any]], chain: dict[str, bytes]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for cp in cps:
        key_id, text = str(cp.get("key_id")), str(cp.get("body"))
        size = cp.get("tree_size")
        if key_id not in chain:
            raise BundleInvalid(
                f"checkpoint at tree size {size} is signed by a key outside the rotation chain",
                tree_size=size,
                key_id=key_id,
            )
        try:
            body = checkpoint_fields(text)
            verify_signature(chain[key_id], text.encode(), str(cp.get("signature")))
        except IntegrityFailure as exc:
            raise BundleInvalid(
                f"checkpoint at tree size {size} is wrongly signed", tree_size=size, key_id=key_id
            ) from exc
        if body.get("tree_size") != size or body.get("key_id") != key_id:
            raise BundleInvalid(f"checkpoint at tree size {size} disagrees with its body")
        bodies.append(body)
    sizes = [b["tree_size"] for b in bodies]
    if not bodies or sizes != sorted(set(sizes)):
        raise BundleInvalid("checkpoints are missing, repeated or out of order")
    return bodies


def verify_bundle(path: Path, *, anchor: Anchor) -> VerificationReport:
    parsed = _parse(path)
    chain, anchored = check_key_chain(parsed.keys, anchor)
    entries = _check_manifest(parsed.manifest, chain)
    checkpoints = _check_checkpoints(parsed.checkpoints, chain)
    final = checkpoints[-1]
    body = parsed.manifest["body"]
    if body.get("tree_size") != final["tree_size"] or body.get("root_hash") != final["root_hash"]:
        raise BundleInvalid("the manifest does not refer to the newest checkpoint")
    complete = bool(body.get("complete"))
    if complete:
        _walk_complete(path, entries, checkpoints)
    else:
        _check_consistency(parsed.consistency, checkpoints)
        _walk_partial(path, entries, final)
    return VerificationReport(
        records=len(entries),
        tree_size=final["tree_size"],
        complete=complete,
        checkpoints=len(checkpoints),
        keys=list(chain),
        anchored_to=anchored,
    )


@dataclass
class _Record:
    line: int
    seq: int
    record_hash: str
    payload: str
    proof: list[str]
    prev: str
    computed: str


def _records(path: Path) -> Iterator[_Record]:
    for number, line in _lines(path):
        if not line.startswith('{"kind":"record"'):
            continue
        try:
            obj = json.loads(line)
            payload = str(obj["payload"])
            seq, (payload_seq, prev) = int(obj["seq"]), position(payload)
            if payload_seq != seq:
                raise BundleInvalid(
                    f"record seq {seq} (line {number}) was modified: its payload says seq "
                    f"{payload_seq}",
                    seq=seq,
                    line=number,
                    problem="modified",
                )
            computed = chain_hash(prev, payload.encode())
            proof = obj.get("proof", [])
            if not isinstance(proof, list) or not all(isinstance(p, str) for p in proof):
                raise TypeError("proof is not a list of hex strings")
            record_hash = str(obj["record_hash"])
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise BundleInvalid(
                f"record on line {number} is malformed", line=number, problem="modified"
            ) from exc
        yield _Record(number, seq, record_hash, payload, proof, prev, computed)


def _mismatch(
    rec: _Record, expected: list[Any] | None, entries: Sequence[list[Any]], path: Path
) -> BundleInvalid:
    """Name what happened at the first record that disagrees with the signed manifest."""
    listed = {int(e[0]): str(e[1]) for e in entries}
    if expected is None or (rec.seq not in listed):
        return _named(rec.seq, rec.line, "inserted", "is not in the signed manifest")
    exp_seq, exp_hash = int(expected[0]), str(expected[1])
    if rec.seq == exp_seq:
        following = next((r for r in _records(path) if r.line > rec.line), None)
        if following is not None and following.seq == exp_seq and following.computed == exp_hash:
            return _named(rec.seq, rec.line, "inserted", "is an extra copy not in the manifest")
        return _named(rec.seq, rec.line, "modified", "does not hash to its signed value")
    seen = {r.seq for r in _records(path)}
    if exp_seq not in seen:
        return _named(exp_seq, rec.line, "missing", f"is missing (expected before line {rec.line})")
    return _named(
        exp_seq, rec.line, "reordered", f"is out of order (line {rec.line} holds seq {rec.seq})"
    )


def _named(seq: int, line: int, problem: str, what: str) -> BundleInvalid:
    return BundleInvalid(f"record seq {seq} {what}: {problem}", seq=seq, line=line, problem=problem)


def _check_entry(rec: _Record, entries: list[list[Any]], position: int, path: Path) -> None:
    """Record `rec` is the manifest's entry `position` and hashes to what it states."""
    expected = entries[position] if position < len(entries) else None
    if expected is None or rec.seq != expected[0] or rec.computed != expected[1]:
        raise _mismatch(rec, expected, entries, path)
    if rec.record_hash != rec.computed:
        raise _named(rec.seq, rec.line, "modified", "does not match its stated hash")


def _walk_complete(path: Path, entries: list[list[Any]], checkpoints: list[dict[str, Any]]) -> None:
    """Chain walk from genesis; each checkpoint's root and head recomputed on the way."""
    frontier, prev, position = Frontier(), GENESIS_HASH, 0
    due = iter(checkpoints)
    nxt = next(due, None)
    nxt = _check_roots(frontier, prev, nxt, due)
    for rec in _records(path):
        _check_entry(rec, entries, position, path)
        if rec.prev != prev or rec.seq != position + 1:
            raise _named(rec.seq, rec.line, "modified", "does not link to its predecessor")
        frontier.append(leaf_hash(bytes.fromhex(rec.computed)))
        prev, position = rec.computed, position + 1
        nxt = _check_roots(frontier, prev, nxt, due)
    if position < len(entries):
        seq = int(entries[position][0])
        raise BundleInvalid(
            f"record seq {seq} is missing: the bundle ends early", seq=seq, problem="missing"
        )
    if nxt is not None:
        raise BundleInvalid(
            "the records stop before the newest checkpoint", tree_size=nxt["tree_size"]
        )


def _check_roots(
    frontier: Frontier, head: str, nxt: dict[str, Any] | None, due: Iterator[dict[str, Any]]
) -> dict[str, Any] | None:
    while nxt is not None and nxt["tree_size"] == frontier.size:
        root = frontier.root().hex() if frontier.size else EMPTY_ROOT.hex()
        if nxt["root_hash"] != root or nxt["chain_head"] != head:
            raise BundleInvalid(
                f"records 1..{frontier.size} do not match the signed checkpoint at that size",
                tree_size=frontier.size,
                problem="modified",
            )
        nxt = next(due, None)
    return nxt


def _check_consistency(cons: list[dict[str, Any]], checkpoints: list[dict[str, Any]]) -> None:
    final = checkpoints[-1]
    for c in cons:
        proof = c.get("proof")
        if (
            not isinstance(c.get("from"), int)
            or not isinstance(proof, list)
            or not all(is_hex64(p) for p in proof)
        ):
            raise BundleInvalid("a consistency proof line is malformed", line=c.get("from"))
    proofs = {int(c["from"]): c for c in cons}
    for cp in checkpoints[:-1]:
        size = cp["tree_size"]
        if size == 0:
            continue
        proof = proofs.get(size)
        if proof is None:
            raise BundleInvalid(f"no consistency proof from checkpoint {size}", tree_size=size)
        try:
            verify_consistency(
                size,
                final["tree_size"],
                bytes.fromhex(cp["root_hash"]),
                bytes.fromhex(final["root_hash"]),
                [bytes.fromhex(p) for p in proof["proof"]],
            )
        except (ProofError, ValueError) as exc:
            raise BundleInvalid(f"checkpoint {size} is not a prefix of the newest: {exc}") from exc


def _walk_partial(path: Path, entries: list[list[Any]], final: dict[str, Any]) -> None:
    root, size, position = bytes.fromhex(final["root_hash"]), final["tree_size"], 0
    for rec in _records(path):
        _check_entry(rec, entries, position, path)
        try:
            proof = [bytes.fromhex(p) for p in rec.proof]
            verify_inclusion(leaf_hash(bytes.fromhex(rec.computed)), rec.seq - 1, size, proof, root)
        except (ProofError, ValueError) as exc:
            raise _named(
                rec.seq, rec.line, "modified", f"has no valid inclusion proof ({exc})"
            ) from exc
        position += 1
    if position < len(entries):
        seq = int(entries[position][0])
        raise BundleInvalid(
            f"record seq {seq} is missing: the bundle ends early", seq=seq, problem="missing"
        )
