"""Constituency: networks (longest prefix, v4 and v6), ASNs, domains; the enricher's order."""

from __future__ import annotations

from pathlib import Path

from enrichment.constituency import Constituency, ConstituencyEnricher
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Entity, Flow, Observable

# Constructed entities (documentation ranges and made-up ids).
ENTITIES = [
    Entity(id="minsa", name="Ministerio de Salud", sector="health", criticality=1,
           cidrs=["192.0.2.0/24", "2001:db8:10::/48"], asns=[64500], domains=["minsa.gob.pe"]),
    Entity(id="minsa-lab", name="Laboratorio", sector="health",
           cidrs=["192.0.2.128/25"], domains=["lab.minsa.gob.pe"]),
    Entity(id="onpe", name="ONPE", sector="government",
           cidrs=["198.51.100.0/24", "2001:db8::/32"], asns=[64501], domains=["onpe.gob.pe"]),
]


def _alert(*observables: Observable, flow: Flow | None = None, entity: str | None = None) -> Alert:
    return Alert(source="test", title="constructed", observables=list(observables), flow=flow,
                 entity_id=entity)


def test_lookups() -> None:
    c = Constituency(ENTITIES)
    assert c.owner_of_ip("192.0.2.10") == "minsa"
    assert c.owner_of_ip("192.0.2.200") == "minsa-lab"  # longest prefix
    assert c.owner_of_ip("2001:db8:10::1") == "minsa"  # /48 inside onpe's /32
    assert c.owner_of_ip("2001:db8:11::1") == "onpe"
    assert c.owner_of_ip("203.0.113.1") is None
    assert c.owner_of_ip("not an ip") is None
    assert c.owner_of_asn(64501) == "onpe" and c.owner_of_asn("64500") == "minsa"
    assert c.owner_of_asn(1) is None
    assert c.owner_of_domain("www.lab.minsa.gob.pe") == "minsa-lab"
    assert c.owner_of_domain("minsa.gob.pe") == "minsa"
    assert c.owner_of_domain("notminsa.gob.pe") is None


def test_enricher_order_and_roles() -> None:
    enricher = ConstituencyEnricher(Constituency(ENTITIES))
    src_first = _alert(Observable(type=T.IPV4, value="198.51.100.9", role="dst"),
                       Observable(type=T.IPV4, value="192.0.2.10", role="src"))
    context_ignored = _alert(Observable(type=T.IPV4, value="192.0.2.10", role="context"))
    by_flow = _alert(flow=Flow(src_ip="203.0.113.5", dst_ip="198.51.100.20"))
    by_asn = _alert(Observable(type=T.ASN, value="AS64500"))
    by_url = _alert(Observable(type=T.URL, value="https://portal.onpe.gob.pe/login"))
    by_email = _alert(Observable(type=T.EMAIL, value="jefe@lab.minsa.gob.pe"))
    nobody = _alert(Observable(type=T.IPV4, value="203.0.113.1"))
    kept = _alert(Observable(type=T.IPV4, value="192.0.2.10"), entity="onpe")
    alerts = [src_first, context_ignored, by_flow, by_asn, by_url, by_email, nobody, kept]
    enricher.enrich(alerts)
    assert [a.entity_id for a in alerts] == [
        "minsa", None, "onpe", "minsa", "onpe", "minsa-lab", None, "onpe"]
    assert len(alerts) == 8  # nothing dropped


def test_shadowserver_rows_go_to_the_reported_host(shared_data: Path) -> None:
    """Real Shadowserver sinkhole rows parsed by the collectors: the ``ip`` column (role src,
    the infected host) decides, not the sinkhole's address; then the AS number."""
    from collectors.parsers.shadowserver import ShadowserverParser
    from pukara.core.schema import RawReport

    path = shared_data / "shadowserver/event4_sinkhole.csv"
    with path.open("rb") as stream:
        report = RawReport(stream=stream, source="shadowserver", filename=path.name)
        alerts = [r for r in ShadowserverParser().parse(report) if isinstance(r, Alert)]
    entities = [  # constructed owners of the real rows' addresses
        Entity(id="isp-a", name="A", sector="telecom", cidrs=["190.113.0.0/16"]),
        Entity(id="sinkhole-owner", name="S", sector="other", cidrs=["178.162.0.0/16"]),
        Entity(id="cloud", name="C", sector="other", asns=[15169]),
    ]
    ConstituencyEnricher(Constituency(entities)).enrich(alerts)
    assert [a.flow.src_ip for a in alerts if a.flow] == [
        "190.113.1.2", "35.205.9.10", "35.197.11.12"]
    assert [a.entity_id for a in alerts] == ["isp-a", "cloud", "cloud"]
