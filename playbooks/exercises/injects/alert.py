"""``alert``: synthetic Suricata EVE, Wazuh or Shadowserver rows for each targeted entity.

Rows are built from a template with the entity's own address and domain from the registry,
then delivered as a RawReport through ``deliver`` — the real parser, enrichment and store —
marked with the exercise id. Templates are tables (format → row builder), not ``if`` chains.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from playbooks.exercises.injects import (
    InjectContext,
    delivery_groups,
    entity_domain,
    entity_ip,
    fill,
    inject_kind,
)
from pukara.core.schema import Entity, RawReport

Row = Callable[[Entity, dict[str, Any], datetime, int], bytes]


def _suricata(entity: Entity, args: dict[str, Any], when: datetime, n: int) -> bytes:
    event = {
        "timestamp": when.isoformat(), "flow_id": 7_000_000 + n, "event_type": "alert",
        "src_ip": args.get("attacker", "198.18.0.66"), "src_port": 40000 + n,
        "dest_ip": entity_ip(entity), "dest_port": int(args.get("port", 443)),
        "proto": args.get("proto", "TCP"),
        "alert": {"action": "allowed", "gid": 1, "signature_id": int(args.get("sid", 9_000_001)),
                  "rev": 1, "signature": fill(str(args["signature"]), entity),
                  "category": args.get("category", "A Network Trojan was detected"),
                  "severity": int(args.get("priority", 1))},
    }
    if args.get("hostname"):
        event["http"] = {"hostname": fill(str(args["hostname"]), entity),
                         "url": fill(str(args.get("url", "/")), entity)}
    return orjson.dumps(event) + b"\n"


def _wazuh(entity: Entity, args: dict[str, Any], when: datetime, n: int) -> bytes:
    event = {
        "timestamp": when.isoformat(), "id": f"{int(when.timestamp())}.{n}",
        "rule": {"level": int(args.get("level", 12)), "id": str(args.get("rule_id", "100500")),
                 "description": fill(str(args["description"]), entity),
                 "groups": list(args.get("groups", ["attack"]))},
        "agent": {"id": f"{n:03d}", "name": f"srv{n:02d}.{entity_domain(entity)}",
                  "ip": entity_ip(entity, 20 + n)},
        "manager": {"name": "wazuh-manager"},
        "data": {"srcip": args.get("attacker", "198.18.0.66"),
                 **({"url": fill(str(args["url"]), entity)} if args.get("url") else {})},
    }
    return orjson.dumps(event) + b"\n"


SHADOWSERVER_COLUMNS = ("timestamp", "ip", "port", "hostname", "tag", "application", "asn",
                        "geo", "region", "city", "url", "http_host", "category")


def _shadowserver(entity: Entity, args: dict[str, Any], when: datetime, n: int) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([
        when.strftime("%Y-%m-%d %H:%M:%S"), entity_ip(entity, 30 + n), args.get("port", 80),
        entity_domain(entity), args.get("tag", "defacement"), "http",
        entity.asns[0] if entity.asns else "", "PE", "LIMA", "LIMA",
        fill(str(args.get("url", "/")), entity), entity_domain(entity),
        args.get("category", "compromised-website")])
    return out.getvalue().encode()


TEMPLATES: dict[str, tuple[str, Row]] = {
    "suricata": ("suricata", _suricata),
    "wazuh": ("wazuh", _wazuh),
    "shadowserver": ("shadowserver", _shadowserver),
}


def _payload(fmt: str, row: Row, group: list[Entity], args: dict[str, Any],
             when: datetime) -> bytes:
    count = max(1, min(int(args.get("count", 1)), 1000))
    lines = [row(entity, args, when, n) for entity in group for n in range(count)]
    if fmt == "shadowserver":
        header = ",".join(f'"{c}"' for c in SHADOWSERVER_COLUMNS) + "\n"
        return header.encode() + b"".join(lines)
    return b"".join(lines)


@inject_kind("alert")
def alert(ctx: InjectContext) -> dict[str, Any]:
    """Rows for every target in ``args.template`` (suricata|wazuh|shadowserver), delivered
    in the groups of :func:`delivery_groups`."""
    template = str(ctx.inject.args.get("template", "suricata"))
    if template not in TEMPLATES:
        raise ValueError(f"unknown alert template {template!r}; known: {sorted(TEMPLATES)}")
    fmt, row = TEMPLATES[template]
    summary: dict[str, Any] = {"accepted": 0, "duplicates": 0, "rejected": 0, "reports": 0}
    for entity_id, group in delivery_groups(ctx.targets):
        ctx.check()
        data = _payload(fmt, row, group, ctx.inject.args, ctx.now)
        filename = (f"{ctx.inject.args.get('report', 'compromised_website')}.csv"
                    if fmt == "shadowserver" else f"{ctx.inject.id}-{entity_id or 'all'}.json")
        report = ctx.tag(RawReport(stream=io.BytesIO(data), source=f"exercise:{template}",
                                   filename=filename, entity_id=entity_id, format=fmt))
        result = ctx.deliver(report)
        summary["accepted"] += result.accepted
        summary["duplicates"] += result.duplicates
        summary["rejected"] += result.rejected
        summary["reports"] += 1
    return summary
