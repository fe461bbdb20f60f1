"""PcapParser on the real captures in shared/data, hostile copies of them, and the sandbox.

Expected facts come from the samples' own references: suricata-verify ``test.yaml`` checks
(EVE fields Suricata's CI asserts for that pcap), Zeek btest logs, and scapy's readers as
an independent count of packets. Hostile inputs are *constructed* here from real captures.
"""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP
from scapy.layers.tls.record import TLS
from scapy.utils import RawPcapReader, rdpcap

from collectors.parsers.pcap import PcapParser
from pukara.core.schema import Alert, ParseFailure, RawReport, Record

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VERIFY = DATA / "suricata" / "suricata-verify"
REAL_CAPTURES = sorted(
    [*DATA.glob("pcap/*.pcap"), *VERIFY.glob("*/*.pcap"), *DATA.glob("zeek/btest/*/*.pcap*")]
)
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def parse_bytes(data: bytes, filename: str = "capture.pcap", **metadata: Any) -> list[Record]:
    report = RawReport(
        stream=io.BytesIO(data),
        source="sensor-test",
        filename=filename,
        metadata={"sandbox": False, **metadata},
    )
    return list(PcapParser().parse(report))


def parse_file(path: Path, **metadata: Any) -> list[Record]:
    return parse_bytes(path.read_bytes(), **metadata)


def tagged(records: list[Record], tag: str) -> list[Alert]:
    return [r for r in records if isinstance(r, Alert) and tag in r.tags]


def failures(records: list[Record]) -> list[ParseFailure]:
    return [r for r in records if isinstance(r, ParseFailure)]


def summary(records: list[Record]) -> dict[str, Any]:
    last = records[-1]
    assert isinstance(last, Alert) and "summary" in last.tags
    return last.extra["capture"]


def keys(alert: Alert, role: str | None = None) -> set[str]:
    return {o.key for o in alert.observables if role is None or o.role == role}


def eve_checks(case: str, event_type: str) -> list[dict[str, Any]]:
    """The ``match`` blocks of one event type in a suricata-verify test.yaml."""
    spec = yaml.safe_load((VERIFY / case / "test.yaml").read_text())
    matches = [c["filter"]["match"] for c in spec["checks"]]
    return [m for m in matches if m.get("event_type") == event_type]


@pytest.mark.parametrize("path", REAL_CAPTURES, ids=lambda p: p.name)
def test_every_real_capture_parses_completely(path: Path) -> None:
    records = parse_file(path)
    assert failures(records) == []
    expected_packets = sum(1 for _ in RawPcapReader(str(path)))
    assert summary(records)["packets"] == expected_packets


def test_sniff_recognises_pcap_and_pcapng_only() -> None:
    parser = PcapParser()
    assert parser.sniff((DATA / "pcap" / "zeek__irc-basic.pcap").read_bytes()[:64])
    assert parser.sniff((DATA / "pcap" / "nfs3-01__input.pcap").read_bytes()[:64])  # big-endian
    assert parser.sniff((DATA / "zeek/btest/http-sqli-dvwa/cooper-grill-dvwa.pcapng").read_bytes())
    assert not parser.sniff(b'{"event_type": "alert"}')


def test_http_facts_of_suricata_verify_bug_130() -> None:
    (check,) = eve_checks("bug-130", "http")
    records = parse_file(VERIFY / "bug-130" / "input.pcap")
    (alert,) = tagged(records, "http")
    (request,) = alert.extra["http"]["requests"]
    assert request["host"] == check["http"]["hostname"] == "www.abcdefghij.com"
    assert request["url"] == check["http"]["url"] == "/publication/pub.home/home.html"
    assert request["user_agent"] == check["http"]["http_user_agent"]
    assert request["method"] == check["http"]["http_method"]
    assert alert.flow is not None
    assert (alert.flow.src_ip, alert.flow.src_port) == (check["src_ip"], check["src_port"])
    assert (alert.flow.dst_ip, alert.flow.dst_port) == (check["dest_ip"], check["dest_port"])
    assert "hostname:www.abcdefghij.com" in keys(alert, "host")
    assert "url:http://www.abcdefghij.com/publication/pub.home/home.html" in keys(alert, "url")
    assert f"user-agent:{check['http']['http_user_agent']}" in keys(alert)


def test_http_payload_attachments_carry_the_eicar_download() -> None:
    records = parse_file(VERIFY / "output-eve-fileinfo" / "input.pcap")
    (alert,) = tagged(records, "http")
    assert alert.extra["http"]["requests"][0]["url"] == "/download/eicar.com"
    by_name = {a.filename: a.data for a in alert.attachments}
    assert by_name["http-1-client.bin"].startswith(b"GET /download/eicar.com HTTP/1.1\r\n")
    assert EICAR in by_name["http-1-server.bin"]
    assert EICAR not in by_name["http-1-client.bin"]


