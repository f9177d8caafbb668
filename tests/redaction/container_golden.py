"""What the container walkers make of each case of `container_corpus`: the decode path
(`redaction.io`: its completeness walk alone, then the whole `decode_image`) and the release
gate's inventory (`redaction.metadata.metadata_inventory`). Results, or the error's class, code,
message and details, never the exception object.

Regenerate the golden file (only when a behaviour change is intended, and say so in the commit):
    PYTHONPATH=. .venv/bin/python -m tests.redaction.container_golden
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redaction import io as rio
from redaction.errors import RedactionError
from redaction.metadata import metadata_inventory
from redaction.policy import Limits
from redaction.types import ImageFormat
from tests.redaction.container_corpus import build

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "redaction" / "container_walk_golden.json"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # Pillow names BytesIO objects by address
_WALKED = (ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def _error(exc: RedactionError) -> dict[str, Any]:
    details = {k: v if isinstance(v, int | str) else repr(v) for k, v in exc.details.items()}
    return {
        "error": type(exc).__name__,
        "code": exc.code,
        "message": _ADDRESS.sub(" at 0x?", exc.message),
        "details": details,
    }


def _guard(call: Callable[[], Any]) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except RedactionError as exc:
        return _error(exc)
    except Exception as exc:  # an untyped error is a finding: record it, never hide it
        return {"untyped": type(exc).__name__, "message": _ADDRESS.sub(" at 0x?", str(exc))}


def _walk(data: bytes) -> Any:
    """The decode path's own structural walk (`_check_complete`), on every input it sniffs as a
    walked container, including those Pillow would refuse first."""
    fmt = rio.sniff_format(data)
    if fmt not in _WALKED:
        return None
    return list(rio._check_complete(data, fmt, None))  # type: ignore[arg-type]


def _decode(data: bytes) -> dict[str, Any]:
    out = rio.decode_image(data, limits=Limits())
    return {
        "pixels": _digest(out.pixels.tobytes()),
        "shape": list(out.pixels.shape),
        "format": out.source_format.value,
        "orientation": out.orientation_applied,
        "alpha": out.had_alpha,
        "notes": list(out.notes),
    }


def observe(data: bytes) -> dict[str, Any]:
    return {
        "input": _digest(data),
        "walk": _guard(lambda: _walk(data)),
        "decode": _guard(lambda: _decode(data)),
        "inventory": _guard(lambda: metadata_inventory(data)),
    }


def main() -> None:
    golden = {name: observe(data) for name, data in build().items()}
    lines = [  # one case a line: a diff of the golden file names the cases that changed
        f"{json.dumps(name)}: {json.dumps(golden[name], sort_keys=True)}" for name in sorted(golden)
    ]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{len(golden)} cases -> {GOLDEN}")  # noqa: T201


if __name__ == "__main__":
    main()
