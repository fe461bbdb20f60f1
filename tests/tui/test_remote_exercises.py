"""The TUI's RemoteClient playing an exercise on a real ``pukara serve`` on loopback.

The server is the real CLI in a child process (tests.api.live) on a copy of the TUI tests'
filled store (see conftest): minsa is its only health entity, so the only participant of
the shipped ``ransomware-health`` scenario. The run plays at 600× with its bot, which
reports through the real entity API the server's exercise control serves on loopback.
Waits poll with a limit; nothing asserts how fast anything is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cases.services.identity import Role
from pukara.core.errors import Conflict, NotFound
from pukara.wiring import Services
from tests.api.live import LiveServer
from tui.client.remote import RemoteClient

SCENARIO = "ransomware-health"


def met(state: dict[str, Any], expectation: str) -> bool:
    """True once minsa's ``expectation`` is met."""
    return any(o["entity"] == "minsa" and o["expectation"] == expectation
               and o["state"] == "met" for o in state["outcomes"])


def test_remote_client_plays_an_exercise_on_a_live_server(services: Services,
                                                          tmp_path: Path) -> None:
    services.identity.add_user("ana-analyst", Role.ANALYST)
    token = services.identity.issue_user_token("ana-analyst")
    home = services.settings.home
    with LiveServer(home, pepper="", log=tmp_path / "server.log") as server:
        client = RemoteClient(server.url, token, timeout=30)
        try:
            listed = client.exercises()
            assert SCENARIO in {s["id"] for s in listed["scenarios"]}
            assert listed["runs"] == []
            run = client.exercise_start(SCENARIO, 600, ["all"])
            exercise_id = run["exercise_id"]
            assert (run["participants"], run["bots"], run["status"]) == (
                ["minsa"], ["minsa"], "RUNNING")
            deadline = time.monotonic() + 60
            while not met(client.exercise_status(exercise_id), "report-c2"):
                assert time.monotonic() < deadline, "the bot's report never scored"
                time.sleep(0.2)
            assert client.exercise_pause(exercise_id)["status"] == "PAUSED"
            scored = client.exercise_score(exercise_id, "minsa", None, 2, "called the CSIRT")
            assert next(s for s in scored["scores"] if s["entity"] == "minsa")["manual"] == [
                {"points": 2, "comment": "called the CSIRT", "by": "ana-analyst"}]
            assert client.exercise_abort(exercise_id)["status"] == "CANCELED"
            with pytest.raises(Conflict, match="cannot resume"):
                client.exercise_resume(exercise_id)
            assert "called the CSIRT" in client.exercise_report(exercise_id)
            assert [r["id"] for r in client.exercises()["runs"]] == [exercise_id]
            with pytest.raises(NotFound):
                client.exercise_status("no-such-run")
        finally:
            client.close()
