"""The CaseClient over the analyst HTTP API (``pukara tui --server URL --token T``).

Every call is one request with ``Authorization: Bearer <token>`` (an analyst's user token).
The token is kept only in the httpx client's headers: it is never logged, never part of
``repr()``, never shown in an error message. Errors come back as
``application/problem+json`` and are raised as the :mod:`pukara.core.errors` class of
their status (401 AuthenticationFailed, 403 PermissionDenied, 404 NotFound, 409 Conflict,
413 PayloadTooLarge, 422 InvalidInput, 429 RateLimited, other ExternalServiceError).

Routes this client expects (all JSON unless said; ``q`` is the search syntax)::

    GET   /api/v1/analyst/dashboard?now=RFC3339          → the dashboard document
    GET   /api/v1/analyst/alerts?q=&sort=&offset=&limit= → {"items", "total", "total_capped"}
    GET   /api/v1/analyst/alerts/groups?q=&limit=        → [group with "alert_ids"]
    GET   /api/v1/analyst/alerts/{id}                    → alert summary + "alert" + "raw"
    POST  /api/v1/analyst/alerts/ack      {"ids"}                    → {"changed": [ids]}
    POST  /api/v1/analyst/alerts/dismiss  {"ids", "reason"}          → {"changed": [ids]}
    POST  /api/v1/analyst/alerts/promote  {"ids", "title"?, "case"?} → {"case_id", "number",
                                                                        "alert_ids"}
    GET   /api/v1/analyst/cases?q=&status=&include_closed=&sort=&offset=&limit=
                                                         → {"items", "total", "total_capped"}
    GET   /api/v1/analyst/cases/{ref}                    → the full case view
    PATCH /api/v1/analyst/cases/{ref}     {field: value} → the full case view
    PATCH /api/v1/analyst/tasks/{id}      {"status"} | {"owner"} → the task
    POST  /api/v1/analyst/cases/{ref}/notes     {"text"} → the entry
    POST  /api/v1/analyst/cases/{ref}/comments  {"text"} → the comment
    GET   /api/v1/analyst/cases/{ref}/export?format=misp|stix|markdown → the document (text)
    GET   /api/v1/analyst/entities                       → [entity rows]
    GET   /api/v1/analyst/entities/{id}                  → entity with contacts, incidents,
                                                           compliance
    GET   /api/v1/analyst/intel/lookup?value=            → {"value", "hits", "seen"}
    GET   /api/v1/analyst/intel/stats                    → intel counts
    GET   /api/v1/analyst/search?q=&limit=               → {"alerts", "cases"}
    GET   /api/v1/analyst/playbooks?case=REF             → [{"id", "title", "version",
                                                           "auto_start", "inputs",
                                                           "matches" (with case)}],
                                                           matching first
    GET   /api/v1/analyst/cases/{ref}/playbooks          → [run view: "run_id", "playbook",
                                                           "title", "state", "steps": [...]]
    POST  /api/v1/analyst/cases/{ref}/playbooks  {"playbook"} → the new run view
    POST  /api/v1/analyst/playbook-runs/{run}/steps/{step}/done → the run view
    POST  /api/v1/analyst/playbook-runs/{run}/steps/{step}/approve {"comment"} → the run view
                                                           (403 unless coordinator/admin)
    POST  /api/v1/analyst/playbook-runs/{run}/steps/{step}/retry → the run view
    GET   /api/v1/analyst/exercises                      → {"scenarios", "runs"}
    POST  /api/v1/analyst/exercises  {"scenario", "speed", "bots"} → the run's status
    GET   /api/v1/analyst/exercises/{id}                 → status + "scores", "sectors",
                                                           "outcomes" (LocalClient's shape)
    POST  /api/v1/analyst/exercises/{id}/pause|resume|abort → the status (409 from a state
                                                           that does not allow it)
    POST  /api/v1/analyst/exercises/{id}/scores {"entity", "expectation", "points",
                                                 "comment"} → the status
    GET   /api/v1/analyst/exercises/{id}/report          → the Markdown report (text)

The exercise routes are served by ``pukara serve`` (:mod:`pukara.exercise_routes`); the
server's exercise control plays the runs they start, as the local TUI's does.

Run and step views are ``PlaybookEngine.run_view`` (``playbooks.runs.run_view``); the
server acts as the token's principal (its role decides approvals) and every change goes
through the engine. A step that is not in the state the change needs is 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from cases.services.triage import DISMISS_REASONS
from pukara.core import errors
from tui.client.base import AlertQuery, CaseQuery, Page

PREFIX = "/api/v1/analyst"
_BY_STATUS: dict[int, type[errors.PukaraError]] = {
    401: errors.AuthenticationFailed, 403: errors.PermissionDenied, 404: errors.NotFound,
    409: errors.Conflict, 413: errors.PayloadTooLarge, 422: errors.InvalidInput,
    400: errors.InvalidInput,
}


def problem_error(response: httpx.Response) -> errors.PukaraError:
    """The PukaraError for an error response (its problem ``detail`` or ``title``)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else None
    message = str(detail or f"HTTP {response.status_code}")
    if response.status_code == 429:
        retry = int(response.headers.get("Retry-After", "1") or 1)
        return errors.RateLimited(message, retry_after=retry)
    kind = _BY_STATUS.get(response.status_code, errors.ExternalServiceError)
    field = body.get("field") if isinstance(body, dict) else None
    return kind(message, field=field if isinstance(field, str) else None)


