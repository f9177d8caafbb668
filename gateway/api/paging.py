"""One pagination scheme for every list: `limit` (1-1000, default 100) picks the page size and
the body stays what it was (a JSON list, or the lineage page). When more follow, the answer has
a `Link: <...>; rel="next"` header (RFC 8288) with the next page's URL; `X-Total-Count` says how
many the caller may see in all. Resource lists page with `offset`; the lineage ledger pages with
`after_seq`, a cursor that stays right while records are appended."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response

from gateway.core.models import MAX_BIGINT

T = TypeVar("T")
MAX_LIMIT, DEFAULT_LIMIT = 1000, 100
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]

_LINK = {
    "description": 'RFC 8288: `<url>; rel="next"` when more follow',
    "schema": {"type": "string"},
}
_TOTAL = {"description": "how many the caller may see in all", "schema": {"type": "integer"}}
PAGED: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"Link": _LINK, "X-Total-Count": _TOTAL}}
}
CURSOR_PAGED: dict[int | str, dict[str, Any]] = {200: {"headers": {"Link": _LINK}}}


@dataclass(frozen=True)
class PageQuery:
    limit: Limit = DEFAULT_LIMIT
    offset: Annotated[int, Query(ge=0, le=MAX_BIGINT, description="items to skip")] = 0


Paging = Annotated[PageQuery, Depends()]


def page(items: Sequence[T], paging: PageQuery, request: Request, response: Response) -> list[T]:
    """The page `paging` names out of `items` (already filtered to what the caller may see)."""
    end = paging.offset + paging.limit
    response.headers["X-Total-Count"] = str(len(items))
    if end < len(items):
        next_url = request.url.include_query_params(offset=end, limit=paging.limit)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return list(items[paging.offset : end])


def link_next_after(request: Request, response: Response, after_seq: int, limit: int) -> None:
    """The lineage ledger's next page: the same query from `after_seq` on."""
    next_url = request.url.include_query_params(after_seq=after_seq, limit=limit)
    response.headers["Link"] = f'<{next_url}>; rel="next"'
