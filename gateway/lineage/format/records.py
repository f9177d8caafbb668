"""The lineage record: what is hashed, and its place in the chain.

A record's payload is the RFC 8785 JSON of its body (below) with "seq" and "prev" added by the
sequencer; its hash is SHA-256(prev hash || payload) (`canonical.chain_hash`). RFC 8785 puts
the top-level keys in a fixed order: action, actor, dataset, entity, inputs, outputs,
parameters, prev, record_id, region, schema, seq, time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.core.errors import IntegrityFailure
from gateway.lineage.format.canonical import SCHEMA


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a change: an API key id, the CLI operator, a pseudonymised annotator, or a
    gateway component. Never a name or e-mail address."""

    kind: str  # "api-key" | "cli" | "annotator" | "system"
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True, slots=True)
class RecordBody:
    """A record before the sequencer gives it its place (`seq`, `prev`)."""

    record_id: str
    time: datetime
    actor: Actor
    action: str
    entity_type: str
    entity_id: str
    region: str
    dataset_id: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "record_id": self.record_id,
            "time": self.time.isoformat(timespec="microseconds"),
            "actor": self.actor.as_dict(),
            "action": self.action,
            "entity": {"type": self.entity_type, "id": self.entity_id},
            "dataset": self.dataset_id,
            "region": self.region,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "parameters": self.parameters,
        }


def with_position(body: str, *, record_id: str, seq: int, prev: str) -> bytes:
    """Insert "prev" and "seq" into a record body's canonical JSON where RFC 8785 key order
    puts them ("parameters" < "prev" < "record_id", "schema" < "seq" < "time"), without
    re-encoding the whole body. "time" is the last key and "record_id" precedes only "region",
    "schema" and "time", whose values the gateway itself writes, so `rfind` finds the top-level
    keys. (Tested equal to a full canonical encoding.)"""
    at_time = body.rfind(',"time":"')
    at_id = body.rfind(f',"record_id":"{record_id}"', 0, at_time)
    if at_time < 0 or at_id < 0:
        raise IntegrityFailure("malformed lineage record body", record_id=record_id)
    return (
        f'{body[:at_id]},"prev":"{prev}"{body[at_id:at_time]},"seq":{seq}{body[at_time:]}'
    ).encode()


def position(payload: str) -> tuple[int, str]:
    """The payload's top-level "seq" and "prev" without parsing it all (the inverse of
    `with_position`): in canonical JSON they follow every other key but "record_id", "region",
    "schema" and "time", so the last match is the top-level key. (A payload crafted to fool
    this cannot match its signed hash anyway.)"""
    at_prev, at_seq = payload.rfind(',"prev":"'), payload.rfind(',"seq":')
    end_seq = payload.find(",", at_seq + 7)
    if at_prev < 0 or at_seq < 0 or end_seq < 0:
        fields = json.loads(payload)
        return int(fields["seq"]), str(fields["prev"])
    return int(payload[at_seq + 7 : end_seq]), payload[at_prev + 9 : at_prev + 73]
