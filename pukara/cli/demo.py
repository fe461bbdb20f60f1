"""``pukara demo``: prepare a demo home and run the platform on it."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pukara import demo
from pukara.cli.output import emit_json, info
from pukara.core.config import Settings, load_settings
from pukara.core.errors import PukaraError
from pukara.wiring import build_services
from pukara.workers import BackgroundWorkers

if TYPE_CHECKING:
    from pukara.wiring import Services


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser("demo", help="run the platform on a demo home")
    parser.add_argument("--samples", type=Path, default=None,
                        help="folder of real samples (default: ../shared/data)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--prepare-only", action="store_true",
                        help="fill the home and exit without serving")
    parser.add_argument("--no-tui", action="store_true",
                        help="serve the API in the foreground even on a terminal")
    parser.add_argument("--json", action="store_true", help="print the preparation summary")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prepare, then serve with live replay until interrupted."""
    settings = load_settings()
    samples = args.samples or demo.default_samples()
    services = build_services(settings)
    try:
        summary = demo.prepare(services, samples)
        if args.json:
            emit_json(summary)
        else:
            info(f"demo home {settings.home}: {summary}")
        if args.prepare_only:
            return 0
        replayer = demo.Replayer(services, demo.load_replay(samples))
        replayer.start()
        workers = BackgroundWorkers(services).start()
        try:
            if sys.stdin.isatty() and sys.stdout.isatty() and not args.no_tui:
                _serve_in_background_and_open_tui(settings, services, args.host, args.port)
            else:
                _serve(settings, args.host, args.port)
        finally:
            workers.stop()
            replayer.stop.set()
            replayer.join(timeout=5)
    finally:
        services.close()
    return 0


#: the rehearsal exercise the demo plays with bots while the analyst watches
REHEARSAL = "ransomware-health"
REHEARSAL_SPEED = 10.0


def _serve_in_background_and_open_tui(settings: Settings, services: Services, host: str,
                                      port: int) -> None:
    """The analysts' view: the TUI in front, the entity API behind it on loopback."""
    import uvicorn

    from pukara.cli.tui import runtime_control
    from pukara.server import build_app
    from tui.app import PukaraApp
    from tui.client.local import LocalClient

    server = uvicorn.Server(uvicorn.Config(build_app(settings), host=host, port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="pukara-demo-api", daemon=True)
    thread.start()
    client = LocalClient(services, exercise_control=runtime_control(services))
    try:
        client.exercise_start(REHEARSAL, REHEARSAL_SPEED, ["all"])
    except PukaraError as exc:
        info(f"the background rehearsal did not start: {exc.message}")
    try:
        PukaraApp(client).run()
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


def _serve(settings: object, host: str, port: int) -> None:
    import uvicorn

    from pukara.server import build_app

    info(f"API on http://{host}:{port}/docs — tokens in {load_settings().home}/demo-tokens.txt")
    uvicorn.run(build_app(settings), host=host, port=port, log_level="info")  # type: ignore[arg-type]
