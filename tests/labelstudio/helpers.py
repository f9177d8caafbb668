"""Small readers for the Label Studio tests (real server, real files)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from label_studio_sdk.client import LabelStudio
from PIL import Image
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.labelstudio.server import LocalLabelStudio
from tests.policy.helpers import lineage as lineage  # re-exported: the labelstudio tests' name

PERSON_BOX = {  # one rectangle an annotator draws in the test project's "boxes" control
    "from_name": "boxes",
    "to_name": "image",
    "type": "rectanglelabels",
    "value": {"x": 10, "y": 10, "width": 20, "height": 30, "rectanglelabels": ["person"]},
}


@contextmanager
def sdk(server: LocalLabelStudio) -> Iterator[LabelStudio]:
    with httpx.Client(timeout=30) as http:
        yield LabelStudio(base_url=server.url, api_key=server.token, httpx_client=http)  # type: ignore[no-untyped-call]


def project_tasks(server: LocalLabelStudio, project_id: int) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/tasks",
        params={"project": project_id, "page_size": 1000, "fields": "all"},
        headers={"Authorization": f"Token {server.token}"},
    )
    response.raise_for_status()
    body = response.json()
    tasks: list[dict[str, Any]] = body["tasks"] if isinstance(body, dict) else body
    return tasks


def jpeg_segments(data: bytes) -> list[int]:
    """The JPEG marker bytes before the scan (APPn, COM, DQT, ...)."""
    assert data[:2] == b"\xff\xd8"
    markers, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        i += 2 + length
    return markers


def assert_no_metadata(data: bytes) -> None:
    markers = jpeg_segments(data)
    assert 0xE1 not in markers, "APP1 (EXIF/XMP) present"
    assert 0xED not in markers, "APP13 (IPTC) present"
    assert 0xFE not in markers, "COM (comment) present"
    image = Image.open(io.BytesIO(data))
    assert not image.getexif()
    assert "icc_profile" not in image.info and "comment" not in image.info


def wait_for_annotations(ctx: GatewayContext, count: int, seconds: float = 30.0) -> None:
    """Webhooks are read back from Label Studio after they are answered: wait for the rows."""
    from gateway.labelstudio.tables import Annotation

    deadline = time.monotonic() + seconds
    while True:
        with transaction(ctx.engine) as s:
            if len(s.exec(select(Annotation)).all()) >= count:
                return
        assert time.monotonic() < deadline, f"{count} annotations never arrived"
        time.sleep(0.05)  # polling the read-back, not timing anything
