"""A store for the TUI tests, filled through the real pipeline with the real samples.

Alerts: the Suricata capture ``suricata/Muntaha-Ghafoor-eve.json`` (entity minsa) and the
Shadowserver ``scan_dns.csv`` report, both through ``FileSource`` + ``Pipeline.ingest``;
plus one *constructed* hostile alert (title with Textual markup and an OSC 52 escape, a
MISP hit whose event info carries markup) for SECURITY L1–L2. A case is opened from the
Nmap alerts through the client; entity incident reports come through the incident service.
For snapshots, times and yearly numbers written with the wall clock are set to fixed
values afterwards so the screens are the same every day.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Static
from textual.worker import WorkerCancelled

from cases.services import audit
from collectors.sources.files import FileSource
from pukara.core.config import load_settings
from pukara.core.schema import Alert, Entity, Hit, Observable
from pukara.wiring import Services, build_services
from tests.cases.case_kit import incident_service, report, reporter
from tui.app import PukaraApp
from tui.client.local import LocalClient

#: the frozen clock: two minutes after the last event of the Muntaha capture (as stored)
FROZEN = datetime(2026, 6, 12, 8, 10, tzinfo=UTC)
MUNTAHA = "suricata/Muntaha-Ghafoor-eve.json"
SCAN_DNS = "shadowserver/scan_dns.csv"
NMAP = "Nmap SYN Port Scan Detected"
HOSTILE_TITLE = "[@click=app.quit]x[/] \x1b]52;c;cHVrYXJh\x07 [link=file:///etc]y[/link]"
ANALYST = audit.Actor("analyst")


def frozen() -> datetime:
    """The tests' clock."""
    return FROZEN


def hostile_alert() -> Alert:
    """Constructed: an alert whose untrusted fields carry markup and escape sequences."""
    return Alert(
        source="constructed", entity_id="minsa", title=HOSTILE_TITLE,
        description="[bold red]not bold[/] \x1b[31mnot red\x1b[0m \r overprint",
        severity="high", tlp="red", observed_at=FROZEN - timedelta(minutes=1),
        observables=[Observable(type="domain", value="evil.example", role="dst")],
        hits=[Hit(kind="indicator", observable="evil.example", indicator="evil.example",
                  source="misp", event_uuid="5e5e5e5e-0000-4000-8000-000000000001",
                  event_info="[@click=app.quit]MISP event info[/]")],
        raw='{"title": "[@click=app.quit]x[/]", "osc": "\x1b]8;;file:///etc\x07"}')


def fill(services: Services, shared_data: Path) -> LocalClient:
    """Entities, the real samples through the pipeline, the hostile alert, one case with a
    task and a comment, and three incident reports (deadlines due, overdue)."""
    services.identity.add_entity(Entity(id="minsa", name="Ministerio de Salud",
                                        sector="health"))
    services.identity.add_entity(Entity(id="bcrp", name="Banco Central", sector="finance"))
    with FileSource().open_report(shared_data / MUNTAHA, fmt="suricata",
                                  entity_id="minsa") as raw:
        services.pipeline.ingest(raw)
    with FileSource().open_report(shared_data / SCAN_DNS, fmt="shadowserver") as raw:
        services.pipeline.ingest(raw)
    services.pipeline.ingest_alerts([hostile_alert()])
    client = LocalClient(services, actor=ANALYST, clock=frozen)
    incidents = incident_service(services)
    with services.store.write() as conn:
        for entity, hours in (("minsa", 80), ("bcrp", 20)):
            incidents.submit(conn, reporter(entity),
                             report(f"{entity} report {hours}h", FROZEN - timedelta(hours=hours)))
    return client


def open_case(client: LocalClient) -> str:
    """A case from the Nmap alerts, with one task and one comment; its number."""
    nmap = client.search(f'"{NMAP}" status:new')["alerts"]
    made = client.promote([a["id"] for a in nmap], title="Port scan on minsa")
    client.services.tasks.add(made["number"], "Block the scanner", ANALYST, owner="ana",
                              due_at=FROZEN + timedelta(hours=4))
    client.add_comment(made["number"], "scanner is 192.168.137.1")
    return str(made["number"])


def pin_times(services: Services) -> None:
    """Set wall-clock times and yearly numbers to fixed values (snapshots only)."""
    year = str(datetime.now(UTC).year)
    fixed = FROZEN.strftime("%Y-%m-%d %H:%M:%S.000000")
    statements = [
        f"UPDATE cases SET number = replace(number, '{year}', '2026'), "
        f"created_at = '{fixed}', updated_at = '{fixed}'",
        f"UPDATE incidents SET tracking_number = replace(tracking_number, '{year}', '2026')",
        f"UPDATE case_timeline SET event_at = '{fixed}', recorded_at = '{fixed}'",
        f"UPDATE case_comments SET created_at = '{fixed}'",
        f"UPDATE case_tasks SET created_at = '{fixed}', updated_at = '{fixed}'",
    ]
    with services.store.write() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


@pytest.fixture(scope="session")
def filled_home(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A PUKARA_HOME filled once per run (see :func:`fill`); tests work on copies."""
    home = tmp_path_factory.mktemp("filled-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUKARA_HOME", str(home))
        built = build_services(load_settings())
        try:
            fill(built, shared_data)
        finally:
            built.close()
    return home


@pytest.fixture
def services(filled_home: Path, pukara_home: Path) -> Iterator[Services]:
    """Every service on this test's own copy of the filled store."""
    shutil.copytree(filled_home, pukara_home, dirs_exist_ok=True)
    built = build_services(load_settings())
    yield built
    built.close()


@pytest.fixture
def client(services: Services) -> LocalClient:
    """A LocalClient on the filled store."""
    return LocalClient(services, actor=ANALYST, clock=frozen)


@pytest.fixture(scope="module")
def snapshot_home(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """One filled, time-pinned store shared by a module's snapshot tests (read only)."""
    home = tmp_path_factory.mktemp("snapshot-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUKARA_HOME", str(home))
        built = build_services(load_settings())
        try:
            open_case(fill(built, shared_data))
            pin_times(built)
        finally:
            built.close()
    return home


def make_app(client: LocalClient, start: str = "dashboard") -> PukaraApp:
    """The app on ``client`` with the frozen clock and no live refresh during a test."""
    return PukaraApp(client, clock=frozen, refresh_seconds=3600, start=start)


async def _wait_for_workers(pilot: Pilot[None]) -> None:
    """Wait until no worker runs. An exclusive worker cancelled because a newer one replaced
    it (quick clicks or keys) is expected, not a failure: wait for the newer one instead."""
    for _ in range(20):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:
            continue
        if not any(w.is_running for w in pilot.app.workers):
            return
    raise AssertionError("workers kept running after 20 waits")


async def settle(pilot: Pilot[None]) -> None:
    """Let every worker finish and the screen repaint; input cursors stop blinking."""
    for _ in range(3):
        await pilot.pause()
        await _wait_for_workers(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def plain(widget: Static) -> str:
    """What a Static shows, as plain text (its renderable printed on a 200-column console,
    so nothing is cut)."""
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()
