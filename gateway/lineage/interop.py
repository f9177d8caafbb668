"""Lineage for the ecosystem: OpenLineage run events (openlineage-python, our facts as custom
facets) and W3C PROV-JSON. Both are views of the chain records; the signed bundle is the
evidence, these are for lineage tools (Marquez, DataHub, PROV viewers)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.serde import Serde

PRODUCER = "https://privacy-gateway.dev/label-studio-privacy-gateway"
FACET_SCHEMA = "https://privacy-gateway.dev/spec/openlineage/lpg-facets-1.json#/$defs/"
NAMESPACE = "label-studio-privacy-gateway"


@attr.define
class LineageRecordRunFacet(RunFacet):
    """Where this event sits in the signed chain, and who did what."""

    seq: int
    recordHash: str  # noqa: N815
    action: str
    actor: dict[str, str]
    region: str
    parameters: dict[str, Any]

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "LineageRecordRunFacet"


@attr.define
class RedactionRunFacet(RunFacet):
    """Redaction facts: policy version, detectors and versions, thresholds (integers)."""

    facts: dict[str, Any]

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "RedactionRunFacet"


@attr.define
class ResidencyRunFacet(RunFacet):
    """Where the step ran and, for transfers, where the data went and on what basis."""

    region: str
    facts: dict[str, Any]

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "ResidencyRunFacet"


@attr.define
class DigestsDatasetFacet(DatasetFacet):
    """Digests of the data read or written (keyed digests for originals)."""

    digests: dict[str, Any]
    _additional_skip_redact: ClassVar[list[str]] = ["digests"]

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA + "DigestsDatasetFacet"


_REDACTION_HINTS = ("detector", "policy", "threshold", "operator", "leak", "model")
_RESIDENCY_HINTS = ("region", "transfer", "destination", "rule")


def _pick(params: dict[str, Any], hints: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if any(h in k for h in hints)}


def openlineage_event(payload: dict[str, Any], record_hash: str) -> RunEvent:
    entity = payload["entity"]
    params: dict[str, Any] = payload.get("parameters") or {}
    facets: dict[str, RunFacet] = {
        "lpg_lineage": LineageRecordRunFacet(
            seq=payload["seq"],
            recordHash=record_hash,
            action=payload["action"],
            actor=payload["actor"],
            region=payload["region"],
            parameters=params,
            producer=PRODUCER,
        ),
        "lpg_residency": ResidencyRunFacet(
            region=payload["region"], facts=_pick(params, _RESIDENCY_HINTS), producer=PRODUCER
        ),
    }
    redaction = _pick(params, _REDACTION_HINTS)
    if redaction:
        facets["lpg_redaction"] = RedactionRunFacet(facts=redaction, producer=PRODUCER)
    name = f"{entity['type']}/{entity['id']}"
    namespace = f"lpg://{payload['region']}"
    inputs = (
        [
            InputDataset(
                namespace,
                name,
                facets={"lpg_digests": DigestsDatasetFacet(digests=payload["inputs"])},
            )
        ]
        if payload.get("inputs")
        else []
    )
    outputs = (
        [
            OutputDataset(
                namespace,
                name,
                facets={"lpg_digests": DigestsDatasetFacet(digests=payload["outputs"])},
            )
        ]
        if payload.get("outputs")
        else []
    )
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=payload["time"],
        run=Run(runId=payload["record_id"], facets=facets),
        job=Job(namespace=NAMESPACE, name=payload["action"]),
        producer=PRODUCER,
        inputs=inputs,
        outputs=outputs,
    )


def openlineage_lines(records: Iterable[tuple[str, str]]) -> Iterable[str]:
    """(payload, record_hash) pairs -> one OpenLineage RunEvent JSON per line."""
    for payload, record_hash in records:
        yield Serde.to_json(openlineage_event(json.loads(payload), record_hash))


def prov_document(records: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """W3C PROV-JSON: each record an activity; entities are versions of what it changed."""
    doc: dict[str, Any] = {
        "prefix": {"lpg": "https://privacy-gateway.dev/ns/lineage#"},
        "entity": {},
        "activity": {},
        "agent": {},
        "wasAssociatedWith": {},
        "used": {},
        "wasGeneratedBy": {},
        "wasDerivedFrom": {},
    }
    latest: dict[str, str] = {}
    for text, record_hash in records:
        p = json.loads(text)
        seq, entity = p["seq"], p["entity"]
        act, agent = f"lpg:record-{seq}", f"lpg:{p['actor']['kind']}-{p['actor']['id']}"
        doc["activity"][act] = {
            "prov:startTime": p["time"],
            "prov:endTime": p["time"],
            "prov:type": p["action"],
            "lpg:seq": seq,
            "lpg:recordHash": record_hash,
            "lpg:region": p["region"],
            "lpg:parameters": json.dumps(p["parameters"], sort_keys=True),
        }
        doc["agent"].setdefault(agent, {"prov:type": p["actor"]["kind"]})
        doc["wasAssociatedWith"][f"lpg:assoc-{seq}"] = {"prov:activity": act, "prov:agent": agent}
        base = f"lpg:{entity['type']}-{entity['id']}"
        version = f"{base}-v{seq}"
        doc["entity"][version] = {
            "prov:type": entity["type"],
            "lpg:dataset": p["dataset"] or "",
            "lpg:digests": json.dumps(p["outputs"], sort_keys=True),
        }
        doc["wasGeneratedBy"][f"lpg:gen-{seq}"] = {"prov:entity": version, "prov:activity": act}
        if base in latest:
            doc["used"][f"lpg:use-{seq}"] = {"prov:activity": act, "prov:entity": latest[base]}
            doc["wasDerivedFrom"][f"lpg:der-{seq}"] = {
                "prov:generatedEntity": version,
                "prov:usedEntity": latest[base],
            }
        latest[base] = version
    return doc
