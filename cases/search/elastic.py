"""Elasticsearch: bulk indexing from the outbox, and search at national volume.

The official client sends ``helpers.streaming_bulk`` batches built from the outbox: a new
alert or case is an ``op_type=create`` action whose ``_id`` is the alert or case id, so a
redelivery after a crash answers 409 and never duplicates (SECURITY I4); a change is an
``index`` action versioned by its outbox sequence (``external_gte``), so an older replay
never overwrites a newer document. 429s are retried by the helper with backoff; when the
cluster is unreachable the drain backs off and stops, the rows stay, and the next drain
resumes from the same place, in order (I5).

Search never uses ``query_string``: the parsed query becomes ``term``/``terms``/``range``
filters and ``multi_match`` text clauses, and a non-staff principal's entity is a
server-side ``terms`` filter (B10). Cases are searched for staff only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch, helpers

from cases.search import documents, outbox
from cases.search.fts import MAX_RESULTS
from cases.search.query import Filter, SearchQuery, allowed_levels, parse
from cases.services.identity import Principal
from cases.store import Store
from pukara.core.errors import ExternalServiceError, InvalidInput
from pukara.core.taxonomy import TLP, Severity

ALERT_TEXT = ["title^2", "observables.text", "signature", "classification"]
CASE_TEXT = ["title^2", "description", "observables.text"]


def es_client(url: str, **options: Any) -> Elasticsearch:
    """A client for ``url`` (the transport retries timeouts itself)."""
    return Elasticsearch(url, retry_on_timeout=True, max_retries=3, **options)


def ensure_templates(client: Elasticsearch) -> list[str]:
    """Install or update the index templates; returns their names."""
    names = []
    for name, body in documents.templates().items():
        client.indices.put_index_template(name=name, **body)
        names.append(name)
    return names


@dataclass
class DrainResult:
    """What one drain did."""

    indexed: int = 0
    already: int = 0
    failed: int = 0
    remaining: int = 0


class OutboxWorker:
    """Drains the outbox into Elasticsearch, at least once, oldest first."""

    def __init__(self, store: Store, client: Elasticsearch, *, chunk_size: int = 500,
                 retries: int = 5, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.client = client
        self.chunk_size = chunk_size
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def lag(self) -> dict[str, Any]:
        """The index lag for the UI: pending changes, oldest one's age, dead letters."""
        with self.store.read() as conn:
            return outbox.lag(conn)

    def drain(self, limit: int = 10_000) -> DrainResult:
        """Send up to ``limit`` queued changes; ExternalServiceError if the cluster is down."""
        with self.store.read() as conn:
            entries = outbox.pending(conn, limit)
            groups = _group(entries)
            docs = {**_prefixed("alert", documents.alert_documents(
                        conn, [int(k[1]) for k in groups if k[0] == "alert"])),
                    **_prefixed("case", documents.case_documents(
                        conn, [k[1] for k in groups if k[0] == "case"]))}
        result = DrainResult()
        done, failed, errors = self._send(groups, docs, result)
        with self.store.write() as conn:
            outbox.acknowledge(conn, done)
            if failed:
                outbox.record_failure(conn, failed, "; ".join(errors)[:500])
            result.remaining = outbox.lag(conn)["pending"]
        return result

    def _send(self, groups: dict[tuple[str, str], list[outbox.Entry]],
              docs: dict[tuple[str, str], tuple[str, dict[str, Any]]],
              result: DrainResult) -> tuple[list[int], list[int], list[str]]:
        done = [e.seq for key, group in groups.items() if key not in docs for e in group]
        failed: list[int] = []
        errors: list[str] = []
        pending = {key: group for key, group in groups.items() if key in docs}
        for key, ok, status, error in self._bulk(_actions(pending, docs)):
            seqs = [e.seq for e in pending[key]]  # a 409 create leaves later changes queued
            if ok:
                result.indexed += 1
                done += seqs
            elif status == 409:
                result.already += 1
                done += [e.seq for e in pending[key] if e.op == "create"]
            else:
                result.failed += 1
                failed += seqs
                errors.append(f"{key[0]} {key[1]}: {status} {error}"[:200])
        return done, failed, errors

    def _bulk(self, actions: list[dict[str, Any]]) -> Iterator[tuple[tuple[str, str], bool,
                                                                       int, str]]:
        for attempt in range(self.retries + 1):
            try:
                answers = list(helpers.streaming_bulk(
                    self.client, actions, chunk_size=self.chunk_size, raise_on_error=False,
                    max_retries=3, initial_backoff=self.backoff, yield_ok=True))
                break
            except (TransportError, ApiError) as exc:
                if attempt == self.retries:
                    raise ExternalServiceError(
                        f"Elasticsearch unreachable after {self.retries + 1} attempts "
                        f"({type(exc).__name__}); the outbox keeps every change") from exc
                self.sleep(min(self.backoff * 2 ** attempt, 60.0))
        for ok, item in answers:
            op, info = next(iter(item.items()))
            kind = "alert" if info["_index"].startswith(f"{documents.PREFIX}-alerts-") else "case"
            error = info.get("error")
            yield (kind, str(info["_id"])), bool(ok), int(info.get("status", 0)), str(
                error.get("type") if isinstance(error, dict) else error or "")
            del op


