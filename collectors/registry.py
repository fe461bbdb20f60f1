"""Find parsers by name or by sniffing content."""

from __future__ import annotations

from collectors.parsers.base import Parser
from pukara.core import plugins
from pukara.core.errors import ParseError


def parser(name: str) -> Parser:
    """An instance of the parser registered as ``name``."""
    cls = plugins.load(plugins.PARSERS, name)
    instance: Parser = cls()
    return instance


def all_parsers() -> list[Parser]:
    """One instance of every registered parser, in sniffing order."""
    instances = [cls() for cls in plugins.load_all(plugins.PARSERS).values()]
    return sorted(instances, key=lambda p: (p.priority, p.name))


def detect(head: bytes, filename: str = "") -> Parser:
    """The first parser whose ``sniff`` accepts ``head``; ParseError naming the formats if none."""
    candidates = all_parsers()
    for candidate in candidates:
        if candidate.sniff(head):
            return candidate
    known = ", ".join(p.name for p in candidates)
    where = f" {filename!r}" if filename else ""
    raise ParseError(f"cannot tell the format of{where}; give --format (one of: {known})")
