"""``traffic``: attack traffic crafted with scapy, written to a pcap, ingested as a pcap.

Nothing is ever sent on a network (SECURITY M5): packets are only written to a capture file
in the exercise's work folder, at most ``MAX_PACKETS`` per inject, and the kill switch is
checked before every packet. Patterns (``args.pattern``, one or a list):

- ``port_scan``: unanswered SYNs from the attacker to ``ports`` ports of the entity's host;
- ``dns_c2``: the entity's host asks its resolver for ``c2_domain`` (answered);
- ``http_beacon``: an HTTP GET to ``c2_domain`` whose response carries the EICAR test
  string, so the shipped ``PUKARA_EICAR_Test_File`` rule matches on the live path;
- ``tls_sni``: a TLS ClientHello naming ``sni``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from playbooks.exercises.injects import InjectContext, entity_ip, inject_kind
from pukara.core.schema import Entity, RawReport

MAX_PACKETS = 20_000
RESOLVER = "198.18.0.53"
#: the EICAR test string, split so no scanner flags this source file itself
EICAR = ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode()

Packets = Iterator[Any]


def _port_scan(host: str, args: dict[str, Any]) -> Packets:
    from scapy.layers.inet import IP, TCP

    attacker = str(args.get("attacker", "198.18.0.66"))
    for port in range(1, int(args.get("ports", 200)) + 1):
        yield IP(src=attacker, dst=host) / TCP(sport=45000, dport=port, flags="S", seq=1000)


def _dns_c2(host: str, args: dict[str, Any]) -> Packets:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP

    domain = str(args["c2_domain"])
    c2_ip = str(args.get("c2_ip", "198.18.0.99"))
    for n in range(int(args.get("lookups", 3))):
        query = DNS(id=100 + n, rd=1, qd=DNSQR(qname=domain, qtype="A"))
        yield IP(src=host, dst=RESOLVER) / UDP(sport=53000 + n, dport=53) / query
        answer = DNS(id=100 + n, qr=1, aa=1, qd=DNSQR(qname=domain, qtype="A"),
                     an=DNSRR(rrname=domain, type="A", ttl=60, rdata=c2_ip))
        yield IP(src=RESOLVER, dst=host) / UDP(sport=53, dport=53000 + n) / answer


def _tcp_session(client: str, server: str, port: int, request: bytes,
                 response: bytes) -> Packets:
    from scapy.layers.inet import IP, TCP

    c, s = 1000, 5000
    out, back = IP(src=client, dst=server), IP(src=server, dst=client)
    yield out / TCP(sport=49152, dport=port, flags="S", seq=c)
    yield back / TCP(sport=port, dport=49152, flags="SA", seq=s, ack=c + 1)
    yield out / TCP(sport=49152, dport=port, flags="A", seq=c + 1, ack=s + 1)
    yield out / TCP(sport=49152, dport=port, flags="PA", seq=c + 1, ack=s + 1) / request
    yield back / TCP(sport=port, dport=49152, flags="PA", seq=s + 1,
                     ack=c + 1 + len(request)) / response
    yield out / TCP(sport=49152, dport=port, flags="FA", seq=c + 1 + len(request),
                    ack=s + 1 + len(response))


def _http_beacon(host: str, args: dict[str, Any]) -> Packets:
    domain = str(args["c2_domain"])
    path = str(args.get("path", "/gate.php"))
    request = (f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nUser-Agent: Mozilla/5.0\r\n"
               "Accept: */*\r\n\r\n").encode()
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: " + str(len(EICAR)).encode() + b"\r\n\r\n" + EICAR)
    yield from _tcp_session(host, str(args.get("c2_ip", "198.18.0.99")), 80, request, response)


def _tls_sni(host: str, args: dict[str, Any]) -> Packets:
    from scapy.layers.tls import extensions, handshake, record

    layers: Any = (record.TLS, handshake.TLSClientHello, extensions.TLS_Ext_ServerName,
                   extensions.ServerName)
    tls, client_hello, sni_extension, server_name = layers
    sni = str(args["sni"]).encode()
    hello = tls(msg=[client_hello(
        ciphers=[0x1301, 0x1302, 0xC02F],
        ext=[sni_extension(servernames=[server_name(servername=sni)])])])
    yield from _tcp_session(host, str(args.get("c2_ip", "198.18.0.99")), 443, bytes(hello),
                            b"")


PATTERNS: dict[str, Callable[[str, dict[str, Any]], Packets]] = {
    "port_scan": _port_scan, "dns_c2": _dns_c2, "http_beacon": _http_beacon,
    "tls_sni": _tls_sni,
}


def write_capture(path: Path, group: list[Entity], args: dict[str, Any], ctx: InjectContext,
                  start: float) -> int:
    """Write the patterns of ``args`` for each entity of ``group`` to ``path``; returns the
    packet count."""
    from scapy.utils import PcapWriter

    patterns = args.get("pattern", "port_scan")
    names = [patterns] if isinstance(patterns, str) else list(patterns)
    unknown = [n for n in names if n not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown traffic pattern(s) {unknown}; known: {sorted(PATTERNS)}")
    count = 0
    with PcapWriter(str(path), sync=False) as writer:
        for entity, name in ((e, n) for e in group for n in names):
            for packet in PATTERNS[name](entity_ip(entity), args):
                if count >= MAX_PACKETS:
                    raise ValueError(f"traffic inject exceeds the cap of {MAX_PACKETS} packets")
                ctx.check()
                packet.time = start + count * 0.001
                writer.write(packet)
                count += 1
    return count


@inject_kind("traffic")
def traffic(ctx: InjectContext) -> dict[str, Any]:
    """One pcap per target entity (each entity's own capture point: the pcap parser folds
    DNS, TLS and scans per capture), delivered through the pcap collector."""
    summary: dict[str, Any] = {"packets": 0, "accepted": 0, "rejected": 0, "captures": 0}
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    for entity_id, group in ((e.id, [e]) for e in ctx.targets):
        ctx.check()
        path = ctx.workdir / f"{ctx.inject.id}-{entity_id or 'all'}.pcap"
        summary["packets"] += write_capture(path, group, ctx.inject.args, ctx,
                                            ctx.now.timestamp())
        with path.open("rb") as stream:
            report = ctx.tag(RawReport(stream=stream, source="exercise:traffic",
                                       filename=path.name, entity_id=entity_id, format="pcap",
                                       metadata={"path": str(path), "sandbox": False}))
            result = ctx.deliver(report)
        summary["accepted"] += result.accepted
        summary["rejected"] += result.rejected
        summary["captures"] += 1
    return summary
