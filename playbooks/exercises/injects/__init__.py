"""Inject kinds: a registry of named functions, like the playbook actions and the collectors.

An inject function gets an :class:`InjectContext` (the run, the targeted entities, the
``deliver`` seam into the real pipeline, the intel sink, the kill switch) and returns a small
JSON-ready summary stored with the inject. Kinds register with ``@inject_kind("name")``; the
built-in kinds live in the modules of this package.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cases.store import Store
from playbooks.exercises.model import Inject
from pukara.core.schema import Entity, Indicator, IngestResult, RawReport

Deliver = Callable[[RawReport], IngestResult]
BUILTIN_MODULES = ("alert", "traffic", "intel", "message")


class IndicatorSink(Protocol):
    """Where ``intel`` injects publish (the intel store)."""

    def upsert(self, indicators: Iterable[Indicator]) -> int:
        """Store indicators; returns how many were written."""
        ...


class Aborted(Exception):
    """The kill switch was thrown while an inject ran."""


@dataclass
class InjectContext:
    """Everything one firing of an inject may use."""

    exercise_id: str
    inject: Inject
    targets: list[Entity]
    deliver: Deliver
    store: Store
    intel: IndicatorSink | None
    workdir: Path
    now: datetime
    exercise_seconds: float
    stop: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise :class:`Aborted` when the exercise's kill switch was thrown."""
        if self.stop.is_set():
            raise Aborted(self.exercise_id)

    def tag(self, report: RawReport) -> RawReport:
        """Mark a report as this exercise's data before it is delivered."""
        report.exercise_id = self.exercise_id
        report.metadata.setdefault("exercise_inject", self.inject.id)
        return report


InjectFunction = Callable[[InjectContext], dict[str, Any]]
_KINDS: dict[str, InjectFunction] = {}


def inject_kind(name: str) -> Callable[[InjectFunction], InjectFunction]:
    """Register an inject function under ``name``."""
    def register(function: InjectFunction) -> InjectFunction:
        if name in _KINDS and _KINDS[name] is not function:
            raise ValueError(f"inject kind {name!r} is registered twice")
        _KINDS[name] = function
        return function
    return register


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def known_kinds() -> frozenset[str]:
    """Names of every registered inject kind."""
    _load_builtins()
    return frozenset(_KINDS)


def inject_function(name: str) -> InjectFunction:
    """The function of inject kind ``name`` (ValueError naming the known kinds)."""
    _load_builtins()
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown inject kind {name!r}; known: {', '.join(sorted(_KINDS))}"
                         ) from None


def entity_ip(entity: Entity, host: int = 10) -> str:
    """An address of ``entity`` from the registry (host ``host`` of its first range), or a
    TEST-NET-3 address when it has no range (the report then names the entity explicitly)."""
    import ipaddress

    for cidr in entity.cidrs:
        network = ipaddress.ip_network(cidr, strict=False)
        if network.num_addresses > host + 1:
            return str(network.network_address + host)
    return f"203.0.113.{10 + sum(map(ord, entity.id)) % 200}"


def delivery_groups(targets: list[Entity]) -> list[tuple[str | None, list[Entity]]]:
    """How to deliver to ``targets``: entities with an address range share one report that
    the constituency enricher routes by address (as a national sensor feed would be routed);
    each other entity gets its own report naming it. Pairs of (entity id or None, entities)."""
    routed = [e for e in targets if e.cidrs]
    groups: list[tuple[str | None, list[Entity]]] = [(None, routed)] if routed else []
    return groups + [(e.id, [e]) for e in targets if not e.cidrs]


def entity_domain(entity: Entity) -> str:
    """The entity's first registered domain (or ``<id>.example``)."""
    return entity.domains[0] if entity.domains else f"{entity.id}.example"


def fill(text: str, entity: Entity) -> str:
    """``{entity}``, ``{entity_id}``, ``{domain}`` and ``{ip}`` replaced by the entity's own."""
    for key, value in (("{entity}", entity.name), ("{entity_id}", entity.id),
                       ("{domain}", entity_domain(entity)), ("{ip}", entity_ip(entity))):
        text = text.replace(key, value)
    return text
