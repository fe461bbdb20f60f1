"""The Store: one engine from the config URL, safe pragmas, schema set-up, transactions.

SQLite (embedded default) runs with WAL, ``synchronous=FULL``, foreign keys and a busy
timeout; the Store refuses to start otherwise (SECURITY I3). A marker file tells an unclean
stop, after which ``PRAGMA integrity_check`` runs before anything else. Write transactions
on SQLite start with ``BEGIN IMMEDIATE`` so two writers never deadlock on lock upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.engine import make_url

from cases.store.tables import metadata as case_metadata
from pukara.core.config import Settings
from pukara.core.errors import StoreError

#: page cache per connection (SQLite's default is 2 MiB): the alert table's five indexes take
#: random inserts, and 50,000 upserts ran 10–20% faster with 64 MiB
CACHE_KIB = 64 * 1024
#: WAL pages before an automatic checkpoint (default 1,000): a bulk batch writes ~12 MB, so
#: the default checkpointed on nearly every commit; pages changed by several batches are now
#: copied to the database once
CHECKPOINT_PAGES = 16384
REQUIRED_PRAGMAS = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
BUSY_TIMEOUT_MS = 10_000


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("pukara_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its pragmas and explicit transaction control."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database)
            database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            database.touch(mode=0o600)
            database.chmod(0o600)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed, pool_pre_ping=True, json_serializer=_json_dumps, json_deserializer=orjson.loads
    )


def _json_dumps(document: Any) -> str:
    return orjson.dumps(document, default=str).decode()


_AUDIT_GUARDS_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
_AUDIT_GUARDS_PG = (
    "CREATE OR REPLACE FUNCTION pukara_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION pukara_audit_append_only()",
)


class Store:
    """The database of one Pukara home, handed to every service."""

    def __init__(self, engine: Engine, *, home: Path | None = None) -> None:
        self.engine = engine
        self.home = home
        self.dialect = engine.dialect.name
        self._marker = home / ".store-open" if home and self.dialect == "sqlite" else None

    @classmethod
    def metadatas(cls) -> list[MetaData]:
        """Every MetaData the store creates: the case tables and the intel tables."""
        from enrichment.intel.tables import metadata as intel_metadata

        return [case_metadata, intel_metadata]

    def open(self) -> Store:
        """Check pragmas and integrity, create or migrate the schema, mark the store open."""
        if self.dialect == "sqlite":
            self._check_pragmas()
            if self._marker is not None and self._marker.exists():
                self._integrity_check()
        self.migrate()
        if self._marker is not None:
            self._marker.touch(mode=0o600)
        return self

    def close(self) -> None:
        """Dispose of the connections and record a clean stop."""
        self.engine.dispose()
        if self._marker is not None:
            self._marker.unlink(missing_ok=True)

    def _check_pragmas(self) -> None:
        with self.engine.connect() as conn:
            for name, wanted in REQUIRED_PRAGMAS.items():
                value = conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                if str(value).lower() != str(wanted):
                    raise StoreError(f"SQLite PRAGMA {name} is {value!r}, must be {wanted!r}")
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            if not timeout:
                raise StoreError("SQLite busy_timeout is not set")
            conn.rollback()

    def _integrity_check(self) -> None:
        with self.engine.connect() as conn:
            result = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
            conn.rollback()
        if result != "ok":
            raise StoreError(f"database failed integrity_check after an unclean stop: {result}")

    def migrate(self) -> None:
        """Create a fresh schema (then stamp Alembic's head) or upgrade an existing one."""
        from cases.store.migrate import upgrade_or_create

        upgrade_or_create(self)
        self._install_audit_guards()

    def _install_audit_guards(self) -> None:
        statements = _AUDIT_GUARDS_SQLITE if self.dialect == "sqlite" else _AUDIT_GUARDS_PG
        from cases.search.fts import install_fts
        from cases.services.audit import ensure_head

        with self.write() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
            ensure_head(conn)
            install_fts(conn)

    def has_schema(self) -> bool:
        """True when the case tables exist."""
        return inspect(self.engine).has_table("audit_log")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on exit (before anything is acknowledged)."""
        with self.engine.connect() as conn:
            conn.execution_options(pukara_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn


def open_store(settings: Settings) -> Store:
    """The Store of ``settings``: home folder private (0700), schema ready."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    store = Store(make_engine(settings.db_url), home=home)
    return store.open()
