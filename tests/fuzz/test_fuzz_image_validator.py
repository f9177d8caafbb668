"""A bounded atheris run of the image validator inside the test command (issue 21): 15 s of
coverage-guided mutation from a seed corpus of real small images, in a subprocess (atheris
owns the process: libFuzzer flags, its own exit code). Any exception other than a typed
`InputError`, a crash, or a memory blow-up fails the test."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gateway.bad_inputs import corpus, png_with_header

pytest.importorskip("atheris")
TARGET = Path(__file__).with_name("fuzz_image_validator.py")
FUZZ_SECONDS = 15


def _seeds(folder: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt)
        (folder / f"seed.{fmt.lower()}").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(pixels).convert("RGBA").save(buf, format="PNG")
    (folder / "seed-alpha.png").write_bytes(buf.getvalue())
    (folder / "bomb.png").write_bytes(png_with_header(30_000, 30_000))
    for name, (_, data) in corpus().items():
        (folder / f"bad-{name}").write_bytes(data)


def test_the_image_validator_survives_bounded_fuzzing(tmp_path: Path) -> None:
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    _seeds(seeds)
    run = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            f"-max_total_time={FUZZ_SECONDS}",
            "-rss_limit_mb=2048",
            "-timeout=10",
            "-print_final_stats=1",
            str(seeds),
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,  # start-up is slow on a loaded machine
        check=False,
        cwd=tmp_path,
    )
    stats = [line for line in run.stderr.splitlines() if line.startswith("stat::")]
    assert run.returncode == 0, run.stderr[-4000:]
    assert any(line.startswith("stat::number_of_executed_units") for line in stats)
    print("\n".join(stats))  # noqa: T201  (run size, for the record)
