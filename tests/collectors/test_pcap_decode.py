"""The cheap decoders: link layers, IPv4/IPv6, TCP/UDP, DNS, HTTP heads, TLS ClientHello.

Link-layer frames here are CONSTRUCTED with scapy (labelled as such); scapy's own full
dissectors are the independent oracle for the DNS and TLS readers, run on real packets
from shared/data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.layers.tls.record import TLS
from scapy.utils import RawPcapReader

from collectors.parsers.pcap_apps import client_hello, dns_message, dns_messages, http_request
from collectors.parsers.pcap_decode import PROTO_ARP, decode

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VERIFY = DATA / "suricata" / "suricata-verify"
#: explicit MACs: a bare Ether() makes scapy resolve the destination (ARP, seconds)
MACS = {"src": "00:00:5e:00:53:01", "dst": "00:00:5e:00:53:02"}
TCP_SEGMENT = IP(src="10.1.2.3", dst="192.0.2.9") / TCP(sport=40000, dport=443, flags="S", seq=7)


def payloads(path: Path) -> list[tuple[int, bytes, int, int]]:
    """(proto, payload, sport, dport) of every decodable packet of a real capture."""
    found = []
    for data, _meta in RawPcapReader(str(path)):
        packet = decode(1, data)
        if packet is not None and packet.payload:
            found.append((packet.proto, packet.payload, packet.sport, packet.dport))
    return found


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, bytes(Ether(**MACS) / TCP_SEGMENT)),
        (1, bytes(Ether(**MACS) / Dot1Q(vlan=10) / TCP_SEGMENT)),
        (1, bytes(Ether(type=0x88A8, **MACS) / Dot1Q(vlan=10) / Dot1Q(vlan=20) / TCP_SEGMENT)),
        (113, bytes(CookedLinux() / TCP_SEGMENT)),
        (276, bytes(CookedLinuxV2() / TCP_SEGMENT)),
        (0, bytes(Loopback(type=2) / TCP_SEGMENT)),
        (101, bytes(TCP_SEGMENT)),
        (228, bytes(TCP_SEGMENT)),
    ],
    ids=["ethernet", "vlan", "qinq", "sll", "sll2", "bsd-loopback", "raw", "ipv4"],
)
def test_link_layers_constructed(linktype: int, frame: bytes) -> None:
    packet = decode(linktype, frame)
    assert packet is not None
    assert (packet.src, packet.sport, packet.dst, packet.dport, packet.proto) == (
        "10.1.2.3",
        40000,
        "192.0.2.9",
        443,
        6,
    )
    assert (packet.flags, packet.seq, packet.payload) == (0x02, 7, b"")


def test_ipv6_extension_headers_and_udp_payload_constructed() -> None:
    frame = bytes(
        Ether(**MACS)
        / IPv6(src="2001:db8::1", dst="2001:db8::53")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / UDP(sport=5353, dport=53)
        / b"payload"
    )
    packet = decode(1, frame)
    assert packet is not None
    assert (packet.src, packet.dst, packet.proto, packet.sport, packet.dport) == (
        "2001:db8::1",
        "2001:db8::53",
        17,
        5353,
        53,
    )
    assert packet.payload == b"payload"


def test_ethernet_padding_is_not_payload_constructed() -> None:
    frame = bytes(
        Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"ab"
    )
    packet = decode(1, frame + b"\x00" * 20)
    assert packet is not None and packet.payload == b"ab"


def test_non_first_fragment_has_no_ports_constructed() -> None:
    frame = bytes(
        Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", frag=100, proto=17) / (b"x" * 40)
    )
    packet = decode(1, frame)
    assert packet is not None
    assert (packet.proto, packet.sport, packet.dport, packet.payload) == (17, 0, 0, b"")


def test_arp_request_and_reply_constructed() -> None:
    request = decode(1, bytes(Ether(**MACS) / ARP(op=1, psrc="192.168.1.71", pdst="192.168.1.10")))
    assert request is not None
    assert (request.src, request.dst, request.proto, request.flags) == (
        "192.168.1.71",
        "192.168.1.10",
        PROTO_ARP,
        1,
    )
    reply = decode(1, bytes(Ether(**MACS) / ARP(op=2, psrc="192.168.1.10", pdst="192.168.1.71")))
    assert reply is not None and (reply.src, reply.flags) == ("192.168.1.10", 2)
    assert decode(1, bytes(Ether(**MACS) / ARP(op=3, pdst="192.0.2.1"))) is None


@pytest.mark.parametrize("size", range(0, 60, 7))
def test_short_frames_decode_to_none_or_headers(size: int) -> None:
    frame = bytes(Ether(**MACS) / TCP_SEGMENT / b"data")[:size]
    packet = decode(1, frame)
    assert packet is None or packet.src == "10.1.2.3"


def test_dns_reader_agrees_with_scapy_on_real_messages() -> None:
    udp = [
        p
        for p in payloads(VERIFY / "decode-teredo-01" / "input.pcap")
        if p[0] == 17 and 53 in (p[2], p[3])
    ]
    assert len(udp) == 10
    for _proto, payload, _sport, _dport in udp:
        ours = dns_message(payload)
        theirs = DNS(payload)
        assert ours is not None
        assert ours.id == theirs.id
        assert ours.qname == theirs.qd[0].qname.decode().rstrip(".")
        assert ours.response == bool(theirs.qr)
        expected = []
        for record in theirs.an:
            rdata = record.rdata
            text = rdata.decode().rstrip(".") if isinstance(rdata, bytes) else str(rdata)
            expected.append((record.rrname.decode().rstrip("."), text, record.ttl))
        assert [(a.rrname, a.rdata, a.ttl) for a in ours.answers] == expected


def test_dns_over_tcp_segments() -> None:
    tcp = [
        p for p in payloads(VERIFY / "dns__task-7018-ids-dns-keywords" / "input.pcap") if p[0] == 6
    ]
    names = [m.qname for _p, payload, _s, _d in tcp for m in dns_messages(payload, tcp=True)]
    assert names == [
        "suricata.io",
        "suricata.io",
        "oisf.net",
        "oisf.net",
        "suricata.org",
        "suricata.org",
    ]


def test_dns_reader_rejects_junk_and_pointer_loops() -> None:
    assert dns_message(b"") is None
    assert dns_message(b"\x00" * 11) is None
    loop = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert dns_message(loop) is None


def test_tls_client_hello_agrees_with_scapy() -> None:
    hellos = [
        p[1]
        for p in payloads(VERIFY / "community-id-ipv6" / "input.pcap")
        if p[3] == 443 and p[1][:1] == b"\x16"
    ]
    assert len(hellos) == 2
    for payload in hellos:
        ours = client_hello(payload)
        assert ours is not None
        message = TLS(payload).msg[0]
        sni = next(ext for ext in message.ext if ext.type == 0).servernames[0].servername
        assert ours.sni == sni.decode()
        version, ciphers, extensions, _groups, _formats = ours.ja3_string.split(",")
        assert int(version) == message.version
        grease = {0x0A0A + 0x1010 * i for i in range(16)}
        assert [int(c) for c in ciphers.split("-")] == [
            c for c in message.ciphers if c not in grease
        ]
        assert [int(e) for e in extensions.split("-")] == [
            e.type for e in message.ext if e.type not in grease
        ]
    assert {client_hello(p).sni for p in hellos} == {"ipv6.google.com", "dns.google"}  # type: ignore[union-attr]


def test_tls_reader_ignores_non_hellos() -> None:
    assert client_hello(b"\x17\x03\x03\x00\x10" + b"\x00" * 60) is None
    assert client_hello(b"\x16\x03\x01\x00\x40\x02" + b"\x00" * 60) is None
    assert client_hello(b"\x16\x03\x01\x00\x40\x01" + b"\xff" * 60) is None


def test_http_request_head() -> None:
    head = http_request(
        b"GET /a?b=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: curl/8.0\r\n\r\nbody"
    )
    assert head is not None
    assert head == ("GET", "/a?b=1", "example.org:8080", "curl/8.0")
    assert http_request(b"HTTP/1.1 200 OK\r\n\r\n") is None
