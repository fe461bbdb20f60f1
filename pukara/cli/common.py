"""Helpers shared by command modules: services for a command, common flags."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pukara.cli.output import safe_text

if TYPE_CHECKING:
    from pukara.wiring import Services


@contextmanager
def services() -> Iterator[Services]:
    """Services for one command, closed (clean stop recorded) afterwards."""
    from pukara.wiring import build_services

    built = build_services()
    try:
        yield built
    finally:
        built.close()


def add_json(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` flag every listing or report takes."""
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def cell(value: object) -> str:
    """A table cell: None as '-', control characters escaped."""
    return "-" if value is None else safe_text(value)
