"""HTTP mode: redacted images fetched from the gateway with the backend's own ml-role key.

Only `GET {gateway}/v1/ml/assets/{gateway_asset_id}/redacted` is ever requested: the base URL
comes from the backend's settings, the asset id from the task (a canonical UUID, so it cannot
steer the path), never the URL the task carries. The gateway decides (role, dataset scope,
released state, residency for the region this backend declares) and records the fetch; this
side bounds the response size and time, refuses redirects, checks the SHA-256 the gateway
states and the task's dataset, and decodes under the ingest limits. Uses of an image are
recorded back through `POST {gateway}/v1/ml/assets/{id}/uses`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from gateway.core import crypto
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage.actions import Action
from gateway.outbound import AddressPolicy, OutboundAddressRefused, guarded_client
from ml_backend.images import ImageRefused, RedactedImage, asset_id_of
from redaction.errors import RedactionError
from redaction.io import decode_image
from redaction.policy import Limits

log = logging.getLogger(__name__)
REGION_HEADER = "X-ML-Backend-Region"
_CHUNK = 64 * 1024


class HttpGatewayImages:
    """An `ImageSource` that talks to the gateway over HTTP (thread-safe: one httpx client)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        region: str,
        limits: Limits,
        policy: AddressPolicy,
        timeout_seconds: float = 10.0,
    ) -> None:
        """`policy`: the addresses the gateway URL may reach, checked at every connection
        (`gateway.outbound`), so the key never goes to a refused address."""
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.limits = limits
        self._client = guarded_client(
            policy,
            timeout=httpx.Timeout(timeout_seconds),
            headers={"Authorization": f"Bearer {api_key}", REGION_HEADER: region},
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, task_data: Mapping[str, Any]) -> RedactedImage:
        asset_id = asset_id_of(task_data)
        url = f"{self.base_url}/v1/ml/assets/{asset_id}/redacted"
        try:
            with self._client.stream("GET", url, headers={"Accept": "image/*"}) as response:
                if response.status_code != 200:
                    raise _refusal(response.status_code, _problem_code(_head(response)))
                data = self._bounded_body(response)
                stated = response.headers.get("x-redacted-sha256", "")
                dataset_id = response.headers.get("x-gateway-dataset-id", "")
        except httpx.HTTPError as exc:
            raise ImageRefused(
                "gateway-unreachable", f"the gateway did not answer: {type(exc).__name__}"
            ) from exc
        except OutboundAddressRefused as exc:
            raise ImageRefused(exc.code, exc.message) from exc
        if not stated or crypto.sha256_hex(data) != stated:
            raise ImageRefused("redacted-digest-mismatch", "the served image fails its digest")
        named = claimed(task_data, TaskField.DATASET_ID)
        if named is not None and str(named) != dataset_id:
            raise ImageRefused("dataset-mismatch", "the task's dataset is not the asset's")
        try:
            decoded = decode_image(data, limits=self.limits)
        except RedactionError as exc:
            raise ImageRefused(exc.code, exc.message) from exc
        return RedactedImage(asset_id, dataset_id, stated, decoded.pixels)

    def _bounded_body(self, response: httpx.Response) -> bytes:
        limit = self.limits.max_bytes
        declared = response.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise ImageRefused("image-too-large", f"the image exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ImageRefused("image-too-large", f"the image exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def record(
        self,
        image: RedactedImage,
        *,
        action: Action,
        outputs: dict[str, Any],
        parameters: dict[str, Any],
    ) -> None:
        """The use goes to the gateway's lineage; a failure is logged, never raised (the
        gateway already recorded serving the image)."""
        url = f"{self.base_url}/v1/ml/assets/{image.asset_id}/uses"
        body = {
            "action": action.value,
            "redacted_sha256": image.redacted_sha256,
            "outputs": outputs,
            "parameters": parameters,
        }
        try:
            response = self._client.post(url, json=body)
        except (httpx.HTTPError, OutboundAddressRefused) as exc:
            log.warning("could not record %s in the gateway: %s", action, type(exc).__name__)
            return
        if response.status_code != 201:
            log.warning(
                "the gateway refused the %s record: %s %s",
                action,
                response.status_code,
                _problem_code(response),
            )


def _head(response: httpx.Response, limit: int = 16 * 1024) -> bytes:
    """The start of an error body (problem+json is small; a huge one is not read)."""
    head = b""
    for chunk in response.iter_bytes(4096):
        head += chunk
        if len(head) >= limit:
            break
    return head[:limit]


def _refusal(status: int, code: str) -> ImageRefused:
    if status == 404:
        return ImageRefused("not-released", "the gateway has no released redacted copy for it")
    if code == "residency-violation":
        return ImageRefused("residency-violation", "the gateway's residency check blocked it")
    if status in (401, 403):
        log.warning("the gateway refused this backend's API key (%s %s)", status, code)
        return ImageRefused("gateway-refused-key", f"the gateway answered {status} {code}")
    return ImageRefused("gateway-error", f"the gateway answered {status} {code}")


def _problem_code(response: httpx.Response | bytes) -> str:
    try:
        body = json.loads(response if isinstance(response, bytes) else response.content)
    except ValueError:
        return "?"
    code = body.get("code") if isinstance(body, dict) else None
    return str(code) if isinstance(code, str) else "?"
