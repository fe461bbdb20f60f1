"""Pilot-driven tests of the TUI on a real store filled through the real pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from textual.widgets import DataTable, Input, Static, TabbedContent

from cases.store.tables import alerts
from pukara.core.schema import Observable
from tests.tui.conftest import (
    ANALYST,
    FROZEN,
    NMAP,
    frozen,
    hostile_alert,
    make_app,
    open_case,
    plain,
    settle,
)
from tui.app import PukaraApp
from tui.client.local import LocalClient
from tui.screens.alert_groups import AlertGroupsScreen
from tui.screens.alerts import AlertsScreen
from tui.screens.case_detail import CaseDetailScreen
from tui.screens.dialogs import ChoiceDialog, TextDialog
from tui.screens.help import HelpScreen

#: alert rows of the Muntaha capture titled "Nmap SYN Port Scan Detected" (repeats folded)
NMAP_ROWS = 1
SCANNER = "192.168.137.1"

pytestmark = pytest.mark.asyncio


def rows(app: PukaraApp) -> list[list[Any]]:
    """The cells of the current screen's main table."""
    table = app.screen.query_one("#table", DataTable)
    return [table.get_row_at(i) for i in range(table.row_count)]


async def open_tasks_tab(app: PukaraApp, pilot: Any) -> None:
    """From the case list: open the selected case and focus its task table."""
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    app.screen.query_one(TabbedContent).active = "tab-tasks"
    app.screen.query_one("#tasks-table", DataTable).focus()


def status_line(app: PukaraApp) -> str:
    """The text of the current screen's status line."""
    return str(app.screen.query_one("#status-line", Static).render())


async def query(pilot: Any, text: str) -> None:
    """Type a filter into the query line and apply it."""
    field = pilot.app.screen.query_one("#query", Input)
    field.value = text
    field.focus()
    await pilot.press("enter")
    await settle(pilot)


def statuses(client: LocalClient, title: str) -> set[str]:
    """Statuses of the stored alerts with ``title``."""
    with client.services.store.read() as conn:
        found = conn.execute(select(alerts.c.status).where(alerts.c.title == title))
        return set(found.scalars())


async def test_promote_an_alert_into_a_new_case(client: LocalClient) -> None:
    app = make_app(client, start="alerts")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await query(pilot, f'"{NMAP}" status:new')
        assert [str(r[4]) for r in rows(app)] == [NMAP] * NMAP_ROWS
        await pilot.press("space", "p")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, TextDialog)
        assert dialog.query_one(Input).value == NMAP
        dialog.query_one(Input).value = "Scan against minsa"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert statuses(client, NMAP) == {"promoted"}
        opened = client.case_page(client_query())
        assert [(c["title"], c["alerts"], c["entity_ids"]) for c in opened.rows] == [
            ("Scan against minsa", NMAP_ROWS, ["minsa"])]
        assert rows(app) == []  # gone from the status:new queue


def client_query() -> Any:
    from tui.client.base import CaseQuery
    return CaseQuery()


async def test_ack_dismiss_with_reason_and_add_to_case(client: LocalClient) -> None:
    number = open_case(client)
    app = make_app(client, start="alerts")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await query(pilot, '"ICMP Ping Detected" status:new')
        icmp = [int(r[1]) for r in rows(app)]
        assert len(icmp) == 2  # two scanners pinged the sensor
        await pilot.press("space", "space", "a")
        await settle(pilot)
        assert statuses(client, "ICMP Ping Detected") == {"acknowledged"}
        await query(pilot, '"Telnet Connection Attempt"')
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("down", "enter")  # the second reason: duplicate
        await settle(pilot)
        assert statuses(client, "Telnet Connection Attempt") == {"dismissed"}
        await query(pilot, '"FTP Connection Attempt"')
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("enter")
        await settle(pilot)
        assert statuses(client, "FTP Connection Attempt") == {"merged"}
        linked = [a["title"] for a in client.case(number)["alerts"]]
        assert sorted(set(linked)) == ["FTP Connection Attempt", NMAP]


