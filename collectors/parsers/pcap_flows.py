"""The flow table (bounded, per 5-tuple, oriented client → server) and scan detection.

A flow's client is the sender of its first packet, or the receiver when that packet is a
TCP SYN-ACK. When the table is full, new flows are not tracked; their packets are counted in
``dropped``.
At the end, flows are grouped per (client, server, server port, protocol) for the summary
alerts: one alert per group rather than one per flow keeps big captures readable.

Scan detection counts, per new flow, the distinct server ports one client opened on one
host, and the distinct hosts one client opened on one (protocol, port); ARP requests count
as hosts on ``arp/0``, so an ARP sweep of a subnet is a host sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.parsers.pcap_decode import PROTO_ARP, TCP, UDP, Decoded

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", PROTO_ARP: "arp"}
#: one set in the scan detector never grows past this
SCAN_SET_CAP = 4096

FlowKey = tuple[str, int, str, int, int]


def proto_name(proto: int) -> str:
    """``tcp``, ``udp`` … or the protocol number as text."""
    return PROTO_NAMES.get(proto, str(proto))


@dataclass(slots=True)
class FlowStats:
    """Counters of one flow, client → server (``to_server``) and back (``to_client``)."""

    first: float
    last: float
    pkts_to_server: int = 0
    bytes_to_server: int = 0
    pkts_to_client: int = 0
    bytes_to_client: int = 0
    tcp_flags: int = 0
    app: str = ""


@dataclass(slots=True)
class FlowGroup:
    """Flows that share client, server, server port and protocol."""

    flows: int = 0
    pkts_to_server: int = 0
    bytes_to_server: int = 0
    pkts_to_client: int = 0
    bytes_to_client: int = 0
    first: float = 0.0
    last: float = 0.0
    client_ports: set[int] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)

    @property
    def volume(self) -> int:
        """Bytes both ways."""
        return self.bytes_to_server + self.bytes_to_client


class FlowTable:
    """Flows per 5-tuple, at most ``max_flows`` of them."""

    def __init__(self, max_flows: int) -> None:
        self.max_flows = max_flows
        self.flows: dict[FlowKey, FlowStats] = {}
        self.dropped = 0

    def update(
        self, packet: Decoded, ts: float, size: int
    ) -> tuple[FlowKey, FlowStats | None, bool, bool]:
        """Account one packet: ``(key, stats, from_client, new_flow)``; stats None if dropped."""
        key = (packet.src, packet.sport, packet.dst, packet.dport, packet.proto)
        stats = self.flows.get(key)
        from_client = True
        new = False
        if stats is None:
            reverse = (packet.dst, packet.dport, packet.src, packet.sport, packet.proto)
            stats = self.flows.get(reverse)
            if stats is not None:
                key, from_client = reverse, False
            else:
                new = True
                if packet.proto == TCP and packet.flags & 0x12 == 0x12:
                    key, from_client = reverse, False
                if len(self.flows) >= self.max_flows:
                    self.dropped += 1
                    return key, None, from_client, new
                stats = self.flows[key] = FlowStats(ts, ts)
        stats.last = ts
        if from_client:
            stats.pkts_to_server += 1
            stats.bytes_to_server += size
        else:
            stats.pkts_to_client += 1
            stats.bytes_to_client += size
        stats.tcp_flags |= packet.flags
        return key, stats, from_client, new

    def groups(self) -> dict[tuple[str, str, int, int], FlowGroup]:
        """Group the flows per (client, server, server port, protocol)."""
        grouped: dict[tuple[str, str, int, int], FlowGroup] = {}
        for (client, cport, server, sport, proto), stats in self.flows.items():
            group = grouped.get((client, server, sport, proto))
            if group is None:
                group = grouped[(client, server, sport, proto)] = FlowGroup(first=stats.first)
            group.flows += 1
            group.pkts_to_server += stats.pkts_to_server
            group.bytes_to_server += stats.bytes_to_server
            group.pkts_to_client += stats.pkts_to_client
            group.bytes_to_client += stats.bytes_to_client
            group.first = min(group.first, stats.first)
            group.last = max(group.last, stats.last)
            if len(group.client_ports) < 64:
                group.client_ports.add(cport)
            if stats.app:
                group.apps.add(stats.app)
        return grouped


@dataclass
class ScanFinding:
    """One client that touched many ports on a host or many hosts on a port."""

    scanner: str
    ports_on_host: dict[str, int]
    hosts_on_port: dict[str, int]
    targets: list[str]


class ScanDetector:
    """Distinct ports per (client, host) and hosts per (client, protocol, port)."""

    def __init__(self, min_ports: int, min_hosts: int) -> None:
        self.min_ports = min_ports
        self.min_hosts = min_hosts
        self.ports: dict[tuple[str, str], set[int]] = {}
        self.hosts: dict[tuple[str, int, int], set[str]] = {}

    def observe(self, client: str, server: str, port: int, proto: int) -> None:
        """Record a new flow (or an ARP request) from ``client`` to ``server:port``."""
        if proto in (TCP, UDP):
            ports = self.ports.setdefault((client, server), set())
            if len(ports) < SCAN_SET_CAP:
                ports.add(port)
        elif proto != PROTO_ARP:
            return
        hosts = self.hosts.setdefault((client, proto, port), set())
        if len(hosts) < SCAN_SET_CAP:
            hosts.add(server)

    def findings(self) -> list[ScanFinding]:
        """Clients over either threshold, busiest first."""
        found: dict[str, ScanFinding] = {}
        for (client, server), ports in self.ports.items():
            if len(ports) >= self.min_ports:
                finding = found.setdefault(client, ScanFinding(client, {}, {}, []))
                finding.ports_on_host[server] = len(ports)
                finding.targets.append(server)
        for (client, proto, port), hosts in self.hosts.items():
            if len(hosts) >= self.min_hosts:
                finding = found.setdefault(client, ScanFinding(client, {}, {}, []))
                finding.hosts_on_port[f"{proto_name(proto)}/{port}"] = len(hosts)
                finding.targets.extend(sorted(hosts)[:32])
        return sorted(
            found.values(),
            key=lambda f: -sum(f.ports_on_host.values()) - sum(f.hosts_on_port.values()),
        )
