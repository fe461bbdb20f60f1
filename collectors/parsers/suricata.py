"""Suricata EVE JSON lines → Alerts.

Which events become what:

- ``alert``: an Alert with the rule's ``signature`` and ``signature_id`` (``gid:sid`` when
  the gid is not 1), an RSIT classification from the rule category (table ``CATEGORIES``;
  an empty or unknown category gives ``intrusion-attempts/ids-alert``) and a severity from
  Suricata's priority (1 → high, 2 → medium, 3 → low, higher → info).
- ``anomaly``: an Alert (severity low, ``other/undetermined``), signature
  ``anomaly:<type>:<event>``, tagged ``anomaly``.
- every other event that has addresses (``dns``, ``http``, ``tls``, ``fileinfo``, ``flow``,
  ``smb``, ``ftp`` …): an *observation*, an Alert with severity ``info``, tag
  ``observation``, classification ``other/undetermined`` and ``source_ref`` = ``flow_id``,
  so enrichment can match its observables and join it to alerts of the same flow.
- ``stats`` and events without any address produce no record; they are counted in
  ``parser.skipped`` (a Counter of reasons), never dropped silently.

Observables: ``src_ip``/``dest_ip`` (roles ``src``/``dst``), DNS ``rrname`` (v2 and v3
layouts) and A/AAAA/CNAME answers, HTTP hostname, full URL (``http_port``, else the lower
port when not 80) and user agent, TLS SNI, JA3/JA3S and JA4 hashes and certificate SHA-1,
QUIC SNI, SMTP sender, recipients and HELO, and fileinfo hashes and file name; they are taken from
the sub-objects of any event (an ``alert`` line often carries ``http``, ``tls`` or ``files``).
Invalid values are kept in ``extra["invalid_observables"]``. The original line is ``raw``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any, ClassVar

import orjson

from collectors.parsers._common import (
    OT,
    UNDETERMINED,
    ObservableBag,
    build_alert,
    clip,
    host_observable,
    ip_observable,
    observation_fields,
    parse_time,
    reason_of,
)
from collectors.parsers.base import Keyed, KeyedAlert, Repeat, failure, iter_lines, source_name
from pukara.core.schema import Alert, Classification, Flow, RawReport, Record
from pukara.core.taxonomy import Severity

_CATEGORY_TABLE: dict[str, tuple[str, str]] = {
    "attempted administrator privilege gain": ("intrusion-attempts", "exploit"),
    "attempted user privilege gain": ("intrusion-attempts", "exploit"),
    "unsuccessful user privilege gain": ("intrusion-attempts", "exploit"),
    "web application attack": ("intrusion-attempts", "exploit"),
    "targeted malicious activity was detected": ("intrusion-attempts", "exploit"),
    "misc attack": ("intrusion-attempts", "ids-alert"),
    "access to a potentially vulnerable web application": ("intrusion-attempts", "ids-alert"),
    "attempt to login by a default username and password": ("intrusion-attempts", "brute-force"),
    "an attempted login using a suspicious username was detected": (
        "intrusion-attempts",
        "brute-force",
    ),
    "successful administrator privilege gain": ("intrusions", "privileged-account-compromise"),
    "successful user privilege gain": ("intrusions", "unprivileged-account-compromise"),
    "a network trojan was detected": ("malicious-code", "infected-system"),
    "malware command and control activity detected": ("malicious-code", "infected-system"),
    "domain observed used for c2 detected": ("malicious-code", "infected-system"),
    "possibly unwanted program detected": ("malicious-code", "infected-system"),
    "executable code was detected": ("malicious-code", "malware-distribution"),
    "exploit kit activity detected": ("malicious-code", "malware-distribution"),
    "attempted information leak": ("information-gathering", "scanner"),
    "detection of a network scan": ("information-gathering", "scanner"),
    "decode of an rpc query": ("information-gathering", "scanner"),
    "social engineering attempted": ("information-gathering", "social-engineering"),
    "information leak": ("information-content-security", "unauthorised-information-access"),
    "successful credential theft detected": (
        "information-content-security",
        "unauthorised-information-access",
    ),
    "large scale information leak": ("information-content-security", "data-leak"),
    "attempted denial of service": ("availability", "dos"),
    "denial of service": ("availability", "dos"),
    "detection of a denial of service attack": ("availability", "dos"),
    "crypto currency mining activity detected": ("fraud", "unauthorised-use-of-resources"),
    "not suspicious traffic": ("other", "other"),
    "potential corporate privacy violation": ("other", "undetermined"),
    "misc activity": ("other", "undetermined"),
    "potentially bad traffic": ("other", "undetermined"),
    "unknown traffic": ("other", "undetermined"),
    "generic protocol command decode": ("other", "undetermined"),
    "a suspicious string was detected": ("other", "undetermined"),
    "a suspicious filename was detected": ("other", "undetermined"),
    "a client was using an unusual port": ("other", "undetermined"),
    "detection of a non-standard protocol or event": ("other", "undetermined"),
    "generic icmp event": ("other", "undetermined"),
    "device retrieving external ip address detected": ("other", "undetermined"),
    "inappropriate content was detected": ("other", "undetermined"),
}
#: Suricata rule category (case-insensitive) → RSIT classification.
CATEGORIES: dict[str, Classification] = {
    name: Classification(taxonomy=t, type=k) for name, (t, k) in _CATEGORY_TABLE.items()
}
IDS_ALERT = Classification(taxonomy="intrusion-attempts", type="ids-alert")
SEVERITIES = {1: Severity.HIGH, 2: Severity.MEDIUM, 3: Severity.LOW}
_ADDRESS_TYPES = frozenset({"A", "AAAA"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _obj(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _dns(dns: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.DOMAIN, dns.get("rrname"), "query")
    for query in dns.get("queries") or ():
        if isinstance(query, dict):
            bag.typed(OT.DOMAIN, query.get("rrname"), "query")
    answers = dns.get("answers") or ([dns] if dns.get("type") == "answer" else ())  # v2: flat
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        rrtype, rdata = answer.get("rrtype"), answer.get("rdata")
        if rrtype in _ADDRESS_TYPES:
            bag.add(ip_observable(rdata, "answer"), rdata)
        elif rrtype == "CNAME":
            bag.typed(OT.DOMAIN, rdata, "answer")


def _server_port(event: dict[str, Any]) -> int | None:
    """The HTTP server's port when it is not 80: the lower of the two (fileinfo lines run
    server → client, so ``dest_port`` alone would be the client's)."""
    ports = [p for p in (event.get("src_port"), event.get("dest_port")) if isinstance(p, int)]
    if not ports or 80 in ports:
        return None
    return min(ports)


