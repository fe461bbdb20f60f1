"""The durable store: SQLAlchemy Core tables, the engine with its safety checks, migrations."""

# imported for their side effect: their tables join the case metadata the store creates
from cases.store import tables_cases, tables_sharing  # noqa: F401
from cases.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
