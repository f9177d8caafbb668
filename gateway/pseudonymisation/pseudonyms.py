"""Keyed pseudonyms: HMAC-SHA256 under a per-dataset secret, one HKDF domain per field.

The same value gives the same pseudonym within a dataset (joins and erasure requests work),
different pseudonyms in different datasets (no linking across them), and a different one for
each field (a subject id never matches an identical-looking file name). Once the dataset's
secret is shredded, nobody can recompute or confirm a pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from typing import Final

from gateway.core import crypto
from gateway.pseudonymisation.policy import PseudonymField

PREFIX: Final[dict[PseudonymField, str]] = {
    PseudonymField.SUBJECT_ID: "subj",
    PseudonymField.FILE_NAME: "file",
    PseudonymField.DEVICE_SERIAL: "dev",
    PseudonymField.UPLOADER: "upl",
    PseudonymField.ANNOTATOR: "ann",
}
DIGEST_HEX_CHARS: Final = 32  # 128 bits: collisions are out of reach for any dataset size


def field_key(secret: bytes, field: PseudonymField) -> bytes:
    """The HMAC key of one field: an HKDF subkey, so fields live in separate domains."""
    return crypto.derive(secret, info=f"lpg/v1/pseudonym-field/{field.value}".encode())


def normalise(value: str) -> bytes:
    """Unicode NFC, so visually identical ids from different keyboards agree."""
    return unicodedata.normalize("NFC", value).encode("utf-8")


def compute_pseudonym(secret: bytes, *, field: PseudonymField, value: str) -> str:
    """`<prefix>_<32 hex>`; deterministic for (secret, field, value)."""
    if len(secret) != crypto.KEY_BYTES:
        raise ValueError("the pseudonymisation secret must be 32 bytes")
    mac = hmac.new(field_key(secret, field), normalise(value), hashlib.sha256).hexdigest()
    return f"{PREFIX[field]}_{mac[:DIGEST_HEX_CHARS]}"


def field_of(pseudonym: str) -> PseudonymField | None:
    """Which field a pseudonym belongs to, from its prefix (None for anything else)."""
    prefix, _, digest = pseudonym.partition("_")
    if len(digest) != DIGEST_HEX_CHARS or any(c not in "0123456789abcdef" for c in digest):
        return None
    return next((f for f, p in PREFIX.items() if p == prefix), None)
