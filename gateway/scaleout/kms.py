"""Per-region key custody through a key service (a cloud KMS; `fake_kms` where none runs).

The service holds one master key per region and a gateway-wide key. A process's credential
names its region: it may wrap and unwrap under its region's key and the gateway-wide key,
and nothing else. So the region of a worker is what its credential says, not a flag, and a
worker of one region cannot unwrap another region's dataset keys (the service answers 403,
raised here as `KeyCustodyRefused`). A gateway-wide credential (the scheduler's) names no
region: the gateway-wide key alone, so such a process creates and opens no dataset key. Key
ids say what wrapped a key: `kms:<key>:<version>`. No master key is ever on this process's
disk.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.core.errors import GatewayError, KeyCustodyRefused, KeyUnavailable
from gateway.core.keys import KeyProvider
from gateway.core.settings import Settings

GATEWAY_KEY = "gateway"
"""The key every region's credential may use: wraps gateway-wide secrets (API-key pepper,
lineage signing keys, Label Studio tokens), never a dataset's keys."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the key service says a credential is: `region` None for a gateway-wide one."""

    region: str | None
    region_key_id: str | None
    gateway_key_id: str


def key_region(key_id: str) -> str | None:
    """The region whose key `key_id` is (`kms:eu-de:1` -> eu-de); None for other keys."""
    parts = key_id.split(":")
    if len(parts) != 3 or parts[0] != "kms" or parts[1] == GATEWAY_KEY:
        return None
    return parts[1]


class KmsClient:
    def __init__(self, url: str, *, credential: str, timeout: float = 5.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {credential}"},
            timeout=timeout,
            trust_env=False,
        )

    def call(self, operation: str, **body: str) -> dict[str, Any]:
        try:
            answer = self._http.post(f"/v1/{operation}", json=body)
        except httpx.HTTPError as exc:
            raise KeyUnavailable(
                f"the key service is unreachable ({type(exc).__name__}); retry later"
            ) from exc
        if answer.status_code in (401, 403):
            raise KeyCustodyRefused(
                "the key service refused this process's credential for this key: it is held "
                "by another region",
                operation=operation,
                key_id=body.get("key_id"),
            )
        if answer.status_code == 410:
            raise KeyUnavailable(
                "the key service no longer holds this key (retired after a rotation or a "
                "crypto-shredding): what it wrapped cannot be opened",
                key_id=body.get("key_id"),
            )
        if answer.status_code != 200:
            raise KeyUnavailable(
                f"the key service answered {answer.status_code} to {operation}",
                key_id=body.get("key_id"),
            )
        result: dict[str, Any] = answer.json()
        return result

    def whoami(self) -> Identity:
        me = self.call("whoami")
        region, region_key = me.get("region"), me.get("region_key_id")
        if (region is None) != (region_key is None):
            raise KeyUnavailable("the key service's answer to whoami is inconsistent")
        return Identity(
            None if region is None else str(region),
            None if region_key is None else str(region_key),
            str(me["gateway_key_id"]),
        )

    def region_key_id(self) -> str:
        """The current version of this credential's region key (asked each time: another
        process may have rotated it); refused for a gateway-wide credential."""
        key_id = self.whoami().region_key_id
        if key_id is None:
            raise KeyCustodyRefused(
                "this process holds the gateway-wide credential only: it creates and opens no "
                "dataset key (that is the work of a process of the dataset's region)"
            )
        return key_id

    def close(self) -> None:
        self._http.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class KmsMasterKey:
    """One key of the service, behind the `MasterKey` protocol (every call a round trip)."""

    def __init__(self, client: KmsClient, key_id: str) -> None:
        self._client, self.key_id = client, key_id

    def wrap(self, plaintext: bytes, *, aad: bytes) -> bytes:
        out = self._client.call(
            "wrap", key_id=self.key_id, plaintext=_b64(plaintext), aad=_b64(aad)
        )
        return base64.b64decode(out["ciphertext"])

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        out = self._client.call(
            "unwrap", key_id=self.key_id, ciphertext=_b64(wrapped), aad=_b64(aad)
        )
        return base64.b64decode(out["plaintext"])

    def derive_gateway_key(self, *, purpose: str) -> bytes:
        out = self._client.call("derive", key_id=self.key_id, purpose=purpose)
        return base64.b64decode(out["key"])


def kms_key_provider(settings: Settings) -> KeyProvider:
    """Keys for this process as the key service knows its credential: the region's key wraps
    dataset keys, the gateway-wide key the rest; any other key id is asked for by id (and
    refused unless the credential may use it)."""
    if settings.kms_url is None or settings.kms_credential is None:
        raise KeyUnavailable("GATEWAY_KMS_URL needs GATEWAY_KMS_CREDENTIAL (this region's)")
    client = KmsClient(settings.kms_url, credential=settings.kms_credential.get_secret_value())
    me = client.whoami()
    provider = KeyProvider(
        KmsMasterKey(client, me.gateway_key_id),
        data_master=lambda: KmsMasterKey(client, client.region_key_id()),
        resolve=lambda key_id: KmsMasterKey(client, key_id),
    )
    provider.custody_region = me.region  # None: the gateway-wide credential
    provider.kms = client
    return provider


def holds_gateway_credential_only(keys: KeyProvider) -> bool:
    """The process's credential is the gateway-wide one: a key service, and no region."""
    return keys.kms is not None and keys.custody_region is None


class CredentialRefused(GatewayError):
    code, status, title = "credential-refused", 400, "Credential refused for this process"


def require_gateway_credential(keys: KeyProvider) -> None:
    """The scheduler holds the gateway-wide credential, never a region's: it signs lineage
    checkpoints and reads gateway secrets, and everything that needs a region's keys runs as a
    task on that region's worker. Refused at start (fail closed), not ignored: a region
    credential here would let the one process that talks to every region's queue open that
    region's dataset keys, and a copied worker secret is a deployment mistake to stop early."""
    if keys.kms is not None and keys.custody_region is not None:
        raise CredentialRefused(
            f"the scheduler holds only the gateway-wide credential, not region "
            f"{keys.custody_region}'s: give it the credential from `fake-kms add-gateway` (or "
            "your key service's gateway-wide grant); region credentials belong to that "
            "region's workers and API",
            credential_region=keys.custody_region,
        )


def require_region_credential(keys: KeyProvider) -> None:
    """A worker's region is its credential's: the gateway-wide credential names none."""
    if holds_gateway_credential_only(keys):
        raise CredentialRefused(
            "a worker needs its region's credential at the key service, not the gateway-wide "
            "one (which opens no dataset key)"
        )
