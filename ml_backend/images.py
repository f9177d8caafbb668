"""Redacted images only: a task's `gateway_asset_id` -> the released asset's redacted blob.

Two sources behind one protocol: over HTTP from the gateway with the backend's own ml-role
key (`ml_backend.gateway_client`, for a separately deployed backend), or, embedded, in-process
as below. The backend never follows the URL a task carries (no SSRF through task data) and
never reads an original. In-process, it looks the asset up in the gateway's database, refuses
anything not released, reads the redacted blob from the gateway's store, checks its SHA-256
against the recorded digest, passes the residency check for its own region (enforcement point
`ml_backend`), and decodes the bytes under the same size and pixel limits as ingest.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, NotFound, ResidencyViolation
from gateway.core.models import Asset
from gateway.core.storage import get_cleared
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Action, Actor, recorder_at
from gateway.ml_images import servable_redacted
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from redaction.errors import RedactionError
from redaction.io import decode_image
from redaction.policy import Limits
from redaction.types import BGRImage

ML_ACTOR = Actor("system", "ml-backend")


class ImageRefused(Exception):
    """This task gets no prediction; `code` says why (logged, never the task data itself)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RedactedImage:
    asset_id: str
    dataset_id: str
    redacted_sha256: str
    pixels: BGRImage

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def asset_id_of(task_data: Mapping[str, Any]) -> str:
    """The gateway asset id the task names, as a canonical UUID, or ImageRefused."""
    raw = claimed(task_data, TaskField.ASSET_ID)
    if raw is None:
        raise ImageRefused(
            "no-gateway-asset", "the task names no gateway asset (its URL is never fetched)"
        )
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError as exc:
        raise ImageRefused("bad-gateway-asset", "gateway_asset_id is not a UUID") from exc


class ImageSource(Protocol):
    """Where redacted images come from: in-process (`GatewayImages`) or over HTTP with the
    backend's own ml-role key (`ml_backend.gateway_client.HttpGatewayImages`)."""

    def fetch(self, task_data: Mapping[str, Any]) -> RedactedImage: ...

    def record(
        self,
        image: RedactedImage,
        *,
        action: Action,
        outputs: dict[str, Any],
        parameters: dict[str, Any],
    ) -> None: ...

    def close(self) -> None: ...


class GatewayImages:
    """In-process mode: reads released redacted renditions straight from the database and
    store of the gateway this backend is embedded in (same host, same credentials)."""

    def __init__(self, ctx: GatewayContext, *, region: str, limits: Limits) -> None:
        self.ctx = ctx
        self.region = region
        self.limits = limits

    def fetch(self, task_data: Mapping[str, Any]) -> RedactedImage:
        asset_id = asset_id_of(task_data)
        with transaction(self.ctx.engine) as session:
            asset = session.get(Asset, asset_id)
            if asset is None:
                raise ImageRefused("unknown-asset", "no such gateway asset")
            named = claimed(task_data, TaskField.DATASET_ID)
            if named is None:  # no key scope stands behind the embedded backend: fail closed
                raise ImageRefused(
                    "no-gateway-dataset",
                    "the task names no gateway_dataset_id; the embedded backend serves only "
                    "tasks the gateway's sync wrote",
                )
            if str(named) != asset.dataset_id:
                raise ImageRefused("dataset-mismatch", "the task's dataset is not the asset's")
            try:  # released (with or without its original): the gateway's own rule
                blob, expected = servable_redacted(asset)
            except NotFound as exc:
                raise ImageRefused("not-released", f"the asset is {asset.state}") from exc
            try:
                clearance = enforce_residency(
                    self.ctx,
                    session,
                    point=EnforcementPoint.ML_BACKEND,
                    dataset_id=asset.dataset_id,
                    target_region=self.region,
                    actor=ML_ACTOR,
                    entity_type="asset",
                    entity_id=asset.id,
                )
            except ResidencyViolation as exc:
                raise ImageRefused("residency-violation", exc.message) from exc
            dataset_id = asset.dataset_id
        try:
            data = get_cleared(
                self.ctx.store,
                blob,
                clearance,
                point=EnforcementPoint.ML_BACKEND,
                to_region=self.region,
            )
        except GatewayError as exc:
            raise ImageRefused("redacted-blob-missing", exc.message) from exc
        if crypto.sha256_hex(data) != expected:
            raise ImageRefused("redacted-digest-mismatch", "the redacted blob fails its digest")
        try:
            decoded = decode_image(data, limits=self.limits)
        except RedactionError as exc:
            raise ImageRefused(exc.code, exc.message) from exc
        return RedactedImage(asset_id, dataset_id, expected, decoded.pixels)

    def record(
        self,
        image: RedactedImage,
        *,
        action: Action,
        outputs: dict[str, Any],
        parameters: dict[str, Any],
    ) -> None:
        """One lineage record for a use of the image (integers and strings only)."""
        with transaction(self.ctx.engine) as session:
            recorder_at(session, actor=ML_ACTOR, region=self.region, now=self.ctx.clock()).record(
                action,
                entity=image.asset_id,
                dataset=image.dataset_id,
                inputs={"redacted_sha256": image.redacted_sha256},
                outputs=outputs,
                parameters=parameters,
            )

    def close(self) -> None:
        """Nothing to release: the gateway context belongs to the caller."""
