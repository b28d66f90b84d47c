"""The login session's cookie (docs/login.md): ``__Host-certbound``, sessions of purpose ``as-login``.

Its own module so that the worker's services build the cookie and the login pages read its purpose
without one importing the other.
"""

from __future__ import annotations

from certbound.sealing import Sealer
from certbound.sessions import SessionCookie

__all__ = ["COOKIE_NAME", "PURPOSE", "login_cookie"]

PURPOSE = "as-login"
COOKIE_NAME = "certbound"


def login_cookie(sealer: Sealer) -> SessionCookie:
    """The sealed ``__Host-certbound`` cookie (Secure, HttpOnly, SameSite=Lax) of the login pages."""
    return SessionCookie(sealer, name=COOKIE_NAME, purpose=PURPOSE)
