"""certbound.store: persistence behind one interface, on SQLite (embedded default) or PostgreSQL.

`open_store(url)` gives a `SqlStore`; call `await store.migrate()` once at start (safe from every
worker at once). See docs/store.md.

`SqlStore` and `open_store` are imported on first use (module ``__getattr__``): they load SQLAlchemy,
alembic and the database drivers, which a process needing only the records does not (the gateway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certbound.store.interface import ClientExists, SigningKeyExists, Store

if TYPE_CHECKING:
    from certbound.store.sql import SqlStore, open_store

__all__ = ["ClientExists", "SigningKeyExists", "SqlStore", "Store", "open_store"]

if not TYPE_CHECKING:  # a module __getattr__ mypy saw would make every name of the module exist for it

    def __getattr__(name: str) -> object:
        """`SqlStore` and `open_store`, imported when first asked for (see the module docstring)."""
        if name in ("SqlStore", "open_store"):
            from certbound.store import sql

            return getattr(sql, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