def _prefixed(kind: str, found: dict[str, tuple[str, dict[str, Any]]]
              ) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    return {(kind, key): value for key, value in found.items()}


def _group(entries: list[outbox.Entry]) -> dict[tuple[str, str], list[outbox.Entry]]:
    groups: dict[tuple[str, str], list[outbox.Entry]] = {}
    for entry in entries:
        groups.setdefault((entry.kind, entry.object_id), []).append(entry)
    return groups


def _actions(groups: dict[tuple[str, str], list[outbox.Entry]],
             docs: dict[tuple[str, str], tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One action per object: ``create`` when it is new, else ``index`` at the newest seq."""
    actions = []
    for key, group in groups.items():
        index, source = docs[key]
        action: dict[str, Any] = {"_index": index, "_id": key[1], "_source": source}
        if any(e.op == "create" for e in group):
            action["_op_type"] = "create"
        else:
            action.update(_op_type="index", version=max(e.seq for e in group),
                          version_type="external_gte")
        actions.append(action)
    return actions


def _term_filter(item: Filter, fields: dict[str, str]) -> dict[str, Any]:
    value = item.value
    if item.field == "severity":
        return {"terms": {"severity": allowed_levels(item, Severity)}}
    if item.field == "tlp":
        return {"terms": {"tlp": allowed_levels(item, TLP)}}
    if item.field == "class":
        if value.endswith("*"):
            return {"prefix": {"classification": value.rstrip("*")}}
        if "/" not in value:
            return {"prefix": {"classification": f"{value}/"}}
        return {"term": {"classification": value}}
    if item.field == "case":
        return {"bool": {"should": [{"term": {fields["case_id"]: value}},
                                    {"term": {fields["case_number"]: value.upper()}}]}}
    if item.field not in fields:
        return {"match_none": {}}
    return {"term": {fields[item.field]: value}}


ALERT_FIELDS = {"entity": "entity_id", "status": "status", "source": "source",
                "observable": "observables", "case_id": "case_id", "case_number": "case_number"}
CASE_FIELDS = {"entity": "entity_ids", "status": "status", "observable": "observables",
               "case_id": "id", "case_number": "number"}


def query_body(query: SearchQuery, *, kind: str, entity_ids: list[str] | None) -> dict[str, Any]:
    """The Elasticsearch bool query of a parsed query; ``entity_ids`` limits what is seen."""
    fields, text, when = ((ALERT_FIELDS, ALERT_TEXT, "observed_at") if kind == "alert"
                          else (CASE_FIELDS, CASE_TEXT, "created_at"))
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    if entity_ids is not None:
        filters.append({"terms": {fields["entity"]: entity_ids}})
    for item in query.filters:
        (must_not if item.negate else filters).append(_term_filter(item, fields))
    span = {k: v.isoformat() for k, v in (("gte", query.since), ("lt", query.until)) if v}
    if span:
        filters.append({"range": {when: span}})
    for term in query.text:
        match: dict[str, Any] = {"query": term.text, "fields": text, "type": "phrase"}
        if not term.phrase:
            match.update(type="best_fields", operator="and")
        clause = {"multi_match": match}
        (must_not if term.negate else must).append(clause)
    return {"bool": {"filter": filters, "must": must, "must_not": must_not}}


class ElasticSearch:
    """The search backend on Elasticsearch (same answers as the FTS5 one)."""

    def __init__(self, client: Elasticsearch) -> None:
        self.client = client

    def search(self, query: str | SearchQuery, principal: Principal | None = None, *,
               limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """``{"alerts": [...], "cases": [...]}`` visible to ``principal`` (None = operator)."""
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidInput(f"limit must be 1..{MAX_RESULTS}", field="limit")
        parsed = parse(query) if isinstance(query, str) else query
        staff = principal is None or principal.is_staff
        entity_ids = None if staff else [str(principal.entity_id)] if principal else None
        found: dict[str, list[dict[str, Any]]] = {"alerts": [], "cases": []}
        try:
            hits = self._hits("alert", parsed, entity_ids, limit)
            found["alerts"] = [documents.alert_summary(h) for h in hits]
            if staff:
                found["cases"] = [documents.case_summary(h)
                                  for h in self._hits("case", parsed, None, limit)]
        except (TransportError, ApiError) as exc:
            raise ExternalServiceError(f"Elasticsearch search failed: {type(exc).__name__}"
                                       ) from exc
        return found

    def _hits(self, kind: str, query: SearchQuery, entity_ids: list[str] | None,
              limit: int) -> list[dict[str, Any]]:
        when = "observed_at" if kind == "alert" else "created_at"
        sort = [{when: "desc"}, {"id": "desc"}]  # Elasticsearch sorts matches cheaply
        answer = self.client.search(
            index=documents.pattern(kind), query=query_body(query, kind=kind,
                                                            entity_ids=entity_ids),
            sort=sort, size=limit, ignore_unavailable=True, allow_no_indices=True,
            track_total_hits=False)
        return [hit["_source"] for hit in answer["hits"]["hits"]]


__all__ = ["DrainResult", "ElasticSearch", "OutboxWorker", "ensure_templates", "es_client",
           "query_body"]
