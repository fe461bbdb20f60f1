"""MISP events → indicator rows, fast (orjson dicts) or strict (through ``pymisp.MISPEvent``).

The fast path reads the decoded JSON directly and normalises each value with the kernel's
``normalize``; the strict path loads the event with PyMISP first. Both produce the same rows
(a test checks it on the real events); the loaders use the fast one for large feeds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from pymisp import MISPEvent

from enrichment.intel.fastnorm import fast_normalize
from enrichment.intel.misp_types import split_attribute
from pukara.core.errors import InvalidInput, ParseError
from pukara.core.schema import Indicator, ParseFailure
from pukara.core.taxonomy import TLP

_DEFAULT_TLP: str = Indicator.model_fields["tlp"].default.value
_TRUE = (True, 1, "1", "true", "True")


class RowOptions(NamedTuple):
    """Where rows come from and what to keep."""

    source: str
    where: str
    now: datetime
    include_non_ids: bool


class EventHeader(NamedTuple):
    """What every row of one event shares."""

    uuid: str
    info: str | None
    threat_level: int | None
    org: str | None
    tags: tuple[str, ...]
    tlp: str


def int_or_zero(value: Any) -> int:
    """An int from a MISP number field (they are often strings), 0 when not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def read_event_file(path: Path) -> list[dict[str, Any]]:
    """The event dicts in a MISP file: ``{"Event"}``, ``{"response": [{"Event"}]}`` or bare."""
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ParseError(f"{path}: cannot read: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"{path}: not valid JSON: {exc}") from None
    events = unwrap_events(document)
    if events is None:
        raise ParseError(f"{path}: not a MISP event (no 'Event', 'response' or 'Attribute')")
    return events


def unwrap_events(document: Any) -> list[dict[str, Any]] | None:
    """Event dicts out of any of the shapes MISP and PyMISP write, or None."""
    if isinstance(document, list):
        found = [e for item in document for e in (unwrap_events(item) or [])]
        return found
    if not isinstance(document, dict):
        return None
    if "response" in document:
        return unwrap_events(document["response"])
    if isinstance(document.get("Event"), dict):
        return [document["Event"]]
    if "Attribute" in document or "Object" in document or "info" in document:
        return [document]
    return None


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """A feed's ``manifest.json``: event uuid → summary."""
    try:
        manifest = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ParseError(f"{path}: not a readable MISP feed manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise ParseError(f"{path}: a feed manifest maps event uuids to summaries")
    return {str(k): v if isinstance(v, dict) else {} for k, v in manifest.items()}


def _tag_names(tags: Any) -> tuple[str, ...]:
    if not isinstance(tags, list):
        return ()
    return tuple(t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str))


def _tlp_of(tags: tuple[str, ...], default: str) -> str:
    for tag in tags:
        if tag.lower().startswith("tlp:"):
            try:
                return TLP.parse(tag).value
            except ValueError:
                continue
    return default


def header_of(event: Mapping[str, Any]) -> EventHeader:
    """The shared part of an event's rows."""
    tags = _tag_names(event.get("Tag"))
    level = int_or_zero(event.get("threat_level_id"))
    orgc = event.get("Orgc")
    org = orgc.get("name") if isinstance(orgc, dict) else None
    info = event.get("info")
    return EventHeader(
        uuid=str(event.get("uuid") or ""),
        info=info[:512] if isinstance(info, str) else None,
        threat_level=level if 1 <= level <= 4 else None,
        org=org,
        tags=tags,
        tlp=_tlp_of(tags, _DEFAULT_TLP),
    )


def event_rows(
    event: Mapping[str, Any], options: RowOptions, skipped: Counter[str], strict: bool = False
) -> Iterator[dict[str, Any] | ParseFailure]:
    """Rows (and failures) for every attribute, object attributes included."""
    if strict:
        event = _through_pymisp(event)
    header = header_of(event)
    where = f"{options.where or options.source} event {header.uuid}"
    base = _event_base(header, options)
    for position, attribute in enumerate(_attributes(event), start=1):
        yield from _attribute_rows(attribute, header, options, skipped, (where, position, base))


def _attributes(event: Mapping[str, Any]) -> Iterator[Any]:
    yield from event.get("Attribute") or ()
    for obj in event.get("Object") or ():
        if isinstance(obj, dict):
            yield from obj.get("Attribute") or ()


def _skip_reason(attribute: Any, options: RowOptions) -> str | None:
    """Why an attribute is skipped (not an error), or None to load it."""
    if isinstance(attribute, dict):
        if attribute.get("deleted") in _TRUE:
            return "deleted"
        if not options.include_non_ids and attribute.get("to_ids") not in _TRUE:
            return "not to_ids"
    return None


def _attribute_rows(
    attribute: Any,
    header: EventHeader,
    options: RowOptions,
    skipped: Counter[str],
    at: tuple[str, int, dict[str, Any]],
) -> Iterator[dict[str, Any] | ParseFailure]:
    skip = _skip_reason(attribute, options)
    if skip is not None:
        skipped[skip] += 1
        return
    misp_type = attribute.get("type") if isinstance(attribute, dict) else None
    value = attribute.get("value") if isinstance(attribute, dict) else None
    if not isinstance(misp_type, str) or not isinstance(value, str):
        reason = "attribute has no string 'type' and 'value'"
        yield ParseFailure(source=at[0], record=at[1], raw=str(attribute)[:200], reason=reason)
        return
    parts = split_attribute(misp_type, value)
    if parts is None:
        skipped[f"type {misp_type}"] += 1
        return
    own_tags = _tag_names(attribute.get("Tag"))
    base = at[2]
    if own_tags:
        base = {**base, "tags": [*header.tags, *own_tags], "tlp": _tlp_of(own_tags, header.tlp)}
    for kind, raw in parts:
        try:
            normal = fast_normalize(kind, raw)
        except InvalidInput as exc:
            where = f"{misp_type}: {value}"
            yield ParseFailure(source=at[0], record=at[1], raw=where, reason=exc.message)
            continue
        yield {
            **base,
            "type": kind.value,
            "value": normal,
            "to_ids": attribute.get("to_ids") in _TRUE,
            "first_seen": _when(attribute.get("first_seen")),
            "last_seen": _when(attribute.get("last_seen")),
        }


def _event_base(header: EventHeader, options: RowOptions) -> dict[str, Any]:
    """The columns every row of one event shares."""
    return {
        "source": options.source,
        "event_uuid": header.uuid,
        "event_info": header.info,
        "threat_level": header.threat_level,
        "org": header.org,
        "tags": list(header.tags),
        "tlp": header.tlp,
        "expires_at": None,
        "updated_at": options.now,
    }


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _through_pymisp(event: Mapping[str, Any]) -> dict[str, Any]:
    """Load with PyMISP (validating types and fields) and return its JSON form."""
    misp_event = MISPEvent()
    private = orjson.loads(orjson.dumps(dict(event)))  # PyMISP pops keys out of what it loads
    try:
        misp_event.load({"Event": private})
    except Exception as exc:  # pymisp raises many kinds for a bad event
        raise ParseError(f"PyMISP refused the event: {exc}") from None
    loaded: dict[str, Any] = orjson.loads(misp_event.to_json())
    inner: dict[str, Any] = loaded.get("Event", loaded)
    return inner
