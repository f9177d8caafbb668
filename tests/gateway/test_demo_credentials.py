"""The Label Studio demo's credentials file: made once (0600), and a file from an older demo
(no ML backend pair) keeps its login and gains the pair, so its tasks' URLs and token still work."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from gateway.labelstudio.demo import _credentials


def test_an_older_credentials_file_keeps_its_login_and_gains_the_ml_pair(tmp_path: Path) -> None:
    folder = tmp_path / "labelstudio"
    folder.mkdir()
    old = {"username": "demo@gateway.local", "password": "kept", "token": "t" * 40}
    (folder / "credentials.json").write_text(json.dumps(old))
    made = _credentials(folder)
    assert {k: made[k] for k in old} == old
    assert made["ml_user"] and len(made["ml_password"]) >= 20
    assert json.loads((folder / "credentials.json").read_text()) == made
    assert stat.S_IMODE((folder / "credentials.json").stat().st_mode) == 0o600
    assert _credentials(folder) == made  # stable from run to run


def test_fresh_credentials_are_random(tmp_path: Path) -> None:
    first, second = _credentials(tmp_path / "a"), _credentials(tmp_path / "b")
    assert first["password"] != second["password"] and first["token"] != second["token"]
    assert first["ml_password"] != second["ml_password"]
