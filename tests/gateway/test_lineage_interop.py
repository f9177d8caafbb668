"""OpenLineage run events and W3C PROV-JSON built from real chain records."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import LineageRecord
from gateway.lineage import Actor, append
from gateway.lineage.interop import openlineage_lines, prov_document

pytestmark = pytest.mark.db


def _pairs(ctx) -> list[tuple[str, str]]:
    with transaction(ctx.engine) as s:
        for action, outputs in (
            ("asset.received", {}),
            ("asset.released", {"redacted_sha256": "ab" * 32}),
        ):
            append(
                s,
                action=action,
                entity_type="asset",
                entity_id="asset-1",
                actor=Actor("system", "worker-1"),
                now=ctx.clock(),
                region="eu-de",
                dataset_id="ds-1",
                inputs={"original_keyed_digest": "cd" * 32},
                outputs=outputs,
                parameters={
                    "detector": "centerface/1.0",
                    "threshold_milli": 350,
                    "target_region": "eu-fr",
                },
            )
    with transaction(ctx.engine) as s:
        rows = s.exec(select(LineageRecord).order_by(col(LineageRecord.seq))).all()
        return [(r.payload, r.record_hash) for r in rows]


def test_openlineage_events_carry_our_facts_as_custom_facets(ctx) -> None:
    pairs = _pairs(ctx)
    events = [json.loads(line) for line in openlineage_lines(pairs)]
    assert [e["job"]["name"] for e in events] == ["asset.received", "asset.released"]
    run = events[1]["run"]
    assert run["runId"] == json.loads(pairs[1][0])["record_id"]
    facets = run["facets"]
    assert facets["lpg_lineage"]["recordHash"] == pairs[1][1]
    assert facets["lpg_lineage"]["_schemaURL"].endswith("LineageRecordRunFacet")
    assert facets["lpg_redaction"]["facts"] == {
        "detector": "centerface/1.0",
        "threshold_milli": 350,
    }
    assert facets["lpg_residency"] == facets["lpg_residency"] | {"region": "eu-de"}
    assert facets["lpg_residency"]["facts"] == {"target_region": "eu-fr"}
    out = events[1]["outputs"][0]
    assert out["namespace"] == "lpg://eu-de" and out["name"] == "asset/asset-1"
    assert out["facets"]["lpg_digests"]["digests"] == {"redacted_sha256": "ab" * 32}


def test_prov_json_links_versions_activities_and_agents(ctx) -> None:
    doc = prov_document(_pairs(ctx))
    assert set(doc["activity"]) == {"lpg:record-1", "lpg:record-2"}
    assert doc["agent"] == {"lpg:system-worker-1": {"prov:type": "system"}}
    assert doc["wasDerivedFrom"]["lpg:der-2"] == {
        "prov:generatedEntity": "lpg:asset-asset-1-v2",
        "prov:usedEntity": "lpg:asset-asset-1-v1",
    }
    assert doc["used"]["lpg:use-2"]["prov:activity"] == "lpg:record-2"
    assert all(v["prov:activity"].startswith("lpg:record-") for v in doc["wasGeneratedBy"].values())
