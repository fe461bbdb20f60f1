"""Warninglists: every MISP list type, matching_attributes, bad entries, on the real lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrichment.intel.warninglists import (
    Warninglist,
    WarninglistIndex,
    parse_warninglist,
    read_warninglist,
)
from pukara.core.errors import ParseError
from pukara.core.observables import ObservableType as T

PUBLIC_DNS = "List of known IPv4 public DNS resolvers"
RFC1918 = "List of RFC 1918 CIDR blocks"
LINK_LOCAL = "List of IPv6 link local blocks"
GOOGLE = "List of known google domains"
SHORTENERS = "List of known URL Shorteners domains"
SLD = "Second level TLDs as known by Mozilla Foundation"


@pytest.fixture(scope="module")
def real(shared_data: Path) -> WarninglistIndex:
    names = ("public-dns-v4", "rfc1918", "ipv6-linklocal", "google", "url-shortener",
             "second-level-tlds")
    lists = []
    for name in names:
        warninglist, failures = read_warninglist(shared_data / f"warninglists/{name}.json")
        assert failures == []
        lists.append(warninglist)
    return WarninglistIndex(lists)


def test_cidr_lists_v4_and_v6(real: WarninglistIndex) -> None:
    assert real.check(T.IPV4, "8.8.8.8") == [PUBLIC_DNS]
    assert real.check(T.IPV4, "10.20.30.40") == [RFC1918]
    assert real.check(T.IPV4, "172.32.0.1") == []  # just outside 172.16.0.0/12
    assert real.check(T.IPV6, "fe80::1") == [LINK_LOCAL]
    assert real.check(T.IPV6, "2001:db8::1") == []
    assert real.check(T.CIDR, "10.1.0.0/16") == [RFC1918]


def test_string_lists_with_leading_dot_entries(real: WarninglistIndex) -> None:
    assert GOOGLE in real.check(T.DOMAIN, "google.com")
    assert GOOGLE in real.check(T.HOSTNAME, "mail.google.com")
    assert GOOGLE in real.check(T.URL, "https://www.google.com/search")
    assert real.check(T.DOMAIN, "notgoogle.com") == []


def test_hostname_lists_cover_subdomains_and_url_hosts(real: WarninglistIndex) -> None:
    assert real.check(T.DOMAIN, "bit.ly") == [SHORTENERS]
    assert real.check(T.HOSTNAME, "x.bit.ly") == [SHORTENERS]
    assert real.check(T.URL, "https://bit.ly/3abc") == [SHORTENERS]
    assert real.check(T.DOMAIN, "notbit.ly") == []


def test_string_list_is_exact(real: WarninglistIndex) -> None:
    assert real.check(T.DOMAIN, "co.uk") == [SLD]
    assert real.check(T.DOMAIN, "example.co.uk") == []


def test_matching_attributes_are_respected(real: WarninglistIndex) -> None:
    # second-level-tlds applies to hostname/domain only, not URLs or e-mail
    assert real.check(T.URL, "http://co.uk/") == []
    # the google list (domain, hostname, url) is not checked against e-mail addresses
    assert real.check(T.EMAIL, "someone@google.com") == []
    # the cidr lists apply to IP types only: the same text as a file name is not listed
    assert real.check(T.FILENAME, "8.8.8.8") == []


def test_substring_and_regex_lists() -> None:
    # constructed lists: the shared data has none of these two types
    lists = [
        Warninglist(name="sub", type="substring", entries=("sinkhole",),
                    matching_attributes=("domain", "hostname")),
        Warninglist(name="re", type="regex", entries=(r"/^test-[0-9]+\.example$/i",),
                    matching_attributes=()),
    ]
    index = WarninglistIndex(lists)
    assert index.check(T.DOMAIN, "a.sinkhole.example") == ["sub"]
    assert index.check(T.URL, "http://a.sinkhole.example/") == []  # url not in attributes
    assert index.check(T.DOMAIN, "test-42.example") == ["re"]
    assert index.check(T.FILENAME, "TEST-7.example") == ["re"]  # empty attributes: all types
    assert index.check(T.DOMAIN, "test-x.example") == []


def test_bad_entries_are_reported_and_the_rest_kept() -> None:
    document = {  # constructed
        "name": "constructed", "type": "cidr", "version": 3, "matching_attributes": ["ip-dst"],
        "list": ["192.0.2.0/24", "not-a-network", 7, "2001:db8::/32"],
    }
    warninglist, failures = parse_warninglist(document, "constructed.json")
    assert warninglist.entries == ("192.0.2.0/24", "2001:db8::/32")
    assert [(f.record, f.reason) for f in failures] == [
        (2, "not an IP address or network"), (3, "entry must be a non-empty string")]
    bad_regex = {"name": "r", "type": "regex", "list": ["(unclosed"]}
    _, failures = parse_warninglist(bad_regex, "r.json")
    assert failures[0].reason.startswith("invalid regular expression")


def test_whole_file_errors() -> None:
    with pytest.raises(ParseError, match="type 'glob' is not one of"):
        parse_warninglist({"name": "x", "type": "glob", "list": []}, "x.json")
    with pytest.raises(ParseError, match="an object with a 'list' array"):
        parse_warninglist({"name": "x"}, "x.json")
