"""The search syntax, parsed by hand into a :class:`SearchQuery`.

::

    entity:minsa severity:>=high status:new tlp:amber class:malicious-code/*
    source:suricata observable:1.2.3.4 case:CASE-2026-000001 since:24h until:2026-02-01
    "ransom note" word -excluded -status:dismissed

Terms are separated by spaces; all must hold. ``field:value`` filters (a value may be
quoted), ``"quoted phrases"``, bare words, and ``-`` in front of any of them negates it.
A field name of letters that is not one of :data:`FIELDS` is refused, naming the allowed
ones. Anything else — ``entity_id:*``, ``_id:x``, ``OR``, ``AND``, parentheses — is plain
text to look for, never an operator: it can only narrow the result (SECURITY B10). A term
with no letter or digit (``*``, ``()``) has nothing to look for and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pukara.core.errors import InvalidInput
from pukara.core.observables import guess_type, normalize, refang
from pukara.core.schema import utcnow
from pukara.core.taxonomy import TLP, Severity

FIELDS = ("entity", "severity", "status", "tlp", "class", "source", "observable", "case",
          "since", "until")
ORDERED = ("severity", "tlp")
MAX_QUERY = 2000
MAX_TERMS = 40
_FIELD_NAME = re.compile(r"^[a-z]+$")
_RELATIVE = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Filter:
    """One ``field:value`` term; ``op`` is ``=``, ``>=``, ``<=``, ``>`` or ``<``."""

    field: str
    value: str
    op: str = "="
    negate: bool = False


@dataclass(frozen=True)
class Text:
    """Words or a phrase to find; ``phrase`` keeps the words together and in order."""

    text: str
    phrase: bool = False
    negate: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query: filters and text, all of which must hold."""

    filters: tuple[Filter, ...] = ()
    text: tuple[Text, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    source: str = field(default="", compare=False)

    def values(self, name: str, *, negate: bool = False) -> list[Filter]:
        """The filters on ``name`` (negated ones when ``negate``)."""
        return [f for f in self.filters if f.field == name and f.negate is negate]


def _split(text: str) -> list[str]:
    """Split on spaces outside double quotes; the quotes stay in the pieces."""
    pieces: list[str] = []
    current: list[str] = []
    in_quote = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
        if ch.isspace() and not in_quote:
            if current:
                pieces.append("".join(current))
            current = []
            continue
        current.append(ch)
    if in_quote:
        raise InvalidInput("the query has an unclosed quote", field="query")
    if current:
        pieces.append("".join(current))
    return pieces


@dataclass(frozen=True)
class _Raw:
    token: str
    quoted: bool
    starts_quoted: bool
    negate: bool


def _raw_terms(text: str) -> list[_Raw]:
    terms = []
    for piece in _split(text):
        negate = piece.startswith("-") and len(piece) > 1
        body = piece[1:] if negate else piece
        terms.append(_Raw(body.replace('"', ""), '"' in body, body.startswith('"'), negate))
    return [t for t in terms if t.token.strip()]


def parse(text: str | None, *, now: datetime | None = None) -> SearchQuery:
    """A SearchQuery from ``text``; InvalidInput names the bad term and the allowed fields."""
    text = (text or "").strip()
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"the query is longer than {MAX_QUERY} characters", field="query")
    control = next((c for c in text if (ord(c) < 32 and c != "\t") or ord(c) == 127), None)
    if control is not None:
        raise InvalidInput(f"the query contains a control character ({control!r})",
                           field="query")
    raw = _raw_terms(text)
    if len(raw) > MAX_TERMS:
        raise InvalidInput(f"the query has more than {MAX_TERMS} terms", field="query")
    filters: list[Filter] = []
    words: list[Text] = []
    for position, term in enumerate(raw, start=1):
        name, sep, value = term.token.partition(":")
        if sep and not term.starts_quoted and _FIELD_NAME.match(name):
            if name not in FIELDS:
                raise InvalidInput(f"query term {position}: unknown field {name!r} (fields: "
                                   f"{', '.join(FIELDS)})", field="query")
            filters.append(_filter(name, value, term.negate, position))
        elif any(ch.isalnum() for ch in term.token):
            words.append(Text(term.token.strip(), phrase=term.quoted, negate=term.negate))
    return _with_times(SearchQuery(tuple(filters), tuple(words), source=text),
                       now or utcnow())


def _filter(name: str, value: str, negate: bool, position: int) -> Filter:
    op = "="
    if name in ORDERED:
        for prefix in (">=", "<=", ">", "<", "="):
            if value.startswith(prefix):
                op, value = (prefix if prefix != "=" else "="), value[len(prefix):]
                break
    value = value.strip()
    if negate and name in ("since", "until"):
        raise InvalidInput(f"query term {position}: {name}: cannot be negated", field="query")
    if not value:
        raise InvalidInput(f"query term {position}: {name}: needs a value", field="query")
    checked = _check_value(name, value, position)
    return Filter(name, checked, op, negate)


def _check_value(name: str, value: str, position: int) -> str:
    try:
        if name == "severity":
            return Severity.parse(value).value
        if name == "tlp":
            return TLP.parse(value).value
        if name == "observable":
            return observable_value(value)
        if name in ("since", "until"):
            parse_time(value, utcnow())
    except (InvalidInput, ValueError) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else str(exc)
        raise InvalidInput(f"query term {position}: {name}: {message}", field="query") from None
    if name in {"entity", "status", "source"}:
        return value.lower()
    return value


def observable_value(value: str) -> str:
    """The stored (normalised) form of an observable typed into a query."""
    cleaned = refang(value.strip())
    kind = guess_type(cleaned)
    return normalize(kind, cleaned) if kind is not None else cleaned


def parse_time(value: str, now: datetime) -> datetime:
    """``24h``, ``7d``, ``30m``, ``2w`` before ``now``, or an ISO date or time (UTC if naive)."""
    relative = _RELATIVE.match(value.lower())
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (2026-01-31), a time or an age (24h, 7d)",
                           field="query") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _with_times(query: SearchQuery, now: datetime) -> SearchQuery:
    since = until = None
    for item in query.filters:
        if item.field == "since":
            moment = parse_time(item.value, now)
            since = moment if since is None else max(since, moment)
        elif item.field == "until":
            moment = parse_time(item.value, now)
            until = moment if until is None else min(until, moment)
    rest = tuple(f for f in query.filters if f.field not in ("since", "until"))
    return SearchQuery(rest, query.text, since, until, source=query.source)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}


def allowed_levels(item: Filter, scale: type[Severity] | type[TLP]) -> list[str]:
    """The values of an ordered scale (severity, TLP) that satisfy ``item``."""
    wanted = scale(item.value)
    compare = _COMPARE[item.op]
    return [level.value for level in scale if compare(level, wanted)]


__all__ = ["FIELDS", "Filter", "SearchQuery", "Text", "allowed_levels", "observable_value",
           "parse", "parse_time"]
