"""Import from an object-storage prefix (`privacy-gateway ingest s3://bucket/prefix`).

Lists the prefix a page at a time (S3's own key order) and imports each object as the
folder import does a file: one transaction per object, the same typed outcomes and summary.
Resumable by recorded objects: each object taken (accepted or refused) is recorded with its
asset in the same transaction, named by a keyed digest of (bucket, key, ETag); a re-run after
an interruption lists again and skips every recorded object without downloading it. Why not a
cursor (the last key done): objects added to the prefix later may sort before it, and a
cursor says nothing about an object replaced under the same key, which has a new ETag here
and is taken as the new content it is. The keyed content digest stays the last net: the
same bytes under another key are still one asset.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, InvalidRequest, NotFound
from gateway.core.models import Dataset, IngestedObject
from gateway.core.storage_s3 import StorageOutage, translated
from gateway.datasets import get_dataset
from gateway.ingest import Upload, ingest_upload
from gateway.ingest_dir import CLI, IngestSummary, Progress, Skipped, count_outcome
from gateway.pseudonymisation.dataset_secrets import content_digest_key


class IngestSourceUnavailable(GatewayError):
    """The source bucket could not be listed or read (credentials, endpoint): nothing of the
    objects not yet imported was taken; fix the access and run the same command again."""

    code, status, title = "ingest-source-unavailable", 502, "Import source unavailable"


@dataclass(frozen=True, slots=True)
class S3Source:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Source:
        """`s3://bucket` or `s3://bucket/prefix/`; anything else is a typed refusal."""
        rest = uri.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not uri.startswith("s3://") or not 3 <= len(bucket) <= 63 or "\x00" in prefix:
            raise InvalidRequest("give the source as s3://bucket/prefix", source=uri)
        return cls(bucket, prefix)


@dataclass(frozen=True, slots=True)
class SourceObject:
    key: str
    size: int
    etag: str


def list_pages(client: Any, source: S3Source) -> Iterator[list[SourceObject]]:
    """The prefix a listing page (up to 1000 objects) at a time: a million objects are never
    held at once, and importing starts with the first page."""
    paginator = client.get_paginator("list_objects_v2")
    with _source_errors(source):
        for page in paginator.paginate(Bucket=source.bucket, Prefix=source.prefix):
            yield [
                SourceObject(item["Key"], int(item["Size"]), str(item["ETag"]))
                for item in page.get("Contents", [])
            ]


@contextmanager
def _source_errors(source: S3Source) -> Iterator[None]:
    """The store's error translation, re-typed for a source (its bucket is not ours)."""
    try:
        with translated(source.bucket, source.prefix):
            yield
    except NotFound as exc:
        raise NotFound("the source bucket or object does not exist", bucket=source.bucket) from exc
    except (GatewayError, StorageOutage) as exc:
        reason = exc.details.get("reason") if isinstance(exc, GatewayError) else None
        if reason == "NoSuchBucket":
            raise NotFound("the source bucket does not exist", bucket=source.bucket) from exc
        raise IngestSourceUnavailable(
            f"the source bucket cannot be read ({reason or 'unreachable'}); fix the access "
            "and run the same command again (what was taken is kept)",
            bucket=source.bucket,
        ) from exc


def _read(client: Any, source: S3Source, obj: SourceObject) -> bytes:
    with _source_errors(source):
        body: bytes = client.get_object(Bucket=source.bucket, Key=obj.key, IfMatch=obj.etag)[
            "Body"
        ].read()
        return body


def source_digest(key: bytes, source: S3Source, obj: SourceObject) -> str:
    return crypto.keyed_digest(f"s3\0{source.bucket}\0{obj.key}\0{obj.etag}".encode(), key=key)


def _plan(
    objects: list[SourceObject], source: S3Source, *, max_bytes: int
) -> tuple[list[SourceObject], list[Skipped]]:
    """What to download, and what is named and left out (folder markers, hidden, too big)."""
    take: list[SourceObject] = []
    skipped: list[Skipped] = []
    for obj in objects:
        name = obj.key.removeprefix(source.prefix).lstrip("/") or obj.key
        if obj.key.endswith("/"):
            continue  # a folder marker of a console, not an object with content
        if any(part.startswith(".") for part in name.split("/")):
            skipped.append(Skipped(name, "hidden object"))
        elif obj.size > max_bytes:
            skipped.append(Skipped(name, f"larger than the upload limit ({max_bytes} bytes)"))
        else:
            take.append(obj)
    return take, skipped


def ingest_prefix(
    ctx: GatewayContext,
    source: S3Source,
    *,
    client: Any,
    dataset_ref: str,
    progress: Progress | None = None,
) -> IngestSummary:
    """Import the prefix page by page; `progress(done, listed so far)`."""
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
        digest_key = content_digest_key(ctx, session, dataset.id)
    summary = IngestSummary()
    done = listed = 0
    for page in list_pages(client, source):
        objects, skipped = _plan(page, source, max_bytes=ctx.settings.max_upload_bytes)
        summary.skipped += skipped
        listed += len(objects)
        digests = {obj: source_digest(digest_key, source, obj) for obj in objects}
        taken = _already_taken(ctx, dataset, list(digests.values()))
        for obj, recorded in digests.items():
            if recorded in taken:
                summary.resumed += 1  # taken by an earlier run: not downloaded again
            else:
                _import_one(ctx, client, source, obj, dataset, recorded, summary)
            done += 1
            if progress:
                progress(done, listed)
    return summary


def _already_taken(ctx: GatewayContext, dataset: Dataset, digests: list[str]) -> set[str]:
    """Which of a page's objects an earlier run recorded (one query per page)."""
    if not digests:
        return set()
    with transaction(ctx.engine) as session:
        rows = session.exec(
            select(IngestedObject.source_digest).where(
                IngestedObject.dataset_id == dataset.id,
                col(IngestedObject.source_digest).in_(digests),
            )
        ).all()
    return set(rows)


def _import_one(
    ctx: GatewayContext,
    client: Any,
    source: S3Source,
    obj: SourceObject,
    dataset: Dataset,
    recorded: str,
    summary: IngestSummary,
) -> None:
    data = _read(client, source, obj)
    name = obj.key.removeprefix(source.prefix).lstrip("/") or obj.key
    with transaction(ctx.engine) as session:
        _require_dataset(session, dataset)
        if session.get(IngestedObject, (dataset.id, recorded)) is not None:
            summary.resumed += 1  # another run took it meanwhile
            return
        outcome = ingest_upload(session, ctx, dataset, Upload(filename=name, data=data), actor=CLI)
        session.add(
            IngestedObject(
                dataset_id=dataset.id,
                source_digest=recorded,
                asset_id=outcome.asset_id,
                created_at=ctx.clock(),
            )
        )
    count_outcome(summary, outcome)


def _require_dataset(session: Session, dataset: Dataset) -> None:
    if session.get(Dataset, dataset.id) is None:
        raise NotFound("the dataset disappeared during import", dataset=dataset.name)
