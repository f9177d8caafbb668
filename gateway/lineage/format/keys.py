"""Ed25519 public keys, their fingerprints and ids, detached signatures over RFC 8785 JSON, the
key rotation chain (each key handed over by its predecessor), and what a verifier trusts.

Verification only: private keys, their storage and signing live in `gateway.lineage.signing`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from gateway.core.errors import IntegrityFailure
from gateway.lineage.format.canonical import canonical_json
from gateway.lineage.format.errors import BundleInvalid, TrustedKeyInvalid

ALG = "Ed25519"
HANDOVER_SCHEMA = "lpg.lineage.key-handover/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IntegrityFailure("not valid base64") from exc


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what a verifier pins."""
    return hashlib.sha256(public_raw).hexdigest()


def key_id_for(public_raw: bytes) -> str:
    return "ed25519-" + fingerprint(public_raw)[:16]


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_pem(public_key: bytes) -> str:
    pub = Ed25519PublicKey.from_public_bytes(public_key)
    return pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def verify_signature(public_key: bytes, message: bytes, signature_b64: str) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(unb64(signature_b64), message)
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityFailure("signature does not verify") from exc


def verify_document(
    payload: Mapping[str, Any], envelope: Mapping[str, Any], public_keys: Mapping[str, bytes]
) -> None:
    """Raise IntegrityFailure unless `envelope` is a valid signature over `payload` by one of
    `public_keys` (key id -> raw 32-byte Ed25519 public key)."""
    if envelope.get("alg") != ALG:
        raise IntegrityFailure("unsupported signature algorithm", alg=envelope.get("alg"))
    key_id = str(envelope.get("key_id"))
    if key_id not in public_keys:
        raise IntegrityFailure("signed by an unknown key", key_id=key_id)
    verify_signature(public_keys[key_id], canonical_json(payload), str(envelope.get("signature")))


def handover_body(
    *, old_key_id: str, old_fingerprint: str, new_public: bytes, time: str
) -> dict[str, Any]:
    """The statement the old key signs (and the new one countersigns) when a key is rotated."""
    return {
        "schema": HANDOVER_SCHEMA,
        "previous": {"key_id": old_key_id, "fingerprint": old_fingerprint},
        "next": {
            "key_id": key_id_for(new_public),
            "fingerprint": fingerprint(new_public),
            "public_key": b64(new_public),
        },
        "time": time,
    }


@dataclass
class Anchor:
    """What the verifier trusts: raw public keys and/or SHA-256 fingerprints (hex)."""

    public_keys: list[bytes] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.public_keys and not self.fingerprints

    def trusts(self, public_key: bytes) -> bool:
        fp = fingerprint(public_key)
        return public_key in self.public_keys or fp in self.fingerprints


def check_key_chain(
    keys: list[dict[str, Any]], anchor: Anchor, *, where: str = "bundle"
) -> tuple[dict[str, bytes], str | None]:
    """The rotation chain (key lines as a bundle holds them, oldest first): a genesis key, then
    keys each handed over by its predecessor (and countersigned by itself). Trust in any key of
    the chain extends to all of it. Returns key id -> public key, and the trusted key's name
    (None for an empty anchor). `where` names what holds the keys (the bundle, or the database
    for live verification)."""
    chain: dict[str, bytes] = {}
    previous: str | None = None
    for key in keys:
        public = unb64(str(key.get("public_key")))
        key_id = str(key.get("key_id"))
        if key.get("alg") != ALG or len(public) != 32:
            raise BundleInvalid("key is not an Ed25519 public key", key_id=key_id)
        if key_id != key_id_for(public) or key.get("fingerprint") != fingerprint(public):
            raise BundleInvalid(
                "key id or fingerprint does not match the public key", key_id=key_id
            )
        if key.get("previous_key_id") != previous:
            raise BundleInvalid("keys do not form one rotation chain", key_id=key_id)
        if previous is not None:
            _check_handover(key, chain[previous], public, previous)
        chain[key_id] = public
        previous = key_id
    if not chain:
        raise BundleInvalid(f"the {where} holds no public keys")
    if anchor.empty:
        return chain, None
    for key_id, public in chain.items():
        if anchor.trusts(public):
            return chain, f"{key_id} (fingerprint {fingerprint(public)})"
    raise BundleInvalid(
        f"no key in the {where} matches the trusted key or fingerprint: it was signed by "
        "someone else, or the trusted key belongs to another gateway",
        keys=list(chain),
    )


def _check_handover(key: dict[str, Any], old_public: bytes, new_public: bytes, old_id: str) -> None:
    statement = str(key.get("handover"))
    try:
        body = json.loads(statement)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BundleInvalid("key hand-over is not JSON", key_id=key.get("key_id")) from exc
    if not isinstance(body, dict) or not isinstance(body.get("previous"), dict):
        raise BundleInvalid("key hand-over is malformed", key_id=key.get("key_id"))
    expected_next = {
        "key_id": key.get("key_id"),
        "fingerprint": fingerprint(new_public),
        "public_key": b64(new_public),
    }
    if (
        body.get("schema") != HANDOVER_SCHEMA
        or body.get("previous", {}).get("key_id") != old_id
        or body.get("previous", {}).get("fingerprint") != fingerprint(old_public)
        or body.get("next") != expected_next
    ):
        raise BundleInvalid("key hand-over names other keys", key_id=key.get("key_id"))
    try:
        verify_signature(old_public, statement.encode(), str(key.get("handover_old_signature")))
        verify_signature(new_public, statement.encode(), str(key.get("handover_new_signature")))
    except IntegrityFailure as exc:
        raise BundleInvalid(
            "key hand-over is not signed by both the old and the new key", key_id=key.get("key_id")
        ) from exc


def load_anchor(trusted_key_files: Sequence[Path], fingerprints: Sequence[str]) -> Anchor:
    """Trusted keys as PEM (SubjectPublicKeyInfo) or base64 raw; fingerprints as hex."""
    keys = [_trusted_key(file) for file in trusted_key_files]
    fps = []
    for given in fingerprints:
        fp = given.strip().lower().removeprefix("sha256:").replace(":", "")
        if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
            raise TrustedKeyInvalid(
                f"{given!r} is not a SHA-256 fingerprint (64 hex digits, as "
                "`privacy-gateway lineage public-key` prints it)"
            )
        fps.append(fp)
    return Anchor(keys, fps)


def _trusted_key(file: Path) -> bytes:
    try:
        data = file.read_bytes()
        if b"BEGIN PUBLIC KEY" in data:
            key = load_pem_public_key(data)
            if isinstance(key, Ed25519PublicKey):
                return public_raw(key)
        else:
            raw = unb64(data.decode("ascii").strip())
            if len(raw) == 32:
                return raw
    except (OSError, ValueError, UnsupportedAlgorithm, IntegrityFailure) as exc:
        raise TrustedKeyInvalid(f"{file} is not a readable Ed25519 public key: {exc}") from exc
    raise TrustedKeyInvalid(f"{file} is not an Ed25519 public key")
