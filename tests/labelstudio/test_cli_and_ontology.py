"""`privacy-gateway destinations add|list|remove` as a user runs them (token from the
environment, never printed), and a changed ontology becoming a new version that the Label
Studio project follows."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import Dataset
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import OntologyVersion
from tests.labelstudio.fixtures import ADMIN


def _cli(ctx, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(ctx.settings.data_dir),
        "GATEWAY_DATABASE_URL": ctx.settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": ctx.settings.master_key.get_secret_value(),
    }
    if token:
        env["LABEL_STUDIO_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _add_destination(ctx, labelstudio, name: str, *extra: str, token: str):
    args = ("--url", labelstudio.url, "--region", "eu-de", "--gateway-url", "http://127.0.0.1:9")
    return _cli(ctx, "destinations", "add", name, *args, *extra, token=token)


def test_destinations_cli_never_prints_the_token(ctx, labelstudio) -> None:
    add = _add_destination(ctx, labelstudio, "cli-dest", token=labelstudio.token)
    # Label Studio listens on loopback: refused (the token is never sent) until an admin opts in
    assert add.returncode != 0 and "outbound-address-refused" in add.stderr
    assert labelstudio.token not in add.stdout + add.stderr
    opt_in = "--allow-local-addresses"
    add = _add_destination(ctx, labelstudio, "cli-dest", opt_in, token=labelstudio.token)
    assert add.returncode == 0, add.stderr
    listed = _cli(ctx, "destinations", "list")
    assert "cli-dest" in listed.stdout
    for result in (add, listed):
        assert labelstudio.token not in result.stdout + result.stderr
    wrong = _add_destination(ctx, labelstudio, "bad", opt_in, token="not-the-token")
    assert wrong.returncode == 1 and "labelstudio-rejected" in wrong.stderr
    assert "not-the-token" not in wrong.stderr
    removed = _cli(ctx, "destinations", "remove", "cli-dest")
    assert removed.returncode == 0 and "cli-dest" not in _cli(ctx, "destinations", "list").stdout


def test_a_changed_ontology_is_a_new_version_the_project_follows(
    ctx, dataset, released, destination, labelstudio
) -> None:
    first = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    with transaction(ctx.engine) as s:
        row = s.get(Dataset, dataset.id)
        row.ontology = {
            "labels": [*row.ontology["labels"], {"name": "bicycle", "control": "polygon"}],
            "instructions": "Outline bicycles too.",
        }
        s.add(row)
    second = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    assert second.project_id == first.project_id and second.created == 0
    with transaction(ctx.engine) as s:
        versions = s.exec(
            select(OntologyVersion.version).order_by(col(OntologyVersion.version))
        ).all()
    assert list(versions) == [1, 2]
    project = httpx.get(
        f"{labelstudio.url}/api/projects/{first.project_id}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    ).json()
    assert '<Label value="bicycle"/>' in project["label_config"]
    assert "Outline bicycles too." in project["expert_instruction"]
