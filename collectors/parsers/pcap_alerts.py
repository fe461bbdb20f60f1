"""Alerts out of one capture's aggregates: scans, DNS names, HTTP sessions, TLS, flows.

Observation alerts (DNS, HTTP, TLS, flow groups) are low severity and unclassified; a scan
is ``information-gathering/scanner`` at medium severity. Observables that do not normalise
(a junk DNS name, a Host header with spaces) are left out, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from collectors.parsers.pcap_capture import Capture, DnsName, HttpSession, TlsServer
from collectors.parsers.pcap_flows import FlowGroup, FlowKey, ScanFinding, proto_name
from pukara.core.errors import PukaraError
from pukara.core.observables import ObservableType
from pukara.core.schema import Alert, Attachment, Classification, Flow, Observable
from pukara.core.taxonomy import Severity


@dataclass
class Origin:
    """Where the capture came from, copied onto every alert."""

    source: str
    filename: str
    entity_id: str | None
    exercise_id: str | None
    received_at: datetime


def when(ts: float | None, origin: Origin) -> datetime:
    """A capture timestamp as UTC, or the time the report arrived if it is out of range."""
    try:
        return datetime.fromtimestamp(ts, UTC) if ts is not None else origin.received_at
    except (OverflowError, OSError, ValueError):
        return origin.received_at


@lru_cache(maxsize=65536)
def observable(kind: ObservableType, value: str, role: str | None = None) -> Observable | None:
    """An observable, or None if the value does not normalise (cached: they are frozen)."""
    try:
        return Observable(type=kind, value=value, role=role)
    except (ValidationError, PukaraError, ValueError):
        return None


def ip_observable(value: str, role: str) -> Observable | None:
    """An ipv4 or ipv6 observable (the decoder's text form tells which)."""
    return observable(ObservableType.IPV6 if ":" in value else ObservableType.IPV4, value, role)


def _present(items: list[Observable | None]) -> list[Observable]:
    seen: dict[str, Observable] = {}
    for item in items:
        if item is not None and item.key not in seen:
            seen[item.key] = item
    return list(seen.values())


def _flow(key: FlowKey) -> Flow:
    client, cport, server, sport, proto = key
    return Flow(
        src_ip=client, src_port=cport, dst_ip=server, dst_port=sport, proto=proto_name(proto)
    )


def _alert(origin: Origin, ts: float | None, title: str, **values: Any) -> Alert:
    return Alert(
        source=origin.source[:64],
        source_ref=origin.filename[:256] or None,
        entity_id=origin.entity_id,
        exercise_id=origin.exercise_id,
        title=title[:512],
        observed_at=when(ts, origin),
        received_at=origin.received_at,
        **values,
    )


def scan_alert(finding: ScanFinding, origin: Origin) -> Alert:
    """A scanner: many ports on one host or many hosts on one port."""
    parts = [f"{n} ports on {host}" for host, n in finding.ports_on_host.items()]
    parts += [f"{n} hosts on {port}" for port, n in finding.hosts_on_port.items()]
    targets = [ip_observable(t, "target") for t in finding.targets[:32]]
    return _alert(
        origin,
        None,
        f"Scan from {finding.scanner}: {', '.join(parts[:4])}",
        classification=Classification(taxonomy="information-gathering", type="scanner"),
        severity=Severity.MEDIUM,
        signature="pcap scan detection",
        observables=_present([ip_observable(finding.scanner, "scanner"), *targets]),
        tags=["pcap", "scan"],
        extra={
            "scan": {
                "scanner": finding.scanner,
                "ports_on_host": finding.ports_on_host,
                "hosts_on_port": finding.hosts_on_port,
            }
        },
    )


def dns_alert(name: tuple[str, str], entry: DnsName, origin: Origin) -> Alert:
    """Every query and answer for one (name, type)."""
    answers = list(entry.answers)
    found: list[Observable | None] = [observable(ObservableType.DOMAIN, name[0], "query")]
    for answer in answers:
        if answer.rrtype in ("A", "AAAA"):
            found.append(ip_observable(answer.rdata, "answer"))
        elif answer.rrtype in ("CNAME", "NS", "MX", "PTR"):
            found.append(observable(ObservableType.DOMAIN, answer.rdata, "answer"))
    found += [ip_observable(ip, "client") for ip in sorted(entry.clients)]
    return _alert(
        origin,
        entry.first,
        f"DNS {name[1]} {name[0]}",
        flow=_flow(entry.flow),
        signature="pcap dns",
        observables=_present(found),
        tags=["pcap", "dns"],
        extra={
            "dns": {
                "rrname": name[0],
                "rrtype": name[1],
                "queries": entry.queries,
                "responses": entry.responses,
                "rcodes": sorted(entry.rcodes),
                "answers": [
                    {"rrname": a.rrname, "rrtype": a.rrtype, "rdata": a.rdata} for a in answers
                ],
                "clients": sorted(entry.clients),
                "servers": sorted(entry.servers),
            }
        },
    )


def _url(host: str, path: str, port: int) -> str:
    if "://" in path:
        return path
    netloc = host if port == 80 or ":" in host else f"{host}:{port}"
    return f"http://{netloc}{path if path.startswith('/') else '/' + path}"


def _http_requests(
    key: FlowKey, session: HttpSession
) -> tuple[list[dict[str, str]], list[Observable | None]]:
    requests, found = [], []
    for head in session.requests:
        authority = head.path if head.method == "CONNECT" else head.host
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        # a CONNECT names a tunnel's far end, not a resource: no URL observable for it
        tunnel = head.method == "CONNECT"
        url = head.path if tunnel else _url(head.host or key[2], head.path, key[3])
        requests.append(
            {
                "method": head.method,
                "host": head.host,
                "url": head.path,
                "full_url": url,
                "user_agent": head.user_agent,
            }
        )
        found += [
            observable(ObservableType.HOSTNAME, host, "host"),
            None if tunnel else observable(ObservableType.URL, url, "url"),
            observable(ObservableType.USER_AGENT, head.user_agent, "client"),
        ]
    return requests, found


def http_alert(key: FlowKey, session: HttpSession, origin: Origin, number: int) -> Alert:
    """One HTTP session: its requests, and the first bytes of each side as attachments."""
    requests, found = _http_requests(key, session)
    found += [ip_observable(key[0], "client"), ip_observable(key[2], "server")]
    attachments = [
        Attachment(filename=f"http-{number}-{side}.bin", data=bytes(data))
        for side, data in (("client", session.client), ("server", session.server))
        if data
    ]
    first = requests[0] if requests else {"method": "", "full_url": ""}
    return _alert(
        origin,
        session.first,
        f"HTTP {first['method']} {first['full_url']}"[:512],
        flow=_flow(key),
        signature="pcap http",
        observables=_present(found),
        attachments=attachments,
        tags=["pcap", "http"],
        extra={
            "http": {
                "requests": requests,
                "client_bytes": len(session.client),
                "server_bytes": len(session.server),
            }
        },
    )


def tls_alert(where: tuple[str, str, int], entry: TlsServer, origin: Origin) -> Alert:
    """ClientHellos with one SNI to one server and port."""
    sni, server, port = where
    found: list[Observable | None] = (
        [observable(ObservableType.HOSTNAME, sni, "sni")] if sni else []
    )
    found += [observable(ObservableType.JA3, ja3, "client") for ja3 in entry.ja3]
    found += [ip_observable(server, "server")]
    found += [ip_observable(ip, "client") for ip in sorted(entry.clients)]
    return _alert(
        origin,
        entry.first,
        f"TLS ClientHello {sni or '(no SNI)'} to {server}:{port}",
        flow=_flow(entry.flow),
        signature="pcap tls",
        observables=_present(found),
        tags=["pcap", "tls"],
        extra={
            "tls": {
                "sni": sni,
                "hellos": entry.hellos,
                "ja3": sorted(entry.ja3),
                "ja3_strings": dict(entry.ja3),
                "clients": sorted(entry.clients),
            }
        },
    )


def flow_alert(where: tuple[str, str, int, int], group: FlowGroup, origin: Origin) -> Alert:
    """One (client, server, server port, protocol) group of flows."""
    client, server, port, proto = where
    name = proto_name(proto)
    return _alert(
        origin,
        group.first,
        f"Flows {client} → {server}:{port}/{name} ({group.flows})",
        flow=Flow(src_ip=client, dst_ip=server, dst_port=port, proto=name),
        signature="pcap flow summary",
        tags=["pcap", "flow"],
        observables=_present([ip_observable(client, "client"), ip_observable(server, "server")]),
        extra={
            "flows": {
                "count": group.flows,
                "pkts_to_server": group.pkts_to_server,
                "bytes_to_server": group.bytes_to_server,
                "pkts_to_client": group.pkts_to_client,
                "bytes_to_client": group.bytes_to_client,
                "first": group.first,
                "last": group.last,
                "client_ports": sorted(group.client_ports),
                "apps": sorted(group.apps),
            }
        },
    )


def capture_alerts(capture: Capture, origin: Origin) -> Iterator[Alert]:
    """Every alert of a finished capture, scans first, the capture summary last."""
    for finding in capture.scans.findings(capture.flows.flows):
        yield scan_alert(finding, origin)
    for name, entry in capture.dns.items():
        yield dns_alert(name, entry, origin)
    for number, (key, session) in enumerate(capture.http.items(), 1):
        yield http_alert(key, session, origin, number)
    for where, hello in capture.tls.items():
        yield tls_alert(where, hello, origin)
    groups = capture.flows.groups()
    busiest = sorted(groups.items(), key=lambda item: -item[1].volume)
    for group_key, group in busiest[: capture.limits.max_flow_alerts]:
        yield flow_alert(group_key, group, origin)
    yield summary_alert(capture, origin, len(groups))


def summary_alert(capture: Capture, origin: Origin, groups: int) -> Alert:
    """Totals, and everything a cap turned away."""
    counters = capture.counters
    shown = min(groups, capture.limits.max_flow_alerts)
    return _alert(
        origin,
        counters.first,
        f"Capture {origin.filename or origin.source}: "
        f"{counters.packets} packets, {len(capture.flows.flows)} flows",
        signature="pcap capture summary",
        tags=["pcap", "summary"],
        extra={
            "capture": {
                "packets": counters.packets,
                "bytes": counters.bytes,
                "not_ip": counters.not_ip,
                "first": counters.first,
                "last": counters.last,
                "linktypes": sorted(counters.linktypes),
                "flows": len(capture.flows.flows),
                "packets_in_untracked_flows": capture.flows.dropped,
                "flow_groups": groups,
                "flow_groups_not_shown": groups - shown,
                "dns_names": len(capture.dns),
                "dns_not_tracked": counters.dns_dropped,
                "http_sessions": len(capture.http),
                "http_not_tracked": counters.http_dropped,
                "tls_servers": len(capture.tls),
                "tls_not_tracked": counters.tls_dropped,
                "payload_bytes_kept": counters.payload_kept,
                "payload_bytes_dropped": counters.payload_dropped,
                "limits": vars(capture.limits),
            }
        },
    )
