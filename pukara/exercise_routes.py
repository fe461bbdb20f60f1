"""Analyst routes for exercises (``/api/v1/analyst/exercises``) and the app ``pukara serve``
runs: the server's app plus these routes.

They sit above :mod:`pukara.exercise_runtime` because starting, pausing and aborting a run
go through the process's :class:`~pukara.exercise_runtime.RuntimeControl` (the engine with
``deliver`` = the real pipeline, bots on the real entity API on loopback), the way the local
TUI plays them. Reading state, manual scores and the report go through
:mod:`playbooks.exercises`. Every route takes a staff token (entity tokens get 403), acts as
the token's principal in the audit log, and answers errors as problem+json: an unknown run
is 404, a transition its state does not allow 409, a bad body 422. These are the routes
:class:`tui.client.remote.RemoteClient` documents.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from cases.api.analyst_context import actor_of
from cases.api.auth import StaffPrincipal
from cases.api.limits import SafeJSONRoute
from playbooks.exercises import runs
from playbooks.exercises.loader import load_scenario, shipped_scenarios
from playbooks.exercises.report import markdown
from playbooks.exercises.scoring import add_manual_score, scoreboard
from pukara.core.config import Settings
from pukara.core.errors import InvalidInput
from pukara.exercise_runtime import RuntimeControl
from pukara.server import build_app
from pukara.wiring import Services

PREFIX = "/api/v1/analyst/exercises"
ExerciseId = Annotated[str, Path(min_length=1, max_length=96,
                                 pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class StartExercise(BaseModel):
    """A run of a shipped scenario: its speed and which participants bots play."""

    model_config = ConfigDict(extra="forbid")
    scenario: Name
    speed: float = Field(default=60.0, gt=0, le=10_000)
    bots: list[Name] = Field(default_factory=list, max_length=500,
                             description='participant ids, or ["all"]')


class ManualScore(BaseModel):
    """A coordinator's points for one participant (may be negative), with a comment."""

    model_config = ConfigDict(extra="forbid")
    entity: Name
    expectation: Name | None = None
    points: int = Field(ge=-10_000, le=10_000)
    comment: str = Field(min_length=1, max_length=2000)


def scenarios() -> list[dict[str, Any]]:
    """The shipped scenarios: id, title and number of injects."""
    listed = []
    for scenario_id, path in shipped_scenarios().items():
        scenario = load_scenario(path)
        listed.append({"id": scenario_id, "title": scenario.title,
                       "injects": len(scenario.timeline)})
    return listed


def exercise_view(services: Services, exercise_id: str) -> dict[str, Any]:
    """The run's clock and inject log with the live scoreboard (LocalClient's shape)."""
    state = runs.status(services.store, exercise_id)
    board = scoreboard(services.store, exercise_id)
    state.update(scores=board["scores"], sectors=board["sectors"], outcomes=board["outcomes"])
    return state


def start_run(services: Services, control: RuntimeControl, body: StartExercise,
              principal: Any) -> str:
    """Create a run of a shipped scenario and have ``control`` play it; its id."""
    shipped = shipped_scenarios()
    if body.scenario not in shipped:
        raise InvalidInput(f"no shipped scenario {body.scenario!r}; shipped: "
                           f"{', '.join(shipped)}", field="scenario")
    scenario = load_scenario(shipped[body.scenario])
    participants = scenario.participant_ids(services.identity.entities())
    bots = participants if "all" in body.bots else [e for e in participants if e in body.bots]
    actor = actor_of(principal)
    exercise_id = runs.create(services.store, scenario, participants, bots,
                              speed=body.speed, actor=actor)
    control.launch(exercise_id, bots, actor)
    return exercise_id


def build_exercise_router(services: Services, control: RuntimeControl) -> APIRouter:
    """The ``/api/v1/analyst/exercises`` routes over ``services``, played by ``control``."""
    router = APIRouter(prefix=PREFIX, route_class=SafeJSONRoute, tags=["analyst: exercises"])

    @router.get("", response_model=None, summary="Shipped scenarios and every run")
    def listing(principal: StaffPrincipal) -> dict[str, Any]:
        return {"scenarios": scenarios(), "runs": runs.list_runs(services.store)}

    @router.post("", status_code=201, response_model=None,
                 summary="Start a run of a shipped scenario (bots: participant ids or all)")
    def start(body: StartExercise, principal: StaffPrincipal) -> dict[str, Any]:
        return exercise_view(services, start_run(services, control, body, principal))

    @router.get("/{exercise_id}", response_model=None,
                summary="A run's clock, inject log, scores, sectors and outcomes")
    def status(exercise_id: ExerciseId, principal: StaffPrincipal) -> dict[str, Any]:
        return exercise_view(services, exercise_id)

    def action(verb: str) -> None:
        @router.post(f"/{{exercise_id}}/{verb}", response_model=None, name=f"exercise_{verb}",
                     summary=f"{verb.capitalize()} a run (409 from a state that does not "
                             "allow it)")
        def transition(exercise_id: ExerciseId, principal: StaffPrincipal) -> dict[str, Any]:
            control.transition(exercise_id, verb, actor_of(principal))
            return exercise_view(services, exercise_id)

    for verb in ("pause", "resume", "abort"):
        action(verb)

    @router.post("/{exercise_id}/scores", response_model=None,
                 summary="Manual points for a participant (audited)")
    def score(exercise_id: ExerciseId, body: ManualScore,
              principal: StaffPrincipal) -> dict[str, Any]:
        text = (f"[{body.expectation}] {body.comment}"
                if body.expectation and body.comment.strip() else body.comment)
        add_manual_score(services.store, exercise_id, body.entity, points=body.points,
                         comment=text, actor=actor_of(principal))
        return exercise_view(services, exercise_id)

    @router.get("/{exercise_id}/report", response_model=None,
                summary="The after-action report (Markdown)")
    def report(exercise_id: ExerciseId, principal: StaffPrincipal) -> Response:
        return Response(markdown(services.store, exercise_id),
                        media_type="text/markdown; charset=utf-8")

    return router


def add_exercises(app: FastAPI, services: Services) -> None:
    """Serve the exercise routes on ``app``; the control follows live runs from start-up
    and stops (bots, engine, loopback API) at shutdown."""
    control = RuntimeControl(services)
    app.include_router(build_exercise_router(services, control))
    app.router.add_event_handler("startup", control.follow_live_runs)
    app.router.add_event_handler("shutdown", control.close)


def build_served_app(settings: Settings | None = None) -> FastAPI:
    """The app ``pukara serve`` runs: :func:`pukara.server.build_app` plus exercises."""
    return build_app(settings, extend=add_exercises)


def app_factory() -> FastAPI:
    """``uvicorn --factory pukara.exercise_routes:app_factory``."""
    return build_served_app()
