"""The flow table (bounded, per 5-tuple, oriented client → server) and scan detection.

A flow's client is the sender of its first packet, or the receiver when that packet is a
TCP SYN-ACK. When the table is full, new flows are not tracked; their packets are counted in
``dropped``.
At the end, flows are grouped per (client, server, server port, protocol) for the summary
alerts: one alert per group rather than one per flow keeps big captures readable.

Scan detection works on *unanswered probes*, so that a busy client (a browser, a proxy,
a resolver) is not a scanner: a TCP flow whose client sent a SYN and whose server never
answered SYN-ACK (closed port, filtered, or no host), a UDP flow with no reply, and an ARP
request whose target never replied. Per client it counts the distinct ports probed on one
host and the distinct hosts probed on one (protocol, port); ARP requests count as hosts on
``arp/0``, so an ARP sweep of a subnet is a host sweep. Flows beyond the flow-table cap are
not seen; by then a scan is long over any threshold.
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
    flags_to_server: int = 0
    flags_to_client: int = 0
    app: str = ""

    def unanswered(self, proto: int) -> bool:
        """A TCP SYN never SYN-ACKed, or a UDP flow with no reply."""
        if proto == TCP:
            return bool(self.flags_to_server & 0x02) and not self.flags_to_client & 0x02
        return proto == UDP and self.pkts_to_client == 0


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
            stats.flags_to_server |= packet.flags
        else:
            stats.pkts_to_client += 1
            stats.bytes_to_client += size
            stats.flags_to_client |= packet.flags
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
    """Unanswered probes: ports per (client, host), hosts per (client, protocol, port)."""

    def __init__(self, min_ports: int, min_hosts: int) -> None:
        self.min_ports = min_ports
        self.min_hosts = min_hosts
        self.arp_asked: dict[str, set[str]] = {}
        self.arp_answered: set[str] = set()

    def arp(self, sender: str, target: str, request: bool) -> None:
        """Record an ARP request (sender asks for target) or a reply (sender answers)."""
        if not request:
            if len(self.arp_answered) < SCAN_SET_CAP * 16:
                self.arp_answered.add(sender)
            return
        asked = self.arp_asked.get(sender)
        if asked is None:
            if len(self.arp_asked) >= SCAN_SET_CAP:
                return
            asked = self.arp_asked[sender] = set()
        if len(asked) < SCAN_SET_CAP:
            asked.add(target)

    def findings(self, flows: dict[FlowKey, FlowStats]) -> list[ScanFinding]:
        """Clients over either threshold, busiest first."""
        ports: dict[tuple[str, str], set[int]] = {}
        hosts: dict[tuple[str, int, int], set[str]] = {}
        for (client, _cport, server, sport, proto), stats in flows.items():
            if stats.unanswered(proto):
                ports.setdefault((client, server), set()).add(sport)
                hosts.setdefault((client, proto, sport), set()).add(server)
        for sender, asked in self.arp_asked.items():
            hosts[(sender, PROTO_ARP, 0)] = asked - self.arp_answered
        found: dict[str, ScanFinding] = {}
        for (client, server), probed in ports.items():
            if len(probed) >= self.min_ports:
                finding = found.setdefault(client, ScanFinding(client, {}, {}, []))
                finding.ports_on_host[server] = len(probed)
                finding.targets.append(server)
        for (client, proto, port), reached in hosts.items():
            if len(reached) >= self.min_hosts:
                finding = found.setdefault(client, ScanFinding(client, {}, {}, []))
                finding.hosts_on_port[f"{proto_name(proto)}/{port}"] = len(reached)
                finding.targets.extend(sorted(reached)[:32])
        return sorted(
            found.values(),
            key=lambda f: -sum(f.ports_on_host.values()) - sum(f.hosts_on_port.values()),
        )
