"""``pukara case``: national incidents — open, list, show, update, merge, close, tasks,
timeline notes, comments, templates, similar cases and the situational picture.

``case export`` (MISP, STIX, Markdown) is not defined here: the sharing command module
(``pukara/cli/export.py``) adds it to this ``case`` parser.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cases.services import audit
from cases.services.case_models import CASE_STATUSES, RESOLUTIONS
from cases.services.picture import reminders_json
from cases.services.tasks import TASK_STATUSES
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, info, table
from pukara.core.errors import InvalidInput

CLI_ACTOR = audit.Actor("cli")
if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", field="time") from exc
    if parsed.tzinfo is None:
        raise InvalidInput(f"{value!r} needs a time zone (e.g. Z)", field="time")
    return parsed


def register(subparsers: Sub) -> None:
    """Add ``case new|list|show|update|merge|close|reopen|similar|link|task|note|comment``."""
    parser = subparsers.add_parser("case", help="national incidents (cases)")
    commands = parser.add_subparsers(dest="case_command", required=True)
    _register_new(commands)
    _simple(commands, "list", run_list, "list open cases (--all for closed ones too)",
            [("--status", {"choices": CASE_STATUSES}), ("--entity", {}),
             ("--all", {"action": "store_true"}), ("--limit", {"type": int, "default": 100})])
    _simple(commands, "show", run_show, "one case with everything linked", [("id", {})])
    _register_update(commands)
    _simple(commands, "merge", run_merge, "merge SOURCE into TARGET, keeping all history",
            [("target", {}), ("source", {})])
    _simple(commands, "close", run_close, "close with a resolution and a summary",
            [("id", {}), ("--resolution", {"required": True, "choices": RESOLUTIONS}),
             ("--summary", {"required": True})])
    _simple(commands, "reopen", run_reopen, "reopen a closed case",
            [("id", {}), ("--reason", {"required": True})])
    _simple(commands, "similar", run_similar, "other cases sharing observables (staff only)",
            [("id", {})])
    _simple(commands, "link", run_link, "link an entity incident report to a case",
            [("id", {}), ("--incident", {"required": True})])
    _simple(commands, "note", run_note, "add a timeline entry (with --at: when it happened)",
            [("id", {}), ("text", {}), ("--at", {"default": None})])
    _simple(commands, "comment", run_comment, "add a comment", [("id", {}), ("text", {})])
    _simple(commands, "templates", run_templates, "list the case templates", [])
    _simple(commands, "dashboard", run_dashboard, "situational picture (real data only)", [])
    _simple(commands, "reminders", run_reminders, "reporting reminders due, not yet sent", [])
    _register_tasks(commands)


def _simple(commands: Sub, name: str, handler: Any, helptext: str,
            arguments: list[tuple[str, dict[str, Any]]]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=helptext)
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    add_json(parser)
    parser.set_defaults(handler=handler)
    return parser


def _register_new(commands: Sub) -> None:
    parser = _simple(commands, "new", run_new, "open a case", [
        ("--title", {"required": True}), ("--description", {"default": ""}),
        ("--entity", {"action": "append", "default": []}),
        ("--severity", {"default": None}), ("--tlp", {"default": None}),
        ("--pap", {"default": None}), ("--classification", {"default": None}),
        ("--template", {"default": None}), ("--assignee", {"default": None}),
        ("--tag", {"action": "append", "default": []}),
        ("--technique", {"action": "append", "default": []})])
    parser.epilog = "A template fills every field not given on the command line."


def _register_update(commands: Sub) -> None:
    _simple(commands, "update", run_update, "change fields of an open case", [
        ("id", {}), ("--title", {}), ("--description", {}), ("--severity", {}), ("--tlp", {}),
        ("--pap", {}), ("--classification", {}), ("--assignee", {}),
        ("--status", {"choices": [s for s in CASE_STATUSES if s != "closed"]}),
        ("--tag", {"action": "append", "dest": "tags", "help": "replaces the tags"}),
        ("--technique", {"action": "append", "dest": "techniques"}),
        ("--add-entity", {"action": "append", "dest": "add_entities", "default": []})])


def _register_tasks(commands: Sub) -> None:
    parser = commands.add_parser("task", help="tasks of a case")
    tasks = parser.add_subparsers(dest="task_command", required=True)
    _simple(tasks, "add", run_task_add, "add a task", [
        ("id", {"help": "the case"}), ("--title", {"required": True}), ("--owner", {}),
        ("--due", {"default": None, "help": "ISO 8601 with a time zone"}),
        ("--notes", {"default": ""})])
    _simple(tasks, "done", run_task_done, "mark a task done",
            [("task", {}), ("--note", {"default": None})])
    _simple(tasks, "set", run_task_set, "set a task's status", [
        ("task", {}), ("--status", {"required": True, "choices": TASK_STATUSES}),
        ("--note", {"default": None})])
    _simple(tasks, "list", run_task_list, "the tasks of a case", [("id", {})])


def _print_case(case: dict[str, Any], as_json: bool) -> int:
    if as_json:
        emit_json(case)
        return 0
    fields = ("number", "title", "status", "resolution", "severity", "tlp", "pap",
              "classification", "assignee", "entity_ids", "tags", "techniques")
    table(f"Case {case['number']}", ("field", "value"),
          [(name, cell(case.get(name))) for name in fields])
    for task in case.get("tasks", []):
        info(f"task [{task['status']}] {task['title']} ({task['id'][:8]})")
    for entry in case.get("timeline", []):
        info(f"{entry['event_at']} {entry['actor']}: {entry['text']}")
    return 0


def run_new(args: argparse.Namespace) -> int:
    """Open a case."""
    data: dict[str, Any] = {"title": args.title, "description": args.description,
                            "entity_ids": args.entity, "tags": args.tag,
                            "techniques": args.technique}
    for name in ("severity", "tlp", "pap", "classification", "template", "assignee"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    with services() as built:
        case = built.cases.create(data, CLI_ACTOR)
    return _print_case(case, args.json)


def run_list(args: argparse.Namespace) -> int:
    """List cases."""
    with services() as built:
        rows = built.cases.list(status=args.status, entity_id=args.entity,
                                include_closed=args.all, limit=args.limit)
    if args.json:
        emit_json(rows)
        return 0
    table("Cases", ("number", "status", "severity", "tlp", "entities", "title", "alerts",
                    "incidents"),
          [(r["number"], r["status"], r["severity"], r["tlp"], ", ".join(r["entity_ids"]),
            r["title"], r["alerts"], r["incidents"]) for r in rows])
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Show one case."""
    with services() as built:
        return _print_case(built.cases.get(args.id), args.json)


