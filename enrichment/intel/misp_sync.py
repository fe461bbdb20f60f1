"""Pull published events from a MISP server with PyMISP, incrementally.

Only published events and ``to_ids`` attributes are fetched, page by page, newer than the
last sync (``publish_timestamp``, kept per source in the store). The API key is a SecretStr;
it is never logged and is scrubbed from every error text. The MISP URL is admin
configuration: nothing here fetches URLs taken from submitted data (SECURITY G1).

:class:`MispClient` is the small seam the sync needs; :func:`connect_misp` returns the real
PyMISP-backed client, tests pass a fake one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from pydantic import SecretStr

from enrichment.intel import misp_events
from enrichment.intel.loaders import LoadReport
from enrichment.intel.store import IntelStore
from pukara.core.config import Settings
from pukara.core.errors import ConfigError, ExternalServiceError
from pukara.core.schema import ParseFailure, utcnow


class MispClient(Protocol):
    """The one PyMISP call the sync uses (``PyMISP.search``)."""

    def search(self, **query: Any) -> Any:
        """MISP restSearch; returns a list of ``{"Event": …}`` or ``{"errors": …}``."""
        ...


def scrub(text: str, secret: str) -> str:
    """``text`` with ``secret`` (and nothing else) masked."""
    return text.replace(secret, "***") if secret else text


class PyMispClient:
    """MispClient backed by ``pymisp.PyMISP``; errors become scrubbed ExternalServiceErrors."""

    def __init__(self, url: str, key: SecretStr, verify_tls: bool = True, timeout: float = 60):
        from pymisp import PyMISP

        self._secret = key.get_secret_value()
        self._url = url
        problem: str | None = None
        try:
            self._misp = PyMISP(url, self._secret, ssl=verify_tls, timeout=timeout)
        except Exception as exc:  # PyMISP raises its own errors and requests' ones
            problem = self._why(exc)
        if problem is not None:  # raised outside the handler: no chained original (K3)
            raise ExternalServiceError(problem)

    def _why(self, exc: Exception) -> str:
        text = f"MISP at {self._url} unreachable or refused the key: {exc}"
        return scrub(text, self._secret)

    def search(self, **query: Any) -> Any:
        """PyMISP search, errors scrubbed."""
        problem: str | None = None
        try:
            return self._misp.search(**query)
        except Exception as exc:  # network, TLS, HTTP and PyMISP errors alike
            problem = self._why(exc)
        raise ExternalServiceError(problem)


def connect_misp(settings: Settings) -> PyMispClient:
    """The PyMISP client for the configured server (ConfigError when none is configured)."""
    if not settings.misp_url:
        raise ConfigError("no MISP server configured: set misp_url (PUKARA_MISP_URL)")
    if not settings.misp_key.get_secret_value():
        raise ConfigError("no MISP API key configured: set misp_key (PUKARA_MISP_KEY)")
    return PyMispClient(settings.misp_url, settings.misp_key, settings.misp_verify_tls)


class MispSync:
    """Incremental pull of published events into the IntelStore."""

    def __init__(
        self,
        store: IntelStore,
        client: MispClient,
        *,
        source: str = "misp",
        page_size: int = 100,
        include_non_ids: bool = False,
    ) -> None:
        self.store = store
        self.client = client
        self.source = source
        self.page_size = page_size
        self.include_non_ids = include_non_ids

    def sync(self, full: bool = False) -> LoadReport:
        """Fetch events published since the last sync (all with ``full``) and load them."""
        state = self.store.source(self.source)
        since = 0 if full or state is None else state.last_timestamp
        report = LoadReport(source=self.source, kind="misp-sync", location="misp server")
        newest = since
        now = utcnow()
        options = misp_events.RowOptions(self.source, "", now, self.include_non_ids)
        for event in self._events(since):
            report.events += 1
            newest = max(newest, misp_events.int_or_zero(event.get("publish_timestamp")))
            rows = misp_events.event_rows(event, options, report.skipped)
            self._drain(rows, report)
        self.store.record_source(self.source, "misp-sync", location="misp server",
                                 last_timestamp=newest, loaded=report.loaded,
                                 rejected=report.rejected)  # fmt: skip
        return report

    def _drain(self, rows: Iterator[dict[str, Any] | ParseFailure], report: LoadReport) -> None:
        good: list[dict[str, Any]] = []
        for row in rows:
            if isinstance(row, ParseFailure):
                report.fail(row)
            else:
                good.append(row)
        report.loaded += self.store.upsert_rows(good)

    def _events(self, since: int) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            query: dict[str, Any] = {
                "controller": "events", "published": True, "to_ids": not self.include_non_ids,
                "limit": self.page_size, "page": page, "pythonify": False,
            }  # fmt: skip
            if since:
                query["publish_timestamp"] = since
            answer = self.client.search(**query)
            if isinstance(answer, dict) and "errors" in answer:
                raise ExternalServiceError(f"MISP search failed: {str(answer['errors'])[:500]}")
            events = misp_events.unwrap_events(answer) or []
            yield from (e for e in events if e.get("published") in (True, 1, "1", "true"))
            if len(events) < self.page_size:
                return
            page += 1
