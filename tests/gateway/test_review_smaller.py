"""Smaller review findings (issue 21): a rejected file uploaded again answers with its earlier
rejection; tampered reports give typed errors, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.core.errors import IntegrityFailure
from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.gateway.bad_inputs import corpus, good_jpeg
from tests.gateway.test_api import auth, make_key

pytestmark = pytest.mark.db


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as c:
        yield c


def test_a_rejected_file_uploaded_again_answers_its_rejection(client, ctx, dataset) -> None:
    key = auth(make_key(ctx, Role.INGEST))
    gif = ("files", ("x.gif", corpus()["gif"][1], "image/gif"))
    url = f"/v1/datasets/{dataset.id}/assets"
    first = client.post(url, headers=key, files=[gif])
    again = client.post(url, headers=key, files=[gif])
    assert again.status_code == 422, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["details"]["reason"] == "unsupported-format"
    assert again.json()["asset_id"] == first.json()["asset_id"]
    assert again.json()["duplicate"] is True
    good = ("files", ("g.jpg", good_jpeg(2), "image/jpeg"))
    mixed = client.post(url, headers=key, files=[gif, good])
    assert mixed.status_code == 207
    rejected = mixed.json()["results"][0]
    assert (
        rejected["duplicate"] and rejected["problem"]["details"]["reason"] == "unsupported-format"
    )


def _signed_report(ctx, dataset, tmp_path: Path) -> Path:
    from gateway.lineage import Actor
    from gateway.reports.build import generate_dataset_report

    signed = generate_dataset_report(ctx, dataset.id, actor=Actor("cli", "t"))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(signed.model_dump(mode="json")))
    return path


@pytest.mark.parametrize(
    "tamper",
    [
        lambda text: text.replace('"assets_total": 0', '"assets_total": 0.5', 1),
        lambda text: text.replace('"assets_total": 0', '"assets_total": 1e400', 1),
        lambda text: text.replace('"assets_total": 0', '"assets_total": NaN', 1),
        lambda _text: "[" * 100_000 + "]" * 100_000,
        lambda text: text.replace('"assets_total": 0', '"assets_total": ' + "9" * 5000, 1),
        lambda text: text.replace('"signing_keys": [', '"signing_keys": [7, ', 1),
    ],
)
def test_a_tampered_report_gives_a_typed_error(ctx, dataset, tmp_path, tamper) -> None:
    from gateway.reports.build import gateway_public_keys
    from gateway.reports.verify import anchored_keys, load_document, verify_report_file

    path = _signed_report(ctx, dataset, tmp_path)
    text = path.read_text()
    assert '"assets_total": 0' in text and '"signing_keys": [' in text
    path.write_text(tamper(text))
    with pytest.raises(IntegrityFailure):
        verify_report_file(path, keys=gateway_public_keys(ctx))
    with pytest.raises(IntegrityFailure):
        anchored_keys(load_document(path), public_keys=[], fingerprints=["00"])