def _http(http: dict[str, Any], event: dict[str, Any], bag: ObservableBag) -> None:
    host = http.get("hostname")
    bag.add(host_observable(host, "http-host"), host)
    url = http.get("url")
    if isinstance(url, str) and url:
        if url.startswith("/") and isinstance(host, str) and host:
            netloc = f"[{host}]" if ":" in host else host
            port = http.get("http_port") or _server_port(event)
            port = None if port == 80 or not isinstance(port, int) else port
            url = f"http://{netloc}:{port}{url}" if port else f"http://{netloc}{url}"
        if "://" in url:
            bag.typed(OT.URL, url)
    bag.typed(OT.USER_AGENT, http.get("http_user_agent"))


def _tls(tls: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.HOSTNAME, tls.get("sni"), "sni")
    bag.typed(OT.JA3, _obj(tls, "ja3").get("hash"), "client")
    bag.typed(OT.JA3, _obj(tls, "ja3s").get("hash"), "server")
    ja4 = tls.get("ja4")
    bag.typed(OT.JA4, ja4 if isinstance(ja4, str) else _obj(tls, "ja4").get("hash"), "client")
    fingerprint = tls.get("fingerprint")
    if isinstance(fingerprint, str):
        bag.typed(OT.SHA1, fingerprint.replace(":", ""), "certificate")


def _file(info: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.SHA256, info.get("sha256"), "file")
    bag.typed(OT.SHA1, info.get("sha1"), "file")
    bag.typed(OT.MD5, info.get("md5"), "file")
    name = info.get("filename")
    if isinstance(name, str) and name and not name.startswith("/"):
        bag.typed(OT.FILENAME, name, "file")


