"""The composition root's factory: settings → store → services, built once, by constructors."""

from __future__ import annotations

from pukara.core.config import Settings
from sqlalchemy import Engine

from cases.store import Store, open_store


def open_engine(settings: Settings) -> Engine:
    """The engine of the configured store, with every table (case and intel) created."""
    return open_store(settings).engine


__all__ = ["Store", "open_engine", "open_store"]
