"""Loaders: MISP feed folders and event files, STIX 2.1 bundles, plain lists, warninglists.

Each loader streams rows into the IntelStore and reports what it did in a
:class:`LoadReport`: how many indicators were written, what was skipped (and why) and every
bad attribute or line as a ParseFailure (where and why) — the rest still loads. Only
``to_ids`` MISP attributes load unless ``include_non_ids`` is set.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from collectors.parsers.stix import StixBundleParser
from enrichment.intel import misp_events
from enrichment.intel.store import IntelStore, indicator_row
from enrichment.intel.warninglists import read_warninglist
from pukara.core.errors import InvalidInput, ParseError
from pukara.core.observables import guess_type, normalize, refang
from pukara.core.schema import Indicator, ParseFailure, RawReport, utcnow

MAX_REPORTED_FAILURES = 1000
Item = dict[str, Any] | ParseFailure


@dataclass
class LoadReport:
    """What one load did."""

    source: str
    kind: str
    location: str
    loaded: int = 0
    rejected: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[ParseFailure] = field(default_factory=list)

    def fail(self, failure: ParseFailure) -> None:
        """Count a bad record; keep the first MAX_REPORTED_FAILURES of them."""
        self.rejected += 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures.append(failure)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "source": self.source,
            "kind": self.kind,
            "location": self.location,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "events": self.events,
            "skipped": dict(sorted(self.skipped.items())),
            "errors": [
                {"source": f.source, "line": f.line, "record": f.record, "error": f.reason}
                for f in self.failures
            ],
        }


def _drain(store: IntelStore, items: Iterable[Item], report: LoadReport) -> None:
    def rows() -> Iterator[dict[str, Any]]:
        for item in items:
            if isinstance(item, ParseFailure):
                report.fail(item)
            else:
                yield item

    report.loaded += store.upsert_rows(rows())


# -- MISP ---------------------------------------------------------------------------------
def load_misp_event_file(
    store: IntelStore,
    path: Path,
    *,
    source: str | None = None,
    include_non_ids: bool = False,
    strict: bool = False,
) -> LoadReport:
    """Load one MISP event file (``{"Event": …}``, REST ``{"response": [{"Event": …}]}``)."""
    name = source or f"misp-file:{path.name}"
    report = LoadReport(source=name, kind="misp-event", location=str(path))
    events = misp_events.read_event_file(path)
    now = utcnow()
    for event in events:
        report.events += 1
        options = misp_events.RowOptions(name, str(path), now, include_non_ids)
        _drain(store, misp_events.event_rows(event, options, report.skipped, strict), report)
    store.record_source(
        name, "misp-event", location=str(path), loaded=report.loaded, rejected=report.rejected
    )
    return report


def load_misp_feed(
    store: IntelStore,
    folder: Path,
    *,
    source: str | None = None,
    include_non_ids: bool = False,
    full: bool = False,
) -> LoadReport:
    """Load a MISP feed folder; incremental: only events newer than the last load of it."""
    name = source or f"misp-feed:{folder.name}"
    report = LoadReport(source=name, kind="misp-feed", location=str(folder))
    manifest = misp_events.read_manifest(folder / "manifest.json")
    state = store.source(name)
    since = 0 if full or state is None else state.last_timestamp
    newest = [since]
    options = misp_events.RowOptions(name, "", utcnow(), include_non_ids)
    _drain(
        store,
        _feed_rows(folder, manifest, since=since, options=options, report=report, newest=newest),
        report,
    )
    store.record_source(
        name,
        "misp-feed",
        location=str(folder),
        last_timestamp=newest[0],
        loaded=report.loaded,
        rejected=report.rejected,
    )
    return report


def _feed_rows(
    folder: Path,
    manifest: dict[str, dict[str, Any]],
    *,
    since: int,
    options: misp_events.RowOptions,
    report: LoadReport,
    newest: list[int],
) -> Iterator[Item]:
    """Rows of every changed event of a feed, as one stream (one transaction)."""
    for uuid, summary in manifest.items():
        stamp = misp_events.int_or_zero(summary.get("timestamp"))
        if stamp and stamp <= since:
            report.skipped["unchanged event"] += 1
            continue
        event_path = folder / f"{uuid}.json"
        try:
            events = misp_events.read_event_file(event_path)
        except ParseError as exc:
            yield ParseFailure(source=str(event_path), reason=exc.message)
            continue
        report.events += len(events)
        newest[0] = max(newest[0], stamp)
        where = options._replace(where=str(event_path))
        for event in events:
            yield from misp_events.event_rows(event, where, report.skipped)


# -- STIX ---------------------------------------------------------------------------------
def load_stix_bundle(store: IntelStore, path: Path, *, source: str | None = None) -> LoadReport:
    """Load the ``indicator`` objects with simple patterns of a STIX 2.1 bundle.

    Parsing is the collectors' ``StixBundleParser``; its sightings and observed-data
    (alerts) are counted as skipped here.
    """
    name = source or f"stix:{path.name}"
    report = LoadReport(source=name, kind="stix", location=str(path))
    now = utcnow()

    def items(stream: BinaryIO) -> Iterator[Item]:
        raw = RawReport(stream=stream, source=name, filename=str(path))
        for record in StixBundleParser().parse(raw):
            if isinstance(record, Indicator):
                yield indicator_row(record, now)
            elif isinstance(record, ParseFailure):
                yield record
            else:
                report.skipped[f"{type(record).__name__.lower()} (not intel)"] += 1

    with path.open("rb") as stream:
        _drain(store, items(stream), report)
    store.record_source(
        name, "stix", location=str(path), loaded=report.loaded, rejected=report.rejected
    )
    return report


# -- plain lists --------------------------------------------------------------------------
def load_plain_list(store: IntelStore, path: Path, *, source: str | None = None) -> LoadReport:
    """One value per line (CSV: the first column); ``#`` and ``;`` lines are comments."""
    name = source or f"list:{path.name}"
    report = LoadReport(source=name, kind="list", location=str(path))
    now = utcnow()
    _drain(store, _list_rows(path, name, now, report), report)
    store.record_source(
        name, "list", location=str(path), loaded=report.loaded, rejected=report.rejected
    )
    return report


