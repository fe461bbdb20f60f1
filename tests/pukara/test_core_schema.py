"""The shared vocabulary: normalised observables, RSIT, TLP 2.0, severity, located errors."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pukara.core.errors import InvalidInput, UnknownClassification
from pukara.core.observables import ObservableType as T
from pukara.core.observables import guess_type, normalize, refang
from pukara.core.schema import Alert, Classification, Entity, IncidentReport, Observable
from pukara.core.taxonomy import PAP, TLP, Severity, rsit_types, rsit_version


@pytest.mark.parametrize(
    ("kind", "value", "canonical"),
    [
        (T.IPV4, " 192.0.2.1 ", "192.0.2.1"),
        (T.IPV6, "2001:DB8:0:0::1", "2001:db8::1"),
        (T.CIDR, "10.1.2.3/8", "10.0.0.0/8"),
        (T.DOMAIN, "Bücher.Example[.]COM.", "xn--bcher-kva.example.com"),
        (T.HOSTNAME, "WWW.MINSA.gob.pe", "www.minsa.gob.pe"),
        (T.URL, "hxxps://Evil[.]Example:443/a?b=1#frag", "https://evil.example/a?b=1"),
        (T.URL, "http://[2001:db8::1]:8080", "http://[2001:db8::1]:8080/"),
        (T.EMAIL, "CSIRT@MINSA.gob.pe", "CSIRT@minsa.gob.pe"),
        (T.MD5, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        (T.ASN, "AS64512", "64512"),
        (T.MAC, "00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),
        (T.CVE, "cve-2021-44228", "CVE-2021-44228"),
    ],
)
def test_values_are_normalised_on_construction(kind: T, value: str, canonical: str) -> None:
    assert Observable(type=kind, value=value).value == canonical


@pytest.mark.parametrize(
    ("kind", "value", "why"),
    [
        (T.IPV4, "2001:db8::1", "IPv6"),
        (T.IPV4, "300.1.1.1", "not an IP"),
        (T.DOMAIN, "192.0.2.1", "IP address"),
        (T.DOMAIN, "-bad-.example", "labels"),
        (T.EMAIL, "a@evil.pe@entidad.gob.pe", "exactly one"),
        (T.SHA256, "abc", "64 hexadecimal"),
        (T.ASN, "AS0", "1..4294967295"),
        (T.URL, "evil.example/path", "no scheme"),
        (T.USER_AGENT, "Mozilla\x1b[31m", "control"),
    ],
)
def test_invalid_values_are_refused_with_the_reason(kind: T, value: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        normalize(kind, value)


def test_validation_error_names_the_field_inside_a_record() -> None:
    with pytest.raises(ValidationError) as caught:
        Alert(source="x", title="t", observables=[{"type": "ipv4", "value": "1.2.3.4"},
                                                  {"type": "ipv4", "value": "nope"}])
    error = caught.value.errors()[0]
    assert error["loc"][:2] == ("observables", 1)
    assert "not an IP address" in error["msg"]


def test_refang_and_guess() -> None:
    assert refang("hxxp://example[.]com") == "http://example.com"
    assert guess_type("8.8.8.8") is T.IPV4
    assert guess_type("example[.]org") is T.DOMAIN
    assert guess_type("44d88612fea8a8f36de82e1278abb02f") is T.MD5
    assert guess_type("no such thing") is None


@given(st.text(max_size=60))
def test_normalize_never_raises_anything_but_invalid_input(text: str) -> None:
    for kind in T:
        with contextlib.suppress(InvalidInput):
            normalize(kind, text)


def test_rsit_vocabulary_is_pinned_and_legacy_types_map() -> None:
    assert rsit_version() == "rsit-1003"
    assert "phishing" in rsit_types()["fraud"]
    ransomware = Classification.parse("malicious-code/ransomware")
    assert ransomware.rsit_type == "infected-system"
    assert ransomware.tag == 'rsit:malicious-code="infected-system"'
    assert str(Classification.parse('rsit:fraud="phishing"')) == "fraud/phishing"


def test_unknown_classification_lists_the_allowed_values() -> None:
    with pytest.raises(UnknownClassification, match=r"allowed: .*infected-system"):
        Classification.parse("malicious-code/spam")
    with pytest.raises(UnknownClassification, match="unknown RSIT class 'malware'"):
        Classification.parse("malware/trojan")
    with pytest.raises(InvalidInput, match="<rsit-class>/<rsit-type>"):
        Classification.parse("ransomware")


def test_tlp_pap_severity_parse_and_order() -> None:
    assert TLP.parse("TLP:AMBER+STRICT") is TLP.AMBER_STRICT
    assert TLP.parse("white") is TLP.CLEAR
    assert TLP.RED > TLP.AMBER_STRICT > TLP.AMBER > TLP.GREEN > TLP.CLEAR
    assert PAP.parse("PAP:RED") is PAP.RED
    assert Severity.parse(4) is Severity.CRITICAL
    assert Severity.LOW.raised(2) is Severity.HIGH and Severity.HIGH.raised(5) is Severity.CRITICAL
    with pytest.raises(InvalidInput, match="allowed: clear, green, amber, amber\\+strict, red"):
        TLP.parse("purple")


def test_incident_report_refuses_unknown_fields_and_keeps_utc() -> None:
    report = IncidentReport.model_validate({
        "title": "Ransomware", "classification": "malicious-code/ransomware",
        "detected_at": "2026-01-31T18:30:00-05:00", "severity": "high", "tlp": "amber",
    })
    assert report.detected_at.isoformat() == "2026-01-31T23:30:00+00:00"
    assert report.awareness == report.detected_at
    with pytest.raises(ValidationError, match="entity_id_x"):
        IncidentReport.model_validate({"title": "x", "classification": "other/other",
                                       "detected_at": "2026-01-01T00:00:00Z",
                                       "entity_id_x": "b"})


def test_entity_slug_and_normalised_ranges() -> None:
    entity = Entity(id="minsa", name="MINSA", sector="Health", cidrs=["190.1.2.3/16"],
                    asns=[64512], domains=["MINSA.gob.pe"])
    assert (entity.sector, entity.cidrs, entity.domains) == ("health", ["190.1.0.0/16"],
                                                           ["minsa.gob.pe"])
    with pytest.raises(ValidationError, match="slug"):
        Entity(id="Bad Id", name="x", sector="y")


def test_fingerprint_ignores_observation_time_within_the_bucket() -> None:
    base = {"source": "suricata", "title": "ET SCAN", "signature_id": "2001219",
            "observables": [{"type": "ipv4", "value": "192.0.2.1"}]}
    first = Alert(**base, observed_at="2026-01-01T10:05:00Z")
    same_hour = Alert(**base, observed_at="2026-01-01T10:55:00Z")
    next_hour = Alert(**base, observed_at="2026-01-01T11:01:00Z")
    other_exercise = Alert(**base, observed_at="2026-01-01T10:05:00Z", exercise_id="ex-1")
    assert first.fingerprint() == same_hour.fingerprint()
    assert first.fingerprint() != next_hour.fingerprint()
    assert first.fingerprint() != other_exercise.fingerprint()


def test_construct_equals_model_construct_on_every_field(shared_data: Path) -> None:
    from collectors.registry import parser
    from pukara.core.schema import Alert, Hit, Observable, RawReport, construct

    sample = (shared_data / "suricata/Muntaha-Ghafoor-eve.json").read_bytes()
    alerts = [r for r in parser("suricata").parse(
        RawReport(stream=io.BytesIO(sample), source="file", format="suricata"))
        if isinstance(r, Alert)]
    assert len(alerts) > 300
    for alert in alerts[:300]:
        fields = dict(reversed(alert.__dict__.items()))  # any order in, declared order out
        built, reference = construct(Alert, fields), Alert.model_construct(**fields)
        assert built == reference
        assert built.model_dump_json() == reference.model_dump_json()
        assert built.model_fields_set == reference.model_fields_set
        for observable in alert.observables:
            values = {"role": observable.role, "value": observable.value, "type": observable.type}
            assert construct(Observable, values) == Observable.model_construct(**values)
    partial = construct(Hit, {"kind": "correlation", "observable": "ipv4:192.0.2.1"})
    assert partial == Hit.model_construct(kind="correlation", observable="ipv4:192.0.2.1")
    assert partial.tags == [] and partial.suppressed is False
