"""The TUI's paged queries: :mod:`cases.services.paging` (shared with the analyst API), with
pages returned as :class:`tui.client.base.Page`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

from cases.search.query import SearchQuery
from cases.services import paging
from cases.services.paging import (
    RECENT_HITS_WINDOW,
    capped_count,
    deadline_lists,
    entity_incidents,
    open_counts,
    top_indicators,
)
from tui.client.base import Page

__all__ = ["RECENT_HITS_WINDOW", "alert_page", "capped_count", "case_page", "deadline_lists",
           "entity_incidents", "iter_hits", "open_counts", "top_indicators"]


def _page(document: dict[str, Any], offset: int) -> Page:
    return Page(rows=document["items"], total=document["total"], offset=offset,
                total_capped=document["total_capped"])


def alert_page(conn: Connection, query: SearchQuery, sort: str, offset: int,
               limit: int) -> Page:
    """A page of alerts with its (capped) total."""
    return _page(paging.alert_page(conn, query, sort, offset, limit), offset)


def case_page(conn: Connection, query: SearchQuery, *, status: str | None,
              include_closed: bool, sort: str, offset: int, limit: int) -> Page:
    """A page of cases with its total."""
    return _page(paging.case_page(conn, query, status=status, include_closed=include_closed,
                                  sort=sort, offset=offset, limit=limit), offset)


def iter_hits(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The hits of an alert document (enrichment: MISP event, YARA rule, warninglist)."""
    yield from doc.get("hits", [])
