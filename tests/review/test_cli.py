"""`privacy-gateway review ...` answers with one-line typed errors before anything is set up."""

from __future__ import annotations

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


def test_review_commands_say_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("GATEWAY_") and "TEST" not in n]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    assert _run(["init"], capsys)[0] == 0
    created = [
        "datasets", "create", "street", "--purpose", "Pedestrian detection research data.",
        "--controller", "Lab", "--legal-basis", "legitimate_interests", "--subjects",
        "passers-by", "--data-category", "facial images", "--label", "person:box",
    ]  # fmt: skip
    assert _run(created, capsys)[0] == 0
    code, _, err = _run(["review", "setup", "street", "--destination", "nowhere"], capsys)
    assert code != 0 and "destination" in err and "Traceback" not in err
    code, _, err = _run(["review", "queue", "street"], capsys)
    assert code != 0 and "privacy-gateway review setup" in err
    code, _, err = _run(["review", "reviewers", "add", "street", "--labelstudio-user", "3"], capsys)
    assert code != 0 and "no review destination" in err
    code, _, err = _run(["review", "reviewers", "remove", "street", "nobody"], capsys)
    assert code != 0 and "no such reviewer" in err
    code, _, err = _run(["review", "verify-sample", "no-such-sample"], capsys)
    assert code != 0 and "no review sample" in err
