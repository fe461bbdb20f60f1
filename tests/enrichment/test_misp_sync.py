"""MISP sync. No MISP server can run here, so the unit tests use FakeMisp — a fake of the
one client call we make (``search``), serving the real event files — injected through the
MispClient Protocol. The integration test runs against a real server only when
PUKARA_TEST_MISP_URL and PUKARA_TEST_MISP_KEY are set."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from enrichment.intel import misp_events
from enrichment.intel.misp_sync import MispSync, PyMispClient, connect_misp, scrub
from enrichment.intel.store import IntelStore
from pukara.core.config import Settings
from pukara.core.errors import ConfigError, ExternalServiceError

KEY = "k3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK"


class FakeMisp:
    """Fake MISP server: the real events, filtered the way restSearch filters them."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.queries: list[dict[str, Any]] = []

    def search(self, **query: Any) -> Any:
        self.queries.append(query)
        since = query.get("publish_timestamp", 0)
        chosen = [e for e in self.events
                  if int(e.get("publish_timestamp", 0)) >= since
                  and (not query.get("published") or e.get("published"))]
        start = (query["page"] - 1) * query["limit"]
        return [{"Event": e} for e in chosen[start:start + query["limit"]]]


def _event(shared_data: Path, name: str, published: bool, stamp: int) -> dict[str, Any]:
    (event,) = misp_events.read_event_file(shared_data / name)
    return {**event, "published": published, "publish_timestamp": str(stamp)}


@pytest.fixture
def server(shared_data: Path) -> FakeMisp:
    return FakeMisp([
        _event(shared_data, "misp/eset/glupteba__glupteba.misp-event.json", True, 1520624753),
        _event(shared_data, "misp/sighting_1.json", True, 1533306002),
        _event(shared_data, "misp/HTML_event.json", False, 1600000000),  # never published
    ])


def test_first_sync_then_incremental(store: IntelStore, server: FakeMisp) -> None:
    sync = MispSync(store, server, source="misp-test", page_size=100)
    first = sync.sync()
    assert (first.events, first.loaded, first.rejected) == (2, 330, 0)
    assert server.queries[0] == {"controller": "events", "published": True, "to_ids": True,
                                 "limit": 100, "page": 1, "pythonify": False}
    assert store.source("misp-test").last_timestamp == 1533306002  # type: ignore[union-attr]
    second = sync.sync()
    assert server.queries[1]["publish_timestamp"] == 1533306002
    assert (second.events, second.loaded) == (1, 5)  # only the newest event (>= last sync)
    assert store.stats()["by_source"] == {"misp-test": 330}


def test_paging_and_unpublished_events_are_dropped(store: IntelStore, server: FakeMisp) -> None:
    for event in server.events:
        event["published"] = True
    server.events[2]["published"] = False

    class Careless(FakeMisp):  # a server that ignores the published filter
        def search(self, **query: Any) -> Any:
            return super().search(**{**query, "published": False})

    careless = Careless(server.events)
    report = MispSync(store, careless, page_size=1).sync()
    assert [q["page"] for q in careless.queries] == [1, 2, 3, 4]
    assert report.events == 2


def test_server_errors_are_external_service_errors(store: IntelStore) -> None:
    class Refusing:
        def search(self, **query: Any) -> Any:
            return {"errors": (403, {"message": "Authentication failed."})}

    with pytest.raises(ExternalServiceError, match="Authentication failed"):
        MispSync(store, Refusing()).sync()


def test_unreachable_server_error_never_shows_the_key() -> None:
    with pytest.raises(ExternalServiceError) as caught:
        PyMispClient("http://127.0.0.1:9", SecretStr(KEY), verify_tls=False, timeout=3)
    text = "".join(traceback.format_exception(caught.value))
    assert "unreachable or refused the key" in str(caught.value)
    assert KEY not in text and caught.value.__context__ is None


def test_scrub_and_configuration_errors() -> None:
    assert scrub(f"Authorization: {KEY} refused", KEY) == "Authorization: *** refused"
    with pytest.raises(ConfigError, match="no MISP server configured"):
        connect_misp(Settings(misp_url=""))
    with pytest.raises(ConfigError, match="no MISP API key"):
        connect_misp(Settings(misp_url="https://misp.example"))


@pytest.mark.skipif(not os.environ.get("PUKARA_TEST_MISP_URL"),
                    reason="set PUKARA_TEST_MISP_URL and PUKARA_TEST_MISP_KEY to test a real MISP")
def test_real_misp_server(store: IntelStore) -> None:
    settings = Settings(misp_url=os.environ["PUKARA_TEST_MISP_URL"],
                        misp_key=SecretStr(os.environ.get("PUKARA_TEST_MISP_KEY", "")),
                        misp_verify_tls=os.environ.get("PUKARA_TEST_MISP_VERIFY", "1") == "1")
    sync = MispSync(store, connect_misp(settings), source="misp-live")
    report = sync.sync()
    assert store.stats()["by_source"].get("misp-live", 0) == report.loaded
    state = store.source("misp-live")
    assert state is not None and (state.last_timestamp > 0) == (report.events > 0)
    again = sync.sync()  # incremental: at most the events published at the last timestamp
    assert again.events <= report.events
