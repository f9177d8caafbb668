"""What the gateway keeps on disk is readable by its own user only: directories 0700, files
0600 (the SQLite database and its journal files, the master key, every stored blob).

The one exception is the local-files export directory of a Label Studio destination: Label
Studio, often another user, must read the redacted copies there (see README, Label Studio).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 (an existing directory is left as is:
    the operator may have mounted it on purpose)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(directory, PRIVATE_DIR)  # mkdir's mode passes through the umask
    return path


def private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its WAL and shared-
    memory files the database file's mode), and tighten files an earlier version left open."""
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists() and companion.stat().st_mode & 0o077:
            os.chmod(companion, PRIVATE_FILE)
