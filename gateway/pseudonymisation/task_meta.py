"""Pseudonyms for a dataset, and the metadata a released asset's task may carry.

`task_metadata` is the only way facts about an original reach Label Studio: dimensions,
the capture time coarsened per policy, camera make/model only if the policy allows, and
keyed pseudonyms. Never a file name, subject id, serial number or location.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.errors import IntegrityFailure
from gateway.core.keys import KeyPurpose, asset_aad
from gateway.core.models import Asset
from gateway.pseudonymisation import vault
from gateway.pseudonymisation.dataset_secrets import SecretPurpose, dataset_secret
from gateway.pseudonymisation.policies import policy_for_dataset
from gateway.pseudonymisation.policy import (
    CaptureTimeGranularity,
    PseudonymField,
    PseudonymisationPolicy,
)
from gateway.pseudonymisation.pseudonyms import compute_pseudonym

_FORMATS = {
    CaptureTimeGranularity.YEAR: "%Y",
    CaptureTimeGranularity.MONTH: "%Y-%m",
    CaptureTimeGranularity.DAY: "%Y-%m-%d",
    CaptureTimeGranularity.HOUR: "%Y-%m-%dT%H",
}


def pseudonym(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_id: str,
    field: PseudonymField,
    value: str,
    remember: bool = False,
) -> str:
    """The keyed pseudonym of `value` in this dataset. `remember=True` also stores the
    original in the re-identification vault (if the dataset's policy keeps one)."""
    now = ctx.clock()
    _, secret = dataset_secret(ctx.keys, session, dataset_id, SecretPurpose.PSEUDONYM, now=now)
    alias = compute_pseudonym(secret, field=field, value=value)
    if remember and policy_for_dataset(session, dataset_id).reidentification_vault:
        vault.remember(
            ctx, session, dataset_id=dataset_id, field=field, pseudonym=alias, value=value, now=now
        )
    return alias


def coarsen(moment: datetime | date, granularity: CaptureTimeGranularity) -> str | None:
    """The capture time as text at the policy's granularity (None when it is dropped), never
    finer than what is known: a date without a time stays a date at HOUR granularity."""
    if granularity is CaptureTimeGranularity.DROP:
        return None
    if granularity is CaptureTimeGranularity.HOUR and not isinstance(moment, datetime):
        granularity = CaptureTimeGranularity.DAY
    return moment.strftime(_FORMATS[granularity])


def private_metadata(ctx: GatewayContext, session: Session, asset: Asset) -> dict[str, Any]:
    """The asset's sealed private metadata (file name, subject id, uploader, EXIF facts)."""
    if asset.private_meta is None or asset.key_version is None:
        raise IntegrityFailure("the asset has no private metadata", asset_id=asset.id)
    key = ctx.keys.dataset_key(session, asset.dataset_id, version=asset.key_version)
    plain = crypto.unseal(
        asset.private_meta,
        key=key.subkey(KeyPurpose.AT_REST),
        aad=asset_aad("private-meta", asset.id, key),
    )
    data: dict[str, Any] = json.loads(plain)
    return data


def identifiers(private: dict[str, Any]) -> dict[PseudonymField, str]:
    """The identifying values of an asset, by field (absent ones left out)."""
    exif = private.get("exif") or {}
    found = {
        PseudonymField.SUBJECT_ID: private.get("subject_id"),
        PseudonymField.FILE_NAME: private.get("file_name"),
        PseudonymField.UPLOADER: private.get("uploader"),
        PseudonymField.DEVICE_SERIAL: exif.get("device_serial"),
    }
    return {f: v for f, v in found.items() if isinstance(v, str) and v}


def remember_identifiers(ctx: GatewayContext, session: Session, asset: Asset) -> None:
    """At ingest: put each identifying value of the asset in the vault under its pseudonym
    (unless the dataset's policy keeps no vault: its pseudonyms are then irreversible)."""
    if not policy_for_dataset(session, asset.dataset_id).reidentification_vault:
        return
    now = ctx.clock()
    _, secret = dataset_secret(
        ctx.keys, session, asset.dataset_id, SecretPurpose.PSEUDONYM, now=now
    )
    for field, value in identifiers(private_metadata(ctx, session, asset)).items():
        alias = compute_pseudonym(secret, field=field, value=value)
        vault.remember(
            ctx,
            session,
            dataset_id=asset.dataset_id,
            field=field,
            pseudonym=alias,
            value=value,
            now=now,
        )


def task_metadata(ctx: GatewayContext, session: Session, asset: Asset) -> dict[str, Any]:
    """Only pseudonymous, policy-allowed facts of an asset, for its Label Studio task."""
    policy = policy_for_dataset(session, asset.dataset_id)
    private = private_metadata(ctx, session, asset)
    meta: dict[str, Any] = {"width": asset.width, "height": asset.height}
    if asset.source_format:
        meta["source_format"] = asset.source_format
    captured = _capture_time(asset, private)
    if captured is not None and (text := coarsen(captured, policy.capture_time)) is not None:
        meta["capture_time"] = text
    meta.update(_camera(private, policy))
    for field, value in sorted(identifiers(private).items()):
        if field in policy.task_pseudonyms:
            meta[f"{field.value}_pseudonym"] = pseudonym(
                ctx, session, dataset_id=asset.dataset_id, field=field, value=value
            )
    return meta


def _capture_time(asset: Asset, private: dict[str, Any]) -> datetime | date | None:
    """The uploader's stated capture time, else the camera's; both are sealed at rest. A
    camera date without a time (XMP allows it) is stored as 'YYYY-MM-DD' and read as a date."""
    if asset.capture_time is not None:  # assets ingested before it was sealed
        return asset.capture_time
    for text in (private.get("capture_time"), (private.get("exif") or {}).get("capture_time")):
        if isinstance(text, str):
            return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    return None


def _camera(private: dict[str, Any], policy: PseudonymisationPolicy) -> dict[str, str]:
    if not policy.camera_model:
        return {}
    exif = private.get("exif") or {}
    return {k: exif[k] for k in ("camera_make", "camera_model") if isinstance(exif.get(k), str)}
