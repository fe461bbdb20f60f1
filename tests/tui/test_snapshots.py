"""Snapshot tests (pytest-textual-snapshot) of every screen at 80×24 and 160×50.

The store is the real samples through the real pipeline (see conftest), with wall-clock
times pinned; the app runs on the frozen clock with input cursors not blinking. Update the
SVGs under ``__snapshots__/`` with ``pytest tests/tui --snapshot-update`` after a deliberate
change, and look at them before committing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from pukara.core.config import load_settings
from pukara.wiring import build_services
from tests.tui.conftest import ANALYST, frozen, make_app, settle
from tui.client.local import LocalClient

SIZES = {"80x24": (80, 24), "160x50": (160, 50)}


@pytest.fixture
def snapshot_client(snapshot_home: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> Iterator[LocalClient]:
    """A client on the shared, pinned store."""
    monkeypatch.setenv("PUKARA_HOME", str(snapshot_home))
    client = LocalClient(build_services(load_settings()), actor=ANALYST, clock=frozen)
    yield client
    client.close()


async def open_first_case(pilot: Pilot[None]) -> None:
    """From the case list into the first case."""
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


async def look_up_scanner(pilot: Pilot[None]) -> None:
    """Look up the scanner address of the Suricata capture."""
    await settle(pilot)
    pilot.app.screen.query_one(Input).value = "192.168.137.1"
    await pilot.press("enter")
    await settle(pilot)


async def highlight_hostile(pilot: Pilot[None]) -> None:
    """The queue with the constructed hostile alert highlighted (L1–L2 on screen)."""
    await settle(pilot)
    field = pilot.app.screen.query_one("#query", Input)
    field.value = "severity:>=low"
    field.focus()
    await pilot.press("enter")
    await settle(pilot)


SCREENS: dict[str, tuple[str, Any]] = {
    "dashboard": ("dashboard", settle),
    "alerts": ("alerts", highlight_hostile),
    "cases": ("cases", settle),
    "case_detail": ("cases", open_first_case),
    "entities": ("entities", settle),
    "intel": ("intel", look_up_scanner),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(screen: str, size: str, snapshot_client: LocalClient, snap_compare: Any) -> None:
    start, before = SCREENS[screen]
    app = make_app(snapshot_client, start=start)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=before)
