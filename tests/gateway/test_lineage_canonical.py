"""The ledger's fast canonical encoder and the sequencer's splice equal RFC 8785's reference."""

from __future__ import annotations

import json

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.lineage.format.canonical import SCHEMA, canonical_json
from gateway.lineage.format.records import with_position

_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _values, max_size=6))
def test_canonical_json_equals_the_rfc8785_reference(payload: dict) -> None:
    try:
        expected = rfc8785.dumps(payload)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return
    assert canonical_json(payload) == expected


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(st.sampled_from(["record_id", "time", "prev", "seq", "x"]), _values),
    region=st.text(min_size=1, max_size=10),
    seq=st.integers(1, 2**40),
)
def test_sequencer_splice_equals_a_full_canonical_encoding(
    params: dict, region: str, seq: int
) -> None:
    body = {
        "schema": SCHEMA,
        "record_id": "5b0c7c1e-0000-4000-8000-000000000001",
        "time": "2026-01-15T09:00:00.000001+00:00",
        "actor": {"kind": "system", "id": "t"},
        "action": "a",
        "entity": {"type": "asset", "id": "x"},
        "dataset": None,
        "region": region,
        "inputs": {"time": "x"},
        "outputs": {},
        "parameters": params,
    }
    try:
        text = canonical_json(body).decode()
    except UnicodeEncodeError:
        return
    spliced = with_position(text, record_id=body["record_id"], seq=seq, prev="ab" * 32)
    assert spliced == canonical_json({**body, "seq": seq, "prev": "ab" * 32})
    assert json.loads(spliced)["seq"] == seq
