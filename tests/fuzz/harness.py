"""atheris targets: the policy parser, the lineage bundle verifier and the report verifier (the
image validator has its own, fuzz_image_validator.py). Each input must end in the target's typed
error or a result; anything else is a crash (atheris prints the input and exits non-zero).

Run one (tests/fuzz/test_fuzz.py does, bounded):
    python -m tests.fuzz.harness TARGET CORPUS_DIR -runs=N -max_total_time=S
Targets that verify signatures read the trusted public key from $FUZZ_TRUSTED_KEY (a file)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.core.errors import IntegrityFailure
    from gateway.lineage.format.verify import Anchor, verify_bundle
    from gateway.lineage.signing import key_id_for
    from gateway.policy.errors import PolicyInvalid
    from gateway.policy.loader import load_policy_text
    from gateway.reports.build import verify_report
    from gateway.reports.embedded import signed_json

_SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-bundle-")) / "bundle.jsonl"


def _trusted() -> bytes:
    return Path(os.environ["FUZZ_TRUSTED_KEY"]).read_bytes()


def policy(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        load_policy_text(text, source="fuzz.yaml")
    except PolicyInvalid:
        pass


def bundle(data: bytes) -> None:
    _SCRATCH.write_bytes(data)
    try:
        verify_bundle(_SCRATCH, anchor=Anchor(public_keys=[_trusted()]))
    except IntegrityFailure:
        pass


def report(data: bytes) -> None:
    key = _trusted()
    try:
        document = signed_json(data, "fuzz.json")
        if not isinstance(document, dict):
            raise IntegrityFailure("not an object")
        verify_report(document, {key_id_for(key): key})
    except IntegrityFailure:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "policy": policy,
    "bundle": bundle,
    "report": report,
}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