def _address(value: Any) -> str | None:
    """``user@host`` out of ``<user@host>`` or ``Name <user@host>``."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    return text or None


def _smtp(smtp: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.EMAIL, _address(smtp.get("mail_from")), "sender")
    for rcpt in smtp.get("rcpt_to") or ():
        bag.typed(OT.EMAIL, _address(rcpt), "recipient")
    bag.typed(OT.HOSTNAME, smtp.get("helo"), "helo")


def observables_of(event: dict[str, Any]) -> ObservableBag:
    """Every observable an EVE event carries, in a de-duplicated bag."""
    bag = ObservableBag()
    src, dst = event.get("src_ip"), event.get("dest_ip")
    bag.add(ip_observable(src, "src"), src)
    bag.add(ip_observable(dst, "dst"), dst)
    if "dns" in event:
        _dns(_obj(event, "dns"), bag)
    if "http" in event:
        _http(_obj(event, "http"), event, bag)
    if "tls" in event:
        _tls(_obj(event, "tls"), bag)
    if "fileinfo" in event:
        _file(_obj(event, "fileinfo"), bag)
    for info in event.get("files") or ():
        if isinstance(info, dict):
            _file(info, bag)
    if "quic" in event:
        bag.typed(OT.HOSTNAME, _obj(event, "quic").get("sni"), "sni")
    if "smtp" in event:
        _smtp(_obj(event, "smtp"), bag)
    return bag


def _file_parts(info: Any) -> Any:
    if not isinstance(info, dict):
        return None
    return (info.get("sha256"), info.get("sha1"), info.get("md5"), info.get("filename"))


def repeat_key(event: dict[str, Any]) -> bytes | None:
    """Bytes that two events share only if their alerts get the same observables, rule,
    classification and correlation keys: everything :func:`observables_of`, :func:`_rule`
    and :func:`_anomaly` read, and nothing that changes from one repeat to the next
    (timestamp, flow id, client port, counters, payload), as a 128-bit BLAKE2b digest. The
    time bucket is the caller's. None when the event cannot be keyed; its full parse then
    decides."""
    try:
        http, fileinfo = event.get("http"), event.get("fileinfo")
        parts = (
            event.get("event_type"), event.get("src_ip"), event.get("dest_ip"),
            event.get("alert"), event.get("anomaly"), event.get("dns"), event.get("tls"),
            event.get("quic"), event.get("smtp"), "http" in event, "fileinfo" in event,
            (http.get("hostname"), http.get("url"), http.get("http_port"),
             http.get("http_user_agent"), _server_port(event))
            if isinstance(http, dict) else http,
            _file_parts(fileinfo) if isinstance(fileinfo, dict) else fileinfo,
            [_file_parts(info) for info in event.get("files") or ()],
        )
        return blake2b(orjson.dumps(parts), digest_size=16).digest()  # 16 bytes kept, not ~0.5 KB
    except (TypeError, orjson.JSONEncodeError):  # odd shapes: the full parse reports them
        return None


def _flow(event: dict[str, Any]) -> Flow | None:
    src, dst = event.get("src_ip"), event.get("dest_ip")
    if src is None and dst is None:
        return None
    proto = event.get("proto")
    return Flow(
        src_ip=src,
        src_port=event.get("src_port"),
        dst_ip=dst,
        dst_port=event.get("dest_port"),
        proto=str(proto)[:16] if proto is not None else None,
    )


def _rule(event: dict[str, Any]) -> dict[str, Any]:
    """title, signature, signature_id, classification, severity, tags of an alert event."""
    rule = event.get("alert")
    if not isinstance(rule, dict):
        raise ValueError("an alert event needs an 'alert' object")
    signature = rule.get("signature")
    sid, gid = rule.get("signature_id"), rule.get("gid", 1)
    category = rule.get("category")
    priority = rule.get("severity")
    text = clip(signature) if isinstance(signature, str) and signature.strip() else None
    return {
        "title": text or f"Suricata alert sid {sid}",
        "signature": text,
        "signature_id": None
        if sid is None
        else (f"{gid}:{sid}" if gid not in (1, None) else str(sid)),
        "classification": CATEGORIES.get(category.lower(), IDS_ALERT)
        if isinstance(category, str)
        else IDS_ALERT,
        "severity": SEVERITIES.get(priority, Severity.INFO)
        if isinstance(priority, int)
        else Severity.LOW,
        "tags": ["suricata", f"action:{rule.get('action', 'unknown')}"],
    }


def _anomaly(event: dict[str, Any]) -> dict[str, Any]:
    anomaly = _obj(event, "anomaly")
    kind, what = anomaly.get("type", "unknown"), anomaly.get("event", "unknown")
    return {
        "title": clip(f"Suricata anomaly: {what}"),
        "signature": clip(f"anomaly:{kind}:{what}"),
        "classification": UNDETERMINED,
        "severity": Severity.LOW,
        "tags": ["suricata", "anomaly"],
    }


class SuricataEveParser:
    """Suricata EVE JSON lines (``eve.json``)."""

    name: ClassVar[str] = "suricata"
    priority: ClassVar[int] = 10
    #: one independent record per line: large files are parsed in chunks, in parallel
    line_records: ClassVar[bool] = True

    def __init__(self) -> None:
        self.skipped: Counter[str] = Counter()

    def sniff(self, head: bytes) -> bool:
        """EVE lines are JSON objects with an ``event_type`` key."""
        return head.lstrip()[:1] == b"{" and b'"event_type"' in head

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per alert/anomaly/observation line; ParseFailure for bad lines."""
        for record in self._parse(report, None):
            if not isinstance(record, Repeat):
                yield record.alert if isinstance(record, KeyedAlert) else record

    def parse_keyed(self, report: RawReport,
                    known: Callable[[bytes, datetime], bool]) -> Iterator[Keyed]:
        """:meth:`parse` for a caller that remembers events: each alert comes with its
        :func:`repeat_key` (a :class:`KeyedAlert`), and an event whose key and time
        ``known`` accepts comes as a :class:`Repeat`, with no observables or Alert built."""
        return self._parse(report, known)

    def _parse(self, report: RawReport,
               known: Callable[[bytes, datetime], bool] | None) -> Iterator[Keyed]:
        self.skipped = Counter()
        where = source_name(report)
        for number, line in iter_lines(report):
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield failure(where, number, line, f"not valid JSON: {exc}")
                continue
            if not isinstance(event, dict):
                yield failure(where, number, line, "an EVE line must be a JSON object")
                continue
            key = None if known is None else repeat_key(event)
            try:
                if key is not None and known is not None:
                    observed = (parse_time(event.get("timestamp"))
                                or report.received_at).astimezone(UTC)  # as build_alert
                    if known(key, observed):
                        yield Repeat(key, observed)
                        continue
                alert = self._alert(event, line, report)
            except Exception as exc:  # one bad record never stops the file
                yield failure(where, number, line, reason_of(exc))
                continue
            if alert is not None and known is not None:
                yield KeyedAlert(alert, key)
                continue
            if alert is not None:
                yield alert

    def _alert(self, event: dict[str, Any], line: bytes, report: RawReport) -> Alert | None:
        event_type = event.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("no 'event_type' string: not an EVE event")
        event_type = event_type[:64]
        bag = observables_of(event)
        if event_type == "alert":
            fields = _rule(event)
        elif event_type == "anomaly":
            fields = _anomaly(event)
        elif not bag.items or event_type == "stats":
            self.skipped[f"{event_type}: no observables"] += 1
            return None
        else:
            fields = observation_fields("suricata", event_type, bag)
        observed: datetime | None = parse_time(event.get("timestamp"))
        flow_id = event.get("flow_id")
        extra: dict[str, Any] = {"event_type": event_type}
        if bag.invalid:
            extra["invalid_observables"] = bag.invalid
        for key, name in (("app_proto", "app_proto"), ("host", "sensor"), ("in_iface", "iface")):
            if event.get(key):
                extra[name] = event[key]
        if event_type == "alert":
            rule = event["alert"]
            extra.update({k: rule[k] for k in ("category", "gid", "rev", "action") if k in rule})
        return build_alert(
            source="suricata",
            source_ref=str(flow_id) if flow_id is not None else None,
            entity_id=report.entity_id,
            exercise_id=report.exercise_id,
            observed_at=observed or report.received_at,
            received_at=report.received_at,
            flow=_flow(event),
            observables=bag.items,
            extra=extra,
            raw=line.decode("utf-8", "backslashreplace"),
            **fields,
        )
