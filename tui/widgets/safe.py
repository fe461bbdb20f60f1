"""Untrusted text on the terminal (SECURITY L1–L4).

Titles, descriptions, MISP tags and raw records come from outside. They are rendered as
``rich.text.Text`` (never parsed as Textual/Rich markup, so ``[@click=app.quit]`` is just
characters), every control or format character (ESC, BEL, ``\\r``, OSC 52, BiDi overrides,
zero-width characters) is shown as a visible escape such as ``\\x1b`` or ``\\u202e``, and
long values are cut with a note of how much was left out.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

#: longest text put in one table cell
CELL_LIMIT = 200
#: longest text put in a detail pane (a 10 MB description stays responsive)
PANE_LIMIT = 20_000


def visible(value: Any, limit: int = CELL_LIMIT) -> str:
    """``value`` as a single-line-safe string: control and format characters escaped,
    cut at ``limit`` characters (marked with an ellipsis)."""
    text = "" if value is None else str(value)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    shown = "".join(ch if ch.isprintable() or ch == " " else
                    ch.encode("unicode_escape").decode("ascii") for ch in text)
    return f"{shown}…" if cut > 0 else shown


def visible_block(value: Any, limit: int = PANE_LIMIT) -> str:
    """Like :func:`visible` but keeps line breaks (``\\n``) for multi-line panes."""
    text = "" if value is None else str(value)
    cut = len(text) - limit
    lines = (visible(line, limit) for line in text[:limit].split("\n"))
    joined = "\n".join(lines)
    return f"{joined}\n… ({cut:,} more characters)" if cut > 0 else joined


def literal(value: Any, style: str = "", limit: int = CELL_LIMIT) -> Text:
    """A Rich Text that shows ``value`` literally (no markup, escapes visible)."""
    return Text(visible(value, limit), style=style, no_wrap=False)


def literal_block(value: Any, style: str = "", limit: int = PANE_LIMIT) -> Text:
    """A multi-line literal Text."""
    return Text(visible_block(value, limit), style=style)


def label_value(pairs: list[tuple[str, Any]], *, width: int = 14) -> Text:
    """Lines of ``label  value``; labels are ours (bold), values literal."""
    out = Text()
    for index, (label, value) in enumerate(pairs):
        if index:
            out.append("\n")
        out.append(f"{label:<{width}}", style="bold")
        out.append_text(value if isinstance(value, Text) else literal(value, limit=2000))
    return out
