"""Bounded atheris runs inside the test command: each target gets real seeds (the shipped
policies, a real signed bundle and report; the image validator has its own run in
test_fuzz_image_validator.py) and a fixed number of coverage-guided mutations from a fixed seed
(deterministic: the same inputs on every machine; FUZZ_RUNS overrides, 0 = unbounded) in a
subprocess, capped at FUZZ_SECONDS (default 30; libFuzzer exits the process when done). Any
exception other than the target's typed error is a crash and fails the test with atheris's
report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.core.db import transaction
from gateway.datasets import DatasetSpec, create_dataset
from gateway.lineage import Actor
from gateway.lineage.bundle import BundleFilter, export_bundle
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.format.verify import Anchor, verify_bundle
from gateway.lineage.service import check_export_residency
from gateway.lineage.signing import all_keys, key_id_for
from gateway.reports.build import generate_processing_activities, verify_report
from gateway.reports.render import ReportFormat, render
from tests.conftest import DATASET_SPEC

pytestmark = [pytest.mark.db, pytest.mark.integration]
SECONDS = int(os.environ.get("FUZZ_SECONDS", "30"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))
# about 2 s each on CI's machine; the report verifier is cheap per input
RUNS = {"policy": 1000, "bundle": 1000, "report": 10000}
ROOT = Path(__file__).resolve().parents[2]
OFFICER = Actor("api-key", "fuzz")


def _seed_policies(corpus_dir: Path) -> None:
    policies = ROOT / "gateway" / "policies"
    for path in [policies / "default.yaml", *sorted((policies / "examples").glob("*.yaml"))]:
        (corpus_dir / path.name).write_bytes(path.read_bytes())


def _seed_signed(ctx: Any, kind: str, corpus_dir: Path) -> None:
    with transaction(ctx.engine) as s:
        create_dataset(s, ctx, DatasetSpec.model_validate(DATASET_SPEC), actor=OFFICER)
    with transaction(ctx.engine) as s:
        create_checkpoint(ctx, s)
    if kind == "bundle":
        with transaction(ctx.engine) as s:
            flt = BundleFilter()
            cleared = check_export_residency(ctx, s, flt, target_region="eu-de", actor=OFFICER)
            out = corpus_dir / "bundle.jsonl"
            export_bundle(ctx, s, out, flt, clearances=cleared, to_region="eu-de")
    else:
        signed = generate_processing_activities(ctx, actor=OFFICER)
        (corpus_dir / "report.json").write_bytes(render(signed, ReportFormat.JSON))


def _seed_verifies(target: str, corpus_dir: Path, key: bytes) -> None:
    if target == "bundle":
        assert verify_bundle(corpus_dir / "bundle.jsonl", anchor=Anchor(public_keys=[key])).records
    else:
        document = json.loads((corpus_dir / "report.json").read_text())
        assert verify_report(document, {key_id_for(key): key})


@pytest.mark.parametrize("target", ["policy", "bundle", "report"])
def test_fuzz_target_raises_only_typed_errors(target: str, ctx: Any, tmp_path: Path) -> None:
    if not ctx.settings.database_url.startswith("sqlite"):
        pytest.skip("the targets read files, not the database: one backend is enough")
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    if target == "policy":
        _seed_policies(corpus_dir)
    else:
        _seed_signed(ctx, target, corpus_dir)
    key = tmp_path / "trusted.key"
    with transaction(ctx.engine) as s:
        keys = all_keys(s)
        key.write_bytes(keys[0].public_key if keys else b"")
    if target in ("bundle", "report"):
        _seed_verifies(target, corpus_dir, key.read_bytes())  # mutations start from a valid one
    env = os.environ | {"FUZZ_TRUSTED_KEY": str(key), "PYTHONPATH": str(ROOT)}
    runs = int(os.environ.get("FUZZ_RUNS", RUNS[target])) or -1
    args = [f"-max_total_time={SECONDS}", f"-runs={runs}", f"-seed={SEED}"]
    args += ["-rss_limit_mb=2048", "-timeout=10"]
    args.append(f"-artifact_prefix={tmp_path}/")  # a crashing input lands there, not in the repo
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.harness", target, str(corpus_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=SECONDS + 120,
        check=False,
    )
    done = re.search(r"Done (\d+) runs", run.stderr)
    print(f"atheris {target}: {done.group(1) if done else '?'} inputs")  # noqa: T201
    assert run.returncode == 0, run.stderr[-4000:]
    assert done is not None and int(done.group(1)) > 0, run.stderr[-2000:]
