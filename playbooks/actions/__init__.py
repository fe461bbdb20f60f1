"""The registry of named playbook actions.

An action is a function ``(context, **args) -> ActionResult`` registered with
``@action("name")`` in one module per action group. :data:`ACTION_MODULES` names the module of
every action, so names can be listed and playbooks validated without importing any action
module (a test checks the map against what the modules register). Actions run inside the
engine's write transaction (``context.conn``): their database effects, the step's new state
and any outbox message commit together or not at all.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from cases.services.audit import Actor
from cases.store import Store
from pukara.core.errors import PluginNotFound

if TYPE_CHECKING:
    from playbooks.notify.outbox import Outbox

#: action name → the module that registers it (listing without importing)
ACTION_MODULES: dict[str, str] = {
    "add-tag": "playbooks.actions.case_fields",
    "set-severity": "playbooks.actions.case_fields",
    "notify-entity": "playbooks.actions.notify",
    "notify-sector": "playbooks.actions.notify",
    "request-report-update": "playbooks.actions.notify",
    "re-enrich": "playbooks.actions.enrich",
    "yara-scan-evidence": "playbooks.actions.enrich",
    "export-misp": "playbooks.actions.sharing",
    "publish-advisory-draft": "playbooks.actions.sharing",
}


class ActionFailed(Exception):
    """An action could not do its work this time (the engine retries with backoff)."""


@dataclass
class ActionResult:
    """What an action did: a one-line summary for the timeline and a JSON-able output."""

    summary: str
    output: dict[str, Any] = field(default_factory=dict)


class IntelLookup(Protocol):
    """Matches one observable (type, normalized value) against the intel store."""

    def __call__(self, kind: str, value: str) -> list[dict[str, Any]]: ...


class YaraLookup(Protocol):
    """Scans one evidence file; returns the matching rule names."""

    def __call__(self, path: Path) -> list[str]: ...


@dataclass
class ActionTools:
    """Outside capabilities the composition root hands to actions (None: not configured)."""

    intel: IntelLookup | None = None
    yara: YaraLookup | None = None
    evidence_root: Path | None = None
    misp_client: Any = None
    center_name: str = "CSIRT"


@dataclass
class ActionContext:
    """What an action sees: the open write transaction (None for an action registered
    with ``transactional=False``, which uses ``store`` itself), the case, who runs it."""

    store: Store

    conn: Connection | None
    case: Mapping[str, Any]
    run_id: str
    step_id: str
    actor: Actor
    tools: ActionTools
    outbox: Outbox
    attempt: int = 1

    @property
    def db(self) -> Connection:
        """The engine's write transaction (transactional actions only)."""
        if self.conn is None:
            raise RuntimeError("this action runs outside the engine's transaction")
        return self.conn

    def key(self) -> str:
        """The cause key of messages this step queues (the same on every attempt)."""
        return f"run:{self.run_id}:step:{self.step_id}"


ActionFunc = Callable[..., ActionResult]
_REGISTRY: dict[str, ActionFunc] = {}
_OUTSIDE: set[str] = set()


def action(name: str, *, transactional: bool = True) -> Callable[[ActionFunc], ActionFunc]:
    """Register ``function`` under ``name`` (the name must be in :data:`ACTION_MODULES`).

    ``transactional=False``: the action talks to another system and writes through the
    services' own transactions, so it runs with no transaction open (at least once: a
    crash before its result is recorded runs it again, so it must be idempotent).
    """

    def register(function: ActionFunc) -> ActionFunc:
        if _REGISTRY.get(name, function) is not function:
            raise ValueError(f"action {name!r} registered twice")
        _REGISTRY[name] = function
        if not transactional:
            _OUTSIDE.add(name)
        return function

    return register


def action_names() -> list[str]:
    """Every action name, sorted, without importing the action modules."""
    return sorted(ACTION_MODULES)


def get_action(name: str) -> ActionFunc:
    """The function of action ``name``; an unknown name lists the known ones."""
    module = ACTION_MODULES.get(name)
    if module is None:
        raise PluginNotFound(f"unknown action {name!r}; known: {', '.join(action_names())}")
    importlib.import_module(module)
    return _REGISTRY[name]


def argument_errors(name: str, args: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``with:`` arguments for action ``name`` (unknown or missing)."""
    parameters = list(inspect.signature(get_action(name)).parameters.values())[1:]
    known = {p.name for p in parameters}
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
    problems = [f"action {name!r} takes no argument {arg!r}; it takes "
                f"{', '.join(sorted(known)) or 'none'}" for arg in args if arg not in known]
    problems += [f"action {name!r} needs argument {arg!r}" for arg in required
                 if arg not in args]
    return problems


def is_transactional(name: str) -> bool:
    """True when action ``name`` runs inside the engine's write transaction."""
    get_action(name)
    return name not in _OUTSIDE


def registered() -> Mapping[str, ActionFunc]:
    """What the imported modules registered (for the completeness test)."""
    for module in sorted(set(ACTION_MODULES.values())):
        importlib.import_module(module)
    return dict(_REGISTRY)
