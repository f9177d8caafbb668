"""The command line behaves as Unix tools do: `--version`, one-line usage errors with exit 2,
one-line domain errors with their code, and a `--help` that imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"privacy-gateway {metadata.version('label-studio-privacy-gateway')}"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["datasets", "create"], "Missing argument 'name'"),
        (["datasets", "list", "--bogus"], "No such option: --bogus"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["api-keys", "create", "--role", "wizard"], "'wizard' is not one of"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("usage error: ") and words in err
    assert "Traceback" not in err


def test_domain_errors_are_one_line_with_their_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["verify", str(tmp_path / "no-bundle.json")], capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        f"error [lineage-bundle-invalid]: no bundle file at {tmp_path / 'no-bundle.json'}"
    ]


HEAVY = ("sqlmodel", "sqlalchemy", "matplotlib", "jinja2", "cv2", "numpy", "onnxruntime")


def test_help_imports_nothing_heavy() -> None:
    """`--help` stays fast (under 0.5 s) because it loads no database, model or chart code."""
    probe = (
        "import sys\n"
        "from gateway.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print({HEAVY!r} and [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    for argv in (["--help"], ["policies", "--help"], ["report", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=60,
        )
        assert "Usage: privacy-gateway" in done.stdout
        assert json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"')) == [], argv
