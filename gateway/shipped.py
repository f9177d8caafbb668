"""Data files shipped inside the `gateway` package (policies, region catalogue, demo photos,
report templates, migrations), found through importlib.resources so that an installed wheel
reads them exactly as a source checkout does."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_path(*parts: str) -> Path:
    """The file or folder `parts` inside the installed `gateway` package, as a real path (a
    wheel is always unpacked, so the package's resources are files on disk)."""
    target = resources.files("gateway").joinpath(*parts)
    if not isinstance(target, Path):  # a zipped install: not supported
        raise RuntimeError(f"gateway is not installed as files on disk: {target}")
    return target
