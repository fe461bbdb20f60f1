"""Plugin discovery by entry point: list names without importing, load by name.

Groups: ``pukara.parsers`` (parser classes), ``pukara.sources`` (source classes). A wrong
name raises PluginNotFound naming what *is* installed.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pukara.core.errors import PluginNotFound

PARSERS = "pukara.parsers"
SOURCES = "pukara.sources"


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    """The registered plugin names of ``group``, sorted, without importing them."""
    return sorted(_entry_points(group))


def load(group: str, name: str) -> Any:
    """Import and return the plugin ``name`` of ``group``."""
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise PluginNotFound(f"no {group} plugin named {name!r}; installed: {known}")
    return eps[name].load()


def load_all(group: str) -> dict[str, Any]:
    """Every plugin of ``group``, imported, by name."""
    return {name: ep.load() for name, ep in sorted(_entry_points(group).items())}
