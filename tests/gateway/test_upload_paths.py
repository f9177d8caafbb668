"""The upload route's answers (issue 21): a re-upload of a refused file says why again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.gateway.bad_inputs import corpus
from tests.gateway.test_api import auth, make_key

pytestmark = pytest.mark.db


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as c:
        yield c


def test_reuploading_a_rejected_file_answers_its_reason_again(client, ctx, dataset) -> None:
    token = make_key(ctx, Role.ADMIN)
    name, data = corpus()["truncated-jpeg"]
    answers = [
        client.post(
            f"/v1/datasets/{dataset.id}/assets",
            files=[("files", (name, data, "image/jpeg"))],
            headers=auth(token),
        )
        for _ in range(2)
    ]
    first, again = answers
    assert first.status_code == 422 and first.json()["code"] == "rejected-input"
    assert again.status_code == 422, again.text
    assert again.json()["details"]["reason"] == first.json()["details"]["reason"]
    assert again.json()["asset_id"] == first.json()["asset_id"]
