"""The durable store: SQLAlchemy Core tables, the engine with its safety checks, migrations."""

import cases.store.tables_cases  # noqa: F401
import cases.store.tables_sharing  # noqa: F401
from cases.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
