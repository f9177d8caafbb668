"""The CLI and the admin API, as a user drives them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.gateway.bad_inputs import good_jpeg
from tests.gateway.test_api import auth, make_key
from tests.policy.helpers import DEFAULT

EXAMPLES = DEFAULT.parent / "examples"


@pytest.mark.integration
def test_cli_validate_names_the_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT.read_text().replace("  redacted_days: 365", "  redacted_days: soon"))
    line = bad.read_text().splitlines().index("  redacted_days: soon") + 1
    cmd = [sys.executable, "-m", "gateway", "policies", "validate", str(DEFAULT), str(bad)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert f"{bad}:{line}:" in run.stderr and "retention.redacted_days" in run.stderr
    assert "ok" in run.stdout and "default" in run.stdout


@pytest.fixture
def cli_env(settings, ctx, dataset) -> dict[str, str]:
    assert settings.master_key is not None
    return {
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": settings.master_key.get_secret_value(),
        "GATEWAY_REGION": "eu-de",
    }


@pytest.mark.db
def test_cli_activate_diff_reprocess_retention_erase(cli_env) -> None:
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args), env=cli_env)
        assert result.exit_code in (0, 1), (result.output, result.exception)
        return result.output

    out = cli(
        "policies",
        "activate",
        str(EXAMPLES / "research-long-retention.yaml"),
        "--dataset",
        "street-scenes",
    )
    assert "activated research-long-retention v1" in out
    assert "changed: retention.originals_days" in out
    assert "research-long-retention@1" in cli("policies", "list")
    assert "originals_days: 730" in cli("policies", "show", "research-long-retention@1")
    assert "retention.originals_days: 30 -> 730" in cli(
        "policies", "diff", str(DEFAULT), "research-long-retention@1"
    )
    assert "would queue 0 asset(s)" in cli("policies", "reprocess", "--dataset", "street-scenes")
    assert "would delete 0 item(s)" in cli("retention", "run", "--dry-run")
    out = cli("erase", "--dataset", "street-scenes", "--subject", "someone@example.org")
    assert "0 asset(s) erased, state completed" in out
    assert "completed" in cli("erasure", "list")


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as c:
        yield c


@pytest.mark.db
def test_api_policy_lifecycle_and_residency_problem(client, ctx, dataset) -> None:
    admin = auth(make_key(ctx, Role.ADMIN))
    bad = DEFAULT.read_text().replace("  vault_days: 365", "  vault_days: -4")
    r = client.post("/v1/policies/validate", json={"yaml": bad}, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    [problem] = r.json()["details"]["errors"]
    assert problem["field"] == "retention.vault_days"
    assert problem["line"] == bad.splitlines().index("  vault_days: -4") + 1
    blocking = (
        DEFAULT.read_text()
        .replace("name: default", "name: fr-only")
        .replace("processing_regions: [eea]", "processing_regions: [FR]")
    )
    r = client.post("/v1/policies", json={"yaml": blocking, "dataset": dataset.name}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["dataset_id"] == dataset.id
    r = client.post(
        f"/v1/datasets/{dataset.id}/assets",
        headers=admin,
        files=[("files", ("a.jpg", good_jpeg(), "image/jpeg"))],
    )
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "residency-violation"
    assert body["details"]["rule"] == "residency.processing_regions"
    assert body["details"]["target_region"] == "eu-de" and body["details"]["policy"] == "fr-only"
    assert client.get("/v1/policies", headers=admin).json()[0]["name"] == "fr-only"
    assert client.get("/v1/regions", headers=admin).json()["regions"]["eu-de"]["country"] == "DE"
    ingest_key = auth(make_key(ctx, Role.INGEST))
    assert (
        client.post("/v1/policies", json={"yaml": blocking}, headers=ingest_key).status_code == 403
    )


@pytest.mark.db
def test_api_retention_holds_and_erasure(client, ctx, dataset) -> None:
    admin = auth(make_key(ctx, Role.ADMIN))
    compliance = auth(make_key(ctx, Role.COMPLIANCE))
    r = client.post("/v1/retention/run", headers=admin)
    assert r.status_code == 200 and r.json()["dry_run"] is True and r.json()["items"] == []
    r = client.post(
        "/v1/retention/holds",
        json={"dataset": dataset.name, "reason": "case 1"},
        headers=compliance,
    )
    assert r.status_code == 201
    assert (
        client.delete(f"/v1/retention/holds/{r.json()['id']}", headers=compliance).status_code
        == 204
    )
    r = client.post(
        "/v1/erasure-requests",
        json={"dataset": dataset.name, "subject_id": "x-1"},
        headers=compliance,
    )
    assert r.status_code == 201 and r.json()["state"] == "completed"
    register = client.get("/v1/erasure-requests", headers=compliance).json()
    assert [e["id"] for e in register] == [r.json()["id"]]
    assert "x-1" not in str(register)
    bad = client.post("/v1/erasure-requests", json={"dataset": dataset.name}, headers=compliance)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid-request"