def run_update(args: argparse.Namespace) -> int:
    """Change fields of a case."""
    names = ("title", "description", "severity", "tlp", "pap", "classification", "assignee",
             "status", "tags", "techniques")
    data = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    data["add_entities"] = args.add_entities
    with services() as built:
        return _print_case(built.cases.update(args.id, data, CLI_ACTOR), args.json)


def run_merge(args: argparse.Namespace) -> int:
    """Merge two cases."""
    with services() as built:
        return _print_case(built.case_merge.merge(args.target, args.source, CLI_ACTOR),
                           args.json)


def run_close(args: argparse.Namespace) -> int:
    """Close a case."""
    with services() as built:
        return _print_case(built.cases.close(args.id, args.resolution, args.summary, CLI_ACTOR),
                           args.json)


def run_reopen(args: argparse.Namespace) -> int:
    """Reopen a case."""
    with services() as built:
        return _print_case(built.cases.reopen(args.id, args.reason, CLI_ACTOR), args.json)


def run_similar(args: argparse.Namespace) -> int:
    """Cases sharing observables."""
    with services() as built:
        rows = built.case_merge.similar(args.id)
    if args.json:
        emit_json(rows)
        return 0
    table("Similar cases", ("number", "status", "severity", "shared", "title", "observables"),
          [(r["number"], r["status"], r["severity"], r["shared"], r["title"],
            ", ".join(r["observables"])) for r in rows])
    return 0


