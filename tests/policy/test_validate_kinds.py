"""`policies validate` recognises every kind of file the project ships under gateway/policies/."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.shipped import shipped_path

SHIPPED = sorted(p for p in shipped_path("policies").rglob("*") if p.suffix in {".yaml", ".json"})


def _validate(paths: list[Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["policies", "validate", *map(str, paths)])
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_every_shipped_policy_file_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert {p.name for p in SHIPPED} >= {
        "default.yaml",
        "redaction-default.yaml",
        "policy.schema.json",
    }
    code, out, err = _validate(SHIPPED, capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == [str(p) for p in SHIPPED]
    assert any("redaction policy" in line for line in lines)
    assert any("JSON Schema of policy documents (current)" in line for line in lines)


def test_a_redaction_policy_with_a_typo_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "redaction.yaml"
    bad.write_text("faces:\n  treshold: 0.2\n")
    code, out, err = _validate([bad], capsys)
    assert code == 2 and out == ""
    assert "faces.treshold" in err


def test_a_stale_json_schema_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "policy.schema.json"
    text = shipped_path("policies", "schema", "policy.schema.json").read_text()
    stale.write_text(text.replace('"title": "PolicyDocument"', '"title": "Old"', 1))
    code, _, err = _validate([stale], capsys)
    assert code == 2
    assert "not the current JSON Schema" in " ".join(err.split())
