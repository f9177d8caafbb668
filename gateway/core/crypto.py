"""Thin, hard-to-misuse wrappers over `cryptography`: AES-256-GCM sealing, HKDF, HMAC."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.core.errors import IntegrityFailure

NONCE_BYTES = 12
KEY_BYTES = 32


def seal(plaintext: bytes, *, key: bytes, aad: bytes) -> bytes:
    """AES-256-GCM with a fresh random nonce; returns nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(sealed: bytes, *, key: bytes, aad: bytes) -> bytes:
    """Inverse of `seal`; raises IntegrityFailure when the data, key or context do not match."""
    if len(sealed) < NONCE_BYTES + 16:
        raise IntegrityFailure("sealed data is too short to be valid")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise IntegrityFailure(
            "decryption failed: wrong key, wrong context or tampered data"
        ) from exc


def derive(key: bytes, *, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 subkey bound to `info` (the purpose and its context)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def keyed_digest(data: bytes, *, key: bytes) -> str:
    """HMAC-SHA256 hex digest: proves nothing about `data` once `key` is shredded."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
