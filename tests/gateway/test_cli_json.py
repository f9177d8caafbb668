"""Commands do not migrate the database on their own, and the listing and verifying commands
print one JSON document with --json (for scripts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.cli import main

pytestmark = pytest.mark.db


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture
def fresh_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("GATEWAY_") and "TEST" not in n]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_only_init_migrates_and_lists_print_json(
    fresh_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["datasets", "list"], capsys)
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [
        "error [schema-outdated]: the database has no schema: run `privacy-gateway init` to "
        "migrate it"
    ]

    assert _run(["init"], capsys)[0] == 0
    created = [
        "datasets", "create", "street", "--purpose", "Pedestrian detection research data.",
        "--controller", "Lab", "--legal-basis", "legitimate_interests", "--subjects",
        "passers-by", "--data-category", "facial images", "--label", "person:box",
    ]  # fmt: skip
    assert _run(created, capsys)[0] == 0
    code, token, _ = _run(["api-keys", "create", "--role", "admin", "--label", "ops"], capsys)
    assert code == 0 and token.strip()

    code, out, _ = _run(["datasets", "list", "--json"], capsys)
    assert code == 0
    (dataset,) = json.loads(out)
    assert (dataset["name"], dataset["legal_basis"]) == ("street", "legitimate_interests")

    code, out, _ = _run(["api-keys", "list", "--json"], capsys)
    (key,) = json.loads(out)
    assert (key["role"], key["label"], key["revoked_at"]) == ("admin", "ops", None)
    assert token.strip() not in out  # the secret is shown once, at creation, never listed

    assert _run(["lineage", "checkpoint"], capsys)[0] == 0  # an unsigned ledger anchors nothing
    code, out, _ = _run(["verify", "--json"], capsys)
    chain = json.loads(out)
    assert chain["intact"] is True and chain["records"] >= 2

    for listing in (["policies", "list"], ["erasure", "list"], ["destinations", "list"]):
        code, out, _ = _run([*listing, "--json"], capsys)
        assert (code, json.loads(out)) == (0, []), listing
