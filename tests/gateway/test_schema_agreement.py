"""The SQLModel tables and the Alembic migrations describe the same columns."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

from gateway.core import models
from gateway.core.db import make_engine, migrate
from gateway.labelstudio import tables as labelstudio_tables
from gateway.policy import tables as policy_tables
from gateway.review import models as review_tables

# importing registers their tables
TABLE_MODULES = (models, labelstudio_tables, policy_tables, review_tables)

pytestmark = pytest.mark.db


def test_every_model_column_is_in_the_migrated_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    found = inspect(engine)
    missing = {
        table.name: sorted(
            {c.name for c in table.columns} - {c["name"] for c in found.get_columns(table.name)}
        )
        for table in SQLModel.metadata.sorted_tables
        if found.has_table(table.name)
    }
    absent = [t.name for t in SQLModel.metadata.sorted_tables if not found.has_table(t.name)]
    engine.dispose()
    assert {t: cols for t, cols in missing.items() if cols} == {}
    assert absent == []


def test_the_migrations_form_one_line_with_a_single_head() -> None:
    """Branches that each add a migration off the same parent leave two heads; `migrate`
    would apply both in an undefined order. The merge must chain them."""
    from alembic.script import ScriptDirectory

    from gateway.core.db import alembic_config

    engine = make_engine("sqlite://")
    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    engine.dispose()
    assert len(heads) == 1, f"several migration heads: {sorted(heads)}"


@pytest.mark.timeout(180)
def test_replicas_migrating_at_once_take_turns(database_url: str) -> None:
    """Each API replica runs `init` when it starts; on a fresh PostgreSQL schema three at once
    all succeed and leave it current (without the lock, two raced to create the same tables)."""
    import subprocess
    import sys

    from gateway.core.db import require_current_schema

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is one host's file: its write lock serialises migrations")
    code = (
        "import sys; from gateway.core.db import make_engine, migrate; "
        "migrate(make_engine(sys.argv[1]))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=150)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    engine = make_engine(database_url)
    require_current_schema(engine)
    engine.dispose()
