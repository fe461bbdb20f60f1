"""``pukara tui [--server URL --token T]``: the terminal UI, on the local store by default
or on the analyst API of a center's server."""

from __future__ import annotations

import argparse
import os
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING

from pukara.core.errors import InvalidInput

if TYPE_CHECKING:
    from pukara.exercise_runtime import RuntimeControl
    from pukara.wiring import Services
    from tui.client.base import CaseClient

    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: Sub) -> None:
    """Add ``tui``."""
    parser = subparsers.add_parser(
        "tui", help="open the analysts' terminal UI",
        description="The Textual UI. Without --server it works on the local store "
                    "(PUKARA_HOME); with --server it talks to the analyst API.")
    parser.add_argument("--server", metavar="URL", help="analyst API base URL")
    parser.add_argument("--token", metavar="T",
                        help="analyst token (default: $PUKARA_TOKEN); never logged")
    parser.add_argument("--refresh", type=float, default=5.0, metavar="SECONDS",
                        help="live refresh period of the dashboard and the queue")
    parser.set_defaults(handler=run_tui)


def make_client(args: argparse.Namespace) -> CaseClient:
    """LocalClient on build_services(), or RemoteClient when --server is given."""
    if args.server:
        from tui.client.remote import RemoteClient

        token = args.token or os.environ.get("PUKARA_TOKEN")
        if not token:
            raise InvalidInput("--server needs --token (or PUKARA_TOKEN)", field="token")
        return RemoteClient(args.server, token)
    if args.token:
        raise InvalidInput("--token is only used with --server", field="token")
    from pukara.wiring import build_services
    from tui.client.local import LocalClient

    built = build_services()
    return LocalClient(built, exercise_control=runtime_control(built))


def run_tui(args: argparse.Namespace) -> int:
    """Run the app until the analyst quits."""
    from tui.app import PukaraApp

    if args.refresh <= 0:
        raise InvalidInput("--refresh must be positive", field="refresh")
    client = make_client(args)
    try:
        PukaraApp(client, refresh_seconds=args.refresh).run()
    finally:
        client.close()
    return 0


def runtime_control(services: Services) -> RuntimeControl:
    """The TUI's :class:`tui.client.base.ExerciseControl`: the same
    :class:`pukara.exercise_runtime.RuntimeControl` ``pukara serve`` runs for remote TUIs.
    ``pukara demo`` hands the same object to its client."""
    from pukara.exercise_runtime import RuntimeControl

    # Start multiprocessing's resource tracker now, before Textual replaces sys.stderr (its
    # fileno() is then invalid and the YARA compiler's isolated child, started from an
    # inject's thread, would fail with "bad value(s) in fds_to_keep").
    resource_tracker.ensure_running()
    return RuntimeControl(services)
