"""The vault over HTTP (admin + purpose, recorded) and the keys/vault CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import LineageRecord, Role
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.task_meta import pseudonym
from tests.gateway.test_api import auth, client, make_key  # noqa: F401  (fixture)
from tests.pseudonymisation.test_task_metadata import _ingest, exif_jpeg

pytestmark = pytest.mark.db


def test_vault_read_over_http(client, ctx, dataset) -> None:  # noqa: F811
    _ingest(ctx, dataset, filename="lena_berg.jpg", data=exif_jpeg(), subject_id="subj-314")
    with transaction(ctx.engine) as s:
        alias = pseudonym(
            ctx, s, dataset_id=dataset.id, field=PseudonymField.SUBJECT_ID, value="subj-314"
        )
    url = f"/v1/datasets/{dataset.id}/vault/read"
    body = {"pseudonym": alias, "purpose": "erasure request 2026-031"}
    compliance = make_key(ctx, Role.COMPLIANCE)
    assert client.post(url, json=body, headers=auth(compliance)).status_code == 403
    admin = make_key(ctx, Role.ADMIN)
    short = client.post(url, json=body | {"purpose": "why"}, headers=auth(admin))
    assert short.status_code == 422 and short.headers["content-type"] == "application/problem+json"
    ok = client.post(url, json=body, headers=auth(admin))
    assert ok.status_code == 200 and ok.json() == {
        "pseudonym": alias,
        "field": "subject_id",
        "value": "subj-314",
    }
    missing = client.post(url, json=body | {"pseudonym": "subj_" + "0" * 32}, headers=auth(admin))
    assert missing.status_code == 404
    with transaction(ctx.engine) as s:
        reads = s.exec(select(LineageRecord).where(LineageRecord.action == "vault.read")).all()
    assert len(reads) == 1
    payload = json.loads(reads[0].payload)
    assert payload["parameters"]["purpose"] == "erasure request 2026-031"
    assert "subj-314" not in reads[0].payload


@pytest.mark.integration
def test_cli_rotate_reencrypt_vault_and_shred(tmp_path, database_url) -> None:
    env = os.environ | {
        "GATEWAY_DATA_DIR": str(tmp_path / "d"),
        "GATEWAY_DATABASE_URL": database_url,
    }
    env.pop("GATEWAY_MASTER_KEY", None)

    def cli(*args: str, ok: bool = True) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (run.returncode == 0) == ok, run.stderr
        return run.stdout + run.stderr

    cli("init")
    cli(
        "datasets", "create", "cli-ds", "--purpose", "Testing the key custody commands",
        "--controller", "Example Lab", "--legal-basis", "consent", "--subjects", "staff",
        "--data-category", "images", "--label", "person:box",
    )  # fmt: skip
    photos = tmp_path / "in"
    photos.mkdir()
    (photos / "maria_lopez.jpg").write_bytes(exif_jpeg())
    cli("ingest", str(photos), "--dataset", "cli-ds", "--no-process")
    assert "version 2" in cli("keys", "rotate", "--dataset", "cli-ds")
    from gateway.pseudonymisation.pseudonyms import PREFIX

    del PREFIX
    assert "pass --yes" in cli("keys", "shred", "--dataset", "cli-ds", "--reason", "test", ok=False)
    out = cli("keys", "shred", "--dataset", "cli-ds", "--reason", "end of project", "--yes")
    assert "shredded" in out and "new master key" in out
    denied = cli(
        "vault",
        "read",
        "--dataset",
        "cli-ds",
        "--pseudonym",
        "file_" + "0" * 32,
        "--purpose",
        "audit 2026-77 check",
        ok=False,
    )
    assert "error" in denied