class RemoteClient:
    """CaseClient over HTTP with httpx (``transport`` lets tests run it on an ASGI app)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"},
                                  transport=transport)
        self.base_url = base_url

    def __repr__(self) -> str:
        return f"RemoteClient({self.base_url!r})"

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, PREFIX + path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.ExternalServiceError(
                f"analyst API at {self.base_url} unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise problem_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    @staticmethod
    def _page(body: dict[str, Any], offset: int) -> Page:
        return Page(rows=list(body["items"]), total=int(body["total"]), offset=offset,
                    total_capped=bool(body.get("total_capped", False)))

    def dashboard(self, now: datetime) -> dict[str, Any]:
        """GET dashboard."""
        result: dict[str, Any] = self._json("GET", "/dashboard",
                                            params={"now": now.isoformat()})
        return result

    def alert_page(self, query: AlertQuery) -> Page:
        """GET alerts."""
        params = {"q": query.text, "sort": query.sort, "offset": query.offset,
                  "limit": query.limit}
        return self._page(self._json("GET", "/alerts", params=params), query.offset)

    def alert_groups(self, text: str, limit: int = 500) -> list[dict[str, Any]]:
        """GET alerts/groups."""
        return list(self._json("GET", "/alerts/groups", params={"q": text, "limit": limit}))

    def alert(self, alert_id: int) -> dict[str, Any]:
        """GET one alert."""
        result: dict[str, Any] = self._json("GET", f"/alerts/{int(alert_id)}")
        return result

    def acknowledge(self, ids: list[int]) -> list[int]:
        """POST alerts/ack."""
        return list(self._json("POST", "/alerts/ack", json={"ids": ids})["changed"])

    def dismiss(self, ids: list[int], reason: str) -> list[int]:
        """POST alerts/dismiss."""
        body = {"ids": ids, "reason": reason}
        return list(self._json("POST", "/alerts/dismiss", json=body)["changed"])

    def dismiss_reasons(self) -> tuple[str, ...]:
        """The triage service's reasons (the same on both sides)."""
        return DISMISS_REASONS

    def promote(self, ids: list[int], title: str | None = None) -> dict[str, Any]:
        """POST alerts/promote (new case)."""
        body: dict[str, Any] = {"ids": ids, **({"title": title} if title else {})}
        result: dict[str, Any] = self._json("POST", "/alerts/promote", json=body)
        return result

    def add_to_case(self, ids: list[int], case_ref: str) -> dict[str, Any]:
        """POST alerts/promote into an existing case."""
        result: dict[str, Any] = self._json("POST", "/alerts/promote",
                                            json={"ids": ids, "case": case_ref})
        return result

    def case_page(self, query: CaseQuery) -> Page:
        """GET cases."""
        params: dict[str, Any] = {"q": query.text, "sort": query.sort, "offset": query.offset,
                                  "limit": query.limit,
                                  "include_closed": str(query.include_closed).lower()}
        if query.status:
            params["status"] = query.status
        return self._page(self._json("GET", "/cases", params=params), query.offset)

    def case(self, case_ref: str) -> dict[str, Any]:
        """GET one case."""
        result: dict[str, Any] = self._json("GET", f"/cases/{_seg(case_ref)}")
        return result

    def update_case(self, case_ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH a case."""
        result: dict[str, Any] = self._json("PATCH", f"/cases/{_seg(case_ref)}", json=changes)
        return result

    def set_task_status(self, task_id: str, status: str) -> dict[str, Any]:
        """PATCH a task's status."""
        result: dict[str, Any] = self._json("PATCH", f"/tasks/{_seg(task_id)}",
                                            json={"status": status})
        return result

    def reassign_task(self, task_id: str, owner: str) -> dict[str, Any]:
        """PATCH a task's owner."""
        result: dict[str, Any] = self._json("PATCH", f"/tasks/{_seg(task_id)}",
                                            json={"owner": owner})
        return result

    def add_note(self, case_ref: str, text: str) -> dict[str, Any]:
        """POST a timeline entry."""
        result: dict[str, Any] = self._json("POST", f"/cases/{_seg(case_ref)}/notes",
                                            json={"text": text})
        return result

    def add_comment(self, case_ref: str, text: str) -> dict[str, Any]:
        """POST a comment."""
        result: dict[str, Any] = self._json("POST", f"/cases/{_seg(case_ref)}/comments",
                                            json={"text": text})
        return result

    def export_case(self, case_ref: str, fmt: str) -> str:
        """GET an export document."""
        return self._call("GET", f"/cases/{_seg(case_ref)}/export",
                          params={"format": fmt}).text

    def playbooks(self, case_ref: str | None = None) -> list[dict[str, Any]]:
        """GET playbooks."""
        params = {"case": case_ref} if case_ref is not None else {}
        return list(self._json("GET", "/playbooks", params=params))

    def playbook_status(self, case_ref: str) -> list[dict[str, Any]]:
        """GET a case's playbook runs."""
        return list(self._json("GET", f"/cases/{_seg(case_ref)}/playbooks"))

    def playbook_start(self, playbook_id: str, case_ref: str) -> dict[str, Any]:
        """POST a run on a case."""
        result: dict[str, Any] = self._json("POST", f"/cases/{_seg(case_ref)}/playbooks",
                                            json={"playbook": playbook_id})
        return result

    def _step_call(self, run_id: str, step_id: str, verb: str,
                   body: dict[str, Any] | None = None) -> dict[str, Any]:
        path = f"/playbook-runs/{_seg(run_id)}/steps/{_seg(step_id)}/{verb}"
        result: dict[str, Any] = self._json("POST", path, json=body or {})
        return result

    def playbook_step_done(self, run_id: str, step_id: str) -> dict[str, Any]:
        """POST …/done."""
        return self._step_call(run_id, step_id, "done")

    def playbook_approve(self, run_id: str, step_id: str, comment: str = "") -> dict[str, Any]:
        """POST …/approve."""
        return self._step_call(run_id, step_id, "approve", {"comment": comment})

    def playbook_retry(self, run_id: str, step_id: str) -> dict[str, Any]:
        """POST …/retry."""
        return self._step_call(run_id, step_id, "retry")

    def entities(self) -> list[dict[str, Any]]:
        """GET entities."""
        return list(self._json("GET", "/entities"))

    def entity(self, entity_id: str) -> dict[str, Any]:
        """GET one entity."""
        result: dict[str, Any] = self._json("GET", f"/entities/{_seg(entity_id)}")
        return result

    def intel_lookup(self, value: str) -> dict[str, Any]:
        """GET intel/lookup."""
        result: dict[str, Any] = self._json("GET", "/intel/lookup", params={"value": value})
        return result

    def intel_stats(self) -> dict[str, Any]:
        """GET intel/stats."""
        result: dict[str, Any] = self._json("GET", "/intel/stats")
        return result

    def search(self, text: str, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """GET search."""
        result: dict[str, list[dict[str, Any]]] = self._json(
            "GET", "/search", params={"q": text, "limit": limit})
        return result

    # -- exercises (routes documented above) -----------------------------------------
    def exercises(self) -> dict[str, Any]:
        """GET exercises."""
        result: dict[str, Any] = self._json("GET", "/exercises")
        return result

    def exercise_start(self, scenario: str, speed: float, bots: list[str]) -> dict[str, Any]:
        """POST exercises."""
        result: dict[str, Any] = self._json(
            "POST", "/exercises", json={"scenario": scenario, "speed": speed, "bots": bots})
        return result

    def _exercise_action(self, exercise_id: str, action: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", f"/exercises/{_seg(exercise_id)}/{action}")
        return result

    def exercise_pause(self, exercise_id: str) -> dict[str, Any]:
        """POST exercises/{id}/pause."""
        return self._exercise_action(exercise_id, "pause")

    def exercise_resume(self, exercise_id: str) -> dict[str, Any]:
        """POST exercises/{id}/resume."""
        return self._exercise_action(exercise_id, "resume")

    def exercise_abort(self, exercise_id: str) -> dict[str, Any]:
        """POST exercises/{id}/abort."""
        return self._exercise_action(exercise_id, "abort")

    def exercise_status(self, exercise_id: str) -> dict[str, Any]:
        """GET exercises/{id}."""
        result: dict[str, Any] = self._json("GET", f"/exercises/{_seg(exercise_id)}")
        return result

    def exercise_score(self, exercise_id: str, entity: str, expectation: str | None,
                       points: int, comment: str) -> dict[str, Any]:
        """POST exercises/{id}/scores."""
        result: dict[str, Any] = self._json(
            "POST", f"/exercises/{_seg(exercise_id)}/scores",
            json={"entity": entity, "expectation": expectation, "points": points,
                  "comment": comment})
        return result

    def exercise_report(self, exercise_id: str) -> str:
        """GET exercises/{id}/report (Markdown)."""
        return self._call("GET", f"/exercises/{_seg(exercise_id)}/report").text

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def _seg(value: str) -> str:
    """One path segment, percent-encoded (a case number or id never adds a path)."""
    quoted = quote(str(value), safe="")
    return quoted.replace(".", "%2E") if quoted.strip(".") == "" else quoted
