"""`ingest` names every folder entry it does not import, with the reason."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.ingest_dir import IngestSummary, Skipped, scan_folder


def test_every_skipped_entry_is_named_with_its_reason(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(b"x")
    (root / "sub" / "b.jpg").write_bytes(b"y")
    (root / ".DS_Store").write_bytes(b"z")
    (root / ".cache").mkdir()
    (root / ".cache" / "c.jpg").write_bytes(b"w")
    (root / "link.jpg").symlink_to(root / "a.jpg")
    (root / "linked-folder").symlink_to(root / "sub")
    (root / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(root / "pipe.jpg")

    files, skipped = scan_folder(root)

    assert [p.relative_to(root).as_posix() for p in files] == ["a.jpg", "sub/b.jpg"]
    assert sorted(skipped, key=lambda s: s.path) == [
        Skipped(".DS_Store", "hidden file"),
        Skipped(".cache", "hidden folder"),
        Skipped("dangling.jpg", "symbolic link (links are not followed)"),
        Skipped("link.jpg", "symbolic link (links are not followed)"),
        Skipped("linked-folder", "symbolic link (links are not followed)"),
        Skipped("pipe.jpg", "a FIFO (named pipe), not a regular file"),
    ]
    described = IngestSummary(new=2, skipped=skipped).describe()
    assert "imported 2 new, 0 already present, 0 rejected, 6 skipped" in described
    for entry in skipped:
        assert f"  skipped {entry.path}: {entry.reason}" in described.splitlines()
