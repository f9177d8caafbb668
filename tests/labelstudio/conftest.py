"""Everything in this folder needs the real Label Studio server (fixtures in fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.labelstudio)
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.db)