def test_payload_caps_per_stream_and_global() -> None:
    path = VERIFY / "decode-teredo-01" / "input.pcap"
    records = parse_file(path, stream_bytes=100, payload_total=250)
    sizes = [len(a.data) for alert in tagged(records, "http") for a in alert.attachments]
    assert all(size <= 100 for size in sizes)
    assert sum(sizes) == 250
    assert summary(records)["payload_bytes_kept"] == 250


def test_dns_facts_of_suricata_verify_teredo() -> None:
    records = parse_file(VERIFY / "decode-teredo-01" / "input.pcap")
    dns = {(a.extra["dns"]["rrname"], a.extra["dns"]["rrtype"]): a for a in tagged(records, "dns")}
    response = next(
        c for c in eve_checks("decode-teredo-01", "dns") if c.get("dns.type") == "response"
    )
    alert = dns[(response["dns.queries[0].rrname"], response["dns.queries[0].rrtype"])]
    answers = {(a["rrtype"], a["rdata"]) for a in alert.extra["dns"]["answers"]}
    assert ("CNAME", response["dns.answers[0].rdata"]) in answers
    aaaa = ipaddress.ip_address(response["dns.answers[1].rdata"]).compressed
    assert ("AAAA", aaaa) in answers
    assert alert.extra["dns"]["clients"] == [response["dest_ip"]]
    assert alert.extra["dns"]["servers"] == [response["src_ip"]]
    assert {"domain:ipv6.google.com", "domain:ipv6.l.google.com"} <= keys(alert)
    assert f"ipv6:{aaaa}" in keys(alert, "answer")
    assert dns[("www.wireshark.org.gateway.2wire.net", "AAAA")].extra["dns"]["rcodes"] == [
        "REFUSED"
    ]


def test_dns_over_tcp_of_suricata_verify_task_7018() -> None:
    records = parse_file(VERIFY / "dns__task-7018-ids-dns-keywords" / "input.pcap")
    answers = {
        a.extra["dns"]["rrname"]: {x["rdata"] for x in a.extra["dns"]["answers"]}
        for a in tagged(records, "dns")
    }
    expected: dict[str, set[str]] = {}
    for check in eve_checks("dns__task-7018-ids-dns-keywords", "dns"):
        if check.get("dns.type") == "response":
            name = check["dns.answers[0].rrname"]
            expected[name] = {v for k, v in check.items() if k.endswith("].rdata")}
    assert expected == {
        "suricata.io": {"35.212.0.44"},
        "oisf.net": {"192.0.78.190", "192.0.78.209"},
        "suricata.org": {"15.197.148.33", "3.33.130.190"},
    }
    assert answers == expected
    assert all(a.flow and a.flow.proto == "tcp" for a in tagged(records, "dns"))


def test_tls_sni_and_flow_counters_of_community_id_ipv6() -> None:
    records = parse_file(VERIFY / "community-id-ipv6" / "input.pcap")
    tls = {a.extra["tls"]["sni"]: a for a in tagged(records, "tls")}
    flows = {a.flow.dst_ip: a.extra["flows"] for a in tagged(records, "flow") if a.flow}
    for check in eve_checks("community-id-ipv6", "tls"):
        alert = tls[check["tls.sni"]]
        assert alert.flow is not None
        assert alert.flow.src_ip == ipaddress.ip_address(check["src_ip"]).compressed
        assert alert.flow.src_port == check["src_port"]
        assert alert.flow.dst_ip == ipaddress.ip_address(check["dest_ip"]).compressed
        assert f"hostname:{check['tls.sni']}" in keys(alert, "sni")
        assert len(alert.extra["tls"]["ja3"]) == 1
    for check in eve_checks("community-id-ipv6", "flow"):
        counted = flows[ipaddress.ip_address(check["dest_ip"]).compressed]
        assert counted["pkts_to_server"] == check["flow.pkts_toserver"]
        assert counted["pkts_to_client"] == check["flow.pkts_toclient"]
        assert counted["bytes_to_server"] == check["flow.bytes_toserver"]
        assert counted["bytes_to_client"] == check["flow.bytes_toclient"]


