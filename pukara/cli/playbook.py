"""``pukara playbook``: list, show and validate playbooks; run them on cases, follow, approve
and retry their steps; advance every run (``tick``) and deliver queued notifications.

``validate`` prints one ``file:line: message (field)`` line per problem on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cases.services import audit
from cases.services.identity import Principal, Role
from playbooks.loader import PlaybookInvalid, library, load_file
from playbooks.model import Playbook
from pukara.cli.common import add_json, services
from pukara.cli.output import emit_json, info, safe_text, table
from pukara.core.errors import InvalidInput, NotFound, PermissionDenied

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: Sub) -> None:
    """Add ``playbook list|show|validate|run|status|approve|reject|done|retry|tick|deliver``."""
    parser = subparsers.add_parser("playbook", help="incident playbooks on cases")
    commands = parser.add_subparsers(dest="playbook_command", required=True)
    _add(commands, "list", run_list, "the playbooks of the library", [])
    _add(commands, "show", run_show, "one playbook (library id or YAML file)", [("ref", {})])
    _add(commands, "validate", run_validate, "check playbook files; errors as file:line",
         [("files", {"nargs": "+", "type": Path})])
    _add(commands, "run", run_run, "start a playbook on a case",
         [("playbook", {}), ("case", {}), ("--as", {"dest": "user", "default": "cli"}),
          ("--input", {"action": "append", "default": [], "metavar": "NAME=VALUE"})])
    _add(commands, "status", run_status, "the playbook runs of a case", [("case", {})])
    _add(commands, "approve", run_approve, "approve a waiting approval step",
         [("run", {}), ("step", {}), ("--as", {"dest": "user", "required": True}),
          ("--note", {"default": ""})])
    _add(commands, "reject", run_reject, "reject a waiting approval step (retry asks again)",
         [("run", {}), ("step", {}), ("--as", {"dest": "user", "required": True}),
          ("--note", {"default": ""})])
    _add(commands, "done", run_done, "mark a waiting manual step's task done",
         [("run", {}), ("step", {}), ("--as", {"dest": "user", "default": "cli"}),
          ("--note", {"default": ""})])
    _add(commands, "retry", run_retry, "retry a failed action step",
         [("run", {}), ("step", {}), ("--as", {"dest": "user", "default": "cli"})])
    _add(commands, "tick", run_tick, "advance every running playbook", [])
    _add(commands, "deliver", run_deliver, "deliver the notifications that are due", [])


def _add(commands: Sub, name: str, handler: Any, helptext: str,
         arguments: list[tuple[str, dict[str, Any]]]) -> None:
    parser = commands.add_parser(name, help=helptext)
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    add_json(parser)
    parser.set_defaults(handler=handler)


def summary(playbook: Playbook) -> dict[str, Any]:
    """The JSON form of a playbook for listings."""
    return {"id": playbook.id, "title": playbook.title, "version": playbook.version,
            "when": playbook.when.model_dump(mode="json"), "auto_start": playbook.auto_start,
            "steps": len(playbook.steps), "references": playbook.references}


def run_list(args: argparse.Namespace) -> int:
    """List the library."""
    found = library()
    if args.json:
        emit_json([summary(p) for _, p in sorted(found.items())])
        return 0
    table("Playbooks", ("id", "version", "title", "applies to", "steps"),
          [(p.id, p.version, p.title, ", ".join(p.when.classifications) or "-", len(p.steps))
           for _, p in sorted(found.items())])
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Show one playbook with its steps."""
    path = Path(args.ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        playbook = load_file(path)
    else:
        found = library()
        if args.ref not in found:
            raise NotFound(f"no playbook {args.ref!r}; known: {', '.join(sorted(found))}")
        playbook = found[args.ref]
    if args.json:
        emit_json(playbook.model_dump(mode="json", by_alias=True))
        return 0
    table(f"{playbook.title} (v{playbook.version})", ("step", "phase", "kind", "needs", "name"),
          [(s.id, s.phase, s.kind, ", ".join(s.needs) or "-", s.name) for s in playbook.steps])
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Validate files; every problem located; exit 1 when any file is invalid."""
    results = []
    for path in args.files:
        try:
            load_file(path)
            results.append({"file": str(path), "valid": True, "errors": []})
        except PlaybookInvalid as exc:
            results.append({"file": str(path), "valid": False, "errors": [
                {"file": e.file, "line": e.line, "field": e.field, "message": e.message}
                for e in exc.errors]})
            for error in exc.errors:
                print(safe_text(str(error)), file=sys.stderr)
    if args.json:
        emit_json(results)
    else:
        for result in results:
            if result["valid"]:
                print(f"{safe_text(result['file'])}: ok")
    return 0 if all(r["valid"] for r in results) else 1


def _user(built: Any, name: str) -> Principal:
    for user in built.identity.users():
        if user["name"] == name and not user["disabled"]:
            return Principal(Role(user["role"]), 0, user=name)
    raise PermissionDenied(f"no active user {name!r} (pukara user add NAME --role ...)")


def _show_runs(runs: list[dict[str, Any]]) -> None:
    for run in runs:
        table(f"{run['playbook']} v{run['version']} — {run['state']} (run {run['run_id']})",
              ("step", "phase", "kind", "owner", "state", "attempts", "error"),
              [(s["id"], s["phase"], s["kind"], s["owner"], s["state"], s["attempts"],
                s["error"] or "") for s in run["steps"]])


def run_run(args: argparse.Namespace) -> int:
    """Start a playbook on a case by hand."""
    with services() as built:
        run_id = built.playbooks.start(args.playbook, args.case, audit.Actor(args.user),
                                       inputs=_inputs(args.input))
        view = built.playbooks.run_view(run_id)
    return _print_run(args, view)


def _inputs(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--input takes NAME=VALUE, not {pair!r}", field="input")
        found[name.strip()] = value
    return found


def run_status(args: argparse.Namespace) -> int:
    """The runs of a case and their steps."""
    with services() as built:
        runs = built.playbooks.status(args.case)
    if args.json:
        emit_json(runs)
    else:
        _show_runs(runs)
    return 0


def run_approve(args: argparse.Namespace) -> int:
    """Approve a waiting step as a coordinator or admin user."""
    with services() as built:
        built.playbooks.approve(args.run, args.step, _user(built, args.user), note=args.note)
        view = built.playbooks.run_view(args.run)
    return _print_run(args, view)


def run_reject(args: argparse.Namespace) -> int:
    """Reject a waiting step as a coordinator or admin user."""
    with services() as built:
        built.playbooks.reject(args.run, args.step, _user(built, args.user), note=args.note)
        view = built.playbooks.run_view(args.run)
    return _print_run(args, view)


def _print_run(args: argparse.Namespace, view: dict[str, Any]) -> int:
    if args.json:
        emit_json(view)
    else:
        _show_runs([view])
    return 0


def run_done(args: argparse.Namespace) -> int:
    """Finish a manual step."""
    with services() as built:
        built.playbooks.complete_task(args.run, args.step, audit.Actor(args.user),
                                      note=args.note)
        view = built.playbooks.run_view(args.run)
    return _print_run(args, view)


def run_retry(args: argparse.Namespace) -> int:
    """Retry a failed action step."""
    with services() as built:
        built.playbooks.retry(args.run, args.step, audit.Actor(args.user))
        view = built.playbooks.run_view(args.run)
    return _print_run(args, view)


def run_tick(args: argparse.Namespace) -> int:
    """Advance every running playbook once."""
    with services() as built:
        running = built.playbooks.tick()
    if args.json:
        emit_json({"running": running})
    else:
        info(f"{running} runs still running")
    return 0


def run_deliver(args: argparse.Namespace) -> int:
    """Deliver every notification that is due now."""
    with services() as built:
        result = built.notifications.worker.run_once()
        states = built.notifications.outbox.states()
    document = {"sent": result.sent, "retried": result.retried, "dead": result.dead,
                "outbox": states}
    if args.json:
        emit_json(document)
    else:
        info(f"sent {result.sent}, retried {result.retried}, dead {result.dead}")
    return 0
