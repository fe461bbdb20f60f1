"""The matcher: exact values, parent domains to the public suffix, CIDR longest prefix (v4
and v6), URL and e-mail hosts, warninglist suppression, rebuild on store changes, decay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from enrichment.intel import loaders
from enrichment.intel.matcher import IntelIndex, IntelMatcher, domain_candidates
from enrichment.intel.store import IntelStore
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Indicator, utcnow

APT1_CIDR = "indicator--031778a4-057f-48e6-9db9-c8d72b81ccd5"
GLUPTEBA = "5aa2e21b-79d8-4fd7-b15d-34670a016219"


def _constructed(store: IntelStore, *pairs: tuple[T, str]) -> None:
    """Constructed indicators (not real intel), one event per value."""
    store.upsert(Indicator(type=k, value=v, source="constructed", event_uuid=f"ev-{v.lower()}")
                 for k, v in pairs)


def _hits(index: IntelIndex, value: str) -> list[tuple[str | None, str | None]]:
    return [(h.indicator, h.event_uuid) for h in index.match_value(value)]


def test_real_events_match_concrete_values(store: IntelStore, shared_data: Path) -> None:
    loaders.load_path(store, shared_data / "misp/eset/glupteba__glupteba.misp-event.json")
    loaders.load_path(store, shared_data / "stix/apt1.json")
    index = IntelIndex.from_store(store)
    (hit,) = index.match_value("5.101.6.132")
    assert (hit.indicator, hit.indicator_type, hit.event_uuid) == ("5.101.6.132", "ipv4", GLUPTEBA)
    assert (hit.event_info, hit.threat_level, hit.source) == (
        "Glupteba.AY research related IoCs", 1, "misp-file:glupteba__glupteba.misp-event.json")
    assert (hit.observable, hit.suppressed, hit.kind) == ("ipv4:5.101.6.132", False, "indicator")
    # the APT1 /15 covers 223.166.0.0–223.167.255.255
    assert _hits(index, "223.167.1.1") == [("223.166.0.0/15", APT1_CIDR)]
    assert _hits(index, "223.168.0.1") == []
    assert _hits(index, "mail.hugesoft.org") == [
        ("hugesoft.org", "indicator--3f3ff9f1-bb4e-4392-89e5-1991179042ba")]
    assert _hits(index, "hxxp://www.hugesoft[.]org/a.php") == [
        ("hugesoft.org", "indicator--3f3ff9f1-bb4e-4392-89e5-1991179042ba")]


def test_parent_domains_stop_at_the_public_suffix(store: IntelStore) -> None:
    _constructed(store, (T.DOMAIN, "bad.example.com"), (T.DOMAIN, "com"),
                 (T.DOMAIN, "co.uk"), (T.HOSTNAME, "evil.example.co.uk"))
    index = IntelIndex.from_store(store)
    assert _hits(index, "x.bad.example.com") == [("bad.example.com", "ev-bad.example.com")]
    assert _hits(index, "bad.example.com") == [("bad.example.com", "ev-bad.example.com")]
    assert _hits(index, "notbad.example.com") == []
    assert _hits(index, "example.com") == []
    assert [h.indicator for h in index.match(T.DOMAIN, "com")] == ["com"]  # exact only
    assert _hits(index, "a.b.evil.example.co.uk") == [
        ("evil.example.co.uk", "ev-evil.example.co.uk")]
    assert _hits(index, "other.co.uk") == []
    assert _hits(index, "user@x.bad.example.com") == [("bad.example.com", "ev-bad.example.com")]
    assert domain_candidates("x.bad.example.co.uk") == (
        "x.bad.example.co.uk", "bad.example.co.uk", "example.co.uk")
    assert domain_candidates("co.uk") == ("co.uk",)


def test_cidr_longest_prefix_first_v4_and_v6(store: IntelStore) -> None:
    _constructed(store, (T.CIDR, "10.0.0.0/8"), (T.CIDR, "10.1.0.0/16"), (T.IPV4, "10.1.2.3"),
                 (T.CIDR, "2001:db8::/32"), (T.CIDR, "2001:db8:1::/48"),
                 (T.IPV6, "2001:db8:1::5"))
    index = IntelIndex.from_store(store)
    assert [h for h, _ in _hits(index, "10.1.2.3")] == ["10.1.2.3", "10.1.0.0/16", "10.0.0.0/8"]
    assert [h for h, _ in _hits(index, "10.1.9.9")] == ["10.1.0.0/16", "10.0.0.0/8"]
    assert [h for h, _ in _hits(index, "10.2.0.1")] == ["10.0.0.0/8"]
    assert _hits(index, "11.0.0.1") == []
    assert [h for h, _ in _hits(index, "2001:db8:1::5")] == [
        "2001:db8:1::5", "2001:db8:1::/48", "2001:db8::/32"]
    assert [h for h, _ in _hits(index, "2001:db8:2::1")] == ["2001:db8::/32"]
    assert _hits(index, "2001:db9::1") == []
    assert [h for h, _ in _hits(index, "10.1.128.0/17")] == ["10.1.0.0/16", "10.0.0.0/8"]


def test_exact_types_do_not_cross(store: IntelStore) -> None:
    _constructed(store, (T.MD5, "D41D8CD98F00B204E9800998ECF8427E"),
                 (T.URL, "HTTP://Bad.Example/x"), (T.EMAIL, "phish@bad.example"))
    index = IntelIndex.from_store(store)
    assert _hits(index, "d41d8cd98f00b204e9800998ecf8427e")[0][0] == (
        "d41d8cd98f00b204e9800998ecf8427e")
    assert _hits(index, "http://bad.example/x") == [("http://bad.example/x",
                                                     "ev-http://bad.example/x")]
    assert _hits(index, "http://bad.example/y") == []
    assert _hits(index, "phish@bad.example") == [("phish@bad.example", "ev-phish@bad.example")]
    assert index.match(T.FILENAME, "d41d8cd98f00b204e9800998ecf8427e") == []


def test_warninglisted_value_is_a_suppressed_hit(store: IntelStore, shared_data: Path) -> None:
    loaders.load_path(store, shared_data / "warninglists/public-dns-v4.json")
    _constructed(store, (T.IPV4, "8.8.8.8"), (T.IPV4, "8.8.4.5"))
    index = IntelIndex.from_store(store)
    (hit,) = index.match_value("8.8.8.8")
    assert hit.suppressed is True
    assert hit.meta == {"warninglists": ["List of known IPv4 public DNS resolvers"]}
    (other,) = index.match_value("8.8.4.5")
    assert other.suppressed is False and other.meta == {}


def test_matcher_rebuilds_when_the_store_changes(store: IntelStore, shared_data: Path) -> None:
    matcher = IntelMatcher(store)
    assert matcher.match_value("status-ok.com") == []
    first = matcher.index()
    assert matcher.index() is first  # unchanged store: same index
    loaders.load_misp_feed(store, shared_data / "misp/feed-sshdoor", include_non_ids=True)
    (hit,) = matcher.match_value("status-ok.com")
    assert hit.event_uuid == "5bbe5b1c-2238-42b4-8a90-018b0a016219"
    assert hit.event_info == "SSHDoor : Jakku"
    assert matcher.index() is not first and matcher.index().version == store.version()


def test_decayed_and_expired_indicators_do_not_match(store: IntelStore) -> None:
    now = utcnow()
    store.upsert([
        Indicator(type=T.IPV4, value="198.51.100.7", source="c",
                  last_seen=now - timedelta(days=91)),
        Indicator(type=T.SHA1, value="a" * 40, source="c", expires_at=now - timedelta(seconds=1)),
        Indicator(type=T.SHA1, value="b" * 40, source="c", last_seen=now - timedelta(days=900)),
    ])
    index = IntelIndex.from_store(store, now)
    assert index.match_value("198.51.100.7") == []
    assert index.match_value("a" * 40) == []
    assert len(index.match_value("b" * 40)) == 1  # hashes never decay


def test_unrecognisable_value_is_invalid_input(store: IntelStore) -> None:
    with pytest.raises(InvalidInput, match="cannot tell what"):
        IntelIndex.from_store(store).match_value("no such thing")
