"""certbound.sessions: server-side sessions behind sealed cookies, for the login pages and the gateway.

`Session` is the record, `SessionStore` what a backend provides (`SqlSessionStore` on the store's
database; Redis later), `SessionCookie` the sealed ``__Host-`` cookie that carries a session's id. No
web framework here: plain values in and out.
"""

from certbound.sessions.cookies import (
    COOKIE_REASONS,
    CookieError,
    SessionCookie,
    SessionCookieValue,
)
from certbound.sessions.interface import SessionStore
from certbound.sessions.session import Session, SessionLimits
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
