"""Analyst API routes for playbooks (the TUI's RemoteClient uses them).

They live here, above the case layer, because they call the playbook engine; the
composition root includes the router in the app. Every change goes through the engine,
acting as the token's principal (its role decides approvals).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from cases.api.analyst_context import actor_of
from cases.api.auth import StaffPrincipal
from playbooks.engine import PlaybookEngine

Ref = Annotated[str, Path(min_length=1, max_length=64)]
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class StartRun(BaseModel):
    """Start a playbook on a case."""

    model_config = ConfigDict(extra="forbid")
    playbook: str = Field(min_length=1, max_length=64)


class Approval(BaseModel):
    """An approval with an optional comment."""

    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=2000)


def build_playbook_router(engine: PlaybookEngine) -> APIRouter:
    """Routes under ``/api/v1/analyst`` for the playbook catalogue and runs."""
    router = APIRouter(prefix="/api/v1/analyst", tags=["analyst: playbooks"])

    @router.get("/playbooks", response_model=None, summary="The playbook library")
    def catalogue(principal: StaffPrincipal, case: str | None = None) -> list[dict[str, Any]]:
        return engine.catalogue(case)

    @router.get("/cases/{ref}/playbooks", response_model=None, summary="A case's runs")
    def runs(ref: Ref, principal: StaffPrincipal) -> list[dict[str, Any]]:
        return engine.status(ref)

    @router.post("/cases/{ref}/playbooks", status_code=201, response_model=None,
                 summary="Start a playbook on a case")
    def start(ref: Ref, body: StartRun, principal: StaffPrincipal) -> dict[str, Any]:
        return engine.run_view(engine.start(body.playbook, ref, actor_of(principal)))

    @router.post("/playbook-runs/{run}/steps/{step}/done", response_model=None,
                 summary="Mark a manual step done")
    def done(run: Id, step: Id, principal: StaffPrincipal) -> dict[str, Any]:
        engine.complete_task(run, step, actor_of(principal))
        return engine.run_view(run)

    @router.post("/playbook-runs/{run}/steps/{step}/approve", response_model=None,
                 summary="Approve a step (coordinator or admin)")
    def approve(run: Id, step: Id, body: Approval, principal: StaffPrincipal
                ) -> dict[str, Any]:
        engine.approve(run, step, principal, note=body.comment)
        return engine.run_view(run)

    @router.post("/playbook-runs/{run}/steps/{step}/retry", response_model=None,
                 summary="Retry a failed action")
    def retry(run: Id, step: Id, principal: StaffPrincipal) -> dict[str, Any]:
        engine.retry(run, step, actor_of(principal))
        return engine.run_view(run)

    return router
