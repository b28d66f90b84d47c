"""certbound.sessions: server-side sessions behind sealed cookies, for the login pages and the gateway.

`Session` is the record, `SessionStore` what a backend provides (`SqlSessionStore` on the store's
database, `certbound.sessions.redis_store.RedisSessionStore` on Redis), `SessionCookie` the sealed
``__Host-`` cookie that carries a session's id. No web framework here: plain values in and out.

`SqlSessionStore` is imported on first use (module ``__getattr__``): it loads SQLAlchemy, alembic and
the database drivers, which a gateway with no login sessions has no use for (docs/performance.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certbound.sessions.cookies import (
    COOKIE_REASONS,
    CookieError,
    SessionCookie,
    SessionCookieValue,
)
from certbound.sessions.interface import SessionStore
from certbound.sessions.session import Session, SessionLimits

if TYPE_CHECKING:
    from certbound.sessions.sql import SqlSessionStore

__all__ = [
    "COOKIE_REASONS",
    "CookieError",
    "Session",
    "SessionCookie",
    "SessionCookieValue",
    "SessionLimits",
    "SessionStore",
    "SqlSessionStore",
]


if not TYPE_CHECKING:  # a module __getattr__ mypy saw would make every name of the module exist for it

    def __getattr__(name: str) -> object:
        """`SqlSessionStore`, imported when first asked for (see the module docstring)."""
        if name == "SqlSessionStore":
            from certbound.sessions.sql import SqlSessionStore

            return SqlSessionStore
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
