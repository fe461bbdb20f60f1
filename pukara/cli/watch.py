"""``pukara watch DIR``: a spool folder (one sub-folder per entity) or a Maildir, ingested
through the live pipeline as files arrive; each file or message exactly once, across restarts.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from cases.services.senders import SenderDirectory
from collectors.parsers.base import peek
from collectors.sources.maildir import MaildirSource
from collectors.sources.spool import SpoolSource
from pukara.cli.common import services
from pukara.cli.output import emit_json, info
from pukara.core.schema import IngestResult, RawReport

if TYPE_CHECKING:
    from pukara.wiring import Services

HEAD_BYTES = 64 * 1024


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``watch``."""
    parser = subparsers.add_parser("watch", help="ingest a spool folder or a Maildir as it fills")
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.add_argument("--maildir", action="store_true",
                        help="DIR is a Maildir of e-mailed reports (default: a spool folder)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the summary")
    parser.set_defaults(handler=run)


def mail_delivery(built: Services) -> Callable[[RawReport], IngestResult]:
    """Deliver an e-mail report, attributed to the entity our MTA vouches for (if any)."""
    directory = SenderDirectory(built.identity.entities(), built.settings.mail_authserv_id)

    def deliver(report: RawReport) -> IngestResult:
        if report.entity_id is None:
            head = peek(report.stream, HEAD_BYTES)  # type: ignore[arg-type]
            report.entity_id = directory.entity_for(head)
        return built.pipeline.ingest(report)

    return deliver


def run(args: argparse.Namespace) -> int:
    """Pass over the folder until interrupted (or once)."""
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    total = IngestResult()
    with services() as built:
        known = {e.id for e in built.identity.entities()}
        if args.maildir:
            mailbox = MaildirSource(args.folder)
            deliver = mail_delivery(built)

            def one_pass() -> IngestResult:
                return mailbox.run_once(deliver).result
        else:
            spool = SpoolSource(args.folder, known)

            def one_pass() -> IngestResult:
                return spool.run_once(built.pipeline.ingest).result

        if args.once:
            total = one_pass()
        else:
            signal.signal(signal.SIGTERM, _stop)
            info(f"watching {args.folder} every {args.interval:g}s (Ctrl-C to stop)")
            try:
                while not stop.is_set():
                    total.add(one_pass())
                    stop.wait(args.interval)
            except KeyboardInterrupt:
                pass
    if args.json:
        emit_json(total.model_dump(mode="json"))
    else:
        info(f"accepted {total.accepted}, duplicates {total.duplicates}, "
             f"rejected {total.rejected}")
    return 0
