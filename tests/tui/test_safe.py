"""Untrusted text helpers (SECURITY L1–L4): literal, escapes visible, bounded."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from tui.widgets.safe import PANE_LIMIT, literal, visible, visible_block


def test_control_bidi_and_zero_width_characters_become_visible_escapes() -> None:
    assert visible("a\x1b]52;c;eA==\x07b") == "a\\x1b]52;c;eA==\\x07b"
    assert visible("pay\u202egnp.exe") == "pay\\u202egnp.exe"
    assert visible("go\u200bogle.com") == "go\\u200bogle.com"
    assert visible("line\rover\nnext\t") == "line\\rover\\nnext\\t"
    assert visible_block("one\ntwo\x1b[2J") == "one\ntwo\\x1b[2J"


def test_markup_is_text_not_markup() -> None:
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    console.print(literal("[@click=app.quit]x[/] [link=file:///etc]y[/link] [bold red]z"))
    assert console.export_text().strip() == (
        "[@click=app.quit]x[/] [link=file:///etc]y[/link] [bold red]z")
    assert literal("[@click=app.quit]x[/]").spans == []


def test_ten_megabytes_are_cut_with_a_count() -> None:
    huge = "A" * 10_000_000
    shown = visible_block(huge)
    assert len(shown) < PANE_LIMIT + 50
    assert shown.endswith(f"… ({10_000_000 - PANE_LIMIT:,} more characters)")
    assert visible(huge, 10) == "AAAAAAAAAA…"


@given(st.text())
def test_nothing_unprintable_survives(text: str) -> None:
    for shown in (visible(text, 10_000), visible_block(text, 10_000)):
        assert all(ch.isprintable() or ch in " \n" for ch in shown)
        assert "\n" not in visible(text, 10_000)
