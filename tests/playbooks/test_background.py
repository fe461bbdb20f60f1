"""The server's background loop advances runs and delivers notifications by itself."""

from __future__ import annotations

import time
from pathlib import Path

from cases.services.identity import Principal, Role
from playbooks.background import PlaybookBackground
from tests.playbooks.kit import built, open_case, states  # noqa: F401


def test_background_loop_delivers_and_stops(built, shared_data: Path) -> None:  # noqa: F811
    case_id = open_case(built, shared_data / "shadowserver" / "event4_honeypot_ddos_target.csv")
    (run_id,) = built.playbooks.on_case_opened(case_id)
    loop = PlaybookBackground(built.playbooks, built.notifications.worker, interval=0.05)
    loop.start()
    minsa = Principal(Role.REPORTER, 1, entity_id="minsa")
    give_up = time.monotonic() + 60
    while not built.notifications.outbox.inbox_for(minsa) and time.monotonic() < give_up:
        time.sleep(0.05)
    loop.stop()
    assert loop._thread is not None and not loop._thread.is_alive()
    [message] = built.notifications.outbox.inbox_for(minsa)
    assert message["subject"].startswith(
        "Centro Nacional de Seguridad Digital: active la mitigación DDoS con su proveedor")
    assert states(built.playbooks.run_view(run_id))["mitigate"] == "done"
