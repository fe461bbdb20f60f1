"""Severity and TLP colours chosen from the 16 ANSI colours, so they stay readable on a
16-colour terminal (and over SSH): each level also differs by its word, never by colour
alone."""

from __future__ import annotations

from typing import Any

from rich.text import Text

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "default",
}
TLP_STYLE = {
    "red": "bold white on red",
    "amber+strict": "bold black on yellow",
    "amber": "bold yellow",
    "green": "bold green",
    "clear": "default",
    "white": "default",
}
STATUS_STYLE = {
    "new": "bold",
    "acknowledged": "cyan",
    "promoted": "green",
    "merged": "green",
    "dismissed": "dim",
    "closed": "dim",
    "done": "green",
    "overdue": "bold red",
    "due-soon": "yellow",
}


def severity(value: Any) -> Text:
    """A severity word in its colour."""
    word = str(value or "-")
    return Text(word, style=SEVERITY_STYLE.get(word, "default"))


def tlp(value: Any, *, prefix: bool = True) -> Text:
    """``TLP:AMBER`` (or ``AMBER`` in a TLP column) in its colour."""
    word = str(value or "-")
    shown = f"TLP:{word.upper()}" if prefix else word.upper()
    return Text(shown, style=TLP_STYLE.get(word, "default"))


def status(value: Any) -> Text:
    """A status word in its colour."""
    word = str(value or "-")
    return Text(word, style=STATUS_STYLE.get(word, "default"))