def run_link(args: argparse.Namespace) -> int:
    """Link an incident report to a case."""
    with services() as built:
        built.cases.link_incident(args.id, args.incident, CLI_ACTOR)
        return _print_case(built.cases.get(args.id), args.json)


def _done(document: dict[str, Any], as_json: bool, message: str) -> int:
    if as_json:
        emit_json(document)
    else:
        info(message)
    return 0


def run_note(args: argparse.Namespace) -> int:
    """Add a timeline entry."""
    when = _when(args.at) if args.at else None
    with services() as built:
        entry = built.timeline.note(args.id, args.text, CLI_ACTOR, event_at=when)
    return _done(entry, args.json, f"timeline entry at {entry['event_at']}")


def run_comment(args: argparse.Namespace) -> int:
    """Add a comment."""
    with services() as built:
        comment = built.timeline.comment(args.id, args.text, CLI_ACTOR)
    return _done(comment, args.json, "comment added")


def run_templates(args: argparse.Namespace) -> int:
    """List the case templates."""
    with services() as built:
        library = built.cases.templates
        rows = [library.get(name) for name in library.names()]
    if args.json:
        emit_json([t.model_dump(mode="json") for t in rows])
        return 0
    table("Case templates", ("name", "classification", "severity", "tasks"),
          [(t.name, t.classification, t.severity.value, len(t.tasks)) for t in rows])
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    """The dashboard aggregates."""
    with services() as built:
        picture = built.picture.dashboard()
    if args.json:
        emit_json(picture)
        return 0
    open_cases = picture["open_cases"]["by_severity"]
    table("Situational picture", ("figure", "value"), [
        ("open cases", sum(open_cases.values())),
        *[(f"open {name}", count) for name, count in sorted(open_cases.items())],
        ("overdue reports", picture["overdue_reports"]["count"]),
        ("active campaigns", picture["active_campaigns"]["count"]),
        ("time to acknowledge (median s)", cell(picture["time_to_acknowledge"]["median"])),
        ("time to close (median s)", cell(picture["time_to_close"]["median"]))])
    return 0


def run_reminders(args: argparse.Namespace) -> int:
    """Reminders due (read only: sending is the outbox's)."""
    with services() as built:
        rows = reminders_json(built.picture.due_reminders())
    if args.json:
        emit_json(rows)
        return 0
    table("Reminders due", ("entity", "incident", "stage", "state", "deadline"),
          [(r["entity_id"], r["tracking_number"], r["stage"], r["state"], r["deadline"])
           for r in rows])
    return 0


def run_task_add(args: argparse.Namespace) -> int:
    """Add a task."""
    due = _when(args.due) if args.due else None
    with services() as built:
        task = built.tasks.add(args.id, args.title, CLI_ACTOR, owner=args.owner, due_at=due,
                               notes=args.notes)
    return _done(task, args.json, f"task {task['id']} added")


def run_task_done(args: argparse.Namespace) -> int:
    """Mark a task done."""
    with services() as built:
        task = built.tasks.set_status(args.task, "done", CLI_ACTOR, note=args.note)
    return _done(task, args.json, f"task {task['id']} done")


def run_task_set(args: argparse.Namespace) -> int:
    """Set a task's status."""
    with services() as built:
        task = built.tasks.set_status(args.task, args.status, CLI_ACTOR, note=args.note)
    return _done(task, args.json, f"task {task['id']} {task['status']}")


def run_task_list(args: argparse.Namespace) -> int:
    """List the tasks of a case."""
    with services() as built:
        rows = built.tasks.list(args.id)
    if args.json:
        emit_json(rows)
        return 0
    table("Tasks", ("id", "status", "title", "owner", "due"),
          [(r["id"], r["status"], r["title"], cell(r["owner"]), cell(r["due_at"]))
           for r in rows])
    return 0
