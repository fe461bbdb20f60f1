"""The alert detail pane's content: fields, observables, enrichment hits, raw record."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui.widgets.colours import severity, status, tlp
from tui.widgets.safe import label_value, literal, literal_block

RAW_LIMIT = 20_000


def _hit_row(hit: dict[str, Any]) -> tuple[Text, Text, Text]:
    kind = str(hit.get("kind", "?"))
    if kind == "yara":
        what = f"YARA {hit.get('namespace') or ''}:{hit.get('rule') or '?'}"
    elif kind == "indicator":
        what = f"MISP event {hit.get('event_uuid') or '-'} {hit.get('event_info') or ''}"
    else:
        what = f"{kind} {hit.get('source') or ''}"
    style = "dim" if hit.get("suppressed") else "bold"
    matched = hit.get("indicator") or hit.get("observable") or ""
    return literal(kind, style), literal(matched), literal(what.strip(), limit=300)


def hits_table(hits: list[dict[str, Any]]) -> RenderableType:
    """Enrichment hits: kind, matched value, MISP event or YARA rule."""
    if not hits:
        return Text("no enrichment hits", style="dim")
    table = Table("hit", "matched", "from", box=None, expand=True, show_edge=False,
                  header_style="bold")
    for hit in hits[:200]:
        table.add_row(*_hit_row(hit))
    return table


def observables_table(observables: list[dict[str, Any]]) -> RenderableType:
    """Observables of an alert: type, role, value."""
    if not observables:
        return Text("no observables", style="dim")
    table = Table("type", "role", "value", box=None, expand=True, show_edge=False,
                  header_style="bold")
    for item in observables[:500]:
        table.add_row(literal(item.get("type")), literal(item.get("role") or "-"),
                      literal(item.get("value"), limit=500))
    return table


def alert_detail(found: dict[str, Any]) -> RenderableType:
    """Everything about one alert, untrusted parts literal."""
    doc = found.get("alert") or {}
    head = label_value([
        ("alert", f"#{found['id']} ×{found.get('count', 1)}"),
        ("title", found.get("title")),
        ("severity", severity(found.get("severity"))),
        ("TLP", tlp(found.get("tlp"))),
        ("status", status(found.get("status"))),
        ("class", found.get("classification")),
        ("source", f"{found.get('source')} {doc.get('source_ref') or ''}".strip()),
        ("entity", found.get("entity_id") or "unassigned"),
        ("observed", found.get("observed_at")),
        ("last seen", found.get("last_seen")),
        ("signature", doc.get("signature") or "-"),
        ("case", found.get("case_id") or "-"),
    ])
    parts: list[RenderableType] = [head]
    if doc.get("description"):
        parts += [Text("\nDescription", style="bold underline"),
                  literal_block(doc["description"], limit=5000)]
    parts += [Text("\nObservables", style="bold underline"),
              observables_table(doc.get("observables") or []),
              Text("\nEnrichment hits", style="bold underline"),
              hits_table(doc.get("hits") or []),
              Text("\nRaw record", style="bold underline"),
              literal_block(found.get("raw") or "-", style="dim", limit=RAW_LIMIT)]
    return Group(*parts)