def _list_rows(path: Path, name: str, now: datetime, report: LoadReport) -> Iterator[Item]:
    is_csv = path.suffix.lower() == ".csv"
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith(("#", ";")):
                continue
            value = _first_cell(text) if is_csv or guess_type(text) is None else text
            yield _list_row(value, name, now, (str(path), number, line.rstrip("\r\n")))


def _first_cell(text: str) -> str:
    return next(csv.reader(io.StringIO(text)), [""])[0].strip()


def _list_row(value: str, name: str, now: datetime, at: tuple[str, int, str]) -> Item:
    where, number, raw = at
    kind = guess_type(value)
    if kind is None:
        return ParseFailure(
            source=where,
            line=number,
            raw=raw,
            reason="not a recognisable IP, network, URL, e-mail, hash or domain",
        )
    try:
        normal = normalize(kind, refang(value))
    except InvalidInput as exc:
        return ParseFailure(source=where, line=number, raw=raw, reason=exc.message)
    row = indicator_row(
        Indicator.model_construct(
            type=kind,
            value=normal,
            source=name,
            event_uuid=None,
            event_info=None,
            threat_level=None,
            org=None,
            tags=[],
            tlp=Indicator.model_fields["tlp"].default,
            to_ids=True,
            first_seen=None,
            last_seen=None,
            expires_at=None,
        ),
        now,
    )
    return row


# -- warninglists ---------------------------------------------------------------------------
def load_warninglist_file(store: IntelStore, path: Path) -> LoadReport:
    """Store one MISP warninglist file; bad entries are reported, the rest kept."""
    warninglist, failures = read_warninglist(path)
    report = LoadReport(
        source=f"warninglist:{warninglist.name}",
        kind="warninglist",
        location=str(path),
        loaded=len(warninglist.entries),
    )
    for failure in failures:
        report.fail(failure)
    store.save_warninglist(warninglist)
    return report


# -- dispatch -------------------------------------------------------------------------------
def sniff_kind(path: Path) -> str:
    """``misp-feed``, ``misp-event``, ``stix``, ``warninglist`` or ``list`` for ``path``."""
    if not path.exists():
        raise ParseError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "misp-feed"
        raise ParseError(f"{path}: a folder must be a MISP feed (it has no manifest.json)")
    if path.suffix.lower() != ".json":
        return "list"
    with path.open("rb") as handle:
        head = handle.read(65536)
    return _sniff_json(head, path)


def _sniff_json(head: bytes, path: Path) -> str:
    if b'"matching_attributes"' in head or (b'"list"' in head and b'"Event"' not in head):
        return "warninglist"
    if b'"type"' in head and b'"bundle"' in head:
        return "stix"
    if b'"Event"' in head or b'"Attribute"' in head or b'"response"' in head:
        return "misp-event"
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(document, dict) and document.get("type") == "bundle":
        return "stix"
    raise ParseError(f"{path}: not a MISP event, STIX bundle or warninglist")


def load_path(
    store: IntelStore,
    path: Path,
    *,
    source: str | None = None,
    include_non_ids: bool = False,
    full: bool = False,
) -> LoadReport:
    """Load ``path`` with the loader its content calls for."""
    kind = sniff_kind(path)
    if kind == "misp-feed":
        return load_misp_feed(
            store, path, source=source, include_non_ids=include_non_ids, full=full
        )
    if kind == "misp-event":
        return load_misp_event_file(store, path, source=source, include_non_ids=include_non_ids)
    if kind == "stix":
        return load_stix_bundle(store, path, source=source)
    if kind == "warninglist":
        return load_warninglist_file(store, path)
    return load_plain_list(store, path, source=source)
