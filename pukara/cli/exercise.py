"""``pukara exercise``: list, validate, run, and control simulation exercises.

``list [--json]`` · ``validate FILE [--json]`` · ``run FILE|SCENARIO-ID [--speed X]
[--bots all|ID...] [--timeout S] [--json]`` (blocks until the run ends) ·
``pause|resume|abort|status ID`` · ``score ID [--entity E --points N --comment C]`` ·
``report ID [--format markdown|html] [--output F] [--lesson TEXT]`` · ``purge ID``.
Control commands only write the run's state; the process running the scheduler (the leader)
follows within a fraction of a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cases.services import audit
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, info, table
from pukara.core.errors import InvalidInput

if TYPE_CHECKING:
    from playbooks.exercises.model import Scenario

    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

CLI_ACTOR = audit.Actor("cli")


def register(subparsers: Sub) -> None:
    """Add ``exercise list|validate|run|pause|resume|abort|status|score|report|purge``."""
    parser = subparsers.add_parser("exercise", help="simulation exercises")
    commands = parser.add_subparsers(dest="exercise_command", required=True)
    listing = commands.add_parser("list", help="shipped scenarios and runs")
    add_json(listing)
    listing.set_defaults(handler=run_list)
    validate = commands.add_parser("validate", help="check a scenario file")
    validate.add_argument("file", type=Path)
    add_json(validate)
    validate.set_defaults(handler=run_validate)
    play = commands.add_parser("run", help="play a scenario to its end")
    play.add_argument("scenario", help="a scenario file or a shipped scenario id")
    play.add_argument("--speed", type=float, default=1.0, help="1 = real time; 600 = rehearsal")
    play.add_argument("--bots", nargs="+", default=[], metavar="all|ID")
    play.add_argument("--timeout", type=float, default=None, help="wall seconds to wait")
    add_json(play)
    play.set_defaults(handler=run_play)
    for action in ("pause", "resume", "abort", "status", "purge"):
        control = commands.add_parser(action, help=f"{action} a run")
        control.add_argument("id")
        add_json(control)
        control.set_defaults(handler=run_control, action=action)
    score = commands.add_parser("score", help="scoreboard; or add manual points")
    score.add_argument("id")
    score.add_argument("--entity")
    score.add_argument("--points", type=int)
    score.add_argument("--comment", default="")
    add_json(score)
    score.set_defaults(handler=run_score)
    report = commands.add_parser("report", help="after-action report")
    report.add_argument("id")
    report.add_argument("--format", choices=("markdown", "html"), default="markdown")
    report.add_argument("--output", type=Path, default=None)
    report.add_argument("--lesson", default=None, help="record a lessons-learned note first")
    report.set_defaults(handler=run_report)


def _scenario(ref: str) -> Scenario:
    from playbooks.exercises.loader import load_scenario, shipped_scenarios

    path = Path(ref)
    if path.is_file():
        return load_scenario(path)
    shipped = shipped_scenarios()
    if ref not in shipped:
        raise InvalidInput(f"no scenario file or shipped scenario {ref!r}; shipped: "
                           f"{', '.join(shipped)}", field="scenario")
    return load_scenario(shipped[ref])


def run_list(args: argparse.Namespace) -> int:
    """Shipped scenarios and the runs in the store."""
    from playbooks.exercises import runs
    from playbooks.exercises.loader import shipped_scenarios

    with services() as built:
        recorded = runs.list_runs(built.store)
    document = {"scenarios": [{"id": k, "path": str(v)} for k, v in shipped_scenarios().items()],
                "runs": recorded}
    if args.json:
        emit_json(document)
    else:
        table("Scenarios", ["id", "path"], [[s["id"], s["path"]] for s in document["scenarios"]])
        table("Runs", ["id", "status", "speed", "created"],
              [[r["id"], r["status"], r["speed"], r["created_at"]] for r in recorded])
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Validate a scenario; every problem on stderr with file:line."""
    from playbooks.exercises.loader import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        for problem in exc.problems:
            info(problem)
        if args.json:
            emit_json({"valid": False, "problems": exc.problems})
        return 1
    summary = {"valid": True, "id": scenario.id, "injects": len(scenario.timeline),
               "expectations": sum(len(i.expectations) for i in scenario.timeline),
               "ends_at_minutes": scenario.ends_at / 60}
    if args.json:
        emit_json(summary)
    else:
        info(f"{args.file}: valid scenario {scenario.id} ({summary['injects']} injects)")
    return 0


def run_play(args: argparse.Namespace) -> int:
    """Play a scenario (with bots if asked) until it ends; print the scores."""
    from pukara import exercise_runtime

    scenario = _scenario(args.scenario)
    options = exercise_runtime.RunOptions(speed=args.speed, bots=args.bots,
                                          timeout=args.timeout)
    with services() as built:
        result = exercise_runtime.run(built, scenario, options,
                                      on_created=lambda i: info(f"exercise {i} created"))
    if args.json:
        emit_json(result)
    else:
        _print_scores(result)
    return 0


def _print_scores(result: dict[str, Any]) -> None:
    table(f"Exercise {result['exercise_id']} ({result['status']})",
          ["entity", "sector", "points", "max", "met", "missed", "pending"],
          [[s["entity"], s["sector"], s["points"], s["max_points"], s["met"], s["missed"],
            s["pending"]] for s in result["scores"]])


def run_control(args: argparse.Namespace) -> int:
    """pause|resume|abort (state only), status, or purge one run."""
    from playbooks.exercises import runs
    from playbooks.exercises.purge import purge

    with services() as built:
        if args.action == "status":
            document: dict[str, Any] = runs.status(built.store, args.id)
        elif args.action == "purge":
            document = {"exercise_id": args.id, "removed": purge(built.store, args.id, CLI_ACTOR)}
        else:
            status = runs.transition(built.store, args.id, args.action, CLI_ACTOR)
            document = {"exercise_id": args.id, "status": status.value}
    if args.json:
        emit_json(document)
    elif args.action == "status":
        table(f"{document['exercise_id']} {document['status']} "
              f"T+{document['exercise_seconds'] / 60:.1f} min", ["inject", "kind", "state"],
              [[i["id"], i["kind"], i["state"]] for i in document["injects"]])
    else:
        info(f"{args.id}: {document.get('status') or document.get('removed')}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    """The live scoreboard; with --entity/--points/--comment, add a manual score first."""
    from playbooks.exercises.scoring import add_manual_score, scoreboard

    with services() as built:
        if args.entity is not None or args.points is not None:
            if args.entity is None or args.points is None:
                raise InvalidInput("a manual score needs --entity and --points", field="entity")
            add_manual_score(built.store, args.id, args.entity, points=args.points,
                             comment=args.comment, actor=CLI_ACTOR)
        board = scoreboard(built.store, args.id)
    if args.json:
        emit_json(board)
    else:
        _print_scores(board)
        table("Sectors", ["sector", "entities", "points", "max"],
              [[s["sector"], s["entities"], s["points"], s["max_points"]]
               for s in board["sectors"]])
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Write the after-action report (Markdown or HTML) to stdout or a file."""
    from playbooks.exercises import report

    with services() as built:
        if args.lesson:
            report.add_lesson(built.store, args.id, args.lesson, CLI_ACTOR)
        text = (report.to_html(built.store, args.id) if args.format == "html"
                else report.markdown(built.store, args.id))
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        info(f"report written to {cell(args.output)}")
    else:
        sys.stdout.write(text)
    return 0
