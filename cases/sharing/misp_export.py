"""A case as a MISP event (pymisp ``MISPEvent``), and its push to the configured MISP server.

The event UUID is ``uuid5`` of the case id and every attribute's UUID is ``uuid5`` of the
event and the observable, so a retried push updates the same event instead of creating a
second one (SECURITY G2). Attributes whose own TLP is RED or AMBER+STRICT never enter the
event (B8); each kept attribute carries its TLP tag and the distribution of its TLP.
The server is reached through :class:`MispClient`, the small part of ``pymisp.PyMISP`` used.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from pymisp import MISPAttribute, MISPEvent

from cases.services import audit
from cases.sharing import tlp_policy
from cases.sharing.case_data import CaseExport, ExportObservable, audited_refusal, record_share
from cases.store import Store
from pukara.core.config import Settings
from pukara.core.errors import ConfigError, ExternalServiceError
from pukara.core.taxonomy import TLP

EVENT_NAMESPACE = uuid.UUID("6f1c3c0e-4b7a-5d0e-9a55-70756b617261")
#: MISP distribution: 0 your organisation only, 1 this community only, 3 all communities
DISTRIBUTION = {TLP.CLEAR: 3, TLP.GREEN: 1, TLP.AMBER: 0}
THREAT_LEVEL = {"critical": 1, "high": 1, "medium": 2, "low": 3, "info": 4}
ANALYSIS = {"new": 0, "in-progress": 1, "contained": 1, "resolved": 2, "closed": 2}
#: observable type → (MISP attribute type, to_ids)
ATTRIBUTE_TYPES: dict[str, tuple[str, bool]] = {
    "ipv4": ("ip-dst", True), "ipv6": ("ip-dst", True), "cidr": ("ip-dst", True),
    "domain": ("domain", True), "hostname": ("hostname", True), "url": ("url", True),
    "email": ("email-src", True), "md5": ("md5", True), "sha1": ("sha1", True),
    "sha256": ("sha256", True), "sha512": ("sha512", True), "ja3": ("ja3-fingerprint-md5", True),
    "filename": ("filename", False), "user-agent": ("user-agent", False), "asn": ("AS", False),
    "mac": ("mac-address", False), "cve": ("vulnerability", False), "ja4": ("text", False),
}


class MispClient(Protocol):
    """The calls of ``pymisp.PyMISP`` a push uses (a fake stands in for it in unit tests)."""

    def event_exists(self, event: MISPEvent | int | str | uuid.UUID) -> bool:
        """True when the server holds an event with this id or UUID."""
        ...

    def add_event(self, event: MISPEvent, pythonify: bool = False) -> Any:
        """Create the event."""
        ...

    def update_event(self, event: MISPEvent, event_id: int | None = None,
                     pythonify: bool = False) -> Any:
        """Replace the event with the same UUID."""
        ...


@dataclass
class MispExport:
    """The event, and what was left out and why."""

    event: MISPEvent
    excluded: list[tuple[str, str, str]] = field(default_factory=list)


def event_uuid(case_id: str) -> str:
    """The deterministic MISP event UUID of a case."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"pukara-case:{case_id}"))


def _to_ids(observable: ExportObservable, default: bool) -> bool:
    if observable.type in ("ipv4", "ipv6", "cidr"):
        try:
            network = ipaddress.ip_network(observable.value, strict=False)
        except ValueError:
            return False
        return bool(network.is_global)
    return default


def build_event(export: CaseExport) -> MispExport:
    """The MISP event of a case (TLP checked first: TLPViolation says why when refused)."""
    tlp_policy.require(export.subject, tlp_policy.Target.MISP)
    case = export.case
    event = MISPEvent()
    event.uuid = event_uuid(case["id"])
    event.info = f"{case['number']}: {case['title']}"
    event.date = date.fromisoformat(case["created_at"][:10])
    event.threat_level_id = THREAT_LEVEL[case["severity"]]
    event.analysis = ANALYSIS[case["status"]]
    event.distribution = DISTRIBUTION[export.tlp]
    for tag in _event_tags(case):
        event.add_tag(tag)
    result = MispExport(event)
    for observable in export.observables:
        _add_attribute(result, observable, event.uuid)
    return result


def _event_tags(case: dict[str, Any]) -> list[str]:
    rsit_class, _, rsit_type = case["classification"].partition("/")
    tags = [TLP(case["tlp"]).tag, f"PAP:{case['pap'].upper()}",
            f'rsit:{rsit_class}="{rsit_type}"']
    tags += [f'misp-galaxy:mitre-attack-pattern="{t}"' for t in case["techniques"]]
    return tags + list(case["tags"])


def _add_attribute(result: MispExport, observable: ExportObservable, event_id: str) -> None:
    own = tlp_policy.Subject(tlp=observable.tlp)
    decision = tlp_policy.decide(own, tlp_policy.Target.MISP)
    if not decision.allowed:
        result.excluded.append((observable.type, observable.value, decision.reason))
        return
    kind, default_ids = ATTRIBUTE_TYPES.get(observable.type, ("text", False))
    hits = [h for h in observable.hits if h.get("kind") == "indicator"]
    comment = f"{len(hits)} intel hit(s)" if hits else ""
    attribute: MISPAttribute = result.event.add_attribute(  # type: ignore[assignment]
        kind, observable.value, to_ids=_to_ids(observable, default_ids),
        distribution=DISTRIBUTION[observable.tlp], comment=comment,
        uuid=str(uuid.uuid5(uuid.UUID(event_id), f"{observable.type}:{observable.value}")))
    attribute.add_tag(observable.tlp.tag)


def push(store: Store, export: CaseExport, client: MispClient,
         actor: audit.Actor) -> dict[str, Any]:
    """Create or update the case's event on the server (idempotent), audited (J1)."""
    with audited_refusal(store, actor, export, "misp"):
        built = build_event(export)
    try:
        exists = client.event_exists(built.event.uuid)
        answer = (client.update_event(built.event, pythonify=False) if exists
                  else client.add_event(built.event, pythonify=False))
    except Exception as exc:  # the client raises its own and requests' errors
        raise ExternalServiceError(f"MISP push failed: {type(exc).__name__}") from exc
    if isinstance(answer, dict) and answer.get("errors"):
        raise ExternalServiceError(f"MISP refused the event: {str(answer['errors'])[:200]}")
    summary = {"event_uuid": built.event.uuid, "updated": exists,
               "attributes": len(built.event.attributes), "excluded": len(built.excluded)}
    record_share(store, actor, export, "misp", details=summary)
    return summary


def misp_client(settings: Settings) -> MispClient:
    """A PyMISP client for the configured server (connects on creation)."""
    if not settings.misp_url:
        raise ConfigError("no MISP server configured (misp_url)")
    from pymisp import PyMISP

    client: MispClient = PyMISP(settings.misp_url, settings.misp_key.get_secret_value(),
                                ssl=settings.misp_verify_tls)
    return client


__all__ = ["ATTRIBUTE_TYPES", "DISTRIBUTION", "MispClient", "MispExport", "build_event",
           "event_uuid", "misp_client", "push"]
