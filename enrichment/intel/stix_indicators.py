"""STIX 2.1 ``indicator`` objects with simple patterns → Indicators.

A pattern is *simple* when every comparison is ``=`` on one of the paths in ``PATHS`` and
comparisons are joined by ``OR`` only (``[ipv4-addr:value = '198.51.100.1']``,
``[file:hashes.'SHA-256' = '…']``). Anything else is reported as a ParseFailure, not
guessed at. Each object is validated with ``stix2.parse``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import stix2
from stix2patterns.v21.pattern import Pattern

from pukara.core.errors import InvalidInput, ParseError
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Indicator, ParseFailure
from pukara.core.taxonomy import TLP

PATHS: dict[tuple[str, str], T] = {
    ("ipv4-addr", "value"): T.IPV4,
    ("ipv6-addr", "value"): T.IPV6,
    ("domain-name", "value"): T.DOMAIN,
    ("url", "value"): T.URL,
    ("email-addr", "value"): T.EMAIL,
    ("autonomous-system", "number"): T.ASN,
    ("file", "hashes.md5"): T.MD5,
    ("file", "hashes.sha-1"): T.SHA1,
    ("file", "hashes.sha1"): T.SHA1,
    ("file", "hashes.sha-256"): T.SHA256,
    ("file", "hashes.sha256"): T.SHA256,
    ("file", "hashes.sha-512"): T.SHA512,
    ("file", "hashes.sha512"): T.SHA512,
    ("file", "name"): T.FILENAME,
}
TLP_MARKINGS = {
    stix2.TLP_WHITE.id: TLP.CLEAR,
    stix2.TLP_GREEN.id: TLP.GREEN,
    stix2.TLP_AMBER.id: TLP.AMBER,
    stix2.TLP_RED.id: TLP.RED,
}


def bundle_indicators(
    path: Path, source: str, skipped: Counter[str]
) -> Iterator[Indicator | ParseFailure]:
    """Indicators (and failures) of the bundle at ``path``."""
    try:
        bundle = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ParseError(f"{path}: not a readable STIX bundle: {exc}") from None
    if not isinstance(bundle, dict) or not isinstance(bundle.get("objects"), list):
        raise ParseError(f"{path}: a STIX bundle has an 'objects' array")
    for number, obj in enumerate(bundle["objects"], start=1):
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            skipped["not an indicator"] += 1
            continue
        yield from _indicator(obj, source, str(path), number)


def _fail(where: str, number: int, obj: dict[str, Any], reason: str) -> ParseFailure:
    return ParseFailure(
        source=where, record=number, raw=str(obj.get("pattern", obj))[:500], reason=reason
    )


def _indicator(
    obj: dict[str, Any], source: str, where: str, number: int
) -> Iterator[Indicator | ParseFailure]:
    try:
        parsed = stix2.parse(obj, allow_custom=True)
    except Exception as exc:  # stix2 raises its own tree and ValueErrors
        yield _fail(where, number, obj, f"invalid STIX indicator: {exc}")
        return
    if parsed.get("pattern_type", "stix") != "stix":
        yield _fail(where, number, obj, f"pattern type {parsed['pattern_type']} not supported")
        return
    try:
        comparisons = simple_comparisons(parsed["pattern"])
    except InvalidInput as exc:
        yield _fail(where, number, obj, exc.message)
        return
    tlp = next(
        (TLP_MARKINGS[m] for m in parsed.get("object_marking_refs", ()) if m in TLP_MARKINGS),
        TLP.GREEN,
    )
    tags = [*parsed.get("indicator_types", ()), *parsed.get("labels", ())]
    for kind, value in comparisons:
        try:
            yield Indicator(
                type=kind,
                value=value,
                source=source,
                event_uuid=parsed["id"],
                event_info=parsed.get("name"),
                tags=tags,
                tlp=tlp,
                first_seen=parsed.get("valid_from"),
                expires_at=parsed.get("valid_until"),
            )
        except ValueError as exc:
            yield _fail(where, number, obj, f"bad value {value!r}: {exc}")


def simple_comparisons(pattern: str) -> list[tuple[T, str]]:
    """(type, value) of each ``=`` comparison of a simple pattern; InvalidInput otherwise."""
    try:
        data = Pattern(pattern).inspect()
    except Exception as exc:  # the pattern grammar raises ParseException
        raise InvalidInput(f"not a STIX pattern: {exc}") from None
    if data.observation_ops - {"OR"} or data.qualifiers:
        raise InvalidInput("pattern with observation operators or qualifiers is not simple")
    found: list[tuple[T, str]] = []
    for object_type, comparisons in data.comparisons.items():
        for path, operator, raw in comparisons:
            dotted = ".".join(p if isinstance(p, str) else "*" for p in path)
            key = (object_type, dotted.lower())
            if operator != "=" or key not in PATHS:
                raise InvalidInput(
                    f"comparison {object_type}:{dotted} "
                    f"{operator} is not a supported simple comparison"
                )
            value = raw.strip("'") if isinstance(raw, str) else str(raw)
            kind = PATHS[key]
            if kind in (T.IPV4, T.IPV6) and "/" in value:
                kind = T.CIDR
            found.append((kind, value))
    if len(found) > 1 and " AND " in pattern.upper():
        raise InvalidInput("pattern joins comparisons with AND; only OR is simple")
    return found
