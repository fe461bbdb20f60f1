"""A case as a STIX 2.1 bundle built with ``stix2``, valid for ``stix2.parse``.

The bundle holds the center's ``identity``, the TLP 2.0 ``marking-definition`` objects it
uses (the official ids, FIRST/OASIS extension), an ``incident`` for the case, a ``report``
that refers to everything, one ``indicator`` with a STIX pattern per IOC observable, one
``observed-data`` with its SCOs per observable, and ``relationship`` objects (indicator
``indicates`` incident, indicator ``based-on`` observed-data). Ids are deterministic
(``uuid5`` of the case and the observable), so a re-export names the same objects.
Observables whose own TLP the recipient may not receive are left out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stix2

from cases.services import audit
from cases.sharing import tlp_policy
from cases.sharing.case_data import CaseExport, ExportObservable, audited_refusal, record_share
from cases.store import Store
from pukara.core.taxonomy import TLP

NAMESPACE = uuid.UUID("b1d3f0a6-51c9-5f3e-8e1e-70756b617261")
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_IDS = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
#: observable type → (pattern path, SCO type, SCO property); None pattern = not an IOC
_PATTERNS: dict[str, tuple[str | None, str, str]] = {
    "ipv4": ("ipv4-addr:value", "ipv4-addr", "value"),
    "cidr": ("ipv4-addr:value", "ipv4-addr", "value"),
    "ipv6": ("ipv6-addr:value", "ipv6-addr", "value"),
    "domain": ("domain-name:value", "domain-name", "value"),
    "hostname": ("domain-name:value", "domain-name", "value"),
    "url": ("url:value", "url", "value"),
    "email": ("email-addr:value", "email-addr", "value"),
    "md5": ("file:hashes.MD5", "file", "MD5"),
    "sha1": ("file:hashes.'SHA-1'", "file", "SHA-1"),
    "sha256": ("file:hashes.'SHA-256'", "file", "SHA-256"),
    "sha512": ("file:hashes.'SHA-512'", "file", "SHA-512"),
    "filename": (None, "file", "name"),
    "asn": (None, "autonomous-system", "number"),
    "mac": (None, "mac-addr", "value"),
}


def tlp_marking(tlp: TLP) -> stix2.v21.MarkingDefinition:
    """The official TLP 2.0 marking definition of ``tlp``."""
    return stix2.v21.MarkingDefinition(
        id=TLP2_IDS[tlp], created="2022-10-01T00:00:00.000Z", name=f"TLP:{tlp.value.upper()}",
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension",
                                     "tlp_2_0": tlp.value}})


def _sid(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join(parts))}"


def _stamp(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class StixExport:
    """The bundle, and what was left out and why."""

    bundle: stix2.v21.Bundle
    excluded: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class _Builder:
    export: CaseExport
    center: stix2.v21.Identity
    objects: list[Any] = field(default_factory=list)
    markings: dict[TLP, Any] = field(default_factory=dict)

    def marking(self, tlp: TLP) -> str:
        if tlp not in self.markings:
            self.markings[tlp] = tlp_marking(tlp)
        return str(TLP2_IDS[tlp])

    def common(self, tlp: TLP) -> dict[str, Any]:
        return {"created_by_ref": self.center.id, "object_marking_refs": [self.marking(tlp)]}


def build_bundle(export: CaseExport, center_name: str,
                 recipient: str | None = None) -> StixExport:
    """The STIX bundle of a case for ``recipient`` (TLP checked first; refusals say why)."""
    tlp_policy.require(export.subject, tlp_policy.Target.STIX, recipient)
    case = export.case
    created = _stamp(case["created_at"])
    center = stix2.v21.Identity(id=_sid("identity", center_name), name=center_name,
                                identity_class="organization", created=created,
                                modified=created)
    builder = _Builder(export, center)
    incident = stix2.v21.Incident(
        id=_sid("incident", case["id"]), name=f"{case['number']}: {case['title']}",
        description=case["description"] or None, created=created,
        modified=_stamp(case["updated_at"]), labels=_labels(case), **builder.common(export.tlp))
    builder.objects.append(incident)
    result = StixExport(bundle=stix2.v21.Bundle(objects=[center]))
    for observable in export.observables:
        subject = tlp_policy.Subject(tlp=observable.tlp, originators=export.subject.originators,
                                     affected=export.subject.affected,
                                     partners=export.subject.partners)
        decision = tlp_policy.decide(subject, tlp_policy.Target.STIX, recipient)
        if not decision.allowed:
            result.excluded.append((observable.type, observable.value, decision.reason))
            continue
        _add_observable(builder, observable, incident.id, created)
    report = stix2.v21.Report(
        id=_sid("report", case["id"]), name=f"{case['number']}: {case['title']}",
        published=_stamp(case["updated_at"]), report_types=["threat-report"],
        object_refs=[o.id for o in builder.objects], created=created,
        modified=_stamp(case["updated_at"]), **builder.common(export.tlp))
    everything = [center, *builder.markings.values(), *builder.objects, report]
    result.bundle = stix2.v21.Bundle(objects=everything, id=_sid("bundle", case["id"],
                                                                  case["updated_at"] or ""))
    return result


def _labels(case: dict[str, Any]) -> list[str]:
    return [f"rsit:{case['classification']}", f"severity:{case['severity']}",
            f"status:{case['status']}", *case["techniques"]]


def _add_observable(builder: _Builder, observable: ExportObservable, incident_id: str,
                    created: datetime) -> None:
    kind = "ipv6" if observable.type == "cidr" and ":" in observable.value else observable.type
    pattern_path, sco_type, prop = _PATTERNS.get(kind, (None, "", ""))
    if not sco_type:
        return
    key = f"{observable.type}:{observable.value}"
    sco = _sco(sco_type, prop, observable.value)
    common = builder.common(observable.tlp)
    observed = stix2.v21.ObservedData(
        id=_sid("observed-data", builder.export.case["id"], key), first_observed=created,
        last_observed=created, number_observed=1, object_refs=[sco.id], created=created,
        modified=created, **common)
    builder.objects += [sco, observed]
    if pattern_path is None:
        return
    value = observable.value.replace("\\", "\\\\").replace("'", "\\'")
    indicator = stix2.v21.Indicator(
        id=_sid("indicator", builder.export.case["id"], key), name=key,
        pattern=f"[{pattern_path} = '{value}']", pattern_type="stix", valid_from=created,
        indicator_types=["malicious-activity"], created=created, modified=created, **common)
    builder.objects += [
        indicator,
        stix2.v21.Relationship(id=_sid("relationship", indicator.id, "indicates", incident_id),
                               relationship_type="indicates", source_ref=indicator.id,
                               target_ref=incident_id, created=created, modified=created,
                               **common),
        stix2.v21.Relationship(id=_sid("relationship", indicator.id, "based-on", observed.id),
                               relationship_type="based-on", source_ref=indicator.id,
                               target_ref=observed.id, created=created, modified=created,
                               **common),
    ]


def _sco(sco_type: str, prop: str, value: str) -> Any:
    if sco_type == "file" and prop != "name":
        return stix2.v21.File(hashes={prop: value})
    if sco_type == "file":
        return stix2.v21.File(name=value)
    if sco_type == "autonomous-system":
        return stix2.v21.AutonomousSystem(number=int(value.upper().removeprefix("AS")))
    return stix2.parse({"type": sco_type, "value": value}, version="2.1")


def export_bundle(store: Store, export: CaseExport, center_name: str, actor: audit.Actor,
                  recipient: str | None = None) -> StixExport:
    """Build the bundle and record the export (target, TLP, recipient) in the audit log."""
    with audited_refusal(store, actor, export, "stix", recipient):
        result = build_bundle(export, center_name, recipient)
    record_share(store, actor, export, "stix", recipient=recipient,
                 details={"objects": len(result.bundle.objects),
                          "excluded": len(result.excluded)})
    return result


__all__ = ["TLP2_IDS", "StixExport", "build_bundle", "export_bundle", "tlp_marking"]
