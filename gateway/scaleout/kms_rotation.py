"""Rotating a region's master key at the key service, for rotation and crypto-shredding.

(1) the service makes a new version of this region's key (this process's credential names
the region); (2) one database transaction re-wraps every dataset key and secret wrapped under
an older version of it and records `master-key.rotated`; (3) the older versions are retired
at the service, after which nothing wrapped under them (a backup's rows) opens again. A crash
before (2) commits leaves the old version in use and live (run it again); after (2), the
retirement is repeated by the next rotation (retiring twice is a no-op). Other replicas need
no restart: they ask the service for the current version whenever they wrap, and unwrap by
the version each row names.
"""

from __future__ import annotations

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import KeyCustodyRefused, KeyUnavailable
from gateway.lineage import Action, Actor, recorder
from gateway.scaleout.kms import KmsMasterKey, key_region


def rotate_region_key(ctx: GatewayContext, *, actor: Actor, reason: str) -> dict[str, int]:
    from gateway.pseudonymisation.master_rotation import (
        _rewrap_dataset_keys,
        _rewrap_dataset_secrets,
    )

    client, region = ctx.keys.kms, ctx.keys.custody_region
    if client is None:
        raise KeyUnavailable("no key service is configured (GATEWAY_KMS_URL)")
    if region is None:
        raise KeyCustodyRefused(
            "this process holds the gateway-wide credential only: rotate a region's key from "
            "a process of that region"
        )
    new = KmsMasterKey(client, str(client.call("rotate")["key_id"]))

    def mine(key_id: str) -> bool:
        return key_region(key_id) == region

    with transaction(ctx.engine) as session:
        counts = {
            "dataset_keys": _rewrap_dataset_keys(session, ctx.keys, new, only=mine),
            "dataset_secrets": _rewrap_dataset_secrets(session, ctx.keys, new, only=mine),
        }
        recorder(ctx, session, actor).record(
            Action.MASTER_KEY_ROTATED,
            entity=new.key_id,
            inputs={"key_service_region": region},
            parameters={"reason": reason, **{f"rewrapped_{k}": v for k, v in counts.items()}},
        )
    version = int(new.key_id.rsplit(":", 1)[1])
    for old in range(1, version):
        client.call("retire", key_id=f"kms:{region}:{old}")
    return counts


def ensure_region_holds(ctx: GatewayContext, master_key_ids: list[str]) -> None:
    """Shredding rotates this process's region key: refuse (before destroying anything) if the
    dataset's keys are another region's, whose old key would then stay live."""
    region = ctx.keys.custody_region
    if region is None:
        if ctx.keys.kms is not None:  # the gateway-wide credential: no region key at all
            raise KeyCustodyRefused(
                "this process holds the gateway-wide credential only: shred the dataset from "
                "a process of the region that holds its keys"
            )
        return
    foreign = sorted({k for k in master_key_ids if key_region(k) not in (None, region)})
    if foreign:
        raise KeyCustodyRefused(
            f"this dataset's keys are held by another region ({', '.join(foreign)}): "
            "shred it from a process of that region",
            region=region,
        )
