"""Alembic glue: a fresh database is created from the metadata and stamped at head
(Alembic's "building an up-to-date database from scratch"); an existing one is upgraded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

if TYPE_CHECKING:
    from cases.store.engine import Store

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(store: Store) -> Config:
    """An Alembic config bound to the store's engine (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = store.engine
    config.attributes["metadatas"] = store.metadatas()
    return config


def upgrade_or_create(store: Store) -> None:
    """Bring the schema to the newest revision."""
    config = alembic_config(store)
    if inspect(store.engine).has_table("alembic_version"):
        command.upgrade(config, "head")
        return
    with store.write() as conn:
        for metadata in store.metadatas():
            metadata.create_all(conn)
    command.stamp(config, "head")
