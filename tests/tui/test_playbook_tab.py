"""The case view's playbook tab, driven with Textual's Pilot on the real store.

The case is the one the TUI tests open from the Nmap alerts of the Suricata capture
``suricata/Muntaha-Ghafoor-eve.json`` (entity minsa). The shipped ``web-defacement``
playbook is started with the tab's ``s`` key: it has manual tasks (``preserve``,
``entry-point``), a coordinator approval (``restore``) and an outside action (``share``,
export-misp). MISP is the edge we cannot run here: ``share`` talks to the playbook tests'
``FlakyMisp`` stand-in, which refuses connections until told otherwise. Every key is
followed by an assertion on the engine's own state.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static, TabbedContent

from cases.services import audit
from cases.services.identity import Role
from playbooks.model import Playbook
from pukara.core.config import load_settings
from pukara.core.schema import utcnow
from pukara.wiring import Services, build_services
from tests.playbooks.kit import COORDINATOR, FlakyMisp
from tests.tui.conftest import ANALYST, HOSTILE_TITLE, frozen, make_app, open_case, plain, settle
from tui.client.base import CaseQuery
from tui.client.local import LocalClient
from tui.screens.case_tabs.playbook import COLUMNS, PlaybookTab
from tui.screens.dialogs import ChoiceDialog, TextDialog
from tui.screens.help import HelpScreen

PLAYBOOK = "web-defacement"
SIZES = {"80x24": (80, 24), "160x50": (160, 50)}


def step_states(client: LocalClient, number: str) -> dict[str, tuple[str, int]]:
    """step id → (state, attempts) of the one run on the case, from the engine."""
    [run] = client.services.playbooks.status(number)
    return {s["id"]: (s["state"], s["attempts"]) for s in run["steps"]}


async def open_playbook_tab(pilot: Pilot[None]) -> PlaybookTab:
    """From the case list into the first case, on the playbook tab with the table focused."""
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = "tab-playbook"
    pilot.app.screen.query_one("#playbook-table", DataTable).focus()
    await settle(pilot)
    return pilot.app.screen.query_one(PlaybookTab)


async def highlight(pilot: Pilot[None], tab: PlaybookTab, step_id: str) -> None:
    """Refresh the tab from the engine and put the cursor on ``step_id``'s row."""
    tab.refresh_status()
    await settle(pilot)
    rows = tab.query_one("#playbook-table", DataTable)
    [run_id] = [r["run_id"] for r in tab.runs]
    rows.move_cursor(row=rows.get_row_index(f"{run_id}/{step_id}"))
    await pilot.pause()


async def press_start(pilot: Pilot[None], playbook_id: str) -> list[str]:
    """``s``, then choose ``playbook_id`` in the picker; the picker's ids, in order."""
    await pilot.press("s")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ChoiceDialog)
    options = pilot.app.screen.query_one(OptionList)
    ids = [str(options.get_option_at_index(i).id) for i in range(options.option_count)]
    options.highlighted = ids.index(playbook_id)
    await pilot.press("enter")
    await settle(pilot)
    return ids


async def press_approve(pilot: Pilot[None], comment: str) -> None:
    """``A`` and type the optional comment."""
    await pilot.press("A")
    await settle(pilot)
    assert isinstance(pilot.app.screen, TextDialog)
    pilot.app.screen.query_one(Input).value = comment
    await pilot.press("enter")
    await settle(pilot)


def notices(pilot: Pilot[None]) -> list[str]:
    """The messages the app has shown."""
    return [n.message for n in pilot.app._notifications]


@pytest.fixture
def misp(services: Services) -> FlakyMisp:
    """The MISP stand-in (edge fake: no MISP server here), refusing every push for now."""
    flaky = FlakyMisp(failures=1000)
    services.playbooks.tools.misp_client = flaky
    return flaky


@pytest.mark.asyncio
async def test_analyst_and_coordinator_work_a_run_with_keys(
        client: LocalClient, services: Services, misp: FlakyMisp) -> None:
    number = open_case(client)
    async with make_app(client, start="cases").run_test(size=(160, 40)) as pilot:
        tab = await open_playbook_tab(pilot)
        picked = await press_start(pilot, PLAYBOOK)
        assert len(picked) == 8 and PLAYBOOK in picked
        assert step_states(client, number) == {
            "preserve": ("waiting", 0), "enrich": ("done", 1), "contain": ("pending", 0),
            "entry-point": ("pending", 0), "restore": ("pending", 0), "share": ("pending", 0)}

        await highlight(pilot, tab, "preserve")
        await pilot.press("x")
        await settle(pilot)
        states = step_states(client, number)
        assert (states["preserve"], states["contain"], states["entry-point"]) == (
            ("done", 0), ("done", 1), ("waiting", 0))
        preserve = next(t for t in client.case(number)["tasks"]
                        if t["title"].startswith("Defacement: capture"))
        assert preserve["status"] == "done"

        await highlight(pilot, tab, "entry-point")
        await pilot.press("x")
        await settle(pilot)
        assert step_states(client, number)["restore"] == ("waiting", 0)

        await highlight(pilot, tab, "restore")
        await press_approve(pilot, "site restored")
        assert step_states(client, number)["restore"] == ("waiting", 0)
        assert notices(pilot)[-1] == "approving restore needs the coordinator role"

    services.identity.add_user("cora", Role.COORDINATOR)
    coordinator = LocalClient(services, actor=audit.Actor("tui:cora"), clock=frozen)
    async with make_app(coordinator, start="cases").run_test(size=(160, 40)) as pilot:
        tab = await open_playbook_tab(pilot)
        await highlight(pilot, tab, "restore")
        await press_approve(pilot, "site restored")
        [run] = services.playbooks.status(number)
        restore = next(s for s in run["steps"] if s["id"] == "restore")
        assert (restore["state"], restore["decided_by"], restore["output"]["note"]) == (
            "done", "tui:cora", "site restored")
        share = next(s for s in run["steps"] if s["id"] == "share")
        assert (share["state"], share["attempts"]) == ("pending", 1)
        assert "ConnectionError" in share["error"]

        later = utcnow()
        for hours in (1, 2):  # the background worker ticking as time passes
            services.playbooks.tick(later + timedelta(hours=hours))
        assert step_states(client, number)["share"] == ("failed", 3)
        misp.failures = 0
        await highlight(pilot, tab, "share")
        await pilot.press("R")
        await settle(pilot)
        [run] = services.playbooks.status(number)
        assert (run["state"], step_states(client, number)["share"]) == ("done", ("done", 1))
        assert misp.calls == 4
        assert notices(pilot)[-1] == "step share retried"


