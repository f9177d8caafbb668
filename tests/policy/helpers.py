"""Helpers for policy tests: real policy documents, activated and bound through the core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import col, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Dataset, LineageRecord
from gateway.lineage import Actor
from gateway.lineage.ledger import drain
from gateway.policy.schema import PolicyDocument
from gateway.policy.versions import Activation, activate

DEFAULT = Path(__file__).resolve().parents[2] / "gateway" / "policies" / "default.yaml"
ADMIN = Actor("cli", "admin")


def policy_doc(name: str = "test-policy", **sections: dict[str, Any]) -> PolicyDocument:
    """The shipped default policy with some sections' fields replaced."""
    data = yaml.safe_load(DEFAULT.read_text())
    data["name"] = name
    for section, fields in sections.items():
        data[section] = {**data[section], **fields}
    return PolicyDocument.model_validate(data)


def bind(ctx: GatewayContext, dataset: Dataset, doc: PolicyDocument) -> Activation:
    with transaction(ctx.engine) as s:
        return activate(s, ctx, doc, actor=ADMIN, dataset_ref=dataset.id)


def lineage(ctx: GatewayContext, action: str | None = None) -> list[dict[str, Any]]:
    """Committed lineage payloads (the outbox drained first), oldest first."""
    drain(ctx.engine)
    with transaction(ctx.engine) as s:
        stmt = select(LineageRecord).order_by(col(LineageRecord.seq))
        if action is not None:
            stmt = stmt.where(LineageRecord.action == action)
        return [json.loads(r.payload) for r in s.exec(stmt).all()]
