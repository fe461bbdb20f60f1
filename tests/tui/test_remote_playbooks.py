"""RemoteClient's playbook calls against the routes its docstring documents.

The analyst API's playbook routes are being written on the server side, so the server here is
a stand-in at the HTTP seam (httpx.MockTransport): it maps each documented route to the same
engine call the LocalClient makes, on the real store filled from the real samples, and turns
Pukara errors into problem+json with the API's status codes. What is tested is the client:
the requests it sends, that it returns the engine's run views unchanged, and that a 403 and
a 409 come back as PermissionDenied and Conflict with the server's message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pukara.core.errors import Conflict, PermissionDenied, PukaraError
from tests.playbooks.kit import FlakyMisp
from tests.tui.conftest import open_case
from tui.client.local import LocalClient
from tui.client.remote import RemoteClient

TOKEN = "pk_analyst_playbook-token"
STATUS = {PermissionDenied: 403, Conflict: 409}


def stand_in_server(local: LocalClient, seen: list[tuple[str, str, Any]]
                    ) -> Callable[[httpx.Request], httpx.Response]:
    """The documented playbook routes answered by the engine (through ``local``)."""
    def answer(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = json.loads(request.content) if request.content else {}
        path = request.url.path.removeprefix("/api/v1/analyst")
        seen.append((request.method, path, body or None))
        parts = path.strip("/").split("/")
        try:
            if parts == ["playbooks"]:
                result: Any = local.playbooks(request.url.params.get("case"))
            elif parts[0] == "cases" and request.method == "GET":
                result = local.playbook_status(parts[1])
            elif parts[0] == "cases":
                result = local.playbook_start(body["playbook"], parts[1])
            elif parts[-1] == "approve":
                result = local.playbook_approve(parts[1], parts[3], body["comment"])
            elif parts[-1] == "done":
                result = local.playbook_step_done(parts[1], parts[3])
            else:
                result = local.playbook_retry(parts[1], parts[3])
        except PukaraError as exc:
            return httpx.Response(STATUS.get(type(exc), 422),
                                  json={"title": type(exc).__name__, "detail": exc.message})
        return httpx.Response(200, json=result)
    return answer


@pytest.fixture
def remote_and_seen(client: LocalClient) -> tuple[RemoteClient, list[tuple[str, str, Any]]]:
    """A RemoteClient talking to the stand-in server over the filled store."""
    client.services.playbooks.tools.misp_client = FlakyMisp(failures=0)
    seen: list[tuple[str, str, Any]] = []
    transport = httpx.MockTransport(stand_in_server(client, seen))
    return RemoteClient("https://pukara.example", TOKEN, transport=transport), seen


def test_remote_playbook_calls_use_the_documented_routes(
        client: LocalClient, remote_and_seen: tuple[RemoteClient, list[Any]]) -> None:
    remote, seen = remote_and_seen
    number = open_case(client)
    books = remote.playbooks(number)
    assert len(books) == 8 and {b["id"] for b in books if b["matches"]} == set()
    run = remote.playbook_start("web-defacement", number)
    run_id = run["run_id"]
    assert remote.playbook_status(number) == [client.services.playbooks.run_view(run_id)]
    after = remote.playbook_step_done(run_id, "preserve")
    assert {s["id"]: s["state"] for s in after["steps"]}["preserve"] == "done"
    remote.playbook_step_done(run_id, "entry-point")
    with pytest.raises(PermissionDenied, match="needs the coordinator role"):
        remote.playbook_approve(run_id, "restore", "looks clean")
    with pytest.raises(Conflict, match="has not failed"):
        remote.playbook_retry(run_id, "restore")
    case_id = client.case(number)["id"]
    step = f"/playbook-runs/{run_id}/steps"
    assert [(method, path) for method, path, _ in seen] == [
        ("GET", "/playbooks"), ("POST", f"/cases/{number}/playbooks"),
        ("GET", f"/cases/{number}/playbooks"), ("POST", f"{step}/preserve/done"),
        ("POST", f"{step}/entry-point/done"), ("POST", f"{step}/restore/approve"),
        ("POST", f"{step}/restore/retry")]
    assert [body for _, _, body in seen][1] == {"playbook": "web-defacement"}
    assert [body for _, _, body in seen][5] == {"comment": "looks clean"}
    assert run["case_id"] == case_id
