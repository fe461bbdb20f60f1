"""``pukara demo``: prepare a demo home and run the platform on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from pukara import demo
from pukara.cli.output import emit_json, info
from pukara.core.config import load_settings
from pukara.wiring import build_services


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser("demo", help="run the platform on a demo home")
    parser.add_argument("--samples", type=Path, default=None,
                        help="folder of real samples (default: ../shared/data)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--prepare-only", action="store_true",
                        help="fill the home and exit without serving")
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
        try:
            _serve(settings, args.host, args.port)
        finally:
            replayer.stop.set()
            replayer.join(timeout=5)
    finally:
        services.close()
    return 0


def _serve(settings: object, host: str, port: int) -> None:
    import uvicorn

    from pukara.server import build_app

    info(f"API on http://{host}:{port}/docs — tokens in {load_settings().home}/demo-tokens.txt")
    uvicorn.run(build_app(settings), host=host, port=port, log_level="info")  # type: ignore[arg-type]
