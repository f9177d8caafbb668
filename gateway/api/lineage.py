"""Lineage over HTTP (compliance and admin roles): query records, an asset's full history with
inclusion proofs, signed checkpoints on demand, and the public keys to verify them with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from gateway.api.paging import (
    CURSOR_PAGED,
    DEFAULT_LIMIT,
    Limit,
    link_next_after,
)
from gateway.api.views import AssetHistoryView, CheckpointView, LineagePage, SigningKeysView
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.errors import NotFound
from gateway.core.models import MAX_BIGINT, Asset, Role
from gateway.deps import Context, DbSession
from gateway.lineage.bundle import key_line
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.service import asset_history, query_records, record_view
from gateway.lineage.signing import all_keys

router = APIRouter(tags=["lineage"])
READERS = (Role.COMPLIANCE, Role.ADMIN)
# without `dataset` the query reads every dataset's records: unscoped keys only
Querying = Annotated[
    Grant,
    authority(*READERS, scope=DatasetFrom.query("dataset", when_absent=DatasetFrom.global_)),
]
AssetReader = Annotated[Grant, authority(*READERS, scope=DatasetFrom.asset("asset_id"))]
# a checkpoint and the public keys name no dataset's data
Ledger = Annotated[Grant, authority(*READERS, scope=DatasetFrom.none)]


@router.get("/v1/lineage", response_model=LineagePage, responses=CURSOR_PAGED)
def list_lineage(
    session: DbSession,
    key: Querying,
    request: Request,
    response: Response,
    subject: Annotated[str | None, Query(description="a data subject's pseudonym")] = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    dataset: str | None = None,  # noqa: ARG001 (resolved and checked by the authority)
    action: str | None = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Records in chain order; page with `after_seq` (the last `seq` you received)."""
    rows = query_records(
        session,
        subject=subject,
        entity_type=entity_type,
        entity_id=entity_id,
        dataset_id=key.dataset_ids[0] if key.dataset_ids else None,
        action=action,
        after_seq=after_seq,
        limit=limit,
    )
    if len(rows) == limit:  # a full page: there may be more
        link_next_after(request, response, rows[-1].seq, limit)
    return {
        "records": [record_view(r) for r in rows],
        "next_after_seq": rows[-1].seq if rows else None,
    }


@router.get("/v1/lineage/assets/{asset_id}", response_model=AssetHistoryView)
def asset_lineage(
    ctx: Context, session: DbSession, key: AssetReader, asset_id: str
) -> dict[str, Any]:
    """An asset's full history, each record with an inclusion proof against a fresh signed
    checkpoint (verify with the keys from /v1/lineage/keys)."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.dataset_id != key.dataset_id:
        raise NotFound("no such asset", asset_id=asset_id)
    create_checkpoint(ctx, session)
    return asset_history(session, asset_id)


@router.post("/v1/lineage/checkpoints", status_code=201, response_model=CheckpointView)
def new_checkpoint(ctx: Context, session: DbSession, _: Ledger) -> dict[str, Any]:
    row = create_checkpoint(ctx, session)
    return {
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "body": row.body,
        "key_id": row.key_id,
        "signature": row.signature,
    }


@router.get("/v1/lineage/keys", response_model=SigningKeysView)
def signing_keys(session: DbSession, _: Ledger) -> dict[str, Any]:
    """Every lineage signing key with its rotation hand-over: pin a fingerprint from here."""
    return {
        "keys": [
            {k: v for k, v in key_line(row).items() if k != "kind"} for row in all_keys(session)
        ]
    }
