"""The Shadowserver report table: report type → classification, severity, column roles.

One generic CSV parser (``shadowserver.py``) is driven by this table, in the spirit of
IntelMQ's Shadowserver ``_config.py``. Column *roles* say which columns carry the flow and
the observables routing needs (IP, port, hostname, ASN …); every other column is kept in the
alert's ``extra``. Roles common to all reports are in ``COMMON_ROLES``; a report only lists
what differs (``roles``) and which columns a row must have (``required``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from pukara.core.taxonomy import Severity


class Role(Enum):
    """What a Shadowserver column means to Pukara."""

    TIMESTAMP = "timestamp"
    SRC_IP = "src_ip"
    SRC_PORT = "src_port"
    SRC_HOSTNAME = "src_hostname"
    SRC_ASN = "src_asn"
    DST_IP = "dst_ip"
    DST_PORT = "dst_port"
    DST_HOSTNAME = "dst_hostname"
    DST_ASN = "dst_asn"
    PROTO = "proto"
    URL = "url"
    HOST = "host"
    MD5 = "md5"
    SHA256 = "sha256"


COMMON_ROLES: Mapping[str, Role] = MappingProxyType(
    {
        "timestamp": Role.TIMESTAMP,
        "ip": Role.SRC_IP,
        "src_ip": Role.SRC_IP,
        "port": Role.SRC_PORT,
        "src_port": Role.SRC_PORT,
        "hostname": Role.SRC_HOSTNAME,
        "src_hostname": Role.SRC_HOSTNAME,
        "asn": Role.SRC_ASN,
        "src_asn": Role.SRC_ASN,
        "dst_ip": Role.DST_IP,
        "dst_port": Role.DST_PORT,
        "dst_hostname": Role.DST_HOSTNAME,
        "dst_asn": Role.DST_ASN,
        "protocol": Role.PROTO,
        "url": Role.URL,
        "http_host": Role.HOST,
        "host": Role.HOST,
        "md5": Role.MD5,
        "sha256": Role.SHA256,
    }
)

_NO_ROLES: Mapping[str, Role | None] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ReportType:
    """How to read one Shadowserver report type."""

    name: str
    title: str
    taxonomy: str
    type: str
    severity: Severity
    required: tuple[str, ...] = ("timestamp", "ip")
    #: columns that only this report has: used to recognise it from its header
    markers: tuple[str, ...] = ()
    #: role overrides (``None`` sends a common column to ``extra`` instead)
    roles: Mapping[str, Role | None] = field(default_factory=lambda: _NO_ROLES)
    #: the application protocol, when the report is about one service
    application: str | None = None

    def role_of(self, column: str) -> Role | None:
        """The role of ``column`` in this report, or None (kept in ``extra``)."""
        if column in self.roles:
            return self.roles[column]
        return COMMON_ROLES.get(column)


_VULN = ("vulnerable", "vulnerable-system")
_AMP = ("vulnerable", "ddos-amplifier")
_PUA = ("vulnerable", "potentially-unwanted-accessible")
_CRYPTO = ("vulnerable", "weak-crypto")
_INFECTED = ("malicious-code", "infected-system")
_SRC_DST = ("timestamp", "src_ip")


def _scan(
    name: str,
    what: str,
    kind: tuple[str, str],
    severity: Severity = Severity.MEDIUM,
    markers: tuple[str, ...] = (),
) -> ReportType:
    application = name.removeprefix("scan_").split("_")[0]
    return ReportType(
        name=name,
        title=f"Shadowserver: {what}",
        taxonomy=kind[0],
        type=kind[1],
        severity=severity,
        markers=markers,
        application=application,
    )


_SCANS = (
    _scan("scan_adb", "accessible Android Debug Bridge", _PUA, markers=("features",)),
    _scan("scan_amqp", "accessible AMQP", _PUA, Severity.LOW, ("channel", "mechanisms")),
    _scan("scan_ard", "Apple Remote Desktop amplifier", _AMP, markers=("machine_name",)),
    _scan("scan_chargen", "open Chargen amplifier", _AMP, markers=()),
    _scan("scan_cisco_smart_install", "accessible Cisco Smart Install", _VULN, Severity.HIGH),
    _scan("scan_couchdb", "accessible CouchDB", _PUA, markers=("couchdb_message",)),
    _scan("scan_cwmp", "accessible CWMP (TR-069)", _PUA, Severity.LOW, ("www_authenticate",)),
    _scan("scan_db2", "open IBM DB2 discovery", _AMP, markers=("db2_hostname",)),
    _scan("scan_dns", "open DNS resolver", _AMP, markers=("dns_version", "min_amplification")),
    _scan("scan_elasticsearch", "open Elasticsearch", _PUA, markers=("lucene_version",)),
    _scan("scan_exchange", "vulnerable Exchange server", _VULN, Severity.HIGH, ("servername",)),
    _scan("scan_ftp", "accessible FTP", _CRYPTO, Severity.LOW, ("auth_tls_response",)),
    _scan("scan_http", "accessible HTTP", _PUA, Severity.LOW, ("http_date", "www_authenticate")),
    _scan(
        "scan_http_vulnerable",
        "vulnerable HTTP",
        _VULN,
        Severity.HIGH,
        ("http_date", "www_authenticate", "build_date"),
    ),
    _scan("scan_ics", "accessible ICS device", _PUA, Severity.HIGH, ("raw_response", "device_id")),
    _scan("scan_ipp", "accessible IPP printer", _PUA, markers=("ipp_version",)),
    _scan("scan_ldap_tcp", "accessible LDAP (TCP)", _PUA, markers=("dns_host_name",)),
    _scan("scan_ldap_udp", "open CLDAP amplifier", _AMP, markers=("dns_host_name",)),
    _scan("scan_mdns", "open mDNS", _AMP, markers=("mdns_name",)),
    _scan("scan_memcached", "open Memcached", _AMP, markers=("pointer_size",)),
    _scan("scan_mqtt", "accessible MQTT", _PUA, markers=("anonymous_access", "hex_code")),
    _scan("scan_mqtt_anon", "anonymous MQTT", _PUA, markers=("hex_code",)),
    _scan("scan_mssql", "open MS-SQL browser", _AMP, markers=("named_pipe",)),
    _scan("scan_mysql", "accessible MySQL", _PUA, markers=("mysql_protocol_version",)),
    _scan("scan_ntp", "open NTP (mode 6)", _AMP, markers=("clk_wander",)),
    _scan("scan_portmapper", "open Portmapper", _AMP, markers=("mountd_port",)),
    _scan("scan_postgres", "accessible PostgreSQL", _PUA, markers=("supported_protocols",)),
    _scan("scan_qotd", "open QOTD amplifier", _AMP, markers=("quote",)),
    _scan("scan_quic", "accessible QUIC", _PUA, Severity.INFO, ("version_field_1",)),
    _scan("scan_radmin", "accessible Radmin", _PUA, markers=()),
    _scan("scan_rdpeudp", "open RDP over UDP", _AMP, markers=("sessionid",)),
    _scan("scan_rsync", "accessible rsync", _PUA, markers=("has_password",)),
    _scan("scan_slp", "open SLP amplifier", _AMP, markers=("language_tag",)),
    _scan("scan_smtp_vulnerable", "vulnerable SMTP", _VULN, Severity.HIGH),
    _scan("scan_socks", "open SOCKS proxy", _PUA, markers=()),
    _scan("scan_ssdp", "open SSDP amplifier", _AMP, markers=("unique_service_name",)),
    _scan("scan_ssh", "accessible SSH", _PUA, Severity.LOW, ("serverid_software",)),
    _scan("scan_ssl", "SSL POODLE", _CRYPTO, markers=("ssl_poodle",)),
    _scan("scan_ssl_freak", "SSL FREAK", _CRYPTO, markers=("freak_vulnerable",)),
    _scan("scan_stun", "open STUN", _AMP, markers=("xor_mapped_address",)),
    _scan("scan_telnet", "accessible Telnet", _PUA, markers=()),
    _scan("scan_tftp", "open TFTP", _AMP, markers=("errormessage",)),
    _scan("scan_ubiquiti", "open Ubiquiti discovery", _AMP, markers=("radioname",)),
    _scan("scan_vnc", "accessible VNC", _PUA, markers=("product",)),
    _scan("scan_ws_discovery", "open WS-Discovery", _AMP, markers=()),
    _scan("scan_xdmcp", "open XDMCP", _AMP, markers=("reported_hostname",)),
)

_OTHERS = (
    ReportType(
        "blocklist",
        "Shadowserver: blocklisted IP",
        "other",
        "other",
        Severity.MEDIUM,
        markers=("reason",),
    ),
    ReportType(
        "compromised_website",
        "Shadowserver: compromised website",
        "intrusions",
        "system-compromise",
        Severity.HIGH,
        markers=("detected_since", "redirect_target"),
    ),
    ReportType(
        "device_id",
        "Shadowserver: device identification",
        "other",
        "undetermined",
        Severity.INFO,
    ),
    ReportType(
        "event4_honeypot_brute_force",
        "Shadowserver: brute force seen by honeypot",
        "intrusion-attempts",
        "brute-force",
        Severity.MEDIUM,
        _SRC_DST,
        ("client_version",),
    ),
    ReportType(
        "event4_honeypot_ddos_target",
        "Shadowserver: DDoS target",
        "availability",
        "ddos",
        Severity.HIGH,
        ("timestamp", "dst_ip"),
        ("dst_network",),
    ),
    ReportType(
        "event4_ip_spoofer",
        "Shadowserver: network allows IP spoofing",
        "fraud",
        "masquerade",
        Severity.LOW,
        _SRC_DST,
        ("routedspoof",),
    ),
    ReportType(
        "event4_sinkhole",
        "Shadowserver: sinkhole connection (infected system)",
        *_INFECTED,
        Severity.HIGH,
        _SRC_DST,
    ),
    ReportType(
        "event4_sinkhole_http",
        "Shadowserver: HTTP sinkhole connection (infected system)",
        *_INFECTED,
        Severity.HIGH,
        _SRC_DST,
        ("http_agent",),
    ),
    ReportType(
        "event4_sinkhole_http_referer",
        "Shadowserver: website referring to a sinkhole",
        "other",
        "other",
        Severity.LOW,
        ("timestamp", "http_referer_ip"),
        ("http_referer_ip",),
        roles=MappingProxyType(
            {
                "http_referer_ip": Role.SRC_IP,
                "http_referer_port": Role.SRC_PORT,
                "http_referer_asn": Role.SRC_ASN,
                "http_referer_hostname": Role.SRC_HOSTNAME,
            }
        ),
    ),
    ReportType(
        "event6_sinkhole_http",
        "Shadowserver: IPv6 HTTP sinkhole connection",
        *_INFECTED,
        Severity.HIGH,
        _SRC_DST,
        ("http_agent",),
    ),
    ReportType(
        "malware_url",
        "Shadowserver: malware URL",
        "malicious-code",
        "malware-distribution",
        Severity.HIGH,
        ("timestamp", "url"),
        ("sha256",),
    ),
    ReportType(
        "phish_url",
        "Shadowserver: phishing URL",
        "fraud",
        "phishing",
        Severity.HIGH,
        ("timestamp", "url"),
    ),
    ReportType(
        "sandbox_conn",
        "Shadowserver: connection from a malware sandbox",
        "malicious-code",
        "c2-server",
        Severity.MEDIUM,
        ("timestamp", "ip"),
        ("bytes_in",),
    ),
    ReportType(
        "special",
        "Shadowserver: special report",
        "other",
        "undetermined",
        Severity.MEDIUM,
        markers=("method",),
    ),
)

#: Used when neither the file name nor the header says which report this is.
GENERIC = ReportType(
    "shadowserver",
    "Shadowserver report",
    "other",
    "undetermined",
    Severity.LOW,
    required=("timestamp",),
)

REPORTS: Mapping[str, ReportType] = MappingProxyType({r.name: r for r in (*_SCANS, *_OTHERS)})


def by_header(columns: list[str]) -> ReportType:
    """The report type a header belongs to: all required columns and most markers present.

    Reports without markers (several scan reports share one layout) cannot be told apart by
    their header; GENERIC is returned then.
    """
    present = set(columns)
    best: ReportType = GENERIC
    best_score = 0
    for report in REPORTS.values():
        if not report.markers or not present.issuperset(report.required):
            continue
        if not present.issuperset(report.markers):
            continue
        score = len(report.markers)
        if score > best_score:
            best, best_score = report, score
    return best
