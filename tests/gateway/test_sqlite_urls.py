"""`make_engine` creates the private database file for file URLs only.

An in-memory URL (`sqlite://`, `sqlite:///:memory:`) has no file: the first version treated
`sqlite://` as a path and left an empty file named `sqlite:` in the working directory (it was
committed to the repository once by a test that used that URL).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.core.db import make_engine


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"])
def test_in_memory_urls_create_no_file(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1
    engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_gets_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "gateway.db"
    engine = make_engine(f"sqlite:///{path}?timeout=5")
    engine.dispose()
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