def test_udp_and_tcp_flow_counters_of_teredo() -> None:
    records = parse_file(VERIFY / "decode-teredo-01" / "input.pcap")
    flows = {
        (a.flow.src_ip, a.flow.dst_ip, a.flow.dst_port): a.extra["flows"]
        for a in tagged(records, "flow")
        if a.flow
    }
    checks = [c for c in eve_checks("decode-teredo-01", "flow") if "dest_port" in c]
    assert len(checks) == 11  # the twelfth is the IPv6 flow inside Teredo, not decoded
    for check in checks:
        counted = flows[(check["src_ip"], check["dest_ip"], check["dest_port"])]
        assert check["src_port"] in counted["client_ports"]
        assert (counted["pkts_to_server"], counted["bytes_to_server"]) == (
            check["flow.pkts_toserver"],
            check["flow.bytes_toserver"],
        )
        assert (counted["pkts_to_client"], counted["bytes_to_client"]) == (
            check["flow.pkts_toclient"],
            check["flow.bytes_toclient"],
        )


def test_zeek_http_get_matches_http_log() -> None:
    (row,) = zeek_rows(DATA / "zeek/btest/http-get/http.log")
    records = parse_file(DATA / "zeek/btest/http-get/get.pcap")
    (alert,) = tagged(records, "http")
    (request,) = alert.extra["http"]["requests"]
    assert (
        (request["host"], request["url"], request["user_agent"])
        == (row["host"], row["uri"], row["user_agent"])
        == ("bro.org", "/download/CHANGES.bro-aux.txt", "Wget/1.14 (darwin12.2.0)")
    )
    assert alert.flow is not None and alert.flow.src_ip == row["id.orig_h"]


def test_pcapng_http_sqli_requests() -> None:
    records = parse_file(DATA / "zeek/btest/http-sqli-dvwa/cooper-grill-dvwa.pcapng")
    urls = [r["url"] for a in tagged(records, "http") for r in a.extra["http"]["requests"]]
    assert urls == [
        "/dvwa/vulnerabilities/sqli/?id=1%27+OR+%271%27%3D%271&Submit=Submit",
        "/dvwa/vulnerabilities/sqli/?id=1%27+UNION+SELECT+NULL%2C+version%28%29+%23&Submit=Submit",
        "/dvwa/vulnerabilities/sqli/?id=2%27+OR+%272%27%3D%272&Submit=Submit",
    ]
    assert summary(records)["linktypes"] == [1]


NMAP = DATA / "pcap" / "zeek__nmap-vsn.pcap"
SCANNER = "192.168.1.71"


def nmap_unanswered() -> tuple[set[str], dict[int, set[str]]]:
    """Oracle with scapy: ARP targets that never replied, and per TCP port the hosts whose
    SYN from the scanner was never SYN-ACKed."""
    packets = rdpcap(str(NMAP))
    arp = [p[ARP] for p in packets if ARP in p]
    replied = {a.psrc for a in arp if a.op == 2}
    asked = {a.pdst for a in arp if a.op == 1 and a.psrc == SCANNER}
    syns, synacks = set(), set()
    for packet in packets:
        if IP in packet and TCP in packet:
            ip, tcp = packet[IP], packet[TCP]
            if ip.src == SCANNER and tcp.flags & 0x12 == 0x02:
                syns.add((ip.dst, tcp.dport, tcp.sport))
            if ip.dst == SCANNER and tcp.flags & 0x12 == 0x12:
                synacks.add((ip.src, tcp.sport, tcp.dport))
    hosts: dict[int, set[str]] = {}
    for host, port, _sport in syns - synacks:
        hosts.setdefault(port, set()).add(host)
    return asked - replied, hosts


def test_nmap_arp_sweep_is_a_scanner_alert() -> None:
    unanswered_arp, _ = nmap_unanswered()
    assert len(unanswered_arp) == 245
    records = parse_file(NMAP)
    (scan,) = tagged(records, "scan")
    assert str(scan.classification) == "information-gathering/scanner"
    assert scan.severity.value == "medium"
    assert f"ipv4:{SCANNER}" in keys(scan, "scanner")
    assert scan.extra["scan"]["hosts_on_port"] == {"arp/0": 245}


def test_scan_thresholds_come_from_metadata() -> None:
    _, tcp_hosts = nmap_unanswered()
    assert {port: len(hosts) for port, hosts in tcp_hosts.items()} == {80: 5, 443: 3}
    (scan,) = tagged(parse_file(NMAP, scan_min_hosts=5, scan_min_ports=2), "scan")
    assert scan.extra["scan"]["hosts_on_port"] == {"tcp/80": 5, "arp/0": 245}
    probed_twice = tcp_hosts[80] & tcp_hosts[443]
    assert scan.extra["scan"]["ports_on_host"] == dict.fromkeys(probed_twice, 2)
    assert tagged(parse_file(NMAP, scan_min_hosts=1000), "scan") == []