async def test_edit_a_case_in_place(client: LocalClient) -> None:
    number = open_case(client)
    app = make_app(client, start="cases")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert [str(r[0]) for r in rows(app)] == [number]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CaseDetailScreen)
        fields = app.screen.query_one("#overview-table", DataTable)
        fields.focus()
        fields.move_cursor(row=fields.get_row_index("severity"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("down", "down", "down", "enter")  # info low medium [high]
        await settle(pilot)
        fields.move_cursor(row=fields.get_row_index("title"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TextDialog)
        app.screen.query_one(Input).value = "Port scan, scanner blocked"
        await pilot.press("enter")
        await settle(pilot)
        case = client.case(number)
        assert (case["severity"], case["title"]) == ("high", "Port scan, scanner blocked")
        assert [e["text"] for e in case["timeline"] if e["action"].startswith("case.")][-2:] \
            == ["severity: low → high", "title: Port scan on minsa → Port scan, scanner blocked"]
        header = str(app.screen.query_one("#case-header", Static).render())
        assert "Port scan, scanner blocked" in header


async def test_complete_and_reassign_a_task_and_add_a_timeline_entry(
        client: LocalClient) -> None:
    number = open_case(client)
    app = make_app(client, start="cases")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_tasks_tab(app, pilot)
        await pilot.press("o")
        await settle(pilot)
        app.screen.query_one(Input).value = "luis"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        [task] = client.case(number)["tasks"]
        assert (task["title"], task["status"], task["owner"]) == (
            "Block the scanner", "done", "luis")
        app.screen.query_one(TabbedContent).active = "tab-timeline"
        app.screen.query_one("#timeline-table", DataTable).focus()
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one(Input).value = "scanner blocked at the border"
        await pilot.press("enter")
        await settle(pilot)
        notes = [e for e in client.case(number)["timeline"] if e["kind"] == "note"]
        assert [(n["text"], n["actor"]) for n in notes] == [
            ("scanner blocked at the border", ANALYST.name)]


async def test_search_syntax_filters_the_queue(client: LocalClient) -> None:
    app = make_app(client, start="alerts")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await query(pilot, "class:vulnerable/ddos-amplifier")  # the Shadowserver scan_dns rows
        assert len(rows(app)) == 96
        assert status_line(app).startswith("1–96 of 96 ")
        await query(pilot, "class:intrusion-attempts/* entity:minsa")
        assert sorted(str(r[4]) for r in rows(app)) == [
            "FTP Connection Attempt", "ICMP Ping Detected", "ICMP Ping Detected", NMAP,
            "Possible Metasploit Connection", "Telnet Connection Attempt"]
        await query(pilot, f"observable:{SCANNER} severity:>=low")
        assert sorted(str(r[4]) for r in rows(app)) == [
            "FTP Connection Attempt", "ICMP Ping Detected", "ICMP Ping Detected", NMAP,
            "Possible Metasploit Connection", "Telnet Connection Attempt"]
        await query(pilot, "metasploit -status:dismissed")
        assert [str(r[4]) for r in rows(app)] == ["Possible Metasploit Connection"]
        await query(pilot, "severity:bogus")
        assert [n.message for n in app._notifications] == [
            "query term 1: severity: unknown severity 'bogus'; "
            "allowed: info, low, medium, high, critical"]
        assert app.is_running


async def test_untrusted_text_is_shown_literally_and_clicks_do_nothing(
        client: LocalClient) -> None:
    app = make_app(client, start="alerts")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await query(pilot, "source:constructed")
        [row] = rows(app)
        assert str(row[4]).startswith("[@click=app.quit]x[/] \\x1b]52;c;cHVrYXJh\\x07")
        detail = app.screen.query_one("#detail-text", Static)
        screen_text = app.export_screenshot()
        assert "[@click=app.quit]x[/]" in screen_text.replace("&#160;", " ")
        clicks = [("#table", (x, 1)) for x in range(0, 70, 3)]
        clicks += [("#detail-text", (x, y)) for x in range(14, 44, 4) for y in (1, 2)]
        for target, offset in clicks:  # on the title in the row and in the pane
            await pilot.click(target, offset=offset)
        await settle(pilot)
        assert app.is_running and app.return_code is None
        shown = plain(detail)
        for literal in ("[@click=app.quit]x[/] \\x1b]52;c;cHVrYXJh\\x07 [link=file:///etc]y",
                        "[bold red]not bold[/] \\x1b[31mnot red\\x1b[0m \\r overprint",
                        "[@click=app.quit]MISP event info[/]",
                        '"osc": "\\x1b]8;;file:///etc\\x07"'):
            assert literal in shown
        assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown


async def test_help_lists_the_keys_of_the_current_screen(client: LocalClient) -> None:
    app = make_app(client, start="alerts")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one(Static))
        for words in ("Ack", "Dismiss", "Promote", "To case", "go to Dashboard"):
            assert words in text
        await pilot.press("escape")
        await pilot.press("4")
        await settle(pilot)
        entities = [str(r[0]) for r in rows(app)]
        assert entities == ["bcrp", "minsa"]


async def test_export_a_case_as_markdown(client: LocalClient, tmp_path: Any,
                                         monkeypatch: Any) -> None:
    number = open_case(client)
    monkeypatch.chdir(tmp_path)
    app = make_app(client, start="cases")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("down", "down", "enter")  # misp stix [markdown]
        await settle(pilot)
        written = (tmp_path / f"{number}.md").read_text(encoding="utf-8")
        assert "# CASE\\-" in written and "Port scan on minsa" in written
        assert [n.message for n in app._notifications][-1] == f"wrote {tmp_path / number}.md"


async def test_command_palette_offers_every_screen(client: LocalClient) -> None:
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for name in ("Dashboard", "Alerts", "Cases", "Entities", "Intel"):
            assert f"Go to {name}" in titles
        go = next(c for c in app.get_system_commands(app.screen) if c.title == "Go to Intel")
        go.callback()
        await settle(pilot)
        assert type(app.screen).__name__ == "IntelScreen"


async def test_new_alerts_appear_without_a_key_press(client: LocalClient) -> None:
    app = PukaraApp(client, clock=frozen, refresh_seconds=0.2, start="alerts")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await query(pilot, "source:constructed")
        assert len(rows(app)) == 1
        later = hostile_alert().model_copy(update={
            "title": "Second constructed alert", "observed_at": FROZEN,
            "observables": [Observable(type="domain", value="second.example", role="dst")]})
        client.services.pipeline.ingest_alerts([later])
        loads = screen.loads
        while screen.loads < loads + 2:
            await pilot.pause(0.1)
        titles = [str(r[4]) for r in rows(app)]
        assert len(titles) == 2 and titles[0] == "Second constructed alert"
        assert titles[1].startswith("[@click=app.quit]x[/]")


async def test_help_in_a_case_tab_lists_the_tab_keys(client: LocalClient) -> None:
    open_case(client)
    app = make_app(client, start="cases")
    async with app.run_test(size=(100, 30)) as pilot:
        await open_tasks_tab(app, pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = plain(app.screen.query_one(Static))
        for words in ("Export", "Mark done", "Reassign"):
            assert words in text


async def test_group_view_triages_every_alert_of_a_group(client: LocalClient) -> None:
    app = make_app(client, start="alerts")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await query(pilot, "class:intrusion-attempts entity:minsa")
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, AlertGroupsScreen)
        groups = [(str(r[6]), str(r[2]), str(r[3]), str(r[5])) for r in rows(app)]
        assert groups == [  # title, alert rows, events (repeats folded), key observable
            (NMAP, "1", "50", "ipv4:192.168.137.1"),
            ("ICMP Ping Detected", "2", "6", "ipv4:192.168.137.1"),
            ("FTP Connection Attempt", "1", "1", "ipv4:192.168.137.1"),
            ("Telnet Connection Attempt", "1", "1", "ipv4:192.168.137.1"),
            ("Possible Metasploit Connection", "1", "1", "ipv4:192.168.137.1")]
        await pilot.press("down", "space", "space", "a")  # select ICMP and FTP, acknowledge
        await settle(pilot)
        assert statuses(client, "ICMP Ping Detected") == {"acknowledged"}
        assert statuses(client, "FTP Connection Attempt") == {"acknowledged"}
        assert statuses(client, NMAP) == {"new"}
        shown = {g["title"]: g["statuses"] for g in app.screen.groups.values()}
        assert shown["ICMP Ping Detected"] == {"acknowledged": 2}  # still in the open queue
        assert shown[NMAP] == {"new": 1}
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        await query(pilot, "ransom")
        await pilot.press("g")
        await settle(pilot)
        assert [n.message for n in app._notifications][-1].startswith(
            "the group view takes field filters only")


async def test_the_app_sees_its_terminal_go_away() -> None:
    # a closed terminal window or tmux session may not send us SIGHUP (make demo runs us
    # below make and a shell): the app polls its terminal and quits when it hung up
    import os

    from tui.app import terminal_gone

    terminal, ours = os.openpty()
    try:
        assert not terminal_gone(ours)
        os.write(terminal, b"q")  # input waiting is not a hang-up
        assert not terminal_gone(ours)
        os.close(terminal)
        assert terminal_gone(ours)
    finally:
        os.close(ours)
