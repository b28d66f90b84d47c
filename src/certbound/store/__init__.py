"""certbound.store: persistence behind one interface, on SQLite (embedded default) or PostgreSQL.

`open_store(url)` gives a `SqlStore`; call `await store.migrate()` once at start (safe from every
worker at once). See docs/store.md.
"""

from certbound.store.interface import ClientExists, SigningKeyExists, Store
from certbound.store.sql import SqlStore, open_store

__all__ = ["ClientExists", "SigningKeyExists", "SqlStore", "Store", "open_store"]
