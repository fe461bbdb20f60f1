"""Wazuh ``alerts.json`` lines → Alerts.

Mapping: ``rule.description`` → title and signature, ``rule.id`` → signature_id,
``rule.level`` (0–15) → severity (≤3 info, 4–7 low, 8–11 medium, 12–14 high, 15 critical),
``rule.groups`` → tags and, through the ordered table ``GROUP_CLASSES``, the RSIT
classification (no match: ``intrusion-attempts/ids-alert``), ``rule.mitre`` ids/tactics →
tags and ``extra["mitre"]``, ``timestamp`` → observed_at, ``id`` → source_ref,
``agent`` → ``extra["agent"]`` and its IP an observable with role ``agent``,
``data.srcip``/``data.dstip`` → observables ``src``/``dst`` and the Flow, ``data.url`` →
url, ``syscheck`` ``sha256_after``/``sha1_after``/``md5_after`` and ``path`` → file
observables, ``full_log`` → description. Everything else of ``data`` and ``decoder``,
``location``, ``manager`` are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from collectors.parsers._common import (
    OT,
    ObservableBag,
    as_port,
    clip,
    ip_observable,
    json_lines,
    parse_time,
    reason_of,
    stamp,
)
from collectors.parsers.base import failure, source_name
from pukara.core.schema import Alert, Classification, Flow, ParseFailure, RawReport, Record
from pukara.core.taxonomy import Severity

#: First matching Wazuh rule group decides the RSIT classification.
GROUP_CLASSES: tuple[tuple[str, Classification], ...] = tuple(
    (group, Classification(taxonomy=taxonomy, type=type_))
    for group, taxonomy, type_ in (
        ("authentication_failures", "intrusion-attempts", "brute-force"),
        ("authentication_failed", "intrusion-attempts", "brute-force"),
        ("invalid_login", "intrusion-attempts", "brute-force"),
        ("brute_force", "intrusion-attempts", "brute-force"),
        ("rootcheck", "malicious-code", "infected-system"),
        ("virustotal", "malicious-code", "infected-system"),
        ("malware", "malicious-code", "infected-system"),
        ("sql_injection", "intrusion-attempts", "exploit"),
        ("exploit_attempt", "intrusion-attempts", "exploit"),
        ("web_scan", "information-gathering", "scanner"),
        ("recon", "information-gathering", "scanner"),
        ("scan", "information-gathering", "scanner"),
        ("dos", "availability", "dos"),
        ("vulnerability-detector", "vulnerable", "vulnerable-system"),
        ("policy_violation", "other", "undetermined"),
        ("syscheck", "other", "undetermined"),
        ("authentication_success", "other", "undetermined"),
    )
)
IDS_ALERT = Classification(taxonomy="intrusion-attempts", type="ids-alert")
_LEVELS = ((3, Severity.INFO), (7, Severity.LOW), (11, Severity.MEDIUM), (14, Severity.HIGH))


def severity_of(level: Any) -> Severity:
    """Wazuh rule level (0–15) → Severity."""
    if not isinstance(level, int) or isinstance(level, bool):
        level = int(str(level)) if str(level).isdigit() else 5
    for ceiling, severity in _LEVELS:
        if level <= ceiling:
            return severity
    return Severity.CRITICAL


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _classification(groups: list[str]) -> Classification:
    for group, classification in GROUP_CLASSES:
        if group in groups:
            return classification
    return IDS_ALERT


def _observables(event: dict[str, Any], data: dict[str, Any]) -> ObservableBag:
    bag = ObservableBag()
    for key, role in (("srcip", "src"), ("dstip", "dst")):
        bag.add(ip_observable(data.get(key), role), data.get(key))
    agent_ip = _dict(event.get("agent")).get("ip")
    bag.add(ip_observable(agent_ip, "agent"), agent_ip)
    bag.typed(OT.URL, data.get("url"))
    syscheck = _dict(event.get("syscheck"))
    bag.typed(OT.SHA256, syscheck.get("sha256_after"), "file")
    bag.typed(OT.SHA1, syscheck.get("sha1_after"), "file")
    bag.typed(OT.MD5, syscheck.get("md5_after"), "file")
    bag.typed(OT.FILENAME, syscheck.get("path"), "file")
    return bag


def _flow(data: dict[str, Any]) -> Flow | None:
    src, dst = data.get("srcip"), data.get("dstip")
    if not isinstance(src, str) and not isinstance(dst, str):
        return None
    return Flow(
        src_ip=src if isinstance(src, str) else None,
        src_port=as_port(data.get("srcport")),
        dst_ip=dst if isinstance(dst, str) else None,
        dst_port=as_port(data.get("dstport")),
        proto=str(data["protocol"])[:16] if data.get("protocol") else None,
    )


def alert_of(event: dict[str, Any], raw: str, received_default: Any) -> Alert:
    """The Alert for one Wazuh alert object."""
    rule, data = _dict(event.get("rule")), _dict(event.get("data"))
    if not rule:
        raise ValueError("no 'rule' object: not a Wazuh alert")
    groups = [str(g) for g in rule.get("groups") or () if isinstance(g, str | int)]
    mitre = _dict(rule.get("mitre"))
    mitre_ids = [str(m) for m in mitre.get("id") or () if isinstance(m, str)]
    description = str(rule.get("description") or "").strip()
    bag = _observables(event, data)
    extra: dict[str, Any] = {
        key: event[key] for key in ("agent", "manager", "decoder", "location") if key in event
    }
    extra.update({"rule.level": rule.get("level"), "data": data} if data else {})
    if mitre:
        extra["mitre"] = mitre
    if bag.invalid:
        extra["invalid_observables"] = bag.invalid
    rule_id = rule.get("id")
    return Alert(
        source="wazuh",
        source_ref=clip(event["id"], 256) if event.get("id") else None,
        title=clip(description) if description else f"Wazuh rule {rule_id}",
        description=str(event.get("full_log") or "")[:100_000],
        classification=_classification(groups),
        severity=severity_of(rule.get("level")),
        observed_at=parse_time(event.get("timestamp")) or received_default,
        signature=clip(description) if description else None,
        signature_id=clip(rule_id, 64) if rule_id is not None else None,
        flow=_flow(data),
        observables=bag.items,
        tags=["wazuh", *groups, *(f"mitre:{m}" for m in mitre_ids)],
        extra=extra,
        raw=raw,
    )


class WazuhAlertParser:
    """Wazuh manager ``alerts.json`` (one alert object per line)."""

    name: ClassVar[str] = "wazuh"
    priority: ClassVar[int] = 20

    def sniff(self, head: bytes) -> bool:
        """JSON lines with Wazuh's ``rule`` and ``agent`` objects."""
        return (
            head.lstrip()[:1] == b"{"
            and b'"rule":' in head.replace(b'"rule" :', b'"rule":')
            and (b'"agent"' in head or b'"manager"' in head)
        )

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per line; ParseFailure for a line that is not a Wazuh alert."""
        where = source_name(report)
        for number, line, item in json_lines(report):
            if isinstance(item, ParseFailure):
                yield item
                continue
            raw = line.decode("utf-8", "backslashreplace")
            try:
                alert = alert_of(item, raw, report.received_at)
            except Exception as exc:  # one bad record never stops the file
                yield failure(where, number, line, reason_of(exc))
                continue
            yield stamp(alert, report)
