"""Which search backend answers: Elasticsearch when ``Settings.elasticsearch_url`` is set,
the embedded store's FTS5 index otherwise. Both take the same query text and principal and
answer ``{"alerts": [...], "cases": [...]}``."""

from __future__ import annotations

from typing import Any, Protocol

from cases.search.fts import FtsSearch, install_fts
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


__all__ = ["SearchBackend", "search_backend"]
