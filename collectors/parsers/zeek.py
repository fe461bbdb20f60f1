"""Zeek logs (TSV with ``#`` headers, or JSON lines) → Alerts.

TSV: ``#separator``, ``#set_separator``, ``#empty_field``, ``#unset_field``, ``#path``,
``#fields`` and ``#types`` are read; any other ``#`` line (``#open``, ``#close``, btest's
``### BTest baseline …``) is skipped. Unset (``-``) fields are dropped, ``(empty)`` is an
empty list or string, sets and vectors become lists, counts and ports ints, times epoch
seconds, ``\\xHH`` escapes decoded. A ``ts`` that is not a number (btest's
``XXXXXXXXXX.XXXXXX``) counts as missing:
the alert takes the report's reception time and ``extra["ts_missing"]`` is true. JSON
lines carry their log in ``_path``; otherwise the log comes from ``#path``, then
``report.metadata["zeek_path"]``, then the file name (``dns.log``, ``notice.json.gz`` …).

What each log becomes:

- ``notice``: an Alert (severity medium), signature = ``note``, title = ``msg``, RSIT class
  from the ``note`` prefix table ``NOTICE_CLASSES`` (default ``intrusion-attempts/ids-alert``).
- ``weird``: an Alert (severity low, ``other/undetermined``), signature ``weird:<name>``.
- every other log (``conn``, ``dns``, ``http``, ``ssl``, ``files``, ``x509``, ``smtp``,
  ``ssh``, ``software`` …): an *observation* (severity info, tag ``observation``,
  ``other/undetermined``, ``source_ref`` = ``uid``, or ``fuid`` for files) carrying the
  record's observables: addresses (``id.orig_h``/``id.resp_h`` as ``src``/``dst``), DNS
  query and answers, HTTP host, URL and user agent, TLS SNI and JA3/JA4, file hashes and
  names, certificate fingerprints and SAN names, SMTP senders and recipients. ``conn`` rows
  are observations too, like Suricata ``flow`` events, so an address that matches intel is
  found in connection logs as well.
- a record with no usable observable is not a record: it is counted in ``parser.skipped``
  by reason, never dropped silently.

The parsed record is kept in ``extra["zeek"]`` and the original line in ``raw``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import orjson

from collectors.parsers import _zeek_fields as fields_of
from collectors.parsers._common import (
    UNDETERMINED,
    as_port,
    build_alert,
    clip,
    observation_fields,
    parse_time,
    reason_of,
)
from collectors.parsers.base import failure, iter_lines, source_name
from pukara.core.schema import Alert, Classification, Flow, RawReport, Record
from pukara.core.taxonomy import Severity

#: Notice ``note`` prefix → RSIT classification (first match wins).
NOTICE_CLASSES: tuple[tuple[str, Classification], ...] = tuple(
    (prefix, Classification(taxonomy=taxonomy, type=type_))
    for prefix, taxonomy, type_ in (
        ("Scan::", "information-gathering", "scanner"),
        ("SSH::Password_Guessing", "intrusion-attempts", "brute-force"),
        ("FTP::Bruteforcing", "intrusion-attempts", "brute-force"),
        ("HTTP::SQL_Injection", "intrusion-attempts", "exploit"),
        ("Heartbleed::", "intrusion-attempts", "exploit"),
        ("TeamCymruMalwareHashRegistry::", "malicious-code", "malware-distribution"),
        ("SSL::Invalid_Server_Cert", "vulnerable", "weak-crypto"),
        ("SSL::Certificate_Expired", "vulnerable", "weak-crypto"),
        ("SSL::Weak_Key", "vulnerable", "weak-crypto"),
        ("SSL::Old_Version", "vulnerable", "weak-crypto"),
        ("SSL::Weak_Cipher", "vulnerable", "weak-crypto"),
        ("CaptureLoss::", "other", "undetermined"),
    )
)
IDS_ALERT = Classification(taxonomy="intrusion-attempts", type="ids-alert")
KNOWN_LOGS = frozenset(
    [
        "conn",
        "dns",
        "http",
        "ssl",
        "files",
        "notice",
        "weird",
        "x509",
        "smtp",
        "ssh",
        "software",
        "ntlm",
        "smb_mapping",
        "smb_files",
        "dhcp",
        "ftp",
        "kerberos",
        "rdp",
        "sip",
        "snmp",
        "tunnel",
        "dpd",
        "intel",
        "pe",
        "ocsp",
        "quic",
    ]
)


def _log_from_filename(filename: str) -> str | None:
    stem = filename.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem if stem in KNOWN_LOGS else None


def _unescape(value: str) -> str:
    """Zeek writes the separator as ``\\xHH``; anything else is taken literally."""
    if len(value) == 4 and value.startswith("\\x"):
        try:
            return chr(int(value[2:], 16))
        except ValueError:
            raise ValueError(f"bad #separator {value!r}") from None
    return value


_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _unescape_value(value: str) -> str:
    """Zeek's TSV writer escapes separators and unprintable bytes as ``\\xHH``."""
    if "\\x" not in value:
        return value
    return _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


