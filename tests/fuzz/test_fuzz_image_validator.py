"""A bounded atheris run of the image validator inside the test command (issue 21): a fixed
number of coverage-guided mutations from a fixed seed over a corpus of real small images, in a
subprocess (atheris owns the process: libFuzzer flags, its own exit code). Any exception other
than a typed `InputError`, a crash, or a memory blow-up fails the test.

The run is deterministic (same seed, same corpus, same number of inputs), so the test command
passes or fails the same way on every machine; a time-bounded run once found a real bug at
random in CI (a BYTE-typed TIFF strip table, now a unit test in tests/redaction/test_io.py).
Hunt for new findings with a longer, differently seeded run:
    FUZZ_SEED=7 FUZZ_IMAGE_RUNS=0 FUZZ_IMAGE_SECONDS=600 \\
        pytest tests/fuzz/test_fuzz_image_validator.py
(0 runs means unbounded, until the time limit)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gateway.bad_inputs import corpus, png_with_header

pytest.importorskip("atheris")
TARGET = Path(__file__).with_name("fuzz_image_validator.py")
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "1"))
FUZZ_RUNS = int(os.environ.get("FUZZ_IMAGE_RUNS", "20000"))  # ~10 s on CI's 2 cores
# a cap: a slow machine runs a prefix of the same inputs
FUZZ_SECONDS = int(os.environ.get("FUZZ_IMAGE_SECONDS", "90"))


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
            f"-seed={FUZZ_SEED}",
            f"-runs={FUZZ_RUNS}" if FUZZ_RUNS else "-runs=-1",
            f"-max_total_time={FUZZ_SECONDS}",
            f"-artifact_prefix={tmp_path}/",
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
