"""Elasticsearch indexing and search: document mapping, the outbox (I4, I5), the query body
(B10), and — only when ``PUKARA_TEST_ES_URL`` names a cluster — a live round trip.

Elasticsearch is a system we cannot run here, so the unit tests give the real
``Elasticsearch`` client a fake *node* (``node_class``, the client's transport seam):
``FakeCluster`` answers ``_index_template`` and ``_bulk`` requests the way Elasticsearch
does (201 on create, 409 on a second create of the same ``_id``, external versions), can be
switched "down" (connection refused), and records every bulk request in order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders, NodeConfig
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch
from sqlalchemy import select

from cases.search import documents, outbox
from cases.search.elastic import ElasticSearch, OutboxWorker, ensure_templates, query_body
from cases.search.query import parse
from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.services.identity import Principal, Role
from cases.store.tables import alerts
from cases.store.tables_sharing import search_outbox
from pukara.core.errors import ExternalServiceError
from tests.cases.case_kit import NMAP, alert_ids
from tests.cases.sharing_kit import SharedCase, build_case, make_services

BCRP = Principal(Role.REPORTER, 2, entity_id="bcrp")


@dataclass
class FakeCluster:
    """The state behind the fake node."""

    down: bool = False
    templates: dict[str, Any] = field(default_factory=dict)
    docs: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    bulk_ids: list[list[str]] = field(default_factory=list)
    searches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        """Record the request; answer every document of the index pattern (no scoring)."""
        self.searches.append((index, body))
        prefix = index.rstrip("*")
        hits = [{"_index": k[0], "_id": k[1], "_source": v[1]}
                for k, v in self.docs.items() if k[0].startswith(prefix)]
        return {"took": 1, "timed_out": False, "hits": {"hits": hits[: body["size"]]}}

    def bulk(self, body: bytes) -> dict[str, Any]:
        lines = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        items, ids = [], []
        for meta_line, source in zip(lines[::2], lines[1::2], strict=True):
            op, meta = next(iter(meta_line.items()))
            ids.append(meta["_id"])
            items.append({op: {"_index": meta["_index"], "_id": meta["_id"],
                               **self._apply(op, meta, source)}})
        self.bulk_ids.append(ids)
        return {"took": 1, "errors": any("error" in next(iter(i.values())) for i in items),
                "items": items}

    def _apply(self, op: str, meta: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
        key = (meta["_index"], meta["_id"])
        if op == "create":
            if key in self.docs:
                return {"status": 409, "error": {"type": "version_conflict_engine_exception"}}
            self.docs[key] = (1, source)
            return {"status": 201, "result": "created"}
        version = int(meta["version"])
        if key in self.docs and self.docs[key][0] > version:
            return {"status": 409, "error": {"type": "version_conflict_engine_exception"}}
        status = 200 if key in self.docs else 201
        self.docs[key] = (version, source)
        return {"status": status, "result": "updated"}


class FakeNode(BaseNode):
    """A node of FakeCluster (the cluster is set on a per-test subclass)."""

    cluster: FakeCluster

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None, request_timeout: Any = None
                        ) -> NodeApiResponse:
        if self.cluster.down:
            raise TransportConnectionError("connection refused (fake cluster is down)")
        path = target.split("?", maxsplit=1)[0]
        if path.startswith("/_index_template/"):
            self.cluster.templates[path.rsplit("/", 1)[1]] = orjson.loads(body or b"{}")
            answer: dict[str, Any] = {"acknowledged": True}
        elif path.endswith("/_bulk"):
            answer = self.cluster.bulk(body or b"")
        elif path.endswith("/_search"):
            answer = self.cluster.search(path.strip("/").split("/")[0].replace("%2A", "*"),
                                         orjson.loads(body or b"{}"))
        else:
            raise AssertionError(f"the fake cluster does not serve {method} {path}")
        meta = ApiResponseMeta(200, "1.1", HttpHeaders({
            "content-type": "application/json", "x-elastic-product": "Elasticsearch"}),
            0.0, self.config)
        return NodeApiResponse(meta, orjson.dumps(answer))


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def client(cluster: FakeCluster) -> Elasticsearch:
    node = type("BoundFakeNode", (FakeNode,), {"cluster": cluster})
    return Elasticsearch("http://fake-es:9200", node_class=node, max_retries=0)


@pytest.fixture
def queued(pukara_home: Path, shared_data: Path) -> Iterator[SharedCase]:
    """Outbox triggers installed first, then the shared case built from the real samples."""
    built = make_services(pukara_home)
    with built.store.write() as conn:
        outbox.install_outbox_triggers(conn)
    try:
        yield build_case(built, shared_data)
    finally:
        built.close()


def outbox_rows(case: SharedCase) -> list[tuple[str, str, str]]:
    with case.built.store.read() as conn:
        rows = conn.execute(select(search_outbox).order_by(search_outbox.c.seq))
        return [(r.kind, r.object_id, r.op) for r in rows]


def test_alert_document_of_the_real_sample(queued: SharedCase) -> None:
    nmap = alert_ids(queued.built, NMAP)[0]
    with queued.built.store.read() as conn:
        index, doc = documents.alert_documents(conn, [nmap])[str(nmap)]
        case_index, case_doc = documents.case_documents(conn, [queued.case_id])[queued.case_id]
    assert index == "pukara-alerts-2026.06"
    assert (doc["title"], doc["entity_id"], doc["source"], doc["status"]) == (
        NMAP, "minsa", "suricata", "promoted")
    assert doc["observables"] == ["192.168.137.1", "192.168.137.128"]
    assert (doc["case_id"], doc["case_number"]) == (queued.case_id, queued.number)
    assert case_index == f"pukara-cases-{case_doc['created_at'][:4]}.{case_doc['created_at'][5:7]}"
    assert case_doc["entity_ids"] == ["minsa"]
    assert "0749bae92ca336a02c83d126e04ec628" in case_doc["observables"]
    properties = {name: body["template"]["mappings"]["properties"]
                  for name, body in documents.templates().items()}
    assert set(doc) <= set(properties["pukara-alerts"])
    assert set(case_doc) <= set(properties["pukara-cases"])


def test_triggers_fill_the_outbox_in_the_write(queued: SharedCase) -> None:
    rows = outbox_rows(queued)
    created = [r for r in rows if r[0] == "alert" and r[2] == "create"]
    assert len(created) == 56
    assert ("case", queued.case_id, "create") in rows
    promoted = {r[1] for r in rows if r[0] == "alert" and r[2] == "index"}
    assert promoted == {str(i) for i in queued.alert_ids}


def test_drain_indexes_everything_once(queued: SharedCase, client: Elasticsearch,
                                       cluster: FakeCluster) -> None:
    assert ensure_templates(client) == ["pukara-alerts", "pukara-cases"]
    assert cluster.templates["pukara-alerts"]["template"]["settings"][
        "index.translog.durability"] == "request"
    result = OutboxWorker(queued.built.store, client).drain()
    assert (result.indexed, result.already, result.failed, result.remaining) == (57, 0, 0, 0)
    assert len([k for k in cluster.docs if k[0].startswith("pukara-alerts-")]) == 56
    with queued.built.store.read() as conn:
        assert outbox.lag(conn)["pending"] == 0


def test_redelivery_never_duplicates(queued: SharedCase, client: Elasticsearch,
                                     cluster: FakeCluster) -> None:
    worker = OutboxWorker(queued.built.store, client)
    worker.drain()
    with queued.built.store.write() as conn:  # a crash between the 201s and the delete
        ids = list(conn.execute(select(alerts.c.id)).scalars())
        outbox.enqueue(conn, "alert", ids, "create")
    again = worker.drain()
    assert (again.indexed, again.already) == (0, 56)
    assert len(cluster.docs) == 57


def test_cluster_down_keeps_the_backlog_and_drains_in_order(
        queued: SharedCase, client: Elasticsearch, cluster: FakeCluster) -> None:
    sleeps: list[float] = []
    worker = OutboxWorker(queued.built.store, client, retries=3, backoff=0.5,
                          sleep=sleeps.append)
    cluster.down = True
    with pytest.raises(ExternalServiceError, match="unreachable after 4 attempts"):
        worker.drain()
    assert sleeps == [0.5, 1.0, 2.0]
    backlog = worker.lag()
    assert backlog["pending"] == len(outbox_rows(queued))
    assert backlog["lag_seconds"] is not None
    cluster.down = False
    assert worker.drain(limit=20).remaining == backlog["pending"] - 20
    worker.drain()
    sent = [i for batch in cluster.bulk_ids for i in batch]
    alert_order = [int(i) for i in sent if i.isdigit()]
    assert alert_order[:20] == sorted(alert_order[:20])
    with queued.built.store.read() as conn:
        assert outbox.lag(conn)["pending"] == 0


def test_changes_are_versioned_by_outbox_seq(queued: SharedCase, client: Elasticsearch,
                                             cluster: FakeCluster) -> None:
    worker = OutboxWorker(queued.built.store, client)
    worker.drain()
    icmp = alert_ids(queued.built, "ICMP Ping Detected")[0]
    queued.built.triage.acknowledge(AlertFilter(ids=(icmp,)), audit.Actor("ana"))
    with queued.built.store.read() as conn:
        seq = conn.execute(select(search_outbox.c.seq).where(
            search_outbox.c.object_id == str(icmp))).scalar_one()
    assert worker.drain().indexed == 1
    version, source = next(v for k, v in cluster.docs.items() if k[1] == str(icmp))
    assert (version, source["status"]) == (seq, "acknowledged")


def test_search_request_and_result_shape(queued: SharedCase, client: Elasticsearch,
                                         cluster: FakeCluster) -> None:
    OutboxWorker(queued.built.store, client).drain()
    found = ElasticSearch(client).search("nmap entity_id:*", BCRP, limit=5)
    assert [index for index, _ in cluster.searches] == ["pukara-alerts-*"]
    body = cluster.searches[0][1]
    assert body["query"]["bool"]["filter"] == [{"terms": {"entity_id": ["bcrp"]}}]
    assert (body["size"], body["sort"]) == (5, [{"observed_at": "desc"}, {"id": "desc"}])
    assert found["cases"] == []
    assert set(found["alerts"][0]) == {
        "id", "fingerprint", "source", "entity_id", "title", "classification", "severity",
        "tlp", "status", "observed_at", "last_seen", "count", "hits", "exercise_id", "case_id"}


def test_query_body_keeps_the_entity_filter_server_side() -> None:
    body = query_body(parse('entity_id:* OR _id:1 "port scan" -status:dismissed'),
                      kind="alert", entity_ids=["bcrp"])
    assert body["bool"]["filter"] == [{"terms": {"entity_id": ["bcrp"]}}]
    assert body["bool"]["must_not"] == [{"term": {"status": "dismissed"}}]
    assert [c["multi_match"]["query"] for c in body["bool"]["must"]] == [
        "entity_id:*", "OR", "_id:1", "port scan"]
    assert b"query_string" not in orjson.dumps(body)


def test_query_body_fields() -> None:
    body = query_body(parse("severity:>=high class:malicious-code/* case:case-2026-000001 "
                            "observable:1.2.3.4 since:2026-01-01"), kind="alert",
                      entity_ids=None)
    assert body["bool"]["filter"] == [
        {"terms": {"severity": ["high", "critical"]}},
        {"prefix": {"classification": "malicious-code/"}},
        {"bool": {"should": [{"term": {"case_id": "case-2026-000001"}},
                             {"term": {"case_number": "CASE-2026-000001"}}]}},
        {"term": {"observables": "1.2.3.4"}},
        {"range": {"observed_at": {"gte": "2026-01-01T00:00:00+00:00"}}},
    ]


ES_URL = os.environ.get("PUKARA_TEST_ES_URL", "")


@pytest.mark.skipif(not ES_URL, reason="PUKARA_TEST_ES_URL is not set: no Elasticsearch "
                                       "cluster to index into")
def test_live_cluster(queued: SharedCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "PREFIX", f"pukara-test-{uuid.uuid4().hex[:8]}")
    live = Elasticsearch(ES_URL)
    try:
        ensure_templates(live)
        result = OutboxWorker(queued.built.store, live).drain()
        assert (result.indexed, result.failed) == (57, 0)
        live.indices.refresh(index=f"{documents.PREFIX}-*")
        search = ElasticSearch(live)
        found = search.search('"Nmap SYN Port Scan"', None)
        assert [a["title"] for a in found["alerts"]] == [NMAP]
        assert [c["number"] for c in found["cases"]] == [queued.number]
        assert search.search("entity_id:* OR nmap", BCRP) == {"alerts": [], "cases": []}
    finally:
        live.indices.delete(index=f"{documents.PREFIX}-*", ignore_unavailable=True)
        for name in documents.templates():
            live.indices.delete_index_template(name=name)


def test_postgresql_outbox(pukara_home: Path, shared_data: Path, pg_url: str,
                           client: Elasticsearch, cluster: FakeCluster) -> None:
    """The PL/pgSQL triggers fill the outbox the same way; the drain empties it."""
    built = make_services(pukara_home, pg_url)
    try:
        with built.store.write() as conn:
            assert outbox.install_outbox_triggers(conn) is True
            assert outbox.install_outbox_triggers(conn) is True
        case = build_case(built, shared_data)
        rows = outbox_rows(case)
        assert len([r for r in rows if r[0] == "alert" and r[2] == "create"]) == 56
        assert ("case", case.case_id, "create") in rows
        result = OutboxWorker(built.store, client).drain()
        assert (result.indexed, result.failed, result.remaining) == (57, 0, 0)
    finally:
        built.close()
