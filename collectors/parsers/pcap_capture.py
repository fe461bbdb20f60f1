"""One pass over a capture: flows, scans, DNS, HTTP sessions and TLS hellos, all bounded.

``Capture.feed`` takes one decoded frame; nothing here keeps packets, only counters and
aggregates with explicit caps (``CaptureLimits``). Whatever a cap turns away is counted and
reported in the capture summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from collectors.parsers.pcap_apps import (
    HTTP_METHODS,
    ClientHello,
    DnsAnswer,
    DnsMessage,
    HttpHead,
    client_hello,
    dns_messages,
    http_request,
)
from collectors.parsers.pcap_decode import PROTO_ARP, TCP, Decoded, Frame, decode
from collectors.parsers.pcap_flows import FlowKey, FlowStats, FlowTable, ScanDetector

DNS_PORTS = frozenset((53, 5353, 5355))


@dataclass
class CaptureLimits:
    """Thresholds and caps; each can be set in ``report.metadata`` under the same name."""

    scan_min_ports: int = 100
    scan_min_hosts: int = 64
    max_flows: int = 200_000
    max_flow_alerts: int = 10_000
    max_dns_names: int = 50_000
    max_http_sessions: int = 10_000
    max_tls_hellos: int = 50_000
    stream_bytes: int = 64 * 1024
    payload_total: int = 16 * 1024 * 1024

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> CaptureLimits:
        """Read positive integers from metadata, defaults for the rest."""
        values: dict[str, int] = {}
        for item in fields(cls):
            raw = metadata.get(item.name)
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
                values[item.name] = raw
        return cls(**values)


@dataclass
class DnsName:
    """Every query and response for one (name, type)."""

    first: float
    flow: FlowKey
    queries: int = 0
    responses: int = 0
    answers: dict[DnsAnswer, None] = field(default_factory=dict)
    rcodes: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    servers: set[str] = field(default_factory=set)


@dataclass
class HttpSession:
    """One TCP stream that carried HTTP requests, with bounded payloads of both sides."""

    first: float
    requests: list[HttpHead] = field(default_factory=list)
    client: bytearray = field(default_factory=bytearray)
    server: bytearray = field(default_factory=bytearray)
    next_seq: list[int] = field(default_factory=lambda: [-1, -1])


@dataclass
class TlsServer:
    """ClientHellos with one SNI to one server and port."""

    first: float
    flow: FlowKey
    hellos: int = 0
    ja3: dict[str, str] = field(default_factory=dict)
    clients: set[str] = field(default_factory=set)


@dataclass
class Counters:
    """What the capture summary reports."""

    packets: int = 0
    bytes: int = 0
    not_ip: int = 0
    first: float | None = None
    last: float | None = None
    linktypes: set[int] = field(default_factory=set)
    dns_dropped: int = 0
    http_dropped: int = 0
    tls_dropped: int = 0
    payload_kept: int = 0
    payload_dropped: int = 0


class Capture:
    """The state of one pass over a capture."""

    def __init__(self, limits: CaptureLimits) -> None:
        self.limits = limits
        self.flows = FlowTable(limits.max_flows)
        self.scans = ScanDetector(limits.scan_min_ports, limits.scan_min_hosts)
        self.dns: dict[tuple[str, str], DnsName] = {}
        self.http: dict[FlowKey, HttpSession] = {}
        self.tls: dict[tuple[str, str, int], TlsServer] = {}
        self.counters = Counters()

    def feed(self, frame: Frame) -> None:
        """Account one frame."""
        counters = self.counters
        counters.packets += 1
        counters.bytes += frame.wirelen
        if counters.first is None:
            counters.first = frame.ts
        counters.linktypes.add(frame.linktype)
        counters.last = frame.ts
        packet = decode(frame.linktype, frame.data)
        if packet is None:
            counters.not_ip += 1
            return
        if packet.proto == PROTO_ARP:
            self.scans.arp(packet.src, packet.dst, packet.flags == 1)
            return
        key, stats, from_client, _new = self.flows.update(packet, frame.ts, frame.wirelen)
        if packet.payload:
            self._application(packet, frame.ts, key, stats, from_client)

    def _application(
        self, packet: Decoded, ts: float, key: FlowKey, stats: FlowStats | None, from_client: bool
    ) -> None:
        payload = packet.payload
        if packet.sport in DNS_PORTS or packet.dport in DNS_PORTS:
            for message in dns_messages(payload, packet.proto == TCP):
                self._dns(message, packet, ts, key)
            if stats is not None:
                stats.app = "dns"
            return
        if packet.proto != TCP:
            return
        session = self.http.get(key)
        # no direction test: a capture that starts mid-flow may have the roles reversed
        if payload.startswith(HTTP_METHODS):
            head = http_request(payload)
            if head is not None:
                session = self._http(head, ts, key, session)
                if stats is not None:
                    stats.app = "http"
        if session is not None:
            self._keep_payload(session, packet, from_client)
        if payload[0] == 0x16:  # also inside an HTTP CONNECT tunnel
            hello = client_hello(payload)
            if hello is not None:
                self._tls(hello, ts, key)
                if stats is not None:
                    stats.app = "tls"

    def _dns(self, message: DnsMessage, packet: Decoded, ts: float, key: FlowKey) -> None:
        entry = self.dns.get((message.qname, message.qtype))
        if entry is None:
            if len(self.dns) >= self.limits.max_dns_names:
                self.counters.dns_dropped += 1
                return
            entry = self.dns[(message.qname, message.qtype)] = DnsName(ts, key)
        client, server = (packet.dst, packet.src) if message.response else (packet.src, packet.dst)
        if message.response:
            entry.responses += 1
            entry.rcodes.add(message.rcode)
            for answer in message.answers:
                if len(entry.answers) < 64:
                    entry.answers[answer._replace(ttl=0)] = None
        else:
            entry.queries += 1
        if len(entry.clients) < 16:
            entry.clients.add(client)
        if len(entry.servers) < 16:
            entry.servers.add(server)

    def _http(
        self, head: HttpHead, ts: float, key: FlowKey, session: HttpSession | None
    ) -> HttpSession | None:
        if session is None:
            if len(self.http) >= self.limits.max_http_sessions:
                self.counters.http_dropped += 1
                return None
            session = self.http[key] = HttpSession(ts)
        if len(session.requests) < 32:
            session.requests.append(head)
        return session

    def _keep_payload(self, session: HttpSession, packet: Decoded, from_client: bool) -> None:
        side = 0 if from_client else 1
        buffer = session.client if from_client else session.server
        payload = packet.payload
        expected = session.next_seq[side]
        behind = expected != -1 and (packet.seq - expected) & 0xFFFFFFFF > 0x7FFFFFFF
        if behind:
            return  # a retransmission of bytes we already have
        session.next_seq[side] = (packet.seq + len(payload)) & 0xFFFFFFFF
        room = min(
            self.limits.stream_bytes - len(buffer),
            self.limits.payload_total - self.counters.payload_kept,
        )
        if room <= 0:
            self.counters.payload_dropped += len(payload)
            return
        kept = payload[:room]
        buffer += kept
        self.counters.payload_kept += len(kept)
        self.counters.payload_dropped += len(payload) - len(kept)

    def _tls(self, hello: ClientHello, ts: float, key: FlowKey) -> None:
        where = (hello.sni, key[2], key[3])
        entry = self.tls.get(where)
        if entry is None:
            if len(self.tls) >= self.limits.max_tls_hellos:
                self.counters.tls_dropped += 1
                return
            entry = self.tls[where] = TlsServer(ts, key)
        entry.hellos += 1
        if hello.ja3 and len(entry.ja3) < 8:
            entry.ja3[hello.ja3] = hello.ja3_string
        if len(entry.clients) < 16:
            entry.clients.add(key[0])
