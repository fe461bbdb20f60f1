"""Which fields of which Zeek log are observables (a table of extractors per ``#path``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collectors.parsers._common import OT, ObservableBag, host_observable, ip_observable


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _dns(record: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.DOMAIN, record.get("query"), "query")
    for answer in _values(record.get("answers") or []):
        if isinstance(answer, str):
            bag.add(host_observable(answer, "answer"))


def _http(record: dict[str, Any], bag: ObservableBag) -> None:
    host, uri = record.get("host"), record.get("uri")
    bag.add(host_observable(host, "http-host"), host)
    if isinstance(host, str) and host and isinstance(uri, str) and uri.startswith("/"):
        port = record.get("id.resp_p")
        netloc = f"[{host}]" if ":" in host else host
        netloc = f"{netloc}:{port}" if isinstance(port, int) and port not in (80, 0) else netloc
        bag.typed(OT.URL, f"http://{netloc}{uri}")
    bag.typed(OT.USER_AGENT, record.get("user_agent"))


def _ssl(record: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.HOSTNAME, record.get("server_name"), "sni")
    bag.typed(OT.JA3, record.get("ja3"), "client")
    bag.typed(OT.JA3, record.get("ja3s"), "server")
    bag.typed(OT.JA4, record.get("ja4"), "client")


def _files(record: dict[str, Any], bag: ObservableBag) -> None:
    for host in _values(record.get("tx_hosts") or []):
        bag.add(ip_observable(host, "src"), host)
    for host in _values(record.get("rx_hosts") or []):
        bag.add(ip_observable(host, "dst"), host)
    bag.typed(OT.SHA256, record.get("sha256"), "file")
    bag.typed(OT.SHA1, record.get("sha1"), "file")
    bag.typed(OT.MD5, record.get("md5"), "file")
    bag.typed(OT.FILENAME, record.get("filename"), "file")


def _x509(record: dict[str, Any], bag: ObservableBag) -> None:
    fingerprint = record.get("fingerprint")
    if isinstance(fingerprint, str):
        kind = {64: OT.SHA256, 40: OT.SHA1, 32: OT.MD5}.get(len(fingerprint))
        if kind is not None:
            bag.typed(kind, fingerprint, "certificate")
    for name in _values(record.get("san.dns") or []):
        if isinstance(name, str) and not name.startswith("*"):
            bag.typed(OT.DOMAIN, name, "certificate")
    for address in _values(record.get("san.ip") or []):
        bag.add(ip_observable(address, "certificate"), address)


def _email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if "<" in text and text.endswith(">"):
        text = text[text.rindex("<") + 1 : -1]
    return text or None


def _smtp(record: dict[str, Any], bag: ObservableBag) -> None:
    bag.typed(OT.EMAIL, _email(record.get("mailfrom")), "sender")
    for rcpt in _values(record.get("rcptto") or []):
        bag.typed(OT.EMAIL, _email(rcpt), "recipient")
    origin = record.get("x_originating_ip")
    bag.add(ip_observable(origin, "origin"), origin)


def _software(record: dict[str, Any], bag: ObservableBag) -> None:
    host = record.get("host")
    bag.add(ip_observable(host, "host"), host)


def _notice(record: dict[str, Any], bag: ObservableBag) -> None:
    for key, role in (("src", "src"), ("dst", "dst")):
        bag.add(ip_observable(record.get(key), role), record.get(key))
    for key in ("file_desc",):
        if isinstance(record.get(key), str) and "://" in record[key]:
            bag.typed(OT.URL, record[key])


EXTRACTORS: dict[str, Callable[[dict[str, Any], ObservableBag], None]] = {
    "dns": _dns,
    "http": _http,
    "ssl": _ssl,
    "files": _files,
    "x509": _x509,
    "smtp": _smtp,
    "software": _software,
    "notice": _notice,
}


def observables(log: str, record: dict[str, Any]) -> ObservableBag:
    """The observables of one record of Zeek log ``log``."""
    bag = ObservableBag()
    src, dst = record.get("id.orig_h"), record.get("id.resp_h")
    bag.add(ip_observable(src, "src"), src)
    bag.add(ip_observable(dst, "dst"), dst)
    extractor = EXTRACTORS.get(log)
    if extractor is not None:
        extractor(record, bag)
    return bag
