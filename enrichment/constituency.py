"""Constituency: which entity owns an address, an AS number or a domain.

``ConstituencyEnricher`` gives every alert that has no ``entity_id`` the owner of (first
match wins, in this order):

1. IP observables with role ``src`` (a Shadowserver row's ``ip`` — the reported host — is
   ``src``), then ``dst``, ``host``, then IPs of any other role except ``context``;
2. the flow's ``src_ip``, then ``dst_ip``;
3. AS number observables;
4. domain and host-name observables (an entity's domain covers its sub-domains), then the
   hosts of URL and e-mail observables.

Networks use pytricia (longest prefix, IPv4 and IPv6). An alert nobody owns is left
unassigned — never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import pytricia

from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Entity, Observable

_ROLE_ORDER = {"src": 0, "dst": 1, "host": 2}
_IPS = (T.IPV4, T.IPV6)


class Constituency:
    """Look-ups from networks, AS numbers and domains to entity ids."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        self._v4 = pytricia.PyTricia(32)
        self._v6 = pytricia.PyTricia(128)
        self._asns: dict[int, str] = {}
        self._domains: dict[str, str] = {}
        self.entities: dict[str, Entity] = {}
        for entity in entities:
            self.add(entity)

    def add(self, entity: Entity) -> None:
        """Register an entity's networks, AS numbers and domains (later ones win ties)."""
        self.entities[entity.id] = entity
        for cidr in entity.cidrs:
            (self._v6 if ":" in cidr else self._v4).insert(cidr, entity.id)
        for asn in entity.asns:
            self._asns[asn] = entity.id
        for domain in entity.domains:
            self._domains[domain] = entity.id

    def owner_of_ip(self, address: str) -> str | None:
        """The entity whose most specific network holds ``address``."""
        trie = self._v6 if ":" in address else self._v4
        try:
            owner: str | None = trie.get(address)
        except (ValueError, KeyError, TypeError):
            return None
        return owner

    def owner_of_asn(self, asn: int | str) -> str | None:
        """The entity announcing AS ``asn``."""
        try:
            return self._asns.get(int(asn))
        except ValueError:
            return None

    def owner_of_domain(self, name: str) -> str | None:
        """The entity owning ``name`` or the closest parent of it."""
        labels = name.lower().rstrip(".").split(".")
        for start in range(len(labels)):
            owner = self._domains.get(".".join(labels[start:]))
            if owner is not None:
                return owner
        return None

    def owner_of(self, alert: Alert) -> str | None:
        """The entity an alert belongs to by its addresses, AS numbers or names; or None."""
        for look_up in (self._by_ips, self._by_flow, self._by_asns, self._by_names):
            for owner in look_up(alert):
                if owner is not None:
                    return owner
        return None

    def _by_ips(self, alert: Alert) -> Iterator[str | None]:
        ips = [o for o in alert.observables if o.type in _IPS and o.role != "context"]
        ips.sort(key=lambda o: _ROLE_ORDER.get(o.role or "", 3))
        return (self.owner_of_ip(o.value) for o in ips)

    def _by_flow(self, alert: Alert) -> Iterator[str | None]:
        flow = alert.flow
        if flow is None:
            return iter(())
        return (self.owner_of_ip(ip) for ip in (flow.src_ip, flow.dst_ip) if ip)

    def _by_asns(self, alert: Alert) -> Iterator[str | None]:
        return (self.owner_of_asn(o.value) for o in alert.observables if o.type is T.ASN)

    def _by_names(self, alert: Alert) -> Iterator[str | None]:
        names = [o for o in alert.observables if o.type in (T.DOMAIN, T.HOSTNAME)]
        hosts = (_host(o) for o in alert.observables if o.type in (T.URL, T.EMAIL))
        yield from (self.owner_of_domain(o.value) for o in names)
        yield from (self.owner_of_domain(h) for h in hosts if h)


def _host(observable: Observable) -> str | None:
    if observable.type is T.EMAIL:
        return observable.value.rpartition("@")[2]
    host = urlsplit(observable.value).hostname
    return host.strip("[]") if host else None


class ConstituencyEnricher:
    """Assigns unowned alerts to the entity owning their addresses, ASNs or domains."""

    name = "constituency"

    def __init__(self, constituency: Constituency) -> None:
        self.constituency = constituency

    def enrich(self, alerts: list[Alert]) -> None:
        """Set ``entity_id`` where it is missing and an owner is found."""
        for alert in alerts:
            if alert.entity_id is None:
                owner = self.constituency.owner_of(alert)
                if owner is not None:
                    alert.entity_id = owner
