"""Which search backend answers: Elasticsearch when ``Settings.elasticsearch_url`` is set,
the embedded store's FTS5 index otherwise. Both take the same query text and principal and
answer ``{"alerts": [...], "cases": [...]}``.

The FTS5 alert index lags the writes (:mod:`cases.search.fts_indexer`): ``FtsSearch`` catches
up before a query with words or observables, and so must any other caller that reads
``alerts_fts`` on SQLite, whichever backend is configured (the paged alert list of the
analyst API and the TUI uses :func:`cases.search.fts.alert_select`): call :func:`catch_up`
with the store first. It costs one read when nothing is pending.
"""

from __future__ import annotations

from typing import Any, Protocol

from cases.search.fts import FtsSearch, install_fts
from cases.search.fts_indexer import catch_up
from cases.search.query import SearchQuery
from cases.services.identity import Principal
from cases.store import Store
from pukara.core.config import Settings


class SearchBackend(Protocol):
    """A search over alerts and cases, narrowed to what ``principal`` may see."""

    def search(self, query: str | SearchQuery, principal: Principal | None = None, *,
               limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """Matching alerts and cases, newest first."""
        ...


def search_backend(store: Store, settings: Settings) -> SearchBackend:
    """The configured backend (the FTS5 index is installed on first use)."""
    if settings.elasticsearch_url:
        from cases.search.elastic import ElasticSearch, es_client

        return ElasticSearch(es_client(settings.elasticsearch_url))
    with store.write() as conn:
        install_fts(conn)
    return FtsSearch(store)


__all__ = ["SearchBackend", "catch_up", "search_backend"]