@pytest.mark.asyncio
async def test_keys_on_the_wrong_step_are_refused_with_a_notice(
        client: LocalClient, misp: FlakyMisp) -> None:
    number = open_case(client)
    client.playbook_start(PLAYBOOK, number)
    async with make_app(client, start="cases").run_test(size=(160, 40)) as pilot:
        tab = await open_playbook_tab(pilot)
        await highlight(pilot, tab, "enrich")
        await pilot.press("x")
        await pilot.press("R")
        await settle(pilot)
        assert notices(pilot)[-2:] == [
            "mark done: enrich is a done action step, not a waiting task step",
            "retry: enrich is a done action step, not a failed step"]
        await press_start(pilot, "phishing")
        assert sorted(r["playbook"] for r in client.playbook_status(number)) == [
            "phishing", PLAYBOOK]
        # the run table shows both runs, one header row each
        titles = [str(tab.query_one(DataTable).get_row_at(i)[2])
                  for i in range(tab.query_one(DataTable).row_count)]
        assert sum(t.startswith("▸ ") for t in titles) == 2


@pytest.mark.asyncio
async def test_help_lists_the_playbook_keys(client: LocalClient) -> None:
    open_case(client)
    async with make_app(client, start="cases").run_test(size=(100, 30)) as pilot:
        await open_playbook_tab(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(pilot.app.screen, HelpScreen)
        text = plain(pilot.app.screen.query_one(Static))
        for words in ("Manual step done", "Approve (coordinator)", "Retry failed step",
                      "Start a playbook"):
            assert words in text


def test_playbook_list_puts_the_matching_ones_first(client: LocalClient) -> None:
    number = open_case(client)
    client.update_case(number, {"classification": "intrusions/defacement"})
    books = client.playbooks(number)
    assert [b["id"] for b in books if b["matches"]] == [PLAYBOOK]
    assert books[0]["id"] == PLAYBOOK and len(books) == 8


@pytest.fixture
def playbook_snapshot_client(snapshot_home: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalClient]:
    """A client on a copy of the pinned snapshot store with two runs driven at times fixed
    from the frozen clock: web-defacement with its tasks done, approval given and the MISP
    push failed three times (FlakyMisp, the edge fake), and phishing just started."""
    shutil.copytree(snapshot_home, tmp_path / "home")
    monkeypatch.setenv("PUKARA_HOME", str(tmp_path / "home"))
    client = LocalClient(build_services(load_settings()), actor=ANALYST, clock=frozen)
    engine = client.services.playbooks
    engine.tools.misp_client = FlakyMisp(failures=1000)
    [case] = client.case_page(CaseQuery()).rows
    run_id = engine.start(PLAYBOOK, case["id"], ANALYST, now=frozen())
    for step_id in ("preserve", "entry-point"):
        engine.complete_task(run_id, step_id, ANALYST, now=frozen())
    engine.approve(run_id, "restore", COORDINATOR, note="restored", now=frozen())
    for hours in (1, 2):
        engine.tick(frozen() + timedelta(hours=hours))
    engine.start("phishing", case["id"], ANALYST, now=frozen())
    yield client
    client.close()


async def _on_playbook_tab(pilot: Pilot[None]) -> None:
    await open_playbook_tab(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_playbook_tab_snapshot(size: str, playbook_snapshot_client: LocalClient,
                               snap_compare: Any) -> None:
    app = make_app(playbook_snapshot_client, start="cases")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=_on_playbook_tab)



@pytest.mark.asyncio
async def test_step_text_is_shown_literally(client: LocalClient) -> None:
    """Constructed: a copy of web-defacement whose first step is named with markup and an
    OSC 52 escape (a playbook file is text someone wrote; SECURITY L1–L2)."""
    engine = client.services.playbooks
    definition = engine.playbooks[PLAYBOOK].model_dump(mode="json", by_alias=True)
    definition["id"] = "hostile-copy"
    definition["steps"][0]["name"] = HOSTILE_TITLE
    engine.playbooks["hostile-copy"] = Playbook.model_validate(definition)
    number = open_case(client)
    run_id = client.playbook_start("hostile-copy", number)["run_id"]
    async with make_app(client, start="cases").run_test(size=(160, 40)) as pilot:
        tab = await open_playbook_tab(pilot)
        rows = tab.query_one("#playbook-table", DataTable)
        name = rows.get_row(f"{run_id}/preserve")[COLUMNS.index("step")]
        assert isinstance(name, Text) and name.spans == []
        assert name.plain.startswith("[@click=app.quit]x[/] \\x1b]52;c;cHVrYXJh\\x07")
        assert "\x1b" not in name.plain and "\x07" not in name.plain