def test_answered_connections_are_not_a_scan() -> None:
    records = parse_file(
        VERIFY / "decode-teredo-01" / "input.pcap", scan_min_hosts=2, scan_min_ports=3
    )
    servers = {
        (a.flow.src_ip, a.flow.dst_ip, a.flow.dst_port) for a in tagged(records, "http") if a.flow
    }
    assert servers == {
        ("192.168.2.16", "75.126.203.78", 80),
        ("192.168.2.16", "67.228.110.120", 80),
    }
    assert tagged(records, "scan") == []


def test_flow_table_cap_is_counted() -> None:
    path = VERIFY / "decode-teredo-01" / "input.pcap"
    first_flows: list[tuple[int, frozenset[tuple[str, int]]]] = []
    untracked = 0
    for packet in rdpcap(str(path)):
        ip = packet[IP]
        flow = (ip.proto, frozenset({(ip.src, ip.payload.sport), (ip.dst, ip.payload.dport)}))
        if flow not in first_flows and len(first_flows) < 3:
            first_flows.append(flow)
        untracked += flow not in first_flows
    records = parse_file(path, max_flows=3, max_flow_alerts=2)
    counters = summary(records)
    assert counters["flows"] == 3
    assert counters["packets_in_untracked_flows"] == untracked == 67
    assert len(tagged(records, "flow")) == 2
    assert counters["flow_groups_not_shown"] == counters["flow_groups"] - 2


def zeek_rows(log: Path) -> list[dict[str, str]]:
    """Rows of a Zeek TSV btest baseline."""
    lines = log.read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [
        dict(zip(fields, line.split("\t"), strict=True))
        for line in lines
        if line and not line.startswith("#")
    ]


def test_zeek_dns_flip_answers_match_dns_log() -> None:
    (row,) = zeek_rows(DATA / "zeek/btest/dns-flip/dns.log")
    records = parse_file(DATA / "zeek/btest/dns-flip/dns53.pcap")
    (alert,) = tagged(records, "dns")
    dns = alert.extra["dns"]
    assert dns["rrname"] == row["query"] == "us.v27.distributed.net"
    assert [a["rdata"] for a in dns["answers"]] == row["answers"].split(",")
    assert dns["rcodes"] == [row["rcode_name"]]
    assert (dns["responses"], dns["queries"]) == (1, 0)
    assert {f"ipv4:{ip}" for ip in row["answers"].split(",")} <= keys(alert, "answer")


def test_zeek_ssl_ecdhe_hello_without_sni_matches_ssl_log() -> None:
    (row,) = zeek_rows(DATA / "zeek/btest/ssl-ecdhe/ssl.log")
    records = parse_file(DATA / "zeek/btest/ssl-ecdhe/ecdhe.pcap")
    (alert,) = tagged(records, "tls")
    assert row["server_name"] == "-" and alert.extra["tls"]["sni"] == ""
    assert alert.flow is not None
    assert (alert.flow.src_ip, alert.flow.src_port, alert.flow.dst_ip, alert.flow.dst_port) == (
        row["id.orig_h"],
        int(row["id.orig_p"]),
        row["id.resp_h"],
        int(row["id.resp_p"]),
    )
    (ja3_string,) = alert.extra["tls"]["ja3_strings"].values()
    groups = ja3_string.split(",")[3].split("-")
    assert row["curve"] == "secp256r1" and "23" in groups  # 23 = secp256r1


def test_http_connect_tunnel_and_the_tls_inside_it() -> None:
    path = DATA / "pcap" / "bug-2769__issue_no_icmp.pcap"
    records = parse_file(path)
    (http,) = tagged(records, "http")
    (request,) = http.extra["http"]["requests"]
    assert (request["method"], request["url"]) == (
        "CONNECT",
        "supportingfunctions.us.newsweaver.com:443",
    )
    assert "hostname:supportingfunctions.us.newsweaver.com" in keys(http, "host")
    assert keys(http, "url") == set()
    (tls,) = tagged(records, "tls")
    hello = next(
        TLS(bytes(p[TCP].payload)).msg[0]
        for p in rdpcap(str(path))
        if TCP in p and bytes(p[TCP].payload)[:1] == b"\x16" and bytes(p[TCP].payload)[5] == 1
    )
    sni = next(ext for ext in hello.ext if ext.type == 0).servernames[0].servername.decode()
    assert tls.extra["tls"]["sni"] == sni == "supportingfunctions.us.newsweaver.com"
    assert tls.flow is not None and tls.flow.dst_port == 8080