class _Header:
    """The TSV header state of one log."""

    def __init__(self) -> None:
        self.separator = "\t"
        self.set_separator = ","
        self.empty = "(empty)"
        self.unset = "-"
        self.path: str | None = None
        self.fields: list[str] = []
        self.types: list[str] = []

    def read(self, line: str) -> None:
        """Apply one ``#`` line; unknown ones are ignored."""
        if line.startswith("#separator"):
            value = line[len("#separator") :].strip()
            separator = _unescape(value) if value else "\t"
            if not separator:
                raise ValueError("empty #separator")
            self.separator = separator
            return
        key, _, value = line[1:].partition(self.separator)
        if key == "set_separator":
            self.set_separator = value
        elif key == "empty_field":
            self.empty = value
        elif key == "unset_field":
            self.unset = value
        elif key == "path":
            self.path = value
        elif key == "fields":
            self.fields = value.split(self.separator)
        elif key == "types":
            self.types = value.split(self.separator)

    def record(self, line: str) -> dict[str, Any]:
        """One data row as a dict of typed values (unset fields left out)."""
        values = line.split(self.separator)
        if len(values) != len(self.fields):
            raise ValueError(f"{len(values)} columns where #fields names {len(self.fields)}")
        types = self.types if len(self.types) == len(self.fields) else [""] * len(self.fields)
        record: dict[str, Any] = {}
        for name, kind, value in zip(self.fields, types, values, strict=True):
            if value == self.unset:
                continue
            record[name] = self._typed(kind, value)
        return record

    def _typed(self, kind: str, value: str) -> Any:
        if kind.startswith(("set[", "vector[")):
            items = [] if value == self.empty else value.split(self.set_separator)
            return [_unescape_value(item) for item in items]
        if value == self.empty:
            return ""
        if kind in ("count", "int", "port"):
            return int(value)
        if kind in ("double", "interval"):
            return float(value)
        if kind == "bool":
            return value == "T"
        return _unescape_value(value)


def _flow(record: dict[str, Any]) -> Flow | None:
    src = record.get("id.orig_h") or record.get("src")
    dst = record.get("id.resp_h") or record.get("dst")
    if not isinstance(src, str) and not isinstance(dst, str):
        return None
    proto = record.get("proto")
    return Flow(
        src_ip=src if isinstance(src, str) else None,
        src_port=as_port(record.get("id.orig_p")),
        dst_ip=dst if isinstance(dst, str) else None,
        dst_port=as_port(record.get("id.resp_p", record.get("p"))),
        proto=str(proto)[:16] if proto else None,
    )


def _notice(record: dict[str, Any]) -> dict[str, Any]:
    note = str(record.get("note") or "Notice")
    classification = next((c for p, c in NOTICE_CLASSES if note.startswith(p)), IDS_ALERT)
    return {
        "title": clip(record.get("msg") or note),
        "description": str(record.get("sub") or "")[:100_000],
        "signature": clip(note),
        "classification": classification,
        "severity": Severity.MEDIUM,
        "tags": ["zeek", "notice"],
    }


def _weird(record: dict[str, Any]) -> dict[str, Any]:
    name = str(record.get("name") or "unknown")
    return {
        "title": clip(f"Zeek weird: {name}"),
        "signature": clip(f"weird:{name}"),
        "classification": UNDETERMINED,
        "severity": Severity.LOW,
        "tags": ["zeek", "weird"],
    }


class ZeekLogParser:
    """Zeek TSV and JSON logs of any ``#path``."""

    name: ClassVar[str] = "zeek"
    priority: ClassVar[int] = 15

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()

    def sniff(self, head: bytes) -> bool:
        """A TSV header (``#separator``) or JSON lines with ``_path`` or ``id.orig_h``."""
        text = head.lstrip()
        if text.startswith((b"#separator", b"### BTest baseline")):
            return b"#separator" in text
        return text[:1] == b"{" and (b'"_path"' in head or b'"id.orig_h"' in head)

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per notice/weird row and per row with observables; failures located."""
        self.skipped = Counter()
        where = source_name(report)
        header = _Header()
        default_log = report.metadata.get("zeek_path") or _log_from_filename(report.filename)
        for number, line in iter_lines(report):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield failure(where, number, line, f"not UTF-8: {exc}")
                continue
            if text.startswith("#"):
                try:
                    header.read(text)
                except ValueError as exc:
                    yield failure(where, number, line, f"bad header line: {exc}")
                continue
            try:
                alert = self._row(text, header, default_log, report)
            except Exception as exc:  # one bad record never stops the file
                yield failure(where, number, line, reason_of(exc))
                continue
            if alert is not None:
                yield alert

    def _row(
        self, text: str, header: _Header, default_log: str | None, report: RawReport
    ) -> Alert | None:
        if text.startswith("{"):
            record = orjson.loads(text)
            if not isinstance(record, dict):
                raise ValueError("a JSON line must be an object")
            log = record.pop("_path", None) or header.path or default_log
        else:
            if not header.fields:
                raise ValueError("data row before any #fields header")
            record = header.record(text)
            log = header.path or default_log
        log = str(log or "unknown")
        return self._alert(record, log, text, report)

    def _alert(
        self, record: dict[str, Any], log: str, text: str, report: RawReport
    ) -> Alert | None:
        bag = fields_of.observables(log, record)
        if log == "notice":
            fields = _notice(record)
        elif log == "weird":
            fields = _weird(record)
        elif not bag.items:
            self.skipped[f"{log}: no observables"] += 1
            return None
        else:
            fields = observation_fields("zeek", log, bag)
        ts = record.get("ts")
        observed = None if isinstance(ts, str) and ts.startswith("X") else parse_time(ts)
        extra: dict[str, Any] = {"zeek_path": log, "zeek": record}
        if observed is None:
            extra["ts_missing"] = True
        if bag.invalid:
            extra["invalid_observables"] = bag.invalid
        ref = record.get("fuid") if log == "files" else record.get("uid")
        return build_alert(
            source="zeek",
            source_ref=clip(ref, 256) if isinstance(ref, str) and ref else None,
            entity_id=report.entity_id,
            exercise_id=report.exercise_id,
            observed_at=observed or report.received_at,
            received_at=report.received_at,
            flow=_flow(record),
            observables=bag.items,
            extra=extra,
            raw=text,
            **fields,
        )
